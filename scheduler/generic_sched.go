package scheduler

import (
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/drover-sh/drover/structs"
)

// maxPlanAttempts bounds how often one evaluation plans again after a
// partial commit before handing over to a follow-up evaluation.
const maxPlanAttempts = 5

// Scheduler kinds handled by genericScheduler.
type schedKind uint8

const (
	kindService schedKind = iota
	kindBatch
	kindSystem
)

// genericScheduler processes evaluations of service and batch jobs (the
// reconciler decides, the stack picks nodes) and, with kind system, of
// system jobs (one allocation per eligible node, see system_sched.go).
type genericScheduler struct {
	logger  hclog.Logger
	state   State
	planner Planner
	now     func() time.Time
	opts    Options
	kind    schedKind

	eval  *structs.Evaluation
	plan  *structs.Plan
	ctx   *evalContext
	stack *stack

	// failedTGAllocs explains the groups not fully placed in the last
	// attempt; queued counts their missing allocations.
	failedTGAllocs map[string]*structs.AllocMetric
	queued         map[string]int
	blocked        *structs.Evaluation
}

func newGenericScheduler(logger hclog.Logger, state State, planner Planner, now func() time.Time, opts Options, batch bool) Scheduler {
	kind := kindService
	if batch {
		kind = kindBatch
	}
	return newScheduler(logger, state, planner, now, opts, kind)
}

func newScheduler(logger hclog.Logger, state State, planner Planner, now func() time.Time, opts Options, kind schedKind) *genericScheduler {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	if now == nil {
		now = time.Now
	}
	return &genericScheduler{logger: logger.Named("scheduler"), state: state, planner: planner, now: now, opts: opts, kind: kind}
}

// Process plans the evaluation, retrying on partial commits, then writes
// its final status. A returned error means nothing final was written: the
// caller should retry the evaluation later (nack).
func (s *genericScheduler) Process(eval *structs.Evaluation) error {
	s.eval = eval.Copy()
	s.logger = s.logger.With("eval_id", eval.ID, "job_id", eval.JobID)
	done := false
	for attempt := 0; attempt < maxPlanAttempts && !done; attempt++ {
		var err error
		if done, err = s.process(); err != nil {
			return fmt.Errorf("processing evaluation %s of job %s: %w", eval.ID, eval.JobID, err)
		}
	}
	if !done {
		return s.handOver()
	}
	if len(s.failedTGAllocs) > 0 && eval.Status == structs.EvalStatusBlocked {
		// Still not everything fits: back to waiting for capacity,
		// without a second blocked evaluation.
		e := s.eval
		e.FailedTGAllocs = s.failedTGAllocs
		e.QueuedAllocations = s.queued
		e.ModifyTime = s.now().UnixNano()
		if err := s.planner.ReblockEval(e); err != nil {
			return fmt.Errorf("reblocking evaluation %s: %w", eval.ID, err)
		}
		return nil
	}
	if len(s.failedTGAllocs) > 0 && s.blocked == nil {
		if err := s.createBlockedEval(); err != nil {
			return err
		}
	}
	return s.setStatus(structs.EvalStatusComplete, "")
}

// handOver ends an evaluation whose plans kept being partly rejected: a
// follow-up evaluation takes over from fresher state.
func (s *genericScheduler) handOver() error {
	now := s.now()
	next := &structs.Evaluation{
		ID: structs.GenerateUUID(), Namespace: s.eval.Namespace, Priority: s.eval.Priority,
		Type: s.eval.Type, TriggeredBy: structs.EvalTriggerMaxPlans, JobID: s.eval.JobID,
		JobModifyIndex: s.eval.JobModifyIndex, Status: structs.EvalStatusPending,
		PreviousEval: s.eval.ID, CreateTime: now.UnixNano(), ModifyTime: now.UnixNano(),
	}
	if err := s.planner.CreateEval(next); err != nil {
		return fmt.Errorf("creating follow-up of evaluation %s: %w", s.eval.ID, err)
	}
	s.eval.NextEval = next.ID
	s.logger.Warn("plan attempts exhausted", "attempts", maxPlanAttempts, "next_eval_id", next.ID)
	return s.setStatus(structs.EvalStatusFailed, fmt.Sprintf("maximum plan attempts reached (%d)", maxPlanAttempts))
}

