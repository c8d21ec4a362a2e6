package state

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/client/driver"
	"github.com/drover-sh/drover/structs"
	"github.com/drover-sh/drover/structs/mock"
)

func TestDB_RoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "client", "state.db")
	db, err := Open(path)
	require.NoError(t, err)

	a := mock.Alloc()
	a.AllocModifyIndex = 42
	require.NoError(t, db.PutAlloc(a))
	started := time.Now().Round(0).UTC()
	ts := &TaskState{
		State: &structs.TaskState{State: structs.TaskStateRunning, Restarts: 2, StartedAt: started.UnixNano(),
			Events: []*structs.TaskEvent{{Type: structs.TaskEventTerminated, ExitCode: 3, Time: 7}}},
		Handle:       &driver.TaskHandle{ID: driver.TaskID(a.ID, "server"), PID: 4242, StartedAt: started},
		RestartCount: 1,
		WindowStart:  started.Add(-time.Minute),
	}
	require.NoError(t, db.PutTask(a.ID, "server", ts))
	require.NoError(t, db.PutNetwork(a.ID, &NetworkState{NetNSPath: "/run/netns/x", Data: map[string]string{"ip": "10.0.0.2"}}))

	other := mock.Alloc()
	require.NoError(t, db.PutAlloc(other))
	require.NoError(t, db.DeleteAlloc(other.ID))
	require.NoError(t, db.DeleteAlloc("never-there"), "deleting a missing allocation is not an error")

	require.NoError(t, db.PutMeta("node_id", "n1"))
	require.NoError(t, db.Close())

	// Reopen: everything written is read back the same.
	db, err = Open(path)
	require.NoError(t, err)
	defer db.Close()
	allocs, errs, err := db.Allocs()
	require.NoError(t, err)
	require.Empty(t, errs)
	require.Len(t, allocs, 1)
	got := allocs[0]
	require.Equal(t, a.ID, got.Alloc.ID)
	require.Equal(t, uint64(42), got.Alloc.AllocModifyIndex)
	require.Equal(t, a.Job.ID, got.Alloc.Job.ID)
	require.Equal(t, a.Job.Groups[0].Tasks[0].KillTimeout, got.Alloc.Job.Groups[0].Tasks[0].KillTimeout)
	require.Equal(t, "/run/netns/x", got.Network.NetNSPath)
	require.Equal(t, "10.0.0.2", got.Network.Data["ip"])
	gt := got.Tasks["server"]
	require.NotNil(t, gt)
	require.Equal(t, ts.State, gt.State)
	require.Equal(t, ts.Handle.ID, gt.Handle.ID)
	require.Equal(t, 4242, gt.Handle.PID)
	require.True(t, ts.Handle.StartedAt.Equal(gt.Handle.StartedAt))
	require.Equal(t, 1, gt.RestartCount)
	require.True(t, ts.WindowStart.Equal(gt.WindowStart))
	require.True(t, gt.RestartAt.IsZero())

	v, err := db.GetMeta("node_id")
	require.NoError(t, err)
	require.Equal(t, "n1", v)
	v, err = db.GetMeta("missing")
	require.NoError(t, err)
	require.Empty(t, v)
}

func TestDB_BadRecordIsSkipped(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "state.db"))
	require.NoError(t, err)
	defer db.Close()
	good := mock.Alloc()
	require.NoError(t, db.PutAlloc(good))
	// Task state written for an allocation that was never stored.
	require.NoError(t, db.PutTask("orphan", "web", &TaskState{State: &structs.TaskState{State: structs.TaskStatePending}}))

	allocs, errs, err := db.Allocs()
	require.NoError(t, err)
	require.Len(t, allocs, 1)
	require.Equal(t, good.ID, allocs[0].Alloc.ID)
	require.Contains(t, errs, "orphan")
}
