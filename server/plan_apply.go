package server

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/drover-sh/drover/fsm"
	"github.com/drover-sh/drover/scheduler"
	"github.com/drover-sh/drover/structs"
)

// planApplier is the leader's single writer of plans. Schedulers plan
// against snapshots that may be stale by the time their plan arrives; the
// applier re-checks each node of each plan against the newest state
// (optimistic concurrency), commits the nodes that still fit as one Raft
// entry and refuses the rest, so the worker refreshes and plans again.
//
// It pipelines: while plans are being committed, the next is verified
// against the store as if they were already applied (their results are
// laid over the snapshot, oldest first). When the committing plans only
// add allocations on the nodes the next one places on, it is submitted at
// once, up to maxPlansInFlight: should one of them fail, those nodes hold
// less than the check assumed. Otherwise (they stop or change
// allocations there, or the next plan had nodes refused and the worker
// must refresh past them) it waits for them; if one failed, it is
// verified again against the store as it really is.
type planApplier struct {
	srv    *Server
	logger hclog.Logger
	queue  *planQueue
	broker *EvalBroker
	now    func() time.Time
}

// maxPlansInFlight bounds the plans committing at once. Raft applies
// entries in order, one at a time, so more would only lengthen every
// plan's check (each lays all of them over the snapshot) and the time a
// refused worker waits.
const maxPlansInFlight = 4

// inflightPlan is a plan whose Raft entry is being committed.
type inflightPlan struct {
	result *structs.PlanResult
	done   chan struct{}
	// index and err are set before done is closed.
	index uint64
	err   error
}

func (s *Server) newPlanApplier() *planApplier {
	return &planApplier{
		srv:    s,
		logger: s.logger.Named("plan_apply"),
		queue:  s.planQueue,
		broker: s.evalBroker,
		now:    time.Now,
	}
}

// run applies plans until ctx ends. It does not wait for the plans in
// flight: Raft answers them (or, shutting down, never does), and their
// workers stop waiting when leadership ends.
func (a *planApplier) run(ctx context.Context) {
	var inflight []*inflightPlan
	for {
		p, err := a.queue.Dequeue(ctx)
		if err != nil {
			return
		}
		// A committed plan is in the store now; laying it over later
		// snapshots would resurrect what changed since.
		inflight = slices.DeleteFunc(inflight, isDone)
		next, err := a.apply(p, inflight)
		if err != nil {
			p.respond(nil, err)
		}
		inflight = slices.DeleteFunc(inflight, isDone)
		if next != nil {
			inflight = append(inflight, next)
		}
	}
}

func isDone(in *inflightPlan) bool {
	select {
	case <-in.done:
		return true
	default:
		return false
	}
}

// apply verifies one plan and, unless nothing of it is left to commit,
// submits its entry. It returns the new plan in flight, or nil when it
// answered the plan itself.
func (a *planApplier) apply(p *pendingPlan, inflight []*inflightPlan) (*inflightPlan, error) {
	plan := p.plan
	// A worker that lost its evaluation (nack timeout, leader change)
	// must not commit anything for it: another worker owns it now.
	if err := a.broker.OutstandingReset(plan.EvalID, p.token); err != nil {
		return nil, &structs.PlanRejectedError{EvalID: plan.EvalID, Reason: err.Error()}
	}

	overlays := make([]*structs.PlanResult, len(inflight))
	for i, in := range inflight {
		overlays[i] = in.result
	}
	snap := a.srv.fsm.State().Snapshot()
	result, err := evaluatePlan(snap, overlays, plan)
	if err != nil {
		return nil, err
	}
	switch {
	case len(inflight) == 0:
	case len(result.RejectedNodes) == 0 && onlyAdds(snap, overlays, plan):
		if len(inflight) >= maxPlansInFlight {
			// Whether it commits or not, the check holds.
			<-inflight[0].done
		}
	default:
		var failed bool
		var last uint64
		for _, in := range inflight {
			<-in.done
			failed = failed || in.err != nil
			last = max(last, in.index)
		}
		if failed {
			// The state the plan was checked against never happened.
			snap = a.srv.fsm.State().Snapshot()
			if result, err = evaluatePlan(snap, nil, plan); err != nil {
				return nil, err
			}
		} else if result.RefreshIndex != 0 {
			// The refused nodes were judged with the others applied:
			// the worker's fresh state must include them.
			result.RefreshIndex = max(result.RefreshIndex, last)
		}
	}
	if result.IsNoOp() {
		p.respond(result, nil)
		return nil, nil
	}

	req := planResultsRequest(snap, plan, result, a.now().UnixNano())
	future, err := a.srv.raftApplyAsync(structs.ApplyPlanResultsRequestType, req)
	if err != nil {
		return nil, err
	}
	in := &inflightPlan{result: result, done: make(chan struct{})}
	go a.await(future, p, in)
	return in, nil
}