func (s *genericScheduler) setStatus(status, desc string) error {
	e := s.eval
	e.Status = status
	e.StatusDescription = desc
	e.FailedTGAllocs = s.failedTGAllocs
	e.QueuedAllocations = s.queued
	e.ModifyTime = s.now().UnixNano()
	s.logger.Debug("evaluation processed", "status", status, "failed_groups", len(s.failedTGAllocs),
		"blocked_eval_id", e.BlockedEval)
	if err := s.planner.UpdateEval(e); err != nil {
		return fmt.Errorf("updating evaluation %s: %w", e.ID, err)
	}
	return nil
}

// createBlockedEval creates the evaluation that waits for capacity to
// place what this one could not.
func (s *genericScheduler) createBlockedEval() error {
	now := s.now()
	b := &structs.Evaluation{
		ID: structs.GenerateUUID(), Namespace: s.eval.Namespace, Priority: s.eval.Priority,
		Type: s.eval.Type, TriggeredBy: structs.EvalTriggerQueuedAllocs, JobID: s.eval.JobID,
		JobModifyIndex: s.eval.JobModifyIndex, Status: structs.EvalStatusBlocked,
		StatusDescription: "created to place remaining allocations", PreviousEval: s.eval.ID,
		FailedTGAllocs: copyMetrics(s.failedTGAllocs), QueuedAllocations: copyCounts(s.queued),
		CreateTime: now.UnixNano(), ModifyTime: now.UnixNano(),
	}
	if err := s.planner.CreateEval(b); err != nil {
		return fmt.Errorf("creating blocked evaluation for evaluation %s: %w", s.eval.ID, err)
	}
	s.blocked = b
	s.eval.BlockedEval = b.ID
	return nil
}

// process makes one planning attempt; done is false when the plan was
// only partly committed and the caller should plan again.
func (s *genericScheduler) process() (done bool, err error) {
	e := s.eval
	job, err := s.state.JobByID(e.Namespace, e.JobID)
	if err != nil && !structs.IsNotFound(err) {
		return false, fmt.Errorf("reading job %s: %w", e.JobID, err)
	}
	allocs, err := s.state.AllocsByJob(e.Namespace, e.JobID)
	if err != nil {
		return false, fmt.Errorf("reading allocations of job %s: %w", e.JobID, err)
	}
	tainted, err := taintedNodes(s.state, allocs)
	if err != nil {
		return false, err
	}
	now := s.now()
	s.plan = &structs.Plan{EvalID: e.ID, Priority: e.Priority, Job: job, SnapshotIndex: s.state.Index()}
	s.ctx = newEvalContext(s.state, s.plan, s.logger, allocs, e.ID)
	s.failedTGAllocs = nil
	s.queued = make(map[string]int)
	if job != nil {
		for _, tg := range job.Groups {
			s.queued[tg.Name] = 0
		}
	}

	var res *reconcileResult
	if s.kind == kindSystem {
		res, err = s.reconcileSystem(job, allocs, tainted, now)
	} else {
		res, err = s.reconcileGeneric(job, allocs, tainted, now)
		if err == nil {
			s.checkInplace(job, res)
		}
	}
	if err != nil {
		return false, err
	}
	s.plan.Annotations = &structs.PlanAnnotations{DesiredTGUpdates: res.desiredTGUpdates}
	for _, st := range res.stop {
		status := ""
		if st.lost {
			status = structs.AllocClientLost
		}
		s.ctx.stopAlloc(st.alloc, st.desc, status)
	}
	for _, a := range res.inplaceUpdate {
		s.ctx.updateAlloc(a)
	}
	for _, id := range sortedKeys(res.attributeUpdates) {
		s.ctx.updateAlloc(res.attributeUpdates[id])
	}
	s.plan.Deployment = res.deployment
	s.plan.DeploymentUpdates = res.deploymentUpdates
	if job != nil && len(res.place)+len(res.destructiveUpdate) > 0 {
		if err := s.computePlacements(job, res, now); err != nil {
			return false, err
		}
		if d := s.plan.Deployment; d != nil && d.CreateIndex == 0 && len(s.plan.NodeAllocation) == 0 {
			// Nothing fitted: the deployment starts with the
			// evaluation that places its first allocation.
			s.plan.Deployment = nil
		}
	}

	// Follow-ups first: the plan may name them (FollowupEvalID).
	for _, group := range sortedKeys(res.followupEvals) {
		for _, f := range res.followupEvals[group] {
			if err := s.planner.CreateEval(f); err != nil {
				return false, fmt.Errorf("creating follow-up evaluation of evaluation %s: %w", e.ID, err)
			}
		}
	}
	if s.plan.IsNoOp() && !e.AnnotatePlan {
		return true, nil
	}
	result, newState, err := s.planner.SubmitPlan(s.plan)
	if err != nil {
		return false, fmt.Errorf("submitting plan of evaluation %s: %w", e.ID, err)
	}
	if newState != nil {
		s.state = newState
	}
	if full, expected, actual := result.FullCommit(s.plan); !full || len(result.RejectedNodes) > 0 {
		s.logger.Debug("plan partly committed, planning again", "expected", expected, "actual", actual,
			"rejected_nodes", len(result.RejectedNodes))
		return false, nil
	}
	return true, nil
}

