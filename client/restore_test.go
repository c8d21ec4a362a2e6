package client

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/client/driver"
	"github.com/drover-sh/drover/client/driver/mock"
	"github.com/drover-sh/drover/server"
	"github.com/drover-sh/drover/structs"
)

// runningAlloc registers a service job of one long-running task and
// waits until the servers see it running.
func runningAlloc(t *testing.T, srv *server.Server, restart *structs.RestartPolicy) (*structs.Job, *structs.Allocation) {
	t.Helper()
	job := testJob(structs.JobTypeService, 1, nil, restart)
	registerJob(t, srv, job)
	a := waitAlloc(t, srv, job)
	return job, waitServerStatus(t, srv, a.ID, structs.AllocClientRunning, 5*time.Second)
}

func TestClient_RestartReattaches(t *testing.T) {
	srv := testServer(t)
	n := newTestNode(t, srv)
	c := n.start()
	job, a := runningAlloc(t, srv, nil)
	id := taskID(a)
	pid := n.store.PID(id)
	require.NotZero(t, pid)

	require.NoError(t, c.Shutdown())
	require.True(t, n.store.Running(id), "shutting the client down leaves its tasks running")
	require.Equal(t, 0, n.store.CallCount("StopTask", id))

	c = n.start()
	require.Eventually(t, func() bool {
		local := c.Allocs()
		return len(local) == 1 && local[0].ClientStatus == structs.AllocClientRunning
	}, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, 1, n.store.CallCount("RecoverTask", id))
	require.Equal(t, 1, n.store.CallCount("StartTask", id), "a reattached task is not started again")
	require.Equal(t, pid, n.store.PID(id))
	ts := c.Allocs()[0].TaskStates["work"]
	require.Equal(t, structs.TaskStateRunning, ts.State)
	require.Equal(t, 0, ts.Restarts)

	// The new client controls the task: stopping the job stops it.
	stopJob(t, srv, job)
	waitServerStatus(t, srv, a.ID, structs.AllocClientComplete, 5*time.Second)
	require.False(t, n.store.Exists(id))
}

func TestClient_ReattachOutlastsARuntimeHiccup(t *testing.T) {
	srv := testServer(t)
	n := newTestNode(t, srv)
	c := n.start()
	_, a := runningAlloc(t, srv, nil)
	id := taskID(a)
	require.NoError(t, c.Shutdown())

	// The runtime does not answer the first waits after the restart.
	n.store.FailWaits(2)
	c = n.start()
	require.Eventually(t, func() bool { return n.store.CallCount("WaitTask", id) >= 3 }, 5*time.Second, 10*time.Millisecond)
	require.True(t, n.store.Running(id))
	require.Equal(t, 1, n.store.CallCount("StartTask", id), "the task was not given up for lost")
	ts := c.Allocs()[0].TaskStates["work"]
	require.Equal(t, structs.TaskStateRunning, ts.State)
	require.NotContains(t, eventTypes(ts), structs.TaskEventTerminated)
}

func TestClient_ExitWhileDownIsSeenWithItsExitCode(t *testing.T) {
	srv := testServer(t)
	n := newTestNode(t, srv)
	c := n.start()
	policy := &structs.RestartPolicy{Attempts: 1, Interval: structs.Duration(time.Hour), Delay: structs.Duration(100 * time.Millisecond), Mode: structs.RestartModeFail}
	_, a := runningAlloc(t, srv, policy)
	id := taskID(a)

	require.NoError(t, c.Shutdown())
	require.NoError(t, n.store.Exit(id, 7))
	c = n.start()

	// The exit is judged by the restart policy: one restart is allowed.
	require.Eventually(t, func() bool { return n.store.CallCount("StartTask", id) == 2 }, 5*time.Second, 10*time.Millisecond)
	a = waitServerStatus(t, srv, a.ID, structs.AllocClientRunning, 5*time.Second)
	ts := c.Allocs()[0].TaskStates["work"]
	require.Equal(t, 1, ts.Restarts)
	var exit *structs.TaskEvent
	for _, e := range ts.Events {
		if e.Type == structs.TaskEventTerminated {
			exit = e
		}
	}
	require.NotNil(t, exit)
	require.Equal(t, 7, exit.ExitCode)
	require.Contains(t, exit.Message, "exited with code 7")

	// The restart counter survived the restart: a second exit fails.
	require.NoError(t, n.store.Exit(id, 8))
	waitServerStatus(t, srv, a.ID, structs.AllocClientFailed, 5*time.Second)
}

