package server

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/scheduler"
	"github.com/drover-sh/drover/structs"
	"github.com/drover-sh/drover/structs/mock"
)

// These tests run the built-in schedulers (the server's default).

func TestPipeline_BuiltinSchedulerPlacesWithinNodes(t *testing.T) {
	s := testServer(t, withSchedulers)
	nodes := []*structs.Node{mock.Node(), mock.Node(), mock.Node()}
	for _, n := range nodes {
		registerNode(t, s, n)
	}
	job := mock.Job() // count 10 of 500 MHz, 256 MiB, one dynamic port
	resp := registerJob(t, s, job)

	eval := waitEval(t, s, resp.EvalID, structs.EvalStatusComplete)
	require.Empty(t, eval.FailedTGAllocs)
	allocs := liveAllocs(t, s, job)
	require.Len(t, allocs, 10)
	names := make(map[string]bool)
	for _, a := range allocs {
		require.False(t, names[a.Name], "allocation name %s given twice", a.Name)
		names[a.Name] = true
	}
	for _, n := range nodes {
		onNode, err := s.State().AllocsByNode(nil, n.ID)
		require.NoError(t, err)
		fit, dim := scheduler.AllocsFit(n, onNode)
		require.True(t, fit, "node %s overcommitted on %s", n.ID, dim)
	}
}

// An unplaceable job gets a blocked evaluation and says why on its
// evaluation; a node that registers later wakes it and it is placed.
func TestPipeline_BlockedEvalUnblocksWhenNodeRegisters(t *testing.T) {
	s := testServer(t, func(c *Config) { withSchedulers(c); c.NumSchedulers = 1 })
	small := mock.Node()
	small.Resources.Memory = 512
	registerNode(t, s, small)
	job := mock.Job()
	job.Groups[0].Count = 2
	job.Groups[0].Tasks[0].Resources.Memory = 2048
	resp := registerJob(t, s, job)

	eval := waitEval(t, s, resp.EvalID, structs.EvalStatusComplete)
	require.NotEmpty(t, eval.BlockedEval)
	var got structs.SingleEvalResponse
	require.NoError(t, s.RPC("Eval.GetEval", &structs.EvalSpecificRequest{EvalID: eval.ID}, &got))
	metric := got.Eval.FailedTGAllocs["web"]
	require.NotNil(t, metric, "the evaluation says why the group was not placed")
	require.Equal(t, 1, metric.NodesExhausted)
	require.Equal(t, 1, metric.DimensionExhausted["memory"])

	blocked := waitEval(t, s, eval.BlockedEval, structs.EvalStatusBlocked)
	require.Equal(t, eval.ModifyIndex, blocked.CreateIndex, "the blocked evaluation is written with the final status, in one entry")
	require.Eventually(t, func() bool { return s.blockedEvals.Stats().Blocked == 1 }, 5*time.Second, 10*time.Millisecond)
	require.Empty(t, liveAllocs(t, s, job))

	// Capacity that still is not enough: the same evaluation blocks
	// again, no new one is created.
	tooSmall := mock.Node()
	tooSmall.Resources.Memory = 1024
	registerNode(t, s, tooSmall)
	require.Eventually(t, func() bool {
		e, err := s.State().EvalByID(nil, blocked.ID)
		require.NoError(t, err)
		return e.Status == structs.EvalStatusBlocked && e.ModifyIndex > blocked.ModifyIndex+1
	}, 5*time.Second, 10*time.Millisecond, "the woken evaluation is reblocked")
	evals, err := s.State().EvalsByJob(nil, job.Namespace, job.ID)
	require.NoError(t, err)
	require.Len(t, evals, 2, "no new blocked evaluation")
	require.Eventually(t, func() bool { return s.blockedEvals.Stats().Blocked == 1 }, 5*time.Second, 10*time.Millisecond)

	registerNode(t, s, mock.Node())
	waitEval(t, s, blocked.ID, structs.EvalStatusComplete)
	require.Eventually(t, func() bool { return len(liveAllocs(t, s, job)) == 2 }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, 0, s.blockedEvals.Stats().Blocked)
}

// An allocation that stops frees its room: the blocked evaluation of a
// job waiting for it is woken and placed.
func TestPipeline_BlockedEvalUnblocksWhenAllocStops(t *testing.T) {
	s := testServer(t, func(c *Config) { withSchedulers(c); c.NumSchedulers = 1 })
	node := mock.Node()
	node.Resources.CPU = 1100 // minus 100 reserved: room for one
	registerNode(t, s, node)
	first := smallJob(1)
	waitEval(t, s, registerJob(t, s, first).EvalID, structs.EvalStatusComplete)
	running := liveAllocs(t, s, first)
	require.Len(t, running, 1)

	second := smallJob(1)
	eval := waitEval(t, s, registerJob(t, s, second).EvalID, structs.EvalStatusComplete)
	require.NotEmpty(t, eval.BlockedEval)
	require.Eventually(t, func() bool { return s.blockedEvals.Stats().Blocked == 1 }, 5*time.Second, 10*time.Millisecond)

	var ur structs.GenericResponse
	require.NoError(t, s.RPC("Node.UpdateAllocs", &structs.AllocUpdateRequest{Alloc: []*structs.Allocation{{ID: running[0].ID, ClientStatus: structs.AllocClientComplete}}}, &ur))
	require.Eventually(t, func() bool { return len(liveAllocs(t, s, second)) == 1 }, 10*time.Second, 10*time.Millisecond,
		"the stopped allocation's room went to the waiting job")
}

