package server

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
	"github.com/drover-sh/drover/structs/mock"
)

// pipelineServer starts a leader whose workers run the fake scheduler.
func pipelineServer(t *testing.T, cb func(*Config)) *Server {
	t.Helper()
	return testServer(t, func(c *Config) {
		c.Schedulers = fakeSchedulers(nil)
		c.NumSchedulers = 2
		if cb != nil {
			cb(c)
		}
	})
}

func registerJob(t *testing.T, s *Server, job *structs.Job) *structs.JobRegisterResponse {
	t.Helper()
	var resp structs.JobRegisterResponse
	require.NoError(t, s.RPC("Job.Register", &structs.JobRegisterRequest{Job: job}, &resp))
	return &resp
}

// smallJob is a service job of count allocations of 1,000 MHz and 1 GiB.
func smallJob(count int) *structs.Job {
	j := mock.Job()
	j.Groups[0].Count = count
	j.Groups[0].Network = nil
	j.Groups[0].Tasks[0].Resources = &structs.Resources{CPU: 1000, Memory: 1024}
	return j
}

func waitEval(t *testing.T, s *Server, id string, status string) *structs.Evaluation {
	t.Helper()
	var eval *structs.Evaluation
	require.Eventually(t, func() bool {
		e, err := s.State().EvalByID(nil, id)
		require.NoError(t, err)
		eval = e
		return e != nil && e.Status == status
	}, 10*time.Second, 10*time.Millisecond, "evaluation %s never became %s (last: %+v)", id, status, eval)
	return eval
}

func liveAllocs(t *testing.T, s *Server, job *structs.Job) []*structs.Allocation {
	t.Helper()
	all, err := s.State().AllocsByJob(nil, job.Namespace, job.ID, true)
	require.NoError(t, err)
	var out []*structs.Allocation
	for _, a := range all {
		if !a.TerminalStatus() {
			out = append(out, a)
		}
	}
	return out
}

func TestWorker_RegisteredJobIsPlacedAndEvalCompletes(t *testing.T) {
	s := pipelineServer(t, nil)
	n1, n2 := mock.Node(), mock.Node()
	registerNode(t, s, n1)
	registerNode(t, s, n2)
	job := smallJob(5)
	resp := registerJob(t, s, job)

	eval := waitEval(t, s, resp.EvalID, structs.EvalStatusComplete)
	require.Empty(t, eval.FailedTGAllocs)
	require.NotZero(t, eval.SnapshotIndex)
	allocs := liveAllocs(t, s, job)
	require.Len(t, allocs, 5)
	for _, a := range allocs {
		require.NotNil(t, a.Job, "the store fills the job the entry left out")
		require.Equal(t, job.ID, a.Job.ID)
		require.NotZero(t, a.CreateTime)
	}
	require.Eventually(t, func() bool {
		st := s.evalBroker.Stats()
		return st.Ready == 0 && st.Unacked == 0
	}, 5*time.Second, 10*time.Millisecond, "the evaluation is acked")
}

func TestWorker_StoppedJobAllocsAreStopped(t *testing.T) {
	s := pipelineServer(t, nil)
	registerNode(t, s, mock.Node())
	job := smallJob(2)
	resp := registerJob(t, s, job)
	waitEval(t, s, resp.EvalID, structs.EvalStatusComplete)
	require.Len(t, liveAllocs(t, s, job), 2)

	var dresp structs.JobDeregisterResponse
	require.NoError(t, s.RPC("Job.Deregister", &structs.JobDeregisterRequest{JobID: job.ID}, &dresp))
	waitEval(t, s, dresp.EvalID, structs.EvalStatusComplete)
	require.Empty(t, liveAllocs(t, s, job))
	all, err := s.State().AllocsByJob(nil, job.Namespace, job.ID, true)
	require.NoError(t, err)
	for _, a := range all {
		require.Equal(t, structs.AllocDesiredStop, a.DesiredStatus)
		require.Equal(t, "job stopped", a.DesiredDescription)
	}
}

