package scheduler

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
	"github.com/drover-sh/drover/structs/mock"
)

func TestServiceSched_RegisterPlacesCount(t *testing.T) {
	h := newTestHarness(t)
	addNodes(h, 10)
	job, eval := register(t, h, mock.Job())

	require.Len(t, h.Plans, 1)
	live := liveAllocs(t, h, job)
	require.Len(t, live, 10)
	require.Equal(t, seq(0, 10), indexes(live))
	for _, a := range live {
		require.Equal(t, eval.ID, a.EvalID)
		require.Equal(t, structs.AllocDesiredRun, a.DesiredStatus)
		require.Equal(t, 500, a.Resources.Tasks["server"].CPU)
		require.Len(t, a.Resources.Ports, 1)
		require.Equal(t, "http", a.Resources.Ports[0].Label)
		require.Equal(t, 8080, a.Resources.Ports[0].To)
		require.GreaterOrEqual(t, a.Resources.Ports[0].Value, 20000)
		require.LessOrEqual(t, a.Resources.Ports[0].Value, 32000)
	}
	e := requireComplete(t, h)
	require.Empty(t, e.FailedTGAllocs)
	require.Equal(t, map[string]int{"web": 0}, e.QueuedAllocations)
	require.Empty(t, h.CreateEvals)
	require.Equal(t, 10, h.Plans[0].Annotations.DesiredTGUpdates["web"].Place)

	// Nothing changed: a second evaluation plans nothing.
	evaluate(t, h, job, structs.EvalTriggerJobRegister)
	require.Len(t, h.Plans, 1)
	requireComplete(t, h)
}

func TestServiceSched_CountUpAndDown(t *testing.T) {
	h := newTestHarness(t)
	addNodes(h, 10)
	job, _ := register(t, h, mock.Job())

	up := job.Copy()
	up.Groups[0].Count = 13
	job = h.State.UpsertJob(up)
	evaluate(t, h, job, structs.EvalTriggerJobRegister)
	live := liveAllocs(t, h, job)
	require.Equal(t, seq(0, 13), indexes(live))
	u := h.LastPlan().Annotations.DesiredTGUpdates["web"]
	require.Equal(t, 3, u.Place)
	require.Equal(t, 10, u.InPlaceUpdate, "a count change alone updates in place")

	down := job.Copy()
	down.Groups[0].Count = 4
	job = h.State.UpsertJob(down)
	evaluate(t, h, job, structs.EvalTriggerJobRegister)
	live = liveAllocs(t, h, job)
	require.Equal(t, seq(0, 4), indexes(live), "count down stops the highest indexes")
	require.Equal(t, 9, h.LastPlan().Annotations.DesiredTGUpdates["web"].Stop)

	// Back up: the freed indexes are reused, lowest first.
	up = job.Copy()
	up.Groups[0].Count = 6
	job = h.State.UpsertJob(up)
	evaluate(t, h, job, structs.EvalTriggerJobRegister)
	require.Equal(t, seq(0, 6), indexes(liveAllocs(t, h, job)))
}

func TestServiceSched_JobStopStopsAll(t *testing.T) {
	h := newTestHarness(t)
	addNodes(h, 5)
	job, _ := register(t, h, mock.Job())
	stopped := job.Copy()
	stopped.Stop = true
	job = h.State.UpsertJob(stopped)
	evaluate(t, h, job, structs.EvalTriggerJobDeregister)
	require.Empty(t, liveAllocs(t, h, job))
	for _, allocs := range h.LastPlan().NodeUpdate {
		for _, a := range allocs {
			require.Equal(t, descJobStopped, a.DesiredDescription)
		}
	}
}

func TestServiceSched_UnplaceableCreatesBlockedEval(t *testing.T) {
	h := newTestHarness(t)
	addNodes(h, 3)
	addNodes(h, 2, func(n *structs.Node) { n.Meta["rack"] = "r2" })
	job := mock.Job()
	job.Groups[0].Tasks[0].Resources.Memory = 100_000
	job.Constraints = []*structs.Constraint{{Attribute: "${meta.rack}", Operator: "=", Value: "r1"}}
	job, eval := register(t, h, job)

	require.Empty(t, liveAllocs(t, h, job))
	e := requireComplete(t, h)
	m := e.FailedTGAllocs["web"]
	require.NotNil(t, m)
	require.Equal(t, 5, m.NodesEvaluated)
	require.Equal(t, 2, m.NodesFiltered)
	require.Equal(t, map[string]int{"${meta.rack} = r1": 2}, m.ConstraintFiltered)
	require.Equal(t, 3, m.NodesExhausted)
	require.Equal(t, map[string]int{"memory": 3}, m.DimensionExhausted)
	require.Equal(t, 9, m.CoalescedFailures)
	require.Equal(t, 10, e.QueuedAllocations["web"])

	require.Len(t, h.CreateEvals, 1)
	blocked := h.CreateEvals[0]
	require.Equal(t, structs.EvalStatusBlocked, blocked.Status)
	require.Equal(t, eval.ID, blocked.PreviousEval)
	require.Equal(t, blocked.ID, e.BlockedEval)

	// The blocked evaluation, retried without new capacity, is put back.
	stored, err := h.State.EvalByID(blocked.ID)
	require.NoError(t, err)
	require.NoError(t, h.Process(stored))
	require.Len(t, h.CreateEvals, 1, "no second blocked evaluation")
	require.Len(t, h.ReblockEvals, 1)
	require.Equal(t, blocked.ID, h.ReblockEvals[0].ID)
	require.NotEmpty(t, h.ReblockEvals[0].FailedTGAllocs)

	// With capacity it places everything and completes.
	addNodes(h, 3, func(n *structs.Node) { n.Resources.Memory = 1_000_000 })
	stored, err = h.State.EvalByID(blocked.ID)
	require.NoError(t, err)
	require.NoError(t, h.Process(stored))
	require.Len(t, liveAllocs(t, h, job), 10)
	require.Equal(t, blocked.ID, requireComplete(t, h).ID)
}