// A newer blocked evaluation of a job replaces the older one, which is
// canceled; a job whose later evaluation placed everything has its
// blocked evaluation canceled.
func TestPipeline_BlockedEvalDuplicatesCanceled(t *testing.T) {
	s := testServer(t, nil)
	job := mock.Job()
	registerJob(t, s, job)
	older, newer := mock.EvalFor(job), mock.EvalFor(job)
	older.Status, newer.Status = structs.EvalStatusBlocked, structs.EvalStatusBlocked
	// Both computed after every capacity change the leader saw.
	older.SnapshotIndex, newer.SnapshotIndex = 1<<40, 1<<40
	_, _, err := s.raftApply(structs.EvalUpdateRequestType, &structs.EvalUpdateRequest{Evals: []*structs.Evaluation{older}})
	require.NoError(t, err)
	_, _, err = s.raftApply(structs.EvalUpdateRequestType, &structs.EvalUpdateRequest{Evals: []*structs.Evaluation{newer}})
	require.NoError(t, err)

	waitEval(t, s, older.ID, structs.EvalStatusCanceled)
	require.Eventually(t, func() bool { return s.blockedEvals.Stats().Blocked == 1 }, 5*time.Second, 10*time.Millisecond)

	done := mock.EvalFor(job)
	done.Status = structs.EvalStatusComplete
	done.SnapshotIndex = newer.SnapshotIndex + 1
	_, _, err = s.raftApply(structs.EvalUpdateRequestType, &structs.EvalUpdateRequest{Evals: []*structs.Evaluation{done}})
	require.NoError(t, err)
	waitEval(t, s, newer.ID, structs.EvalStatusCanceled)
	require.Equal(t, 0, s.blockedEvals.Stats().Blocked)
}

// The leader is shut down while it schedules; the new leader restores
// the outstanding evaluations from the store and finishes them: every job
// ends with exactly its count of allocations and no evaluation is left
// behind.
func TestPipeline_LeaderFailoverLosesNoEvaluation(t *testing.T) {
	servers := testCluster(t, 3, withSchedulers)
	leader := waitForLeader(t, servers...)
	for i := 0; i < 3; i++ {
		registerNode(t, leader, mock.Node())
	}
	var jobs []*structs.Job
	for i := 0; i < 12; i++ {
		j := mock.Job()
		j.Groups[0].Count = 3
		j.Groups[0].Tasks[0].Resources = &structs.Resources{CPU: 100, Memory: 64}
		jobs = append(jobs, j)
		registerJob(t, leader, j)
	}
	require.NoError(t, leader.Shutdown())

	var rest []*Server
	for _, s := range servers {
		if s != leader {
			rest = append(rest, s)
		}
	}
	next := waitForLeader(t, rest...)
	settled := func() bool {
		evals, err := next.State().EvalsByPrefix(nil, "*", "")
		require.NoError(t, err)
		for _, e := range evals {
			if !e.TerminalStatus() {
				return false
			}
		}
		for _, j := range jobs {
			if len(liveAllocs(t, next, j)) != 3 {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(15 * time.Second)
	for !settled() {
		if time.Now().After(deadline) {
			t.Fatalf("evaluations left unfinished or jobs not placed: %s", pipelineState(t, next, jobs))
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
	for _, j := range jobs {
		names := make(map[string]bool)
		for _, a := range liveAllocs(t, next, j) {
			require.False(t, names[a.Name], "job %s has two allocations named %s", j.ID, a.Name)
			names[a.Name] = true
		}
	}
}

// pipelineState describes unfinished evaluations and allocation counts
// for a failure message.
func pipelineState(t *testing.T, s *Server, jobs []*structs.Job) string {
	var b strings.Builder
	evals, err := s.State().EvalsByPrefix(nil, "*", "")
	require.NoError(t, err)
	for _, e := range evals {
		if !e.TerminalStatus() {
			fmt.Fprintf(&b, "eval %s of %s %s (%s) modify %d; ", e.ID, e.JobID, e.Status, e.StatusDescription, e.ModifyIndex)
		}
	}
	for _, j := range jobs {
		fmt.Fprintf(&b, "%s: %d live; ", j.ID, len(liveAllocs(t, s, j)))
	}
	fmt.Fprintf(&b, "broker %+v blocked %+v", s.evalBroker.Stats(), s.blockedEvals.Stats())
	s.evalBroker.mu.Lock()
	for id, u := range s.evalBroker.unack {
		fmt.Fprintf(&b, "; unacked %s (%s, modify %d, requeue %v)", id, u.eval.Status, u.eval.ModifyIndex, u.requeue != nil)
	}
	s.evalBroker.mu.Unlock()
	return b.String()
}
