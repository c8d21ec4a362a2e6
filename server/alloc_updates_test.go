package server

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
	"github.com/drover-sh/drover/structs/mock"
)

// A batch bigger than one entry may hold is committed as several entries
// of at most maxAllocUpdateEntry updates; the caller gets the last index,
// and the evaluation for a failed allocation is stored with the last
// entry, after every update.
func TestAllocUpdates_BigBatchSplitsIntoEntries(t *testing.T) {
	t.Parallel()
	s := testServer(t, nil)
	node := mock.Node()
	node.Resources.CPU, node.Resources.Memory = 1<<20, 1<<20
	registerNode(t, s, node)
	job := mock.Job()
	var jr structs.JobRegisterResponse
	require.NoError(t, s.RPC("Job.Register", &structs.JobRegisterRequest{Job: job}, &jr))
	stored, err := s.State().Snapshot().JobByID(nil, job.Namespace, job.ID)
	require.NoError(t, err)
	n := 2*maxAllocUpdateEntry + 10
	allocs := make([]*structs.Allocation, n)
	for i := range allocs {
		allocs[i] = mock.AllocFor(stored, node.ID, i)
	}
	_, _, err = s.raftApply(structs.ApplyPlanResultsRequestType, &structs.ApplyPlanResultsRequest{Job: stored, Allocs: allocs})
	require.NoError(t, err)

	updates := make([]*structs.Allocation, n)
	for i, a := range allocs {
		updates[i] = &structs.Allocation{ID: a.ID, ClientStatus: structs.AllocClientRunning}
	}
	updates[0].ClientStatus = structs.AllocClientFailed
	before := s.State().LatestIndex()
	var resp structs.GenericResponse
	require.NoError(t, s.RPC("Node.UpdateAllocs", &structs.AllocUpdateRequest{Alloc: updates}, &resp))

	snap := s.State().Snapshot()
	perIndex := map[uint64]int{}
	for i, a := range allocs {
		got, err := snap.AllocByID(nil, a.ID)
		require.NoError(t, err)
		require.Equal(t, updates[i].ClientStatus, got.ClientStatus)
		perIndex[got.ModifyIndex]++
	}
	require.Len(t, perIndex, 3, "three entries")
	for idx, count := range perIndex {
		require.Greater(t, idx, before)
		require.LessOrEqual(t, count, maxAllocUpdateEntry)
	}
	require.Equal(t, before+3, resp.Index, "the caller waits for the last entry")

	evals, err := snap.EvalsByJob(nil, job.Namespace, job.ID)
	require.NoError(t, err)
	var retry *structs.Evaluation
	for _, e := range evals {
		if e.TriggeredBy == structs.EvalTriggerRetryFailed {
			retry = e
		}
	}
	require.NotNil(t, retry)
	require.Equal(t, resp.Index, retry.CreateIndex, "the evaluation rides in the last entry")
}
