package server

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/fsm"
	"github.com/drover-sh/drover/structs"
	"github.com/drover-sh/drover/structs/mock"
)

// planFixture is a store with a job of 1,000 MHz allocations and nodes
// with room for exactly two of them.
type planFixture struct {
	t     *testing.T
	store *fsm.StateStore
	job   *structs.Job
	index uint64
}

func newPlanFixture(t *testing.T) *planFixture {
	store, err := fsm.NewStateStore()
	require.NoError(t, err)
	f := &planFixture{t: t, store: store, job: smallJob(10), index: 100}
	require.NoError(t, store.UpsertJob(f.next(), 1, f.job, nil))
	f.job, err = store.JobByID(nil, f.job.Namespace, f.job.ID)
	require.NoError(t, err)
	return f
}

func (f *planFixture) next() uint64 { f.index++; return f.index }

func (f *planFixture) node(mutate func(*structs.Node)) *structs.Node {
	n := mock.Node()
	n.Resources.CPU = 2100 // minus 100 reserved: two allocations
	if mutate != nil {
		mutate(n)
	}
	require.NoError(f.t, f.store.UpsertNode(f.next(), n))
	return n
}

func (f *planFixture) alloc(node *structs.Node) *structs.Allocation {
	return mock.AllocFor(f.job, node.ID, 0)
}

// running stores a running allocation on node and returns the stored
// version, as the scheduler would read it.
func (f *planFixture) running(node *structs.Node) *structs.Allocation {
	a := f.alloc(node)
	a.ClientStatus = structs.AllocClientRunning
	require.NoError(f.t, f.store.UpsertAllocs(f.next(), []*structs.Allocation{a}))
	stored, err := f.store.AllocByID(nil, a.ID)
	require.NoError(f.t, err)
	return stored
}

func (f *planFixture) plan() *structs.Plan {
	return &structs.Plan{EvalID: structs.GenerateUUID(), Priority: 50, Job: f.job}
}

func (f *planFixture) evaluate(plan *structs.Plan, overlays ...*structs.PlanResult) *structs.PlanResult {
	result, err := evaluatePlan(f.store.Snapshot(), overlays, plan)
	require.NoError(f.t, err)
	return result
}

func rejected(r *structs.PlanResult) map[string]string {
	out := make(map[string]string)
	for _, rej := range r.RejectedNodes {
		out[rej.NodeID] = rej.Reason
	}
	return out
}

func TestEvaluatePlan_NodeThatNoLongerFitsIsRefused(t *testing.T) {
	f := newPlanFixture(t)
	full, roomy := f.node(nil), f.node(nil)
	f.running(full)

	plan := f.plan()
	plan.AppendAlloc(f.alloc(full))
	plan.AppendAlloc(f.alloc(full))
	plan.AppendAlloc(f.alloc(roomy))
	result := f.evaluate(plan)

	require.Equal(t, map[string]string{full.ID: "resources exhausted: cpu"}, rejected(result))
	require.Len(t, result.NodeAllocation[roomy.ID], 1, "the other node's part is committed")
	require.Empty(t, result.NodeAllocation[full.ID])
	require.Equal(t, f.index, result.RefreshIndex, "the worker refreshes to at least this state")
	full1, expected, actual := result.FullCommit(plan)
	require.False(t, full1)
	require.Equal(t, 3, expected)
	require.Equal(t, 1, actual)
}

func TestEvaluatePlan_StopOnTheSameNodeMakesRoom(t *testing.T) {
	f := newPlanFixture(t)
	n := f.node(nil)
	old1 := f.running(n)
	f.running(n)

	plan := f.plan()
	plan.AppendStoppedAlloc(old1, "replaced", "")
	plan.AppendAlloc(f.alloc(n))
	result := f.evaluate(plan)
	require.Empty(t, result.RejectedNodes)
	require.Zero(t, result.RefreshIndex)
	require.Len(t, result.NodeUpdate[n.ID], 1)
	require.Len(t, result.NodeAllocation[n.ID], 1)
}

func TestEvaluatePlan_NodeStates(t *testing.T) {
	f := newPlanFixture(t)
	down := f.node(func(n *structs.Node) { n.Status = structs.NodeStatusDown })
	draining := f.node(func(n *structs.Node) { n.Drain = &structs.DrainStrategy{} })
	ineligible := f.node(func(n *structs.Node) { n.SchedulingEligibility = structs.NodeIneligible })
	onDown, onDraining := f.running(down), f.running(draining)

	plan := f.plan()
	plan.AppendStoppedAlloc(onDown, "node down", structs.AllocClientLost)
	plan.AppendAlloc(f.alloc(draining))
	plan.AppendAlloc(f.alloc(ineligible))
	plan.AppendAlloc(f.alloc(mock.Node())) // never registered
	result := f.evaluate(plan)
	r := rejected(result)
	require.Len(t, r, 3)
	require.Equal(t, "node is draining", r[draining.ID])
	require.Equal(t, "node is not eligible for scheduling", r[ineligible.ID])
	require.NotContains(t, r, down.ID, "stops go through on any node")
	require.Len(t, result.NodeUpdate[down.ID], 1)

	// An in-place update of what already runs on a draining node is fine;
	// a placement on a down node is not.
	update := f.plan()
	inPlace := onDraining.Copy()
	inPlace.DesiredDescription = "updated in place"
	update.AppendAlloc(inPlace)
	update.AppendAlloc(f.alloc(down))
	result = f.evaluate(update)
	require.Equal(t, map[string]string{down.ID: "node is down"}, rejected(result))
	require.Len(t, result.NodeAllocation[draining.ID], 1)
}