func (s *genericScheduler) reconcileGeneric(job *structs.Job, allocs []*structs.Allocation, tainted map[string]*structs.Node, now time.Time) (*reconcileResult, error) {
	var d *structs.Deployment
	if job != nil {
		var err error
		if d, err = s.state.LatestDeploymentByJob(job.Namespace, job.ID); err != nil && !structs.IsNotFound(err) {
			return nil, fmt.Errorf("reading deployment of job %s: %w", job.ID, err)
		}
	}
	return reconcile(&reconcileInput{
		Job: job, Allocs: allocs, TaintedNodes: tainted, Deployment: d,
		EvalID: s.eval.ID, Batch: s.kind == kindBatch, Now: now,
	}), nil
}

// checkInplace turns the in-place updates whose node the new version no
// longer accepts (a constraint or datacenter changed) into destructive
// ones, so the allocation moves instead of staying where it may not run.
// The reconciler cannot tell: it does not look at nodes.
func (s *genericScheduler) checkInplace(job *structs.Job, res *reconcileResult) {
	if len(res.inplaceUpdate) == 0 {
		return
	}
	st := newStack(s.ctx, s.kind == kindBatch, s.opts.Algorithm)
	st.setJob(job)
	kept := res.inplaceUpdate[:0]
	for _, a := range res.inplaceUpdate {
		tg := job.LookupGroup(a.TaskGroup)
		if st.feasibleOn(tg, s.ctx.node(a.NodeID)) {
			kept = append(kept, a)
			continue
		}
		// The reconciler's copy already carries the new job; what is
		// stopped is the stored allocation.
		prev := a
		if stored, err := s.state.AllocByID(a.ID); err == nil && stored != nil {
			prev = stored
		}
		res.destructiveUpdate = append(res.destructiveUpdate, &placement{
			name: a.Name, index: allocIndex(a.Name), tg: tg, previous: prev,
			stopPrevious: true, stopDesc: descUpdating, destructive: true,
		})
		u := res.desiredTGUpdates[tg.Name]
		u.InPlaceUpdate--
		u.DestructiveUpdate++
	}
	res.inplaceUpdate = kept
}

// computePlacements picks a node for each placement of res, in order:
// replacements and new allocations, then destructive updates.
func (s *genericScheduler) computePlacements(job *structs.Job, res *reconcileResult, now time.Time) error {
	nodes, byDC, err := readyNodes(s.state, job.Datacenters)
	if err != nil {
		return fmt.Errorf("listing nodes for job %s: %w", job.ID, err)
	}
	// A shuffle seeded by the evaluation spreads concurrent evaluations
	// over different nodes, yet replays the same on a retry.
	s.ctx.rng.Shuffle(len(nodes), func(i, j int) { nodes[i], nodes[j] = nodes[j], nodes[i] })
	s.stack = newStack(s.ctx, s.kind == kindBatch, s.opts.Algorithm)
	s.stack.setJob(job)
	s.stack.setNodes(nodes, preferPartition(s.planner, nodes))
	s.ctx.metrics.NodesAvailable = byDC
	one := make([]*structs.Node, 1)
	for _, list := range [][]*placement{res.place, res.destructiveUpdate} {
		for _, p := range list {
			if p.node != nil {
				one[0] = p.node
				s.stack.setNodes(one, 0)
			}
			s.placeOne(job, p, res.deploymentID, now)
		}
	}
	return nil
}

