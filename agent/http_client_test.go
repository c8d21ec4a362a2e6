package agent

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/api"
	"github.com/drover-sh/drover/client/driver"
	"github.com/drover-sh/drover/structs"
)

// fakeLocalClient stands in for the node's client behind the HTTP
// endpoints: the real client is exercised by the e2e tests.
type fakeLocalClient struct {
	nodeID string
	log    string

	mu        sync.Mutex
	restarted []string
}

func (f *fakeLocalClient) NodeID() string { return f.nodeID }

func (f *fakeLocalClient) StreamLogs(ctx context.Context, allocID, task, typ string, offset int64, fromEnd, follow bool, w io.Writer) error {
	data := f.log
	if typ == "stderr" {
		data = "oops\n"
	}
	start := offset
	if fromEnd {
		start = max(0, int64(len(data))-offset)
	}
	if start < int64(len(data)) {
		w.Write([]byte(data[start:]))
	}
	if follow {
		w.Write([]byte("more\n"))
	}
	return nil
}

func (f *fakeLocalClient) Exec(ctx context.Context, allocID, task string, opts *driver.ExecOptions) (int, error) {
	in, err := io.ReadAll(opts.Stdin)
	if err != nil {
		return 0, err
	}
	opts.Stdout.Write(bytes.ToUpper(in))
	opts.Stderr.Write([]byte(strings.Join(opts.Command, " ")))
	return 7, nil
}

func (f *fakeLocalClient) RestartAlloc(allocID, task string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.restarted = append(f.restarted, allocID+"/"+task)
	return nil
}

// The client endpoints reached through another agent are proxied to the
// agent whose client runs the allocation, prefixes and all; bad
// parameters are refused before anything is proxied.
func TestHTTP_ClientEndpointsProxyToTheAllocsNode(t *testing.T) {
	nodes := startCluster(t, 3)
	waitForLeader(t, nodes, 3)
	entry, runner := nodes[0], nodes[2]

	node := registerNode(t, entry, structs.GenerateUUID())
	node.HTTPAddr = runner.agent.HTTPAddr()
	var ur structs.NodeUpdateResponse
	require.NoError(t, entry.agent.rpc("Node.Register", &structs.NodeRegisterRequest{Node: node}, &ur))
	fake := &fakeLocalClient{nodeID: node.ID, log: "one\ntwo\nthree\n"}
	runner.agent.local = fake

	c := entry.client()
	_, err := c.Jobs().Register(ctx(t), jobYAML("web", 1), "application/yaml", nil)
	require.NoError(t, err)
	var allocID string
	require.Eventually(t, func() bool {
		allocs, _, err := c.Jobs().Allocations(ctx(t), "web", nil)
		if err != nil || len(allocs) != 1 {
			return false
		}
		allocID = allocs[0].ID
		return true
	}, 15*time.Second, 50*time.Millisecond)
	prefix := allocID[:8]

	read := func(opts *api.LogOptions) string {
		rc, err := c.Allocations().Logs(ctx(t), prefix, opts)
		require.NoError(t, err)
		defer rc.Close()
		b, err := io.ReadAll(rc)
		require.NoError(t, err)
		return string(b)
	}
	require.Equal(t, "one\ntwo\nthree\n", read(&api.LogOptions{}))
	require.Equal(t, "oops\n", read(&api.LogOptions{Stderr: true, Task: "server"}))
	require.Equal(t, "two\nthree\n", read(&api.LogOptions{Lines: 2}))
	require.Equal(t, "three\nmore\n", read(&api.LogOptions{Lines: 1, Follow: true}))
	require.Equal(t, "ee\n", read(&api.LogOptions{Origin: "end", Offset: 3}))

	var stdout, stderr bytes.Buffer
	code, err := c.Allocations().Exec(ctx(t), prefix, &api.ExecOptions{
		Command: []string{"cat", "-"}, Stdin: strings.NewReader("hello"), Stdout: &stdout, Stderr: &stderr,
	})
	require.NoError(t, err)
	require.Equal(t, 7, code)
	require.Equal(t, "HELLO", stdout.String())
	require.Equal(t, "cat -", stderr.String())

	require.NoError(t, c.Allocations().Restart(ctx(t), prefix, ""))
	fake.mu.Lock()
	require.Equal(t, []string{allocID + "/"}, fake.restarted, "no task named: all of them")
	fake.mu.Unlock()

	// Bad input: a 400 naming the parameter.
	base := "http://" + entry.agent.HTTPAddr()
	for q, field := range map[string]string{
		"?type=stdin":  "type",
		"?task=nope":   "task",
		"?offset=-1":   "offset",
		"?follow=yes":  "follow",
		"?origin=mid":  "origin",
		"?lines=three": "lines",
	} {
		resp, body := doHTTP(t, "GET", base+"/v1/client/fs/logs/"+allocID+q, "", "")
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s: %v", q, body)
		require.Equal(t, field, body["field"], q)
	}
	resp, body := doHTTP(t, "GET", base+"/v1/client/fs/logs/"+structs.GenerateUUID(), "", "")
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "%v", body)
	resp, body = doHTTP(t, "GET", base+"/v1/client/allocation/"+allocID+"/exec?command=%5B%22sh%22%5D", "", "")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "exec without an upgrade: %v", body)
	_, err = c.Allocations().Exec(ctx(t), prefix, &api.ExecOptions{Command: []string{"sh"}, Task: "nope"})
	require.ErrorContains(t, err, "no task \"nope\"")

	// Stop goes through the servers: the scheduler replaces it.
	stop, err := c.Allocations().Stop(ctx(t), prefix)
	require.NoError(t, err)
	require.NotEmpty(t, stop.EvalID)
	require.Eventually(t, func() bool {
		a, _, err := c.Allocations().Info(ctx(t), allocID, nil)
		return err == nil && a.DesiredStatus != structs.AllocDesiredRun
	}, 15*time.Second, 50*time.Millisecond)
}