func TestClient_TaskGoneWhileDownIsRestartedByPolicy(t *testing.T) {
	srv := testServer(t)
	n := newTestNode(t, srv)
	c := n.start()
	policy := &structs.RestartPolicy{Attempts: 1, Interval: structs.Duration(time.Hour), Delay: structs.Duration(100 * time.Millisecond), Mode: structs.RestartModeFail}
	_, a := runningAlloc(t, srv, policy)
	id := taskID(a)

	require.NoError(t, c.Shutdown())
	// Someone removed the container (containerd wiped) meanwhile.
	require.NoError(t, mock.New(n.store, "").DestroyTask(context.Background(), id))
	c = n.start()
	require.Eventually(t, func() bool { return n.store.Running(id) }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, 2, n.store.CallCount("StartTask", id))
	ts := c.Allocs()[0].TaskStates["work"]
	require.Equal(t, 1, ts.Restarts)
	require.Contains(t, eventTypes(ts), structs.TaskEventTerminated)
}

func TestClient_StoppedWhileDownIsDestroyedAtStart(t *testing.T) {
	srv := testServer(t)
	n := newTestNode(t, srv)
	c := n.start()
	job, a := runningAlloc(t, srv, nil)
	id := taskID(a)

	require.NoError(t, c.Shutdown())
	stopJob(t, srv, job)
	require.Eventually(t, func() bool {
		cur, err := srv.State().Snapshot().AllocByID(nil, a.ID)
		require.NoError(t, err)
		return cur.DesiredStatus == structs.AllocDesiredStop
	}, 5*time.Second, 10*time.Millisecond)
	require.True(t, n.store.Running(id))

	n.start()
	a = waitServerStatus(t, srv, a.ID, structs.AllocClientComplete, 5*time.Second)
	require.False(t, n.store.Exists(id))
	types := eventTypes(a.TaskStates["work"])
	require.Equal(t, structs.TaskEventKilled, types[len(types)-1])
}

func TestClient_RemovedWhileDownIsDestroyedAtStart(t *testing.T) {
	srv := testServer(t)
	n := newTestNode(t, srv)
	c := n.start()
	job, a := runningAlloc(t, srv, nil)
	id := taskID(a)
	dir, err := c.AllocDir(a.ID)
	require.NoError(t, err)

	require.NoError(t, c.Shutdown())
	stopJob(t, srv, job)
	// The servers garbage collect the allocation before the node is back.
	b, err := structs.Encode(structs.AllocGCRequestType, &structs.AllocGCRequest{AllocIDs: []string{a.ID}})
	require.NoError(t, err)
	f := srv.Raft().Apply(b, 5*time.Second)
	require.NoError(t, f.Error())
	if err, ok := f.Response().(error); ok {
		require.NoError(t, err)
	}

	c = n.start()
	require.Eventually(t, func() bool { return !n.store.Exists(id) && c.NumAllocs() == 0 }, 5*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return !dirExists(dir) }, 5*time.Second, 10*time.Millisecond, "the alloc dir is removed")
	_, err = c.AllocDir(a.ID)
	require.True(t, structs.IsNotFound(err))

	// Nothing of it is restored by the next start either.
	require.NoError(t, c.Shutdown())
	c = n.start()
	require.Equal(t, 0, c.NumAllocs())
}

func TestClient_SweepsOrphanContainers(t *testing.T) {
	srv := testServer(t)
	n := newTestNode(t, srv)
	d := mock.New(n.store, "")
	ctx := context.Background()
	orphan := driver.TaskID(structs.GenerateUUID(), "web")
	_, err := d.StartTask(ctx, &driver.TaskConfig{ID: orphan, AllocID: "gone", TaskName: "web", NodeID: n.nodeID})
	require.NoError(t, err)
	otherNode := driver.TaskID(structs.GenerateUUID(), "web")
	_, err = d.StartTask(ctx, &driver.TaskConfig{ID: otherNode, AllocID: "theirs", TaskName: "web", NodeID: "another-node"})
	require.NoError(t, err)

	n.start()
	require.Eventually(t, func() bool { return !n.store.Exists(orphan) }, 5*time.Second, 10*time.Millisecond)
	require.True(t, n.store.Exists(otherNode), "containers of other nodes are not ours to remove")
}

func dirExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}
