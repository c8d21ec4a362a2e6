package server

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
	"github.com/drover-sh/drover/structs/mock"
)

func testBlockedEval(job string, create, snapshot uint64) *structs.Evaluation {
	e := mock.Eval()
	e.JobID = job
	e.Status = structs.EvalStatusBlocked
	e.CreateIndex, e.SnapshotIndex = create, snapshot
	return e
}

func newBlocked() *BlockedEvals {
	b := NewBlockedEvals()
	b.SetEnabled(true)
	return b
}

func TestBlockedEvals_CapacityWakesMatchingDatacenters(t *testing.T) {
	b := newBlocked()
	dc1 := testBlockedEval("a", 1, 5)
	dc2 := testBlockedEval("b", 2, 5)
	anywhere := testBlockedEval("c", 3, 5)
	require.False(t, b.Block(dc1, []string{"dc1"}))
	require.False(t, b.Block(dc2, []string{"dc2", "dc3"}))
	require.False(t, b.Block(anywhere, []string{structs.AnyDatacenter}))
	require.Equal(t, 3, b.Stats().Blocked)

	woken := b.Capacity("dc3", 10)
	require.ElementsMatch(t, []*structs.Evaluation{dc2, anywhere}, woken)
	require.Equal(t, 1, b.Stats().Blocked)
	require.Empty(t, b.Capacity("dc3", 11), "woken evaluations are no longer tracked")
	require.Equal(t, []*structs.Evaluation{dc1}, b.Capacity("dc1", 12))
}

func TestBlockedEvals_CapacityOlderThanTheSnapshotDoesNotWake(t *testing.T) {
	b := newBlocked()
	e := testBlockedEval("a", 1, 20)
	require.False(t, b.Block(e, []string{"dc1"}))
	require.Empty(t, b.Capacity("dc1", 20), "the scheduler already saw this capacity")
	require.Equal(t, []*structs.Evaluation{e}, b.Capacity("dc1", 21))
}

func TestBlockedEvals_MissedCapacityUnblocksAtOnce(t *testing.T) {
	b := newBlocked()
	b.Capacity("dc1", 10)
	require.True(t, b.Block(testBlockedEval("a", 1, 9), []string{"dc1"}), "capacity appeared after its snapshot")
	require.False(t, b.Block(testBlockedEval("b", 2, 9), []string{"dc2"}), "not in its datacenters")
	require.False(t, b.Block(testBlockedEval("c", 3, 10), []string{"dc1"}), "its snapshot saw the capacity")
	require.Equal(t, 2, b.Stats().Blocked)

	// A new leader's first look counts as capacity everywhere.
	b.CapacityAll(15)
	require.Equal(t, 0, b.Stats().Blocked)
	require.True(t, b.Block(testBlockedEval("d", 4, 14), []string{"dc9"}))
}

func TestBlockedEvals_OnePerJobNewestWins(t *testing.T) {
	b := newBlocked()
	older, newer := testBlockedEval("a", 1, 5), testBlockedEval("a", 2, 6)
	require.False(t, b.Block(older, []string{"dc1"}))
	require.False(t, b.Block(newer, []string{"dc1"}))
	require.Equal(t, 1, b.Stats().Blocked)
	require.Equal(t, []*structs.Evaluation{older}, b.Duplicates())
	require.Empty(t, b.Duplicates(), "duplicates are handed out once")

	// An older one arriving late is the duplicate itself.
	late := testBlockedEval("a", 0, 4)
	require.False(t, b.Block(late, []string{"dc1"}))
	require.Equal(t, []*structs.Evaluation{late}, b.Duplicates())

	// The same evaluation again (a rewrite) is no duplicate.
	again := newer.Copy()
	require.False(t, b.Block(again, []string{"dc1"}))
	require.Empty(t, b.Duplicates())
	require.Equal(t, []*structs.Evaluation{again}, b.Capacity("dc1", 7))
}

func TestBlockedEvals_RemoveAndJobSatisfied(t *testing.T) {
	b := newBlocked()
	e := testBlockedEval("a", 1, 5)
	b.Block(e, []string{"dc1"})
	require.Nil(t, b.JobSatisfied(e.Namespace, "a", 5), "an evaluation from the same snapshot is the one that blocked")
	require.Equal(t, e, b.JobSatisfied(e.Namespace, "a", 6))
	require.Equal(t, 0, b.Stats().Blocked)

	b.Block(e, []string{"dc1"})
	b.Remove(e.ID)
	require.Equal(t, 0, b.Stats().Blocked)
	require.Empty(t, b.Capacity("dc1", 100))
}

func TestBlockedEvals_DisabledTracksNothing(t *testing.T) {
	b := newBlocked()
	b.Block(testBlockedEval("a", 1, 5), []string{"dc1"})
	b.SetEnabled(false)
	require.Equal(t, 0, b.Stats().Blocked)
	require.False(t, b.Block(testBlockedEval("b", 1, 5), []string{"dc1"}))
	require.Empty(t, b.Capacity("dc1", 10))
	require.Equal(t, 0, b.Stats().Blocked)
}
