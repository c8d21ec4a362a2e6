package client

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/client/driver"
	"github.com/drover-sh/drover/client/driver/mock"
	"github.com/drover-sh/drover/structs"
)

func TestClient_RegistersFingerprintedNode(t *testing.T) {
	srv := testServer(t)
	n := newTestNode(t, srv)
	c := n.start()

	var node *structs.Node
	require.Eventually(t, func() bool {
		var err error
		node, err = srv.State().Snapshot().NodeByID(nil, n.nodeID)
		require.NoError(t, err)
		return node != nil
	}, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, structs.NodeStatusReady, node.Status)
	require.Equal(t, "dc1", node.Datacenter)
	require.Equal(t, "127.0.0.1:4750", node.HTTPAddr)
	require.Equal(t, "r1", node.Meta["rack"])
	require.Positive(t, node.Resources.CPU)
	require.Positive(t, node.Resources.Memory)
	require.Equal(t, 100, node.Reserved.CPU)
	require.Equal(t, "linux", node.Attributes["kernel.name"])
	require.NotEmpty(t, node.Attributes["unique.hostname"])
	require.True(t, node.Drivers["containerd"].Healthy)
	require.Contains(t, node.Drivers, "cni")
	require.Equal(t, n.nodeID, c.NodeID())

	// The runtime turns unhealthy: the next fingerprint registers the
	// node again, and the scheduler sees it.
	n.store.SetHealth(false, "containerd socket not found")
	require.Eventually(t, func() bool {
		node, err := srv.State().Snapshot().NodeByID(nil, n.nodeID)
		require.NoError(t, err)
		d := node.Drivers["containerd"]
		return !d.Healthy && d.HealthDescription == "containerd socket not found"
	}, 5*time.Second, 20*time.Millisecond)
	require.False(t, c.Node().Drivers["containerd"].Healthy)
}

func TestClient_WaitsForServers(t *testing.T) {
	srv := testServer(t)
	n := newTestNode(t, srv)
	addr := srv.RPCAddr().String()
	known := make(chan struct{})
	n.cb = func(cfg *Config) {
		// Gossip knows no server at first.
		cfg.Servers = func() []string {
			select {
			case <-known:
				return []string{"127.0.0.1:1", addr} // one dead, one alive
			default:
				return nil
			}
		}
	}
	// Gossip finds the servers a little later.
	time.AfterFunc(200*time.Millisecond, func() { close(known) })
	n.start()
}

func TestClient_BatchJobRunsToCompletion(t *testing.T) {
	srv := testServer(t)
	n := newTestNode(t, srv)
	c := n.start()

	job := testJob(structs.JobTypeBatch, 1, map[string]string{"run_for": "100ms", "stdout": "hello from work"}, nil)
	registerJob(t, srv, job)
	a := waitAlloc(t, srv, job)
	a = waitServerStatus(t, srv, a.ID, structs.AllocClientComplete, 5*time.Second)

	ts := a.TaskStates["work"]
	require.Equal(t, structs.TaskStateDead, ts.State)
	require.False(t, ts.Failed)
	require.Equal(t, []string{
		structs.TaskEventReceived, structs.TaskEventPulling, structs.TaskEventPulled,
		structs.TaskEventStarted, structs.TaskEventTerminated, structs.TaskEventNotRestarting,
	}, eventTypes(ts))
	require.Positive(t, ts.StartedAt)
	require.GreaterOrEqual(t, ts.FinishedAt, ts.StartedAt)
	require.Equal(t, 1, n.store.CallCount("StartTask", taskID(a)))
	require.False(t, n.store.Exists(taskID(a)), "a finished task's container is removed")

	// What the task was started with.
	starts := n.store.Calls("StartTask")
	require.Len(t, starts, 1)

	// The alloc dir layout is a contract: the log endpoint reads it.
	dir, err := c.AllocDir(a.ID)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(n.dataDir, "client", "allocs", a.ID), dir)
	require.DirExists(t, filepath.Join(dir, "alloc", "logs"))
	require.DirExists(t, filepath.Join(dir, "work", "local"))
	out, err := os.ReadFile(filepath.Join(dir, "alloc", "logs", "work.stdout"))
	require.NoError(t, err)
	require.Equal(t, "hello from work\n", string(out))

	var buf bytes.Buffer
	require.NoError(t, c.StreamLogs(context.Background(), a.ID, "work", "stdout", 0, false, true, &buf),
		"following a finished task's log returns")
	require.Equal(t, "hello from work\n", buf.String())

	local := c.Allocs()
	require.Len(t, local, 1)
	require.Equal(t, structs.AllocClientComplete, local[0].ClientStatus)
	require.Equal(t, 1, c.NumAllocs())
	require.Equal(t, 0, c.NumRunningAllocs())
}