func TestServiceSched_LostAllocsReplaced(t *testing.T) {
	h := newTestHarness(t)
	nodes := addNodes(h, 4)
	job, _ := register(t, h, mock.Job())
	live := liveAllocs(t, h, job)

	down := nodes[0]
	var onDown []*structs.Allocation
	for _, a := range live {
		if a.NodeID == down.ID {
			onDown = append(onDown, a)
		}
	}
	require.NotEmpty(t, onDown)
	d := down.Copy()
	d.Status = structs.NodeStatusDown
	h.State.UpsertNode(d)
	evaluate(t, h, job, structs.EvalTriggerNodeUpdate)

	live = liveAllocs(t, h, job)
	require.Len(t, live, 10)
	require.Equal(t, seq(0, 10), indexes(live))
	for _, a := range live {
		require.NotEqual(t, down.ID, a.NodeID)
	}
	for _, old := range onDown {
		got, err := h.State.AllocByID(old.ID)
		require.NoError(t, err)
		require.Equal(t, structs.AllocClientLost, got.ClientStatus)
		require.Equal(t, structs.AllocDesiredStop, got.DesiredStatus)
		require.NotEmpty(t, got.NextAllocation)
	}
	require.Equal(t, len(onDown), h.LastPlan().Annotations.DesiredTGUpdates["web"].Lost)
}

func TestServiceSched_MigrateMovesFlaggedAllocs(t *testing.T) {
	h := newTestHarness(t)
	nodes := addNodes(h, 3)
	job, _ := register(t, h, mock.Job())

	draining := nodes[0].Copy()
	draining.Drain = &structs.DrainStrategy{}
	draining.SchedulingEligibility = structs.NodeIneligible
	h.State.UpsertNode(draining)
	before := perNode(liveAllocs(t, h, job))[draining.ID]
	require.Positive(t, before)
	var flagged *structs.Allocation
	for _, a := range liveAllocs(t, h, job) {
		if a.NodeID == draining.ID {
			flagged = a.Copy()
			break
		}
	}
	flagged.DesiredTransition.Migrate = true
	h.State.UpsertAllocs(flagged)
	evaluate(t, h, job, structs.EvalTriggerNodeDrain)

	live := liveAllocs(t, h, job)
	require.Len(t, live, 10)
	require.Equal(t, seq(0, 10), indexes(live))
	got, err := h.State.AllocByID(flagged.ID)
	require.NoError(t, err)
	require.Equal(t, structs.AllocDesiredStop, got.DesiredStatus)
	require.Equal(t, descMigrating, got.DesiredDescription)
	require.Equal(t, 1, h.LastPlan().Annotations.DesiredTGUpdates["web"].Migrate)
	// Only the flagged one moved: the drainer decides the batches.
	require.Equal(t, before-1, perNode(live)[draining.ID])
}

// A dry run (AnnotatePlan) gets a plan even when nothing can be placed,
// so `job plan` can say what the scheduler wanted to do.
func TestServiceSched_AnnotatePlanSubmitsANoOpPlan(t *testing.T) {
	for _, annotate := range []bool{false, true} {
		h := newTestHarness(t)
		addNodes(h, 1)
		job := mock.Job()
		job.Groups[0].Tasks[0].Resources.Memory = 100_000
		stored := h.State.UpsertJob(job)
		eval := mock.EvalFor(stored)
		eval.AnnotatePlan = annotate
		h.State.UpsertEvals(eval)
		require.NoError(t, h.Process(eval))
		if !annotate {
			require.Empty(t, h.Plans, "a plan that changes nothing is not submitted")
			continue
		}
		require.Len(t, h.Plans, 1)
		require.True(t, h.Plans[0].IsNoOp())
		require.Equal(t, 10, h.Plans[0].Annotations.DesiredTGUpdates["web"].Place)
	}
}
