package server

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
	"github.com/drover-sh/drover/structs/mock"
)

func planJob(t *testing.T, s *Server, job *structs.Job) *structs.JobPlanResponse {
	t.Helper()
	var resp structs.JobPlanResponse
	require.NoError(t, s.RPC("Job.Plan", &structs.JobPlanRequest{Job: job, Diff: true}, &resp))
	return &resp
}

func TestJobPlan_NewJobAnnotatesAndWritesNothing(t *testing.T) {
	s := testServer(t, nil)
	for i := 0; i < 3; i++ {
		registerNode(t, s, mock.Node())
	}
	before := s.State().LatestIndex()
	job := mock.Job()

	resp := planJob(t, s, job)
	require.NotNil(t, resp.Annotations)
	require.Equal(t, 10, resp.Annotations.DesiredTGUpdates["web"].Place)
	require.Empty(t, resp.FailedTGAllocs)
	require.Zero(t, resp.JobModifyIndex, "no running version")
	require.Equal(t, structs.DiffTypeAdded, resp.Diff.Type)
	require.Equal(t, map[string]int{structs.UpdateTypeCreate: 10}, resp.Diff.Groups[0].Updates)
	require.Equal(t, before, resp.Index)

	require.Equal(t, before, s.State().LatestIndex(), "a dry run writes nothing")
	stored, err := s.State().JobByID(nil, job.Namespace, job.ID)
	require.NoError(t, err)
	require.Nil(t, stored)
}

func TestJobPlan_UpdateShowsDiffAndPlacementFailures(t *testing.T) {
	s := testServer(t, withSchedulers)
	registerNode(t, s, mock.Node())
	job := mock.Job()
	job.Groups[0].Count = 2
	reg := registerJob(t, s, job)
	waitEval(t, s, reg.EvalID, structs.EvalStatusComplete)
	require.Len(t, liveAllocs(t, s, job), 2)
	before := s.State().LatestIndex()

	// More memory than any node has: a destructive update that cannot
	// be placed.
	update := job.Copy()
	update.Groups[0].Tasks[0].Resources.Memory = 64 * 1024
	resp := planJob(t, s, update)
	require.Equal(t, reg.JobModifyIndex, resp.JobModifyIndex)
	require.Equal(t, structs.DiffTypeEdited, resp.Diff.Type)
	require.Equal(t, structs.DiffTypeEdited, resp.Diff.Groups[0].Type)
	metric := resp.FailedTGAllocs["web"]
	require.NotNil(t, metric, "the plan says the group cannot be placed")
	require.Equal(t, 1, metric.DimensionExhausted["memory"])

	// An unchanged job: nothing to do.
	same := planJob(t, s, job.Copy())
	require.Equal(t, structs.DiffTypeNone, same.Diff.Type)
	require.Empty(t, same.FailedTGAllocs)

	require.Equal(t, before, s.State().LatestIndex(), "dry runs write nothing")
	require.Len(t, liveAllocs(t, s, job), 2)
}

func TestJobPlan_RejectsInvalidJob(t *testing.T) {
	s := testServer(t, nil)
	var resp structs.JobPlanResponse
	err := s.RPC("Job.Plan", &structs.JobPlanRequest{}, &resp)
	require.Equal(t, structs.ErrInvalid, structs.CodeOf(err))

	job := mock.Job()
	job.Priority = 1000
	err = s.RPC("Job.Plan", &structs.JobPlanRequest{Job: job}, &resp)
	require.Equal(t, structs.ErrInvalid, structs.CodeOf(err))
	require.ErrorContains(t, err, "priority")
}

// A follower forwards the dry run to the leader.
func TestJobPlan_ForwardedFromFollower(t *testing.T) {
	servers := testCluster(t, 3, nil)
	leader := waitForLeader(t, servers...)
	registerNode(t, leader, mock.Node())
	for _, s := range servers {
		if s == leader {
			continue
		}
		resp := planJob(t, s, mock.Job())
		require.NotNil(t, resp.Annotations)
		require.Positive(t, resp.Annotations.DesiredTGUpdates["web"].Place)
		return
	}
}
