package client

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/client/driver"
	"github.com/drover-sh/drover/structs"
)

func TestClient_RestartAllocIsNotCounted(t *testing.T) {
	srv := testServer(t)
	n := newTestNode(t, srv)
	c := n.start()
	// No restart allowed by the policy: a counted restart would fail it.
	_, a := runningAlloc(t, srv, nil)
	id := taskID(a)

	require.NoError(t, c.RestartAlloc(a.ID, "work"))
	require.Eventually(t, func() bool { return n.store.CallCount("StartTask", id) == 2 && n.store.Running(id) }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, c.RestartAlloc(a.ID, ""), "all tasks")
	require.Eventually(t, func() bool { return n.store.CallCount("StartTask", id) == 3 && n.store.Running(id) }, 5*time.Second, 10*time.Millisecond)

	require.Eventually(t, func() bool {
		cur, err := srv.State().Snapshot().AllocByID(nil, a.ID)
		require.NoError(t, err)
		ts := cur.TaskStates["work"]
		return cur.ClientStatus == structs.AllocClientRunning && ts.Restarts == 2 && ts.State == structs.TaskStateRunning
	}, 5*time.Second, 10*time.Millisecond)
	ts := c.Allocs()[0].TaskStates["work"]
	require.Contains(t, eventTypes(ts), structs.TaskEventRestartSignal)
	require.False(t, ts.Failed)

	require.True(t, structs.IsNotFound(c.RestartAlloc("nope", "")))
	require.True(t, structs.IsNotFound(c.RestartAlloc(a.ID, "nope")))
}

func TestClient_Exec(t *testing.T) {
	srv := testServer(t)
	n := newTestNode(t, srv)
	c := n.start()
	_, a := runningAlloc(t, srv, nil)

	var out bytes.Buffer
	code, err := c.Exec(context.Background(), a.ID, "work", &driver.ExecOptions{Command: []string{"cat", "/etc/hostname"}, Stdout: &out})
	require.NoError(t, err)
	require.Equal(t, 0, code)
	require.Equal(t, "exec cat /etc/hostname\n", out.String())

	_, err = c.Exec(context.Background(), a.ID, "work", &driver.ExecOptions{})
	require.Equal(t, structs.ErrInvalid, structs.CodeOf(err))
	_, err = c.Exec(context.Background(), "nope", "work", &driver.ExecOptions{Command: []string{"ls"}})
	require.True(t, structs.IsNotFound(err))
	_, err = c.Exec(context.Background(), a.ID, "nope", &driver.ExecOptions{Command: []string{"ls"}})
	require.True(t, structs.IsNotFound(err))
}

func TestClient_StreamLogsAcrossRotation(t *testing.T) {
	srv := testServer(t)
	n := newTestNode(t, srv)
	// The test rotates by hand (c.rotator.check), between writes, so
	// copy-truncate never races a write and every line must arrive.
	n.cb = func(cfg *Config) { cfg.LogMaxBytes = 64; cfg.LogMaxFiles = 3; cfg.LogRotateInterval = time.Hour }
	c := n.start()
	job, a := runningAlloc(t, srv, nil)
	dir, err := c.AllocDir(a.ID)
	require.NoError(t, err)
	stdout := dir + "/alloc/logs/work.stdout"

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var followed syncBuffer
	done := make(chan error, 1)
	go func() { done <- c.StreamLogs(ctx, a.ID, "work", "stdout", 0, false, true, &followed) }()

	var want strings.Builder
	for i := range 40 {
		line := strings.Repeat(string(rune('a'+i%26)), 20) + "\n"
		want.WriteString(line)
		appendFile(t, stdout, line)
		if i%3 == 2 {
			c.rotator.check()
		}
		if i%8 == 7 {
			require.Eventually(t, func() bool { return followed.String() == want.String() }, 5*time.Second, 5*time.Millisecond)
		}
	}
	require.Eventually(t, func() bool { return followed.String() == want.String() }, 5*time.Second, 5*time.Millisecond)
	require.FileExists(t, stdout+".3")
	require.NoFileExists(t, stdout+".4", "LogMaxFiles copies are kept")

	// Reading back gives the tail that rotation kept, oldest first.
	var all bytes.Buffer
	require.NoError(t, c.StreamLogs(context.Background(), a.ID, "work", "stdout", 0, false, false, &all))
	require.True(t, strings.HasSuffix(want.String(), all.String()))
	require.Less(t, all.Len(), len(want.String()), "rotation dropped the oldest lines")
	var tail bytes.Buffer
	require.NoError(t, c.StreamLogs(context.Background(), a.ID, "work", "stdout", 21, true, false, &tail))
	require.Equal(t, strings.Repeat("n", 20)+"\n", tail.String())

	// Following ends when the task is finished for good.
	stopJob(t, srv, job)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("following did not end when the task was stopped")
	}

	var b bytes.Buffer
	require.Equal(t, structs.ErrInvalid, structs.CodeOf(c.StreamLogs(context.Background(), a.ID, "work", "stdin", 0, false, false, &b)))
	require.Equal(t, structs.ErrInvalid, structs.CodeOf(c.StreamLogs(context.Background(), a.ID, "work", "stdout", -1, false, false, &b)))
	require.True(t, structs.IsNotFound(c.StreamLogs(context.Background(), "nope", "work", "stdout", 0, false, false, &b)))
	require.True(t, structs.IsNotFound(c.StreamLogs(context.Background(), a.ID, "nope", "stdout", 0, false, false, &b)))
}

