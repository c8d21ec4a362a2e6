package server

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/drover-sh/drover/fsm"
	"github.com/drover-sh/drover/scheduler"
	"github.com/drover-sh/drover/structs"
	"github.com/drover-sh/drover/structs/mock"
)

// evaluateNodePlanByWalk is the plan check as it was before the store
// kept node usage: it walks every allocation on the node. The property
// test holds the usage-based check to the same verdicts.
func evaluateNodePlanByWalk(snap *fsm.StateSnapshot, overlays []*structs.PlanResult, plan *structs.Plan, nodeID string) (bool, string) {
	placed := plan.NodeAllocation[nodeID]
	if len(placed) == 0 {
		return true, ""
	}
	node, _ := snap.NodeByID(nil, nodeID)
	if node == nil {
		return false, "node does not exist"
	}
	existing, _ := snap.AllocsByNode(nil, nodeID)
	inPlan := map[string]*structs.Allocation{}
	for _, a := range plan.NodeUpdate[nodeID] {
		inPlan[a.ID] = nil
	}
	for _, a := range placed {
		inPlan[a.ID] = a
	}
	over := map[string]*structs.Allocation{}
	for _, overlay := range overlays {
		for _, a := range overlay.NodeUpdate[nodeID] {
			over[a.ID] = a
		}
		for _, a := range overlay.NodeAllocation[nodeID] {
			over[a.ID] = a
		}
	}
	var proposed []*structs.Allocation
	prev := map[string]*structs.Allocation{}
	consider := func(a *structs.Allocation) {
		if _, ok := inPlan[a.ID]; ok {
			prev[a.ID] = a
			return
		}
		if !a.TerminalStatus() {
			proposed = append(proposed, a)
		}
	}
	for _, a := range existing {
		if o, ok := over[a.ID]; ok {
			a = o
			delete(over, a.ID)
		}
		consider(a)
	}
	for _, a := range over {
		consider(a)
	}
	demand := false
	for _, a := range placed {
		if a.TerminalStatus() {
			continue
		}
		p, exists := prev[a.ID]
		switch {
		case !exists || p.TerminalStatus():
			if !node.Ready() {
				return false, nodeNotReadyReason(node)
			}
		case node.Status != structs.NodeStatusReady:
			return false, nodeNotReadyReason(node)
		}
		demand = true
	}
	if !demand {
		return true, ""
	}
	proposed = append(proposed, placed...)
	if ok, dim := scheduler.AllocsFit(node, proposed); !ok {
		return false, "resources exhausted: " + dim
	}
	return true, ""
}

var propAllocIDs = []string{"a0", "a1", "a2", "a3", "a4", "a5", "a6"}

// drawPlanAlloc draws a version of one allocation on node: resources
// that make nodes fill up, ports that collide, some terminal.
func drawPlanAlloc(t *rapid.T, job *structs.Job, node, label string) *structs.Allocation {
	a := mock.AllocFor(job, node, 0)
	a.ID = rapid.SampledFrom(propAllocIDs).Draw(t, label+"_id")
	a.Resources = &structs.AllocatedResources{Tasks: map[string]*structs.Resources{
		"web": {CPU: rapid.IntRange(0, 2000).Draw(t, label+"_cpu"), Memory: rapid.IntRange(0, 4000).Draw(t, label+"_mem")},
	}}
	if rapid.Bool().Draw(t, label+"_port") {
		a.Resources.Ports = []*structs.AllocatedPort{{Label: "http", Value: rapid.IntRange(20000, 20002).Draw(t, label+"_value")}}
	}
	switch rapid.IntRange(0, 5).Draw(t, label+"_status") {
	case 0:
		a.DesiredStatus = structs.AllocDesiredStop
	case 1:
		a.ClientStatus = structs.AllocClientFailed
	case 2:
		a.ClientStatus = structs.AllocClientRunning
	}
	return a
}