// onlyAdds reports whether, on every node plan places on, the overlays
// only add new live allocations: then a plan checked with them laid over
// the store still fits if any of them fails to commit.
func onlyAdds(snap *fsm.StateSnapshot, overlays []*structs.PlanResult, plan *structs.Plan) bool {
	for nodeID := range plan.NodeAllocation {
		for _, o := range overlays {
			if len(o.NodeUpdate[nodeID]) > 0 {
				return false
			}
			for _, a := range o.NodeAllocation[nodeID] {
				if a.TerminalStatus() {
					return false
				}
				if existing, err := snap.AllocByID(nil, a.ID); err != nil || existing != nil {
					// An update of an allocation the store has may take
					// less than the stored version.
					return false
				}
			}
		}
	}
	return true
}

// await answers the worker once the plan's entry is committed and
// applied to the local store.
func (a *planApplier) await(future raft.ApplyFuture, p *pendingPlan, in *inflightPlan) {
	defer close(in.done)
	if err := a.srv.awaitFuture(future); err != nil {
		in.err = raftError(err)
	} else if resp, ok := future.Response().(error); ok && resp != nil {
		in.err = fmt.Errorf("applying plan of evaluation %s: %w", p.plan.EvalID, resp)
	}
	if in.err != nil {
		a.logger.Error("failed to commit plan", "eval_id", p.plan.EvalID, "error", in.err)
		p.respond(nil, in.err)
		return
	}
	in.index = future.Index()
	in.result.AllocIndex = in.index
	p.respond(in.result, nil)
}

// raftApplyAsync submits a typed entry and returns without waiting for
// the commit.
func (s *Server) raftApplyAsync(t structs.MessageType, msg any) (raft.ApplyFuture, error) {
	buf, err := structs.Encode(t, msg)
	if err != nil {
		return nil, err
	}
	return s.raft.Apply(buf, 30*time.Second), nil
}

// planResultsRequest builds the Raft entry of what was accepted: the job
// once, new allocations without their copy of it, stops as small diffs.
func planResultsRequest(snap *fsm.StateSnapshot, plan *structs.Plan, result *structs.PlanResult, now int64) *structs.ApplyPlanResultsRequest {
	req := &structs.ApplyPlanResultsRequest{
		Job:               plan.Job,
		Deployment:        result.Deployment,
		DeploymentUpdates: result.DeploymentUpdates,
		EvalID:            plan.EvalID,
		UpdatedAt:         now,
	}
	for _, node := range sortedKeys(result.NodeUpdate) {
		for _, a := range result.NodeUpdate[node] {
			req.AllocsStopped = append(req.AllocsStopped, structs.StoppedAllocDiff(a, now))
		}
	}
	for _, node := range sortedKeys(result.NodeAllocation) {
		for _, a := range result.NodeAllocation[node] {
			// A shallow copy: the scheduler keeps its own objects.
			c := *a
			c.ModifyTime = now
			if c.CreateTime == 0 {
				c.CreateTime = now
			}
			// The store fills a new allocation's job from req.Job; an
			// existing one (an in-place update) must carry its own.
			if c.Job != nil && plan.Job != nil && sameJobVersion(c.Job, plan.Job) {
				if existing, err := snap.AllocByID(nil, c.ID); err == nil && existing == nil {
					c.Job = nil
				}
			}
			req.Allocs = append(req.Allocs, &c)
		}
	}
	return req
}