func TestClient_TaskConfig(t *testing.T) {
	srv := testServer(t)
	n := newTestNode(t, srv)
	n.start()

	job := testJob(structs.JobTypeService, 1, map[string]string{"GREETING": "hi", "DROVER_ALLOC_ID": "spoofed"}, nil)
	registerJob(t, srv, job)
	a := waitAlloc(t, srv, job)
	waitServerStatus(t, srv, a.ID, structs.AllocClientRunning, 5*time.Second)

	cfg, ok := n.store.Config(taskID(a))
	require.True(t, ok)
	root := filepath.Join(n.dataDir, "client", "allocs", a.ID)
	require.Equal(t, driver.TaskID(a.ID, "work"), cfg.ID)
	require.Equal(t, a.ID, cfg.AllocID)
	require.Equal(t, n.nodeID, cfg.NodeID)
	require.Equal(t, job.ID, cfg.JobID)
	require.Equal(t, a.ID[:8], cfg.Hostname)
	require.Equal(t, filepath.Join(root, "alloc"), cfg.AllocDir)
	require.Equal(t, filepath.Join(root, "work", "local"), cfg.TaskDir)
	require.Equal(t, filepath.Join(root, "alloc", "logs", "work.stdout"), cfg.StdoutPath)
	require.Equal(t, filepath.Join(root, "alloc", "logs", "work.stderr"), cfg.StderrPath)
	require.Equal(t, int64(DefaultLogMaxBytes), cfg.LogMaxBytes)
	require.Equal(t, DefaultLogMaxFiles, cfg.LogMaxFiles)
	require.Equal(t, 100, cfg.CPU)
	require.Equal(t, 64, cfg.MemoryMB)
	require.Equal(t, "hi", cfg.Env["GREETING"])
	require.Equal(t, a.ID, cfg.Env["DROVER_ALLOC_ID"], "the task's env cannot override drover's")
	require.Equal(t, a.Name, cfg.Env["DROVER_ALLOC_NAME"])
	require.Equal(t, "0", cfg.Env["DROVER_ALLOC_INDEX"])
	require.Equal(t, job.ID, cfg.Env["DROVER_JOB_ID"])
	require.Equal(t, "web", cfg.Env["DROVER_GROUP_NAME"])
	require.Equal(t, "work", cfg.Env["DROVER_TASK_NAME"])
	require.Equal(t, "/alloc", cfg.Env["DROVER_ALLOC_DIR"])
	require.Equal(t, "/local", cfg.Env["DROVER_TASK_DIR"])
	require.Equal(t, "", cfg.NetNSPath)
}

func TestClient_ServiceTaskRestartsByPolicy(t *testing.T) {
	srv := testServer(t)
	n := newTestNode(t, srv)
	n.start()

	delay := 150 * time.Millisecond
	policy := &structs.RestartPolicy{Attempts: 2, Interval: structs.Duration(time.Hour), Delay: structs.Duration(delay), Mode: structs.RestartModeFail}
	job := testJob(structs.JobTypeService, 1, map[string]string{"run_for": "50ms", "exit_code": "3"}, policy)
	registerJob(t, srv, job)
	a := waitAlloc(t, srv, job)
	a = waitServerStatus(t, srv, a.ID, structs.AllocClientFailed, 5*time.Second)

	ts := a.TaskStates["work"]
	require.Equal(t, structs.TaskStateDead, ts.State)
	require.True(t, ts.Failed)
	require.Equal(t, 2, ts.Restarts)
	// The newest ten events: the start of the story has been dropped.
	require.Len(t, ts.Events, maxTaskEvents)
	require.Equal(t, structs.TaskEventNotRestarting, ts.Events[len(ts.Events)-1].Type)
	var terminated, restarting int
	for _, e := range ts.Events {
		switch e.Type {
		case structs.TaskEventTerminated:
			terminated++
			require.Equal(t, 3, e.ExitCode)
		case structs.TaskEventRestarting:
			restarting++
		}
	}
	require.Equal(t, 3, terminated)
	require.Equal(t, 2, restarting)

	starts := n.store.Calls("StartTask")
	require.Len(t, starts, 3)
	for i := 1; i < len(starts); i++ {
		// run_for (50ms) + delay between starts, never less.
		require.GreaterOrEqual(t, starts[i].At.Sub(starts[i-1].At), delay+50*time.Millisecond)
	}
	require.False(t, n.store.Exists(taskID(a)))
}

func TestClient_PullErrorFailsNoFasterThanTheDelay(t *testing.T) {
	srv := testServer(t)
	n := newTestNode(t, srv)
	n.start()

	delay := 300 * time.Millisecond
	policy := &structs.RestartPolicy{Attempts: 1, Interval: structs.Duration(time.Hour), Delay: structs.Duration(delay), Mode: structs.RestartModeFail}
	job := testJob(structs.JobTypeBatch, 1, nil, policy)
	job.Groups[0].Tasks[0].Image = "127.0.0.1:5000/nothing:latest pull_error=manifest unknown"
	registerJob(t, srv, job)
	a := waitAlloc(t, srv, job)
	a = waitServerStatus(t, srv, a.ID, structs.AllocClientFailed, 5*time.Second)

	ts := a.TaskStates["work"]
	require.True(t, ts.Failed)
	require.Equal(t, []string{
		structs.TaskEventReceived, structs.TaskEventPulling, structs.TaskEventDriverFailure, structs.TaskEventRestarting,
		structs.TaskEventPulling, structs.TaskEventDriverFailure, structs.TaskEventNotRestarting,
	}, eventTypes(ts))
	require.Contains(t, ts.Events[2].Message, "manifest unknown", "the registry's words reach the user")

	pulls := n.store.Calls("PullImage")
	require.Len(t, pulls, 2)
	require.GreaterOrEqual(t, pulls[1].At.Sub(pulls[0].At), delay)
	require.Empty(t, n.store.Calls("StartTask"))
}

