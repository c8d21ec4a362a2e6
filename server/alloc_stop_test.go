package server

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
	"github.com/drover-sh/drover/structs/mock"
)

func TestAlloc_Stop(t *testing.T) {
	t.Parallel()
	s := testServer(t, nil)
	node := mock.Node()
	registerNode(t, s, node)
	job := mock.Job()
	var jr structs.JobRegisterResponse
	require.NoError(t, s.RPC("Job.Register", &structs.JobRegisterRequest{Job: job}, &jr))
	stored, err := s.State().Snapshot().JobByID(nil, job.Namespace, job.ID)
	require.NoError(t, err)
	alloc := mock.AllocFor(stored, node.ID, 0)
	_, _, err = s.raftApply(structs.ApplyPlanResultsRequestType, &structs.ApplyPlanResultsRequest{Job: stored, Allocs: []*structs.Allocation{alloc}})
	require.NoError(t, err)

	var resp structs.AllocStopResponse
	require.NoError(t, s.RPC("Alloc.Stop", &structs.AllocStopRequest{AllocID: alloc.ID}, &resp))
	got, err := s.State().Snapshot().AllocByID(nil, alloc.ID)
	require.NoError(t, err)
	require.True(t, got.DesiredTransition.Migrate, "the scheduler replaces it like a migration")
	eval, err := s.State().Snapshot().EvalByID(nil, resp.EvalID)
	require.NoError(t, err)
	require.Equal(t, structs.EvalTriggerAllocStop, eval.TriggeredBy)
	require.Equal(t, job.ID, eval.JobID)

	// Unknown: 404; already finished: conflict; neither writes anything.
	idx := s.State().LatestIndex()
	err = s.RPC("Alloc.Stop", &structs.AllocStopRequest{AllocID: structs.GenerateUUID()}, &resp)
	require.Equal(t, structs.ErrNotFound, structs.CodeOf(err))
	require.Equal(t, idx, s.State().LatestIndex())
	done := got.Copy()
	done.ClientStatus = structs.AllocClientComplete
	_, _, err = s.raftApply(structs.AllocClientUpdateRequestType, &structs.AllocUpdateRequest{Alloc: []*structs.Allocation{done}})
	require.NoError(t, err)
	idx = s.State().LatestIndex()
	err = s.RPC("Alloc.Stop", &structs.AllocStopRequest{AllocID: alloc.ID}, &resp)
	require.Equal(t, structs.ErrConflict, structs.CodeOf(err))
	require.ErrorContains(t, err, "complete")
	require.Equal(t, idx, s.State().LatestIndex())
}
