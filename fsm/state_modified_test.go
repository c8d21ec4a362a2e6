package fsm

import (
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
)

func TestEvalsModifiedSince(t *testing.T) {
	s := newTestStore(t)
	job := mockJob("default", "web")
	require.NoError(t, s.UpsertEvals(10, []*structs.Evaluation{mockEval(job, evalID(1)), mockEval(job, evalID(2))}))
	require.NoError(t, s.UpsertEvals(11, []*structs.Evaluation{mockEval(job, evalID(3))}))
	// Rewriting eval 1 moves it after eval 3.
	require.NoError(t, s.UpsertEvals(12, []*structs.Evaluation{mockEval(job, evalID(1))}))

	snap := s.Snapshot()
	all, err := snap.EvalsModifiedSince(nil, 0)
	require.NoError(t, err)
	require.Len(t, all, 3)
	require.Equal(t, evalID(1), all[2].ID)

	since, err := snap.EvalsModifiedSince(nil, 10)
	require.NoError(t, err)
	require.Equal(t, []string{evalID(3), evalID(1)}, evalIDs(since))

	ws := memdb.NewWatchSet()
	none, err := snap.EvalsModifiedSince(ws, 12)
	require.NoError(t, err)
	require.Empty(t, none)
	require.True(t, ws.Watch(time.After(10*time.Millisecond)), "no write yet: the watch must time out")
	require.NoError(t, s.UpsertEvals(13, []*structs.Evaluation{mockEval(job, evalID(4))}))
	require.False(t, ws.Watch(time.After(time.Second)), "an eval write must fire the watch")
}

// Allocations that stopped are listed by the index they stopped at; live
// ones are not listed at all.
func TestAllocsStoppedSince(t *testing.T) {
	s := newTestStore(t)
	job := mockJob("default", "web")
	require.NoError(t, s.UpsertJob(5, 1000, job, nil))
	require.NoError(t, s.UpsertAllocs(10, []*structs.Allocation{mockAlloc(job, "a1", "n1", "e1"), mockAlloc(job, "a2", "n1", "e1")}))
	stop := mockAlloc(job, "a1", "n1", "e1")
	stop.ClientStatus = structs.AllocClientComplete
	require.NoError(t, s.UpdateAllocsFromClient(11, []*structs.Allocation{stop}, nil))

	var seen []string
	require.NoError(t, s.Snapshot().AllocsStoppedSince(nil, 10, func(a *structs.Allocation) bool {
		seen = append(seen, a.ID)
		return true
	}))
	require.Equal(t, []string{"a1"}, seen)

	seen = nil
	require.NoError(t, s.Snapshot().AllocsStoppedSince(nil, 11, func(a *structs.Allocation) bool {
		seen = append(seen, a.ID)
		return true
	}))
	require.Empty(t, seen, "nothing stopped after index 11")

	require.NoError(t, s.UpsertPlanResults(13, &structs.ApplyPlanResultsRequest{
		AllocsStopped: []*structs.Allocation{{ID: "a2", DesiredStatus: structs.AllocDesiredStop}},
	}))
	seen = nil
	require.NoError(t, s.Snapshot().AllocsStoppedSince(nil, 0, func(a *structs.Allocation) bool {
		seen = append(seen, a.ID)
		return true
	}))
	require.Equal(t, []string{"a1", "a2"}, seen, "in the order they stopped")
	seen = nil
	require.NoError(t, s.Snapshot().AllocsStoppedSince(nil, 0, func(a *structs.Allocation) bool {
		seen = append(seen, a.ID)
		return false
	}))
	require.Len(t, seen, 1, "returning false stops the walk")

	ws := memdb.NewWatchSet()
	require.Equal(t, uint64(13), s.Snapshot().IndexWatch(ws, tableAllocs))
	require.Equal(t, uint64(0), s.Snapshot().IndexWatch(nil, tableDeployments))
	require.NoError(t, s.UpsertAllocs(14, []*structs.Allocation{mockAlloc(job, "a3", "n2", "e2")}))
	require.False(t, ws.Watch(time.After(time.Second)), "an alloc write must fire the watch")
}
