package server

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
	"github.com/drover-sh/drover/structs/mock"
)

func TestCollector_RemovesOnlyWhatFinishedLongAgo(t *testing.T) {
	t.Parallel()
	s := testServer(t, nil)
	node, downNode, busyDownNode := mock.Node(), mock.Node(), mock.Node()
	for _, n := range []*structs.Node{node, downNode, busyDownNode} {
		registerNode(t, s, n)
	}

	// A running service job: one finished evaluation with a stopped
	// allocation (collectable), one with a running allocation (kept).
	running := mock.Job()
	var jr structs.JobRegisterResponse
	require.NoError(t, s.RPC("Job.Register", &structs.JobRegisterRequest{Job: running}, &jr))
	stored, _ := s.State().Snapshot().JobByID(nil, running.Namespace, running.ID)
	oldEval, liveEval := mock.EvalFor(stored), mock.EvalFor(stored)
	oldEval.Status, liveEval.Status = structs.EvalStatusComplete, structs.EvalStatusComplete
	now := time.Now().UnixNano()
	oldEval.ModifyTime, liveEval.ModifyTime = now, now
	stopped := mock.AllocFor(stored, node.ID, 0)
	stopped.EvalID, stopped.DesiredStatus = oldEval.ID, structs.AllocDesiredStop
	live := mock.AllocFor(stored, busyDownNode.ID, 1)
	live.EvalID, live.ClientStatus = liveEval.ID, structs.AllocClientRunning
	stopped.ModifyTime, live.ModifyTime = now, now
	_, _, err := s.raftApply(structs.EvalUpdateRequestType, &structs.EvalUpdateRequest{Evals: []*structs.Evaluation{oldEval, liveEval}})
	require.NoError(t, err)
	_, _, err = s.raftApply(structs.ApplyPlanResultsRequestType, &structs.ApplyPlanResultsRequest{Job: stored, Allocs: []*structs.Allocation{stopped, live}})
	require.NoError(t, err)

	// A stopped job whose evaluations all finished.
	gone := mock.Job()
	require.NoError(t, s.RPC("Job.Register", &structs.JobRegisterRequest{Job: gone}, &jr))
	var dr structs.JobDeregisterResponse
	require.NoError(t, s.RPC("Job.Deregister", &structs.JobDeregisterRequest{JobID: gone.ID}, &dr))
	evals, _ := s.State().Snapshot().EvalsByJob(nil, gone.Namespace, gone.ID)
	for _, e := range evals {
		e = e.Copy()
		e.Status = structs.EvalStatusComplete
		e.ModifyTime = time.Now().UnixNano()
		_, _, err = s.raftApply(structs.EvalUpdateRequestType, &structs.EvalUpdateRequest{Evals: []*structs.Evaluation{e}})
		require.NoError(t, err)
	}

	// Two down nodes, one still holding a running allocation.
	_, _, err = s.raftApply(structs.NodeUpdateStatusRequestType, &structs.NodeUpdateStatusRequest{NodeIDs: []string{downNode.ID, busyDownNode.ID}, Status: structs.NodeStatusDown, UpdatedAt: time.Now().UnixNano()})
	require.NoError(t, err)

	c := &collector{srv: s}
	th := gcThresholds{Eval: time.Hour, Job: time.Hour, Node: time.Hour}
	res, err := c.collect(time.Now(), th)
	require.NoError(t, err)
	require.Equal(t, gcResult{}, res, "nothing is old enough yet")

	res, err = c.collect(time.Now().Add(2*time.Hour), th)
	require.NoError(t, err)
	// Evaluations: the old one of the running job, and both of the stopped
	// job (register and deregister).
	require.Equal(t, gcResult{Evals: 3, Allocs: 1, Jobs: 1, Nodes: 1}, res)

	snap := s.State().Snapshot()
	e, _ := snap.EvalByID(nil, oldEval.ID)
	require.Nil(t, e)
	a, _ := snap.AllocByID(nil, stopped.ID)
	require.Nil(t, a)
	e, _ = snap.EvalByID(nil, liveEval.ID)
	require.NotNil(t, e, "an evaluation with a running allocation stays")
	a, _ = snap.AllocByID(nil, live.ID)
	require.NotNil(t, a)
	j, _ := snap.JobByID(nil, gone.Namespace, gone.ID)
	require.Nil(t, j)
	j, _ = snap.JobByID(nil, running.Namespace, running.ID)
	require.NotNil(t, j)
	n, _ := snap.NodeByID(nil, downNode.ID)
	require.Nil(t, n)
	n, _ = snap.NodeByID(nil, busyDownNode.ID)
	require.NotNil(t, n, "a down node with a running allocation stays")
	n, _ = snap.NodeByID(nil, node.ID)
	require.NotNil(t, n)
}

func TestSystem_GarbageCollectIsForced(t *testing.T) {
	t.Parallel()
	s := testServer(t, nil)
	job := mock.Job()
	var jr structs.JobRegisterResponse
	require.NoError(t, s.RPC("Job.Register", &structs.JobRegisterRequest{Job: job}, &jr))
	var dr structs.JobDeregisterResponse
	require.NoError(t, s.RPC("Job.Deregister", &structs.JobDeregisterRequest{JobID: job.ID}, &dr))
	var resp structs.GenericResponse
	require.NoError(t, s.RPC("System.GarbageCollect", &structs.GenericRequest{}, &resp))
	j, _ := s.State().Snapshot().JobByID(nil, job.Namespace, job.ID)
	require.NotNil(t, j, "a stopped job with pending evaluations is kept")
}
