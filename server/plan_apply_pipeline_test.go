package server

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
	"github.com/drover-sh/drover/structs/mock"
)

// applierFixture is a leader with one roomy node and a registered job,
// and an applier whose plans in flight the test fakes.
type applierFixture struct {
	t    *testing.T
	srv  *Server
	a    *planApplier
	node *structs.Node
	job  *structs.Job
}

func newApplierFixture(t *testing.T) *applierFixture {
	s := testServer(t, nil)
	node := mock.Node()
	registerNode(t, s, node)
	job := mock.Job()
	job.Groups[0].Network = nil
	job.Groups[0].Tasks[0].Resources = &structs.Resources{CPU: 10, Memory: 10}
	var jr structs.JobRegisterResponse
	require.NoError(t, s.RPC("Job.Register", &structs.JobRegisterRequest{Job: job}, &jr))
	stored, err := s.State().JobByID(nil, job.Namespace, job.ID)
	require.NoError(t, err)
	return &applierFixture{t: t, srv: s, a: s.newPlanApplier(), node: node, job: stored}
}

// placing is a pending plan of one new allocation on the node.
func (f *applierFixture) placing() *pendingPlan {
	eval, token := outstandingEval(f.t, f.srv)
	plan := &structs.Plan{EvalID: eval.ID, Priority: 50, Job: f.job}
	plan.AppendAlloc(mock.AllocFor(f.job, f.node.ID, 0))
	return &pendingPlan{plan: plan, token: token, respCh: make(chan planResponse, 1)}
}

// committing fakes a plan in flight whose result is r.
func committing(r *structs.PlanResult) *inflightPlan {
	return &inflightPlan{result: r, done: make(chan struct{})}
}

// apply runs the applier on p in the background; the channel gets the
// new plan in flight.
func (f *applierFixture) apply(p *pendingPlan, inflight ...*inflightPlan) <-chan *inflightPlan {
	out := make(chan *inflightPlan, 1)
	go func() {
		next, err := f.a.apply(p, inflight)
		if err != nil {
			p.respond(nil, err)
		}
		out <- next
	}()
	return out
}

// A plan whose nodes the plans in flight only add to is submitted without
// waiting for them: if they fail, its nodes hold less than it assumed.
func TestPlanApplier_RunsAheadOfPlansThatOnlyAdd(t *testing.T) {
	t.Parallel()
	f := newApplierFixture(t)
	other := mock.AllocFor(f.job, f.node.ID, 1)
	adding := committing(&structs.PlanResult{NodeAllocation: map[string][]*structs.Allocation{f.node.ID: {other}}})

	p := f.placing()
	var next *inflightPlan
	select {
	case next = <-f.apply(p, adding):
	case <-time.After(5 * time.Second):
		t.Fatal("the plan waited for a plan in flight that only adds")
	}
	require.NotNil(t, next)
	<-next.done
	r := <-p.respCh
	require.NoError(t, r.err)
	require.Empty(t, r.result.RejectedNodes)
}

// A plan placing where a plan in flight stops something waits for it: its
// check counted the stop, which may not commit.
func TestPlanApplier_WaitsForPlansThatStop(t *testing.T) {
	t.Parallel()
	f := newApplierFixture(t)
	stopped := mock.AllocFor(f.job, f.node.ID, 1)
	stopped.DesiredStatus = structs.AllocDesiredStop
	stopping := committing(&structs.PlanResult{NodeUpdate: map[string][]*structs.Allocation{f.node.ID: {stopped}}})

	p := f.placing()
	nextCh := f.apply(p, stopping)
	require.Never(t, func() bool { return len(nextCh) > 0 }, 300*time.Millisecond, 10*time.Millisecond,
		"the plan was submitted before the stop it relies on committed")
	stopping.index = 1
	close(stopping.done)
	var next *inflightPlan
	select {
	case next = <-nextCh:
	case <-time.After(5 * time.Second):
		t.Fatal("the plan is still waiting after the plan in flight committed")
	}
	require.NotNil(t, next)
	<-next.done
	r := <-p.respCh
	require.NoError(t, r.err)
	require.Empty(t, r.result.RejectedNodes)
}

// At maxPlansInFlight the next plan waits for the oldest only.
func TestPlanApplier_BoundsPlansInFlight(t *testing.T) {
	t.Parallel()
	f := newApplierFixture(t)
	var inflight []*inflightPlan
	for i := range maxPlansInFlight {
		inflight = append(inflight, committing(&structs.PlanResult{
			NodeAllocation: map[string][]*structs.Allocation{f.node.ID: {mock.AllocFor(f.job, f.node.ID, i+1)}},
		}))
	}
	p := f.placing()
	nextCh := f.apply(p, inflight...)
	require.Never(t, func() bool { return len(nextCh) > 0 }, 300*time.Millisecond, 10*time.Millisecond)
	close(inflight[0].done)
	select {
	case next := <-nextCh:
		require.NotNil(t, next)
		<-next.done
	case <-time.After(5 * time.Second):
		t.Fatal("the plan is still waiting after the oldest plan in flight committed")
	}
	require.NoError(t, (<-p.respCh).err)
}