func TestClient_RotatesLogsOnItsOwn(t *testing.T) {
	srv := testServer(t)
	n := newTestNode(t, srv)
	n.cb = func(cfg *Config) { cfg.LogMaxBytes = 10; cfg.LogRotateInterval = 20 * time.Millisecond }
	c := n.start()
	job, a := runningAlloc(t, srv, nil)
	dir, err := c.AllocDir(a.ID)
	require.NoError(t, err)
	stderr := dir + "/alloc/logs/work.stderr"
	appendFile(t, stderr, strings.Repeat("e", 50))
	require.Eventually(t, func() bool { return fileLen(stderr+".1") == 50 && fileLen(stderr) == 0 }, 5*time.Second, 10*time.Millisecond)

	// A finished task's files are no longer watched.
	stopJob(t, srv, job)
	waitServerStatus(t, srv, a.ID, structs.AllocClientComplete, 5*time.Second)
	require.Eventually(t, func() bool {
		c.rotator.mu.Lock()
		defer c.rotator.mu.Unlock()
		return len(c.rotator.files) == 0
	}, 5*time.Second, 10*time.Millisecond)
}

// Other logs, such as the managed containerd's, are rotated while their
// writer keeps them open with O_APPEND: its next write lands at the start
// of the truncated file, not past a hole.
func TestClient_RotatesOtherLogs(t *testing.T) {
	srv := testServer(t)
	n := newTestNode(t, srv)
	path := filepath.Join(t.TempDir(), "containerd.log")
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	require.NoError(t, err)
	defer w.Close()
	n.cb = func(cfg *Config) {
		cfg.LogMaxBytes = 10
		cfg.LogRotateInterval = 20 * time.Millisecond
		cfg.OtherLogs = []string{path}
	}
	n.start()

	_, err = w.WriteString(strings.Repeat("x", 50))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return fileLen(path+".1") == 50 && fileLen(path) == 0 }, 5*time.Second, 10*time.Millisecond)
	_, err = w.WriteString("after")
	require.NoError(t, err)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "after", string(b))
}

func fileLen(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return -1
	}
	return fi.Size()
}

// TestClient_ServerViewWithinASecond measures how long the servers take
// to see what the client saw, for a burst of allocations starting and
// then stopping together, and checks a burst costs few update calls.
func TestClient_ServerViewWithinASecond(t *testing.T) {
	srv := testServer(t)
	n := newTestNode(t, srv)
	c := n.start()

	const count = 20
	job := testJob(structs.JobTypeService, count, nil, nil)
	job.Groups[0].Tasks[0].Resources = &structs.Resources{CPU: 10, Memory: 10}

	// Watch the servers' view and the client's, recording when each
	// allocation reached a status on each side, until the servers saw
	// every allocation complete.
	type key struct{ id, status string }
	clientAt, serverAt := map[key]time.Time{}, map[key]time.Time{}
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		deadline := time.Now().Add(8 * time.Second)
		for time.Now().Before(deadline) {
			now := time.Now()
			for _, a := range c.Allocs() {
				if _, ok := clientAt[key{a.ID, a.ClientStatus}]; !ok {
					clientAt[key{a.ID, a.ClientStatus}] = now
				}
			}
			remote, err := srv.State().Snapshot().AllocsByJob(nil, job.Namespace, job.ID, true)
			if err != nil {
				return
			}
			complete := 0
			for _, a := range remote {
				if _, ok := serverAt[key{a.ID, a.ClientStatus}]; !ok {
					serverAt[key{a.ID, a.ClientStatus}] = now
				}
				if a.ClientStatus == structs.AllocClientComplete {
					complete++
				}
			}
			if complete == count {
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()

	callsBefore, _ := c.updater.stats()
	registerJob(t, srv, job)
	require.Eventually(t, func() bool {
		n := 0
		for _, a := range serverAllocs(t, srv, job) {
			if a.ClientStatus == structs.AllocClientRunning {
				n++
			}
		}
		return n == count
	}, 5*time.Second, 5*time.Millisecond)
	stopJob(t, srv, job)
	select {
	case <-sampled:
	case <-time.After(10 * time.Second):
		t.Fatal("the servers did not see every allocation complete")
	}
	callsAfter, _ := c.updater.stats()

	var lags []time.Duration
	for k, at := range clientAt {
		if k.status != structs.AllocClientRunning && k.status != structs.AllocClientComplete {
			continue
		}
		seen, ok := serverAt[k]
		require.True(t, ok, "servers never saw %s %s", k.id, k.status)
		lags = append(lags, max(0, seen.Sub(at)))
	}
	require.Len(t, lags, 2*count)
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	median, worst := lags[len(lags)/2], lags[len(lags)-1]
	t.Logf("client -> server view lag over %d transitions: median %s, max %s; %d update calls to start and stop %d allocations",
		len(lags), median, worst, callsAfter-callsBefore, count)
	require.Less(t, worst, time.Second)
	// Each allocation goes through about ten task events; the window
	// folds each burst into a handful of calls.
	require.LessOrEqual(t, callsAfter-callsBefore, int64(count/2))
}