func TestClient_StoppedJobIsStoppedAndDestroyed(t *testing.T) {
	srv := testServer(t)
	n := newTestNode(t, srv)
	c := n.start()

	job := testJob(structs.JobTypeService, 2, map[string]string{"ignore_sigterm": "1"}, nil)
	job.Groups[0].Tasks[0].KillTimeout = structs.Duration(200 * time.Millisecond)
	registerJob(t, srv, job)
	var allocs []*structs.Allocation
	require.Eventually(t, func() bool {
		allocs = serverAllocs(t, srv, job)
		if len(allocs) != 2 {
			return false
		}
		for _, a := range allocs {
			if a.ClientStatus != structs.AllocClientRunning {
				return false
			}
		}
		return true
	}, 5*time.Second, 10*time.Millisecond)
	for _, a := range allocs {
		require.True(t, n.store.Running(taskID(a)))
	}
	require.Equal(t, 2, c.NumRunningAllocs())

	stopJob(t, srv, job)
	for _, a := range allocs {
		a = waitServerStatus(t, srv, a.ID, structs.AllocClientComplete, 5*time.Second)
		ts := a.TaskStates["work"]
		require.False(t, ts.Failed)
		types := eventTypes(ts)
		require.Equal(t, []string{structs.TaskEventKilling, structs.TaskEventKilled}, types[len(types)-2:])
		killed := ts.Events[len(ts.Events)-1]
		require.Equal(t, 9, killed.Signal, "a task ignoring SIGTERM is killed after kill_timeout")
		require.False(t, n.store.Exists(taskID(a)), "the container is removed")
	}
	// The alloc dirs stay (logs) until the servers forget the allocations.
	for _, a := range allocs {
		require.DirExists(t, filepath.Join(n.dataDir, "client", "allocs", a.ID))
	}
}

// A client shutting down sends the states it has not reported yet, so a
// stopped agent does not leave the servers with stale ones until its next
// start.
func TestClient_ShutdownSendsLastStates(t *testing.T) {
	srv := testServer(t)
	n := newTestNode(t, srv)
	n.cb = func(c *Config) { c.UpdateWindow = 30 * time.Second }
	c := n.start()

	job := testJob(structs.JobTypeBatch, 1, map[string]string{"run_for": "10ms"}, nil)
	registerJob(t, srv, job)
	a := waitAlloc(t, srv, job)
	require.Eventually(t, func() bool {
		local := c.Allocs()
		return len(local) == 1 && local[0].ClientStatus == structs.AllocClientComplete
	}, 10*time.Second, 10*time.Millisecond)
	got, err := srv.State().Snapshot().AllocByID(nil, a.ID)
	require.NoError(t, err)
	require.NotEqual(t, structs.AllocClientComplete, got.ClientStatus, "the 30 s update window holds the update back")

	require.NoError(t, c.Shutdown())
	got, err = srv.State().Snapshot().AllocByID(nil, a.ID)
	require.NoError(t, err)
	require.Equal(t, structs.AllocClientComplete, got.ClientStatus)
}

// hangingDriver is the mock driver whose StopTask never returns, as a
// containerd that stopped answering would behave.
type hangingDriver struct {
	*mock.Driver
	release chan struct{}
	called  *atomic.Bool
}

func (d hangingDriver) StopTask(ctx context.Context, id string, timeout time.Duration, signal string) error {
	d.called.Store(true)
	<-d.release
	return nil
}

// A runner stuck in a driver call does not keep Shutdown from returning.
func TestClient_ShutdownDoesNotWaitForAHungDriver(t *testing.T) {
	srv := testServer(t)
	n := newTestNode(t, srv)
	release, called := make(chan struct{}), new(atomic.Bool)
	t.Cleanup(func() { close(release) })
	n.cb = func(c *Config) {
		c.Driver = hangingDriver{Driver: mock.New(n.store, "containerd"), release: release, called: called}
		c.ShutdownWait = 300 * time.Millisecond
	}
	c := n.start()
	job := testJob(structs.JobTypeService, 1, map[string]string{"run_for": "1h"}, nil)
	registerJob(t, srv, job)
	a := waitAlloc(t, srv, job)
	waitServerStatus(t, srv, a.ID, structs.AllocClientRunning, 10*time.Second)
	stopJob(t, srv, job)
	require.Eventually(t, called.Load, 10*time.Second, 10*time.Millisecond, "the stop did not reach the driver")

	done := make(chan error, 1)
	go func() { done <- c.Shutdown() }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown waits on the hung stop")
	}
}
