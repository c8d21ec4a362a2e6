package scheduler

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
	"github.com/drover-sh/drover/structs/mock"
)

func TestSystemSched_OncePerEligibleNode(t *testing.T) {
	h := newTestHarness(t)
	ready := addNodes(h, 5)
	ineligible := addNodes(h, 1, func(n *structs.Node) { n.SchedulingEligibility = structs.NodeIneligible })[0]
	draining := addNodes(h, 1, func(n *structs.Node) {
		n.Drain = &structs.DrainStrategy{}
		n.SchedulingEligibility = structs.NodeIneligible
	})[0]
	down := addNodes(h, 1, func(n *structs.Node) { n.Status = structs.NodeStatusDown })[0]
	otherDC := addNodes(h, 1, func(n *structs.Node) { n.Datacenter = "dc2" })[0]
	filtered := addNodes(h, 1, func(n *structs.Node) { n.Attributes["kernel.name"] = "windows" })[0]

	job := mock.SystemJob()
	job.Constraints = []*structs.Constraint{{Attribute: "${attr.kernel.name}", Operator: "=", Value: "linux"}}
	job, _ = register(t, h, job)

	live := liveAllocs(t, h, job)
	require.Len(t, live, len(ready))
	counts := perNode(live)
	for _, n := range ready {
		require.Equal(t, 1, counts[n.ID], "node %s", n.Name)
	}
	for _, n := range []*structs.Node{ineligible, draining, down, otherDC, filtered} {
		require.Zero(t, counts[n.ID], "node %s", n.Name)
	}
	for _, a := range live {
		require.Equal(t, job.ID+".agent[0]", a.Name)
	}
	requireComplete(t, h)
	require.Empty(t, h.CreateEvals)

	// Nothing changed: nothing planned.
	plans := len(h.Plans)
	evaluate(t, h, job, structs.EvalTriggerNodeUpdate)
	require.Len(t, h.Plans, plans)

	// A new node gets one; a node made ineligible loses its own; a down
	// node's is lost and not moved.
	added := addNodes(h, 1)[0]
	gone := ready[0].Copy()
	gone.SchedulingEligibility = structs.NodeIneligible
	h.State.UpsertNode(gone)
	dead := ready[1].Copy()
	dead.Status = structs.NodeStatusDown
	h.State.UpsertNode(dead)
	evaluate(t, h, job, structs.EvalTriggerNodeUpdate)

	live = liveAllocs(t, h, job)
	counts = perNode(live)
	require.Len(t, live, 4)
	require.Equal(t, 1, counts[added.ID])
	require.Zero(t, counts[gone.ID])
	require.Zero(t, counts[dead.ID])
	u := h.LastPlan().Annotations.DesiredTGUpdates["agent"]
	require.Equal(t, 1, u.Place)
	require.Equal(t, 1, u.Stop)
	require.Equal(t, 1, u.Lost)
	all, err := h.State.AllocsByNode(dead.ID)
	require.NoError(t, err)
	require.Len(t, all, 1)
	require.Equal(t, structs.AllocClientLost, all[0].ClientStatus)
}

func TestSystemSched_ExhaustedNodesReported(t *testing.T) {
	h := newTestHarness(t)
	addNodes(h, 3)
	small := addNodes(h, 2, func(n *structs.Node) { n.Resources.Memory = 300 })
	job, eval := register(t, h, mock.SystemJob())

	live := liveAllocs(t, h, job)
	require.Len(t, live, 3)
	for _, n := range small {
		require.Zero(t, perNode(live)[n.ID])
	}
	e := requireComplete(t, h)
	m := e.FailedTGAllocs["agent"]
	require.NotNil(t, m)
	require.Equal(t, 2, m.NodesEvaluated)
	require.Equal(t, 2, m.NodesExhausted)
	require.Equal(t, map[string]int{"memory": 2}, m.DimensionExhausted)
	require.Equal(t, 1, m.CoalescedFailures)
	require.Equal(t, 2, e.QueuedAllocations["agent"])
	require.Len(t, h.CreateEvals, 1)
	require.Equal(t, structs.EvalStatusBlocked, h.CreateEvals[0].Status)
	require.Equal(t, eval.ID, h.CreateEvals[0].PreviousEval)
}

func TestSystemSched_DuplicateOnNodeStopped(t *testing.T) {
	h := newTestHarness(t)
	nodes := addNodes(h, 2)
	job, _ := register(t, h, mock.SystemJob())
	live := liveAllocs(t, h, job)
	require.Len(t, live, 2)

	dup := live[0].Copy()
	dup.ID = structs.GenerateUUID()
	dup.Resources.Ports = nil
	h.State.UpsertAllocs(dup)
	evaluate(t, h, job, structs.EvalTriggerNodeUpdate)
	live = liveAllocs(t, h, job)
	require.Len(t, live, 2)
	for _, n := range nodes {
		require.Equal(t, 1, perNode(live)[n.ID])
	}
}

func TestSystemSched_DrainingNodeWaitsForMigrate(t *testing.T) {
	h := newTestHarness(t)
	nodes := addNodes(h, 2)
	job, _ := register(t, h, mock.SystemJob())
	draining := nodes[0].Copy()
	draining.Drain = &structs.DrainStrategy{}
	draining.SchedulingEligibility = structs.NodeIneligible
	h.State.UpsertNode(draining)

	// Other work is still on the node: the drainer has not flagged the
	// system allocation, so it stays.
	evaluate(t, h, job, structs.EvalTriggerNodeUpdate)
	require.Equal(t, 1, perNode(liveAllocs(t, h, job))[draining.ID])

	var mine *structs.Allocation
	for _, a := range liveAllocs(t, h, job) {
		if a.NodeID == draining.ID {
			mine = a.Copy()
		}
	}
	mine.DesiredTransition.Migrate = true
	h.State.UpsertAllocs(mine)
	evaluate(t, h, job, structs.EvalTriggerNodeDrain)
	live := liveAllocs(t, h, job)
	require.Zero(t, perNode(live)[draining.ID])
	require.Equal(t, 1, perNode(live)[nodes[1].ID])
	require.Equal(t, 1, h.LastPlan().Annotations.DesiredTGUpdates["agent"].Migrate)
}