// drawPlanResultPart draws a plan's stops and allocations on node; as in
// a real plan, an allocation appears at most once in each list.
func drawPlanResultPart(t *rapid.T, job *structs.Job, node, label string) (stops, allocs []*structs.Allocation) {
	seen := map[string]bool{}
	for i := range rapid.IntRange(0, 2).Draw(t, label+"_stops") {
		s := drawPlanAlloc(t, job, node, fmt.Sprintf("%s_stop%d", label, i))
		s.DesiredStatus = structs.AllocDesiredStop
		if !seen[s.ID] {
			seen[s.ID] = true
			stops = append(stops, s)
		}
	}
	clear(seen)
	for i := range rapid.IntRange(0, 3).Draw(t, label+"_allocs") {
		a := drawPlanAlloc(t, job, node, fmt.Sprintf("%s_alloc%d", label, i))
		if !seen[a.ID] {
			seen[a.ID] = true
			allocs = append(allocs, a)
		}
	}
	return stops, allocs
}

// TestEvaluateNodePlan_SameAsWalkingAllocations: whatever the node runs,
// whatever the plans in flight (the overlays) and the plan checked stop
// and place, the check from the usage row agrees with the check that adds
// up every allocation of the node, reason included.
func TestEvaluateNodePlan_SameAsWalkingAllocations(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		store, err := fsm.NewStateStore()
		require.NoError(t, err)
		job := smallJob(10)
		require.NoError(t, store.UpsertJob(1, 1, job, nil))
		job, err = store.JobByID(nil, job.Namespace, job.ID)
		require.NoError(t, err)
		node := mock.Node()
		node.Resources.CPU, node.Resources.Memory = 3000, 6000
		switch rapid.IntRange(0, 4).Draw(t, "node_state") {
		case 0:
			node.Status = structs.NodeStatusDown
		case 1:
			node.SchedulingEligibility = structs.NodeIneligible
		}
		require.NoError(t, store.UpsertNode(2, node))
		other := mock.Node()
		require.NoError(t, store.UpsertNode(3, other))

		index := uint64(10)
		for i := range rapid.IntRange(0, 6).Draw(t, "stored") {
			index++
			where := node.ID
			if rapid.IntRange(0, 4).Draw(t, fmt.Sprintf("elsewhere%d", i)) == 0 {
				where = other.ID
			}
			a := drawPlanAlloc(t, job, where, fmt.Sprintf("stored%d", i))
			require.NoError(t, store.UpsertAllocs(index, []*structs.Allocation{a}))
		}
		snap := store.Snapshot()

		var overlays []*structs.PlanResult
		for i := range rapid.IntRange(0, 3).Draw(t, "overlays") {
			stops, allocs := drawPlanResultPart(t, job, node.ID, fmt.Sprintf("overlay%d", i))
			overlays = append(overlays, &structs.PlanResult{
				NodeUpdate:     map[string][]*structs.Allocation{node.ID: stops},
				NodeAllocation: map[string][]*structs.Allocation{node.ID: allocs},
			})
		}
		stops, allocs := drawPlanResultPart(t, job, node.ID, "plan")
		for _, a := range allocs {
			// As in real plans, an update of a stored allocation is a copy
			// of it (CreateIndex set), a new one has never been stored.
			if stored, _ := snap.AllocByID(nil, a.ID); stored != nil {
				a.CreateIndex = stored.CreateIndex
			}
		}
		plan := &structs.Plan{EvalID: "eval", Job: job,
			NodeUpdate:     map[string][]*structs.Allocation{node.ID: stops},
			NodeAllocation: map[string][]*structs.Allocation{node.ID: allocs},
		}

		wantOK, wantReason := evaluateNodePlanByWalk(snap, overlays, plan, node.ID)
		gotOK, gotReason, err := evaluateNodePlan(snap, overlays, plan, node.ID)
		require.NoError(t, err)
		require.Equal(t, wantOK, gotOK)
		require.Equal(t, wantReason, gotReason)
	})
}