func sameJobVersion(a, b *structs.Job) bool {
	return a == b || (a.ID == b.ID && a.Namespace == b.Namespace &&
		a.Version == b.Version && a.JobModifyIndex == b.JobModifyIndex)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// evaluatePlan decides node by node what of plan still holds against
// snap, with overlays (the results of the plans being committed, oldest
// first) laid over it. A node's part is accepted whole or refused whole.
func evaluatePlan(snap *fsm.StateSnapshot, overlays []*structs.PlanResult, plan *structs.Plan) (*structs.PlanResult, error) {
	result := &structs.PlanResult{
		NodeUpdate:        make(map[string][]*structs.Allocation, len(plan.NodeUpdate)),
		NodeAllocation:    make(map[string][]*structs.Allocation, len(plan.NodeAllocation)),
		Deployment:        plan.Deployment,
		DeploymentUpdates: plan.DeploymentUpdates,
	}
	nodes := make([]string, 0, len(plan.NodeUpdate)+len(plan.NodeAllocation))
	for n := range plan.NodeUpdate {
		nodes = append(nodes, n)
	}
	for n := range plan.NodeAllocation {
		if _, ok := plan.NodeUpdate[n]; !ok {
			nodes = append(nodes, n)
		}
	}
	slices.Sort(nodes)
	for _, nodeID := range nodes {
		ok, reason, err := evaluateNodePlan(snap, overlays, plan, nodeID)
		if err != nil {
			return nil, err
		}
		if !ok {
			result.RejectedNodes = append(result.RejectedNodes, &structs.PlanRejection{NodeID: nodeID, Reason: reason})
			continue
		}
		if u := plan.NodeUpdate[nodeID]; len(u) > 0 {
			result.NodeUpdate[nodeID] = u
		}
		if a := plan.NodeAllocation[nodeID]; len(a) > 0 {
			result.NodeAllocation[nodeID] = a
		}
	}
	if len(result.RejectedNodes) > 0 {
		result.RefreshIndex = snap.LatestIndex()
	}
	return result, nil
}

// evaluateNodePlan checks one node's part of a plan. Stops always fit.
// A new allocation needs a ready, eligible node that is not draining; an
// update of a running allocation needs the node up (in-place updates may
// go on while it drains); and whatever the node would run afterwards must
// fit in its resources. What it runs afterwards is the store's usage row
// for the node with the allocations the plan and the overlay touch
// swapped for their new versions, so the check costs the plan's
// allocations on the node, not all the allocations the node runs.
func evaluateNodePlan(snap *fsm.StateSnapshot, overlays []*structs.PlanResult, plan *structs.Plan, nodeID string) (bool, string, error) {
	placed := plan.NodeAllocation[nodeID]
	if len(placed) == 0 {
		return true, "", nil
	}
	fail := func(err error) (bool, string, error) {
		return false, "", fmt.Errorf("verifying plan of evaluation %s on node %s: %w", plan.EvalID, nodeID, err)
	}
	node, err := snap.NodeByID(nil, nodeID)
	if err != nil {
		return fail(err)
	}
	if node == nil {
		return false, "node does not exist", nil
	}
	if onlyNewPlacements(overlays, plan, nodeID) {
		ok, reason, err := newPlacementsFit(snap, node, placed)
		if err != nil {
			return fail(err)
		}
		return ok, reason, nil
	}

	// stored is the snapshot's version of each allocation the plan or the
	// overlays touch on this node (nil: none); current lays the overlays,
	// the plans being committed, over it.
	touched := len(placed) + len(plan.NodeUpdate[nodeID])
	for _, o := range overlays {
		touched += len(o.NodeUpdate[nodeID]) + len(o.NodeAllocation[nodeID])
	}
	stored := make(map[string]*structs.Allocation, touched)
	current := make(map[string]*structs.Allocation, touched)
	load := func(id string) error {
		if _, ok := stored[id]; ok {
			return nil
		}
		a, err := snap.AllocByID(nil, id)
		if err != nil {
			return err
		}
		if a != nil && a.NodeID != nodeID {
			a = nil
		}
		stored[id], current[id] = a, a
		return nil
	}
	for _, overlay := range overlays {
		for _, list := range [][]*structs.Allocation{overlay.NodeUpdate[nodeID], overlay.NodeAllocation[nodeID]} {
			for _, a := range list {
				if err := load(a.ID); err != nil {
					return fail(err)
				}
				current[a.ID] = a
			}
		}
	}
	for _, a := range plan.NodeUpdate[nodeID] {
		if err := load(a.ID); err != nil {
			return fail(err)
		}
	}
	for _, a := range placed {
		if _, ok := stored[a.ID]; !ok && a.CreateIndex == 0 {
			// A placement the scheduler just made: the store has never
			// seen it (stored allocations carry their CreateIndex), so
			// there is nothing to look up. Were it stored after all,
			// counting it as new only makes the check stricter.
			stored[a.ID], current[a.ID] = nil, nil
			continue
		}
		if err := load(a.ID); err != nil {
			return fail(err)
		}
	}

	demand := false
	for _, a := range placed {
		if a.TerminalStatus() {
			// Annotating a finished allocation takes nothing.
			continue
		}
		p := current[a.ID]
		switch {
		case p == nil || p.TerminalStatus():
			// New, or a stopped one brought back: new resources.
			if !node.Ready() {
				return false, nodeNotReadyReason(node), nil
			}
		case node.Status != structs.NodeStatusReady:
			return false, nodeNotReadyReason(node), nil
		}
		demand = true
	}
	if !demand {
		return true, "", nil
	}

	row, err := snap.NodeUsage(nil, nodeID)
	if err != nil {
		return fail(err)
	}
	u := &structs.NodeUsage{NodeID: nodeID}
	if row != nil {
		u = row.Copy()
	}
	final := current
	for _, a := range plan.NodeUpdate[nodeID] {
		final[a.ID] = nil
	}
	for _, a := range placed {
		final[a.ID] = a
	}
	for id, a := range stored {
		if a != nil && !a.TerminalStatus() {
			u.Remove(a)
		}
		if f := final[id]; f != nil && !f.TerminalStatus() {
			u.Add(f)
		}
	}
	if ok, dim := scheduler.UsageFits(node, u); !ok {
		return false, "resources exhausted: " + dim, nil
	}
	return true, "", nil
}

// onlyNewPlacements reports whether plan only places allocations the
// store has never seen (CreateIndex 0) on nodeID, with nothing stopped
// there and no plan in flight touching the node: the common case of a
// plan spread over a large cluster, which needs none of the bookkeeping
// of allocations replaced or changed on the node.
func onlyNewPlacements(overlays []*structs.PlanResult, plan *structs.Plan, nodeID string) bool {
	if len(plan.NodeUpdate[nodeID]) > 0 {
		return false
	}
	for _, o := range overlays {
		if len(o.NodeUpdate[nodeID]) > 0 || len(o.NodeAllocation[nodeID]) > 0 {
			return false
		}
	}
	for _, a := range plan.NodeAllocation[nodeID] {
		if a.CreateIndex != 0 {
			return false
		}
	}
	return true
}

// newPlacementsFit checks allocations the store has never seen: the node
// must take new work and hold them on top of its usage row.
func newPlacementsFit(snap *fsm.StateSnapshot, node *structs.Node, placed []*structs.Allocation) (bool, string, error) {
	var u *structs.NodeUsage
	for _, a := range placed {
		if a.TerminalStatus() {
			// Annotating a finished allocation takes nothing.
			continue
		}
		if u == nil {
			if !node.Ready() {
				return false, nodeNotReadyReason(node), nil
			}
			row, err := snap.NodeUsage(nil, node.ID)
			if err != nil {
				return false, "", err
			}
			if row != nil {
				u = row.Copy()
			} else {
				u = &structs.NodeUsage{NodeID: node.ID}
			}
		}
		u.Add(a)
	}
	if u == nil {
		return true, "", nil
	}
	if ok, dim := scheduler.UsageFits(node, u); !ok {
		return false, "resources exhausted: " + dim, nil
	}
	return true, "", nil
}

func nodeNotReadyReason(n *structs.Node) string {
	switch {
	case n.Status != structs.NodeStatusReady:
		return fmt.Sprintf("node is %s", n.Status)
	case n.Drain != nil:
		return "node is draining"
	default:
		return "node is not eligible for scheduling"
	}
}