// Two workers plan against the same snapshot for the last room on the
// first node: the applier commits one and refuses the other, whose
// worker refreshes and places on the second node.
func TestPlanApply_RacingPlansForLastCapacity(t *testing.T) {
	var mu sync.Mutex
	arrived := 0
	gate := make(chan struct{})
	s := testServer(t, func(c *Config) {
		c.NumSchedulers = 2
		c.Schedulers = fakeSchedulers(func(*structs.Evaluation) {
			mu.Lock()
			arrived++
			if arrived == 2 {
				close(gate)
			}
			mu.Unlock()
			// Only the first plan of each evaluation waits; a retry
			// after a refusal goes straight through.
			select {
			case <-gate:
			case <-time.After(10 * time.Second):
			}
		})
	})
	a, b := mock.Node(), mock.Node()
	a.Name, b.Name = "a", "b"
	// Room for exactly one 1,000 MHz allocation after the reservation.
	a.Resources.CPU = 1100
	registerNode(t, s, a)
	registerNode(t, s, b)

	j1, j2 := smallJob(1), smallJob(1)
	r1 := registerJob(t, s, j1)
	r2 := registerJob(t, s, j2)
	waitEval(t, s, r1.EvalID, structs.EvalStatusComplete)
	waitEval(t, s, r2.EvalID, structs.EvalStatusComplete)

	onA, err := s.State().AllocsByNode(nil, a.ID)
	require.NoError(t, err)
	require.Len(t, onA, 1, "only one plan may take the last room on node a")
	onB, err := s.State().AllocsByNode(nil, b.ID)
	require.NoError(t, err)
	require.Len(t, onB, 1, "the refused plan is made again against fresh state")
	require.NotEqual(t, onA[0].JobID, onB[0].JobID)
}

func TestWorker_LostTokenCannotWrite(t *testing.T) {
	// No workers: the test plays the worker.
	s := testServer(t, nil)
	job := smallJob(1)
	resp := registerJob(t, s, job)
	node := mock.Node()
	registerNode(t, s, node)

	var eval *structs.Evaluation
	var token string
	require.Eventually(t, func() bool {
		e, tok, err := s.evalBroker.Dequeue(context.Background(), []string{structs.JobTypeService}, 10*time.Millisecond)
		require.NoError(t, err)
		eval, token = e, tok
		return e != nil
	}, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, resp.EvalID, eval.ID)
	// The worker is too slow: the broker takes the evaluation back.
	require.NoError(t, s.evalBroker.Nack(eval.ID, token))

	before := s.State().LatestIndex()
	p := &workerPlanner{srv: s, ctx: context.Background(), evalID: eval.ID, token: token, snapIndex: before}
	done := eval.Copy()
	done.Status = structs.EvalStatusComplete
	require.ErrorIs(t, p.UpdateEval(done), ErrNotOutstanding)
	require.ErrorIs(t, p.CreateEval(mock.EvalFor(job)), ErrNotOutstanding)
	require.ErrorIs(t, p.ReblockEval(done), ErrNotOutstanding)

	plan := &structs.Plan{EvalID: eval.ID, Priority: 50, Job: job}
	plan.AppendAlloc(mock.AllocFor(job, node.ID, 0))
	_, _, err := p.SubmitPlan(plan)
	require.ErrorIs(t, err, ErrNotOutstanding)

	// The applier checks the token too, for a plan already queued when
	// the worker lost it.
	pending, err := s.planQueue.Enqueue(plan, token)
	require.NoError(t, err)
	r := <-pending.respCh
	var rejected *structs.PlanRejectedError
	require.ErrorAs(t, r.err, &rejected)

	require.Equal(t, before, s.State().LatestIndex(), "nothing was written")
	stored, err := s.State().EvalByID(nil, eval.ID)
	require.NoError(t, err)
	require.Equal(t, structs.EvalStatusPending, stored.Status)
}