func TestEvaluatePlan_OverlayOfThePlanBeingCommitted(t *testing.T) {
	f := newPlanFixture(t)
	n := f.node(nil)
	running := f.running(n)

	// Plan N, not yet in the store, takes the last room on the node.
	inflight := f.plan()
	inflight.AppendAlloc(f.alloc(n))
	overlay := f.evaluate(inflight)
	require.Empty(t, overlay.RejectedNodes)

	next := f.plan()
	next.AppendAlloc(f.alloc(n))
	require.Empty(t, f.evaluate(next).RejectedNodes, "alone it would fit")
	require.Len(t, f.evaluate(next, overlay).RejectedNodes, 1, "with plan N applied it does not")

	// Plan N stopping the running allocation frees its room again.
	stopping := f.plan()
	stopping.AppendStoppedAlloc(running, "stop", "")
	stopping.AppendAlloc(f.alloc(n))
	overlay = f.evaluate(stopping)
	require.Empty(t, f.evaluate(next, overlay).RejectedNodes)

	// Several plans in flight are laid over the store oldest first: a
	// later one stopping what an earlier one placed frees its room.
	first := f.plan()
	placed := f.alloc(n)
	first.AppendAlloc(placed)
	second := f.plan()
	second.AppendStoppedAlloc(placed, "stop", "")
	require.Len(t, f.evaluate(next, f.evaluate(first)).RejectedNodes, 1)
	require.Empty(t, f.evaluate(next, f.evaluate(first), f.evaluate(second, f.evaluate(first))).RejectedNodes)
}

func TestPlanResultsRequest_SmallEntry(t *testing.T) {
	f := newPlanFixture(t)
	n := f.node(nil)
	existing := f.running(n)
	plan := f.plan()
	placed := f.alloc(n)
	inPlace := existing.Copy()
	plan.AppendAlloc(placed)
	plan.AppendAlloc(inPlace)
	stopMe := f.running(f.node(nil))
	plan.AppendStoppedAlloc(stopMe, "stop", "")
	result := f.evaluate(plan)

	req := planResultsRequest(f.store.Snapshot(), plan, result, 42)
	require.Equal(t, f.job, req.Job)
	require.Len(t, req.Allocs, 2)
	for _, a := range req.Allocs {
		if a.ID == placed.ID {
			require.Nil(t, a.Job, "a new allocation takes the entry's job")
			require.Equal(t, int64(42), a.CreateTime)
		} else {
			require.NotNil(t, a.Job, "an existing allocation carries its own")
		}
		require.Equal(t, int64(42), a.ModifyTime)
	}
	require.NotNil(t, placed.Job, "the scheduler's objects are left alone")
	require.Equal(t, []*structs.Allocation{structs.StoppedAllocDiff(plan.NodeUpdate[stopMe.NodeID][0], 42)}, req.AllocsStopped)
}

func TestPlanQueue_PriorityThenArrival(t *testing.T) {
	q := newPlanQueue()
	_, err := q.Enqueue(&structs.Plan{Priority: 50}, "")
	require.ErrorIs(t, err, errPlanQueueDisabled)
	q.SetEnabled(true)
	low, _ := q.Enqueue(&structs.Plan{EvalID: "low", Priority: 10}, "")
	first, _ := q.Enqueue(&structs.Plan{EvalID: "first", Priority: 50}, "")
	second, _ := q.Enqueue(&structs.Plan{EvalID: "second", Priority: 50}, "")
	high, _ := q.Enqueue(&structs.Plan{EvalID: "high", Priority: 90}, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, want := range []*pendingPlan{high, first, second} {
		got, err := q.Dequeue(ctx)
		require.NoError(t, err)
		require.Equal(t, want.plan.EvalID, got.plan.EvalID)
	}
	require.Equal(t, 1, q.Len())

	// Turning the queue off answers what still waits.
	q.SetEnabled(false)
	r := <-low.respCh
	require.ErrorIs(t, r.err, errPlanQueueDisabled)
	_, err = q.Dequeue(ctx)
	require.ErrorIs(t, err, errPlanQueueDisabled)
}