// placeOne selects a node for p and adds the allocation to the plan, or
// records why it could not.
func (s *genericScheduler) placeOne(job *structs.Job, p *placement, deploymentID string, now time.Time) {
	tg := p.tg
	if m, failed := s.failedTGAllocs[tg.Name]; failed && s.kind != kindSystem {
		// Every allocation of a group asks the same: once one found no
		// node, the others would not either.
		m.CoalescedFailures++
		s.queued[tg.Name]++
		return
	}
	if p.stopPrevious {
		s.ctx.stopAlloc(p.previous, p.stopDesc, "")
	}
	var opts *selectOptions
	if p.reschedule {
		opts = &selectOptions{penaltyNodes: map[string]struct{}{p.previous.NodeID: {}}}
	}
	option := s.stack.Select(tg, opts)
	if option == nil {
		if p.stopPrevious {
			s.ctx.popStop(p.previous)
		}
		s.recordFailure(tg.Name, s.ctx.metric())
		return
	}
	alloc := &structs.Allocation{
		ID: structs.GenerateUUID(), Namespace: job.Namespace, EvalID: s.eval.ID, Name: p.name,
		NodeID: option.Node.ID, NodeName: option.Node.Name, JobID: job.ID, Job: job,
		TaskGroup: tg.Name, Resources: allocatedResources(tg, option.Ports),
		DesiredStatus: structs.AllocDesiredRun, ClientStatus: structs.AllocClientPending,
		DeploymentID: deploymentID, CreateTime: now.UnixNano(), ModifyTime: now.UnixNano(),
	}
	if p.canary {
		alloc.DeploymentStatus = &structs.AllocDeploymentStatus{Canary: true}
	}
	if p.previous != nil {
		alloc.PreviousAllocation = p.previous.ID
		if p.reschedule {
			alloc.RescheduleTracker = rescheduleTracker(p.previous, tg.Reschedule, now)
		}
	}
	s.ctx.placeAlloc(alloc)
}

// recordFailure counts one allocation of group that found no node; for
// system jobs, where each failure is a different node, the metrics add
// up.
func (s *genericScheduler) recordFailure(group string, m *structs.AllocMetric) {
	s.queued[group]++
	if s.failedTGAllocs == nil {
		s.failedTGAllocs = make(map[string]*structs.AllocMetric)
	}
	prev, ok := s.failedTGAllocs[group]
	if !ok {
		s.failedTGAllocs[group] = m
		return
	}
	prev.CoalescedFailures++
	prev.NodesEvaluated += m.NodesEvaluated
	prev.NodesFiltered += m.NodesFiltered
	prev.NodesExhausted += m.NodesExhausted
	prev.ConstraintFiltered = addCounts(prev.ConstraintFiltered, m.ConstraintFiltered)
	prev.ClassFiltered = addCounts(prev.ClassFiltered, m.ClassFiltered)
	prev.DimensionExhausted = addCounts(prev.DimensionExhausted, m.DimensionExhausted)
}

// allocatedResources are the group's task resources and the picked
// ports.
func allocatedResources(tg *structs.TaskGroup, ports []structs.AllocatedPort) *structs.AllocatedResources {
	res := &structs.AllocatedResources{Tasks: make(map[string]*structs.Resources, len(tg.Tasks))}
	for _, t := range tg.Tasks {
		r := structs.Resources{}
		if t.Resources != nil {
			r = *t.Resources
		}
		res.Tasks[t.Name] = &r
	}
	if len(ports) > 0 {
		res.Ports = make([]*structs.AllocatedPort, len(ports))
		for i := range ports {
			p := ports[i]
			res.Ports[i] = &p
		}
	}
	return res
}

// taintedNodes returns the nodes of the live allocations that are down,
// draining or gone (nil value).
func taintedNodes(state State, allocs []*structs.Allocation) (map[string]*structs.Node, error) {
	out := make(map[string]*structs.Node)
	seen := make(map[string]bool)
	for _, a := range allocs {
		if a.TerminalStatus() || seen[a.NodeID] {
			continue
		}
		seen[a.NodeID] = true
		n, err := state.NodeByID(a.NodeID)
		if err != nil && !structs.IsNotFound(err) {
			return nil, fmt.Errorf("reading node %s: %w", a.NodeID, err)
		}
		if n == nil || n.Status == structs.NodeStatusDown || n.Drain != nil {
			out[a.NodeID] = n
		}
	}
	return out, nil
}

func addCounts(dst, src map[string]int) map[string]int {
	if len(src) == 0 {
		return dst
	}
	if dst == nil {
		dst = make(map[string]int, len(src))
	}
	for k, v := range src {
		dst[k] += v
	}
	return dst
}

func copyCounts(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func copyMetrics(m map[string]*structs.AllocMetric) map[string]*structs.AllocMetric {
	out := make(map[string]*structs.AllocMetric, len(m))
	for k, v := range m {
		out[k] = v.Copy()
	}
	return out
}
