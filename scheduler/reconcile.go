package scheduler

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/drover-sh/drover/structs"
)

// Why the reconciler stops an allocation; `alloc status` shows these.
const (
	descNotNeeded    = "alloc not needed due to job update"
	descJobStopped   = "alloc not needed since job is stopped"
	descGroupRemoved = "alloc not needed since its group was removed from the job"
	descDuplicate    = "alloc is a duplicate of another with the same name"
	descMigrating    = "alloc is being migrated"
	descUpdating     = "alloc is being updated due to job update"
	descLost         = "alloc is lost since its node is down"
	descRescheduled  = "alloc was rescheduled because it failed"
	descIneligible   = "alloc not needed since its node is no longer eligible"
	descCanaryEnded  = "alloc not needed since its deployment ended without promoting it"
)

// minRollingDelay is the shortest wait before a rolling update's next
// step: allocations just placed are not running yet, and looking again
// sooner would only find them in flight.
const minRollingDelay = 5 * time.Second

// reconcileInput is everything the reconciler decides from. It reads
// nothing else, so the same input always gives the same decisions (up to
// the IDs of the evaluations and deployments it creates).
type reconcileInput struct {
	// Job is the job's current version; nil when it was purged.
	Job *structs.Job
	// Allocs are all the job's allocations, terminal ones included.
	Allocs []*structs.Allocation
	// TaintedNodes are the nodes of Allocs that are down, draining or
	// gone (nil value).
	TaintedNodes map[string]*structs.Node
	// Deployment is the job's latest deployment, or nil.
	Deployment *structs.Deployment
	EvalID     string
	Batch      bool
	Now        time.Time
}

// placement is one allocation to place.
type placement struct {
	name  string
	index int
	tg    *structs.TaskGroup
	// previous is the allocation this one replaces (lost, migrated,
	// rescheduled or destructively updated).
	previous *structs.Allocation
	// reschedule marks the replacement of a failed allocation: it
	// carries a reschedule tracker and avoids the failed node.
	reschedule bool
	// stopPrevious stops previous in the same plan, but only if this
	// placement finds a node: an update or migration that cannot be
	// placed must not leave the group one allocation short.
	stopPrevious bool
	stopDesc     string
	destructive  bool
	// node is where a system job's allocation goes; nil lets the stack
	// pick.
	node *structs.Node
	// canary places the new version beside the allocation of the same
	// name, which keeps running until the deployment is promoted.
	canary bool
}

// allocStop is one allocation to stop.
type allocStop struct {
	alloc *structs.Allocation
	desc  string
	// lost marks the allocation lost: its node is down, so its client
	// cannot report that it stopped.
	lost bool
}

// reconcileResult is what the scheduler must do to bring the job's
// allocations to what the job asks for.
type reconcileResult struct {
	place []*placement
	// destructiveUpdate are placements that replace an allocation of an
	// older version; at most max_parallel per group per evaluation.
	destructiveUpdate []*placement
	stop              []*allocStop
	// inplaceUpdate are copies of existing allocations moved to the new
	// job version without a restart.
	inplaceUpdate []*structs.Allocation
	// attributeUpdates are copies of existing allocations with a field
	// the scheduler owns changed (FollowupEvalID), by allocation ID.
	attributeUpdates map[string]*structs.Allocation
	// followupEvals are evaluations to create, by group: delayed
	// reschedules and a rolling update's next step.
	followupEvals    map[string][]*structs.Evaluation
	desiredTGUpdates map[string]*structs.DesiredUpdates
	// deployment is a deployment to create or an updated copy of the
	// current one; deploymentID is what new placements belong to.
	deployment        *structs.Deployment
	deploymentID      string
	deploymentUpdates []*structs.DeploymentStatusUpdate
}

// reconciler holds one reconcile run.
type reconciler struct {
	in       *reconcileInput
	r        *reconcileResult
	replaced map[string]bool
	// stopped are the allocations this run stops.
	stopped map[string]bool
	// rollingAt is when a rolling update's next step should run; zero
	// when none is needed.
	rollingAt    time.Time
	rollingGroup string
	// rolloutDone is false when some group still has old-version
	// allocations or new ones not yet healthy.
	rolloutDone bool
	// unhealthy is set when an allocation of the version being rolled
	// out is unhealthy: the rollout waits for a person or a new version.
	unhealthy bool
	// desiredCanaries are the canaries the deployment of the current
	// version asks for, by group, when this evaluation starts them.
	desiredCanaries map[string]int
	// awaitingPromotion is set when a group's canaries are placed and
	// the rest of its rollout waits for the deployment's promotion.
	awaitingPromotion bool
}

// reconcile decides what to place, stop and update for one job. It is a
// pure function of its input.
//
// Semantics, per group: allocations are named "<job>.<group>[<index>]"
// and indexes are reused. Live allocations and those that hold a slot
// without running (a batch allocation that completed, a failed one whose
// reschedule is later or exhausted) are kept, duplicates and the highest
// indexes beyond count are stopped. Allocations on down nodes are stopped
// as lost and replaced; those flagged for migration (drain) are stopped
// and replaced; failed ones are replaced under the group's reschedule
// policy now, or later through a follow-up evaluation. The lowest free
// indexes are then placed up to count. Kept allocations of an older job
// version are updated in place when only non-task things changed, else
// replaced (destructive), at most update.max_parallel minus those of the
// new version still in flight per evaluation; when some remain and none
// in flight is unhealthy, a rolling-update evaluation follows after
// max(min_healthy_time, 5s) to take the next step.
func reconcile(in *reconcileInput) *reconcileResult {
	rc := newReconciler(in)
	byGroup := groupAllocs(in.Allocs)
	if rc.stopJob(byGroup) {
		return rc.r
	}
	for _, tg := range in.Job.Groups {
		rc.group(tg, byGroup[tg.Name])
		delete(byGroup, tg.Name)
	}
	for _, name := range sortedKeys(byGroup) {
		rc.stopAll(name, byGroup[name], descGroupRemoved)
	}
	rc.reconcileDeployment()
	rc.rollingFollowup()
	return rc.r
}

// rollingFollowup creates the evaluation of a rolling update's next step.
func (rc *reconciler) rollingFollowup() {
	if rc.rollingAt.IsZero() {
		return
	}
	e := newFollowupEval(rc.in.Job, rc.in.EvalID, structs.EvalTriggerRollingUpdate, rc.rollingAt, rc.in.Now)
	rc.r.followupEvals[rc.rollingGroup] = append(rc.r.followupEvals[rc.rollingGroup], e)
}

func newReconciler(in *reconcileInput) *reconciler {
	return &reconciler{
		in: in,
		r: &reconcileResult{
			attributeUpdates: make(map[string]*structs.Allocation),
			followupEvals:    make(map[string][]*structs.Evaluation),
			desiredTGUpdates: make(map[string]*structs.DesiredUpdates),
		},
		replaced:        replacedAllocs(in.Allocs),
		stopped:         make(map[string]bool),
		rolloutDone:     true,
		desiredCanaries: make(map[string]int),
	}
}

func groupAllocs(allocs []*structs.Allocation) map[string][]*structs.Allocation {
	out := make(map[string][]*structs.Allocation)
	for _, a := range allocs {
		out[a.TaskGroup] = append(out[a.TaskGroup], a)
	}
	return out
}

// stopJob stops everything when the job is stopped or purged, and
// reports whether it was.
func (rc *reconciler) stopJob(byGroup map[string][]*structs.Allocation) bool {
	if rc.in.Job != nil && !rc.in.Job.Stop {
		return false
	}
	for _, name := range sortedKeys(byGroup) {
		rc.stopAll(name, byGroup[name], descJobStopped)
	}
	rc.cancelDeployment("cancelled because the job is stopped")
	return true
}

func (rc *reconciler) updates(group string) *structs.DesiredUpdates {
	u, ok := rc.r.desiredTGUpdates[group]
	if !ok {
		u = &structs.DesiredUpdates{}
		rc.r.desiredTGUpdates[group] = u
	}
	return u
}

func (rc *reconciler) stop(a *structs.Allocation, desc string, lost bool) {
	rc.r.stop = append(rc.r.stop, &allocStop{alloc: a, desc: desc, lost: lost})
	rc.stopped[a.ID] = true
}

// stopAll stops the group's live allocations; those on down nodes are
// marked lost.
func (rc *reconciler) stopAll(group string, allocs []*structs.Allocation, desc string) {
	u := rc.updates(group)
	for _, a := range allocs {
		if a.TerminalStatus() {
			continue
		}
		if rc.nodeDown(a.NodeID) {
			rc.stop(a, descLost, true)
			u.Lost++
			continue
		}
		rc.stop(a, desc, false)
		u.Stop++
	}
}

func (rc *reconciler) nodeDown(id string) bool {
	n, tainted := rc.in.TaintedNodes[id]
	return tainted && (n == nil || n.Status == structs.NodeStatusDown)
}

// replaceKind says why a kept-out allocation needs a replacement.
type replaceKind uint8

const (
	replaceLost replaceKind = iota
	replaceMigrate
	replaceReschedule
)

type replacement struct {
	alloc *structs.Allocation
	kind  replaceKind
}

func (rc *reconciler) group(tg *structs.TaskGroup, all []*structs.Allocation) {
	in := rc.in
	u := rc.updates(tg.Name)
	allocs, canaries := rc.splitCanaries(tg, all)
	var kept []*structs.Allocation
	var repls []replacement
	later := make(map[string]time.Time)
	for _, a := range allocs {
		switch {
		case a.DesiredStatus == structs.AllocDesiredStop || a.DesiredStatus == structs.AllocDesiredEvict:
			// A batch allocation that finished keeps its slot even once
			// stopped: batch work is done once, not kept running.
			if in.Batch && a.ClientStatus == structs.AllocClientComplete {
				kept = append(kept, a)
			}
		case a.ClientStatus == structs.AllocClientComplete:
			if in.Batch {
				kept = append(kept, a)
			}
		case a.ClientStatus == structs.AllocClientLost:
		case a.ClientStatus == structs.AllocClientFailed:
			if rc.replaced[a.ID] {
				continue
			}
			at, ok := nextRescheduleTime(a, tg.Reschedule)
			switch {
			case !ok:
				// Attempts exhausted: the failed allocation keeps its
				// slot, so the group stays short until the job changes.
				kept = append(kept, a)
			case a.FollowupEvalID == in.EvalID || !at.After(in.Now.Add(rescheduleWindow)):
				repls = append(repls, replacement{a, replaceReschedule})
			default:
				kept = append(kept, a)
				if a.FollowupEvalID == "" {
					later[a.ID] = at
				}
			}
		case rc.nodeDown(a.NodeID):
			repls = append(repls, replacement{a, replaceLost})
		case a.DesiredTransition.Migrate:
			// The drainer flags max_parallel allocations of a group at a
			// time; every flagged one moves now.
			repls = append(repls, replacement{a, replaceMigrate})
		default:
			kept = append(kept, a)
		}
	}

	// One allocation per index, live ones first and of those the current
	// version's (a promoted canary replaces the old allocation of its
	// name), then count down from the highest index.
	slices.SortStableFunc(kept, func(a, b *structs.Allocation) int {
		return cmp.Or(cmp.Compare(allocIndex(a.Name), allocIndex(b.Name)),
			cmp.Compare(boolRank(a.TerminalStatus()), boolRank(b.TerminalStatus())),
			cmp.Compare(boolRank(!upToDate(a, in.Job)), boolRank(!upToDate(b, in.Job))))
	})
	used := make(map[int]bool, tg.Count)
	keep := kept[:0:0]
	for _, a := range kept {
		idx := allocIndex(a.Name)
		if idx < 0 || used[idx] {
			if !a.TerminalStatus() {
				desc := descDuplicate
				if len(keep) > 0 && upToDate(keep[len(keep)-1], in.Job) && !upToDate(a, in.Job) {
					desc = descNotNeeded
				}
				rc.stop(a, desc, false)
				u.Stop++
			}
			continue
		}
		used[idx] = true
		keep = append(keep, a)
	}
	for len(keep) > tg.Count {
		a := keep[len(keep)-1]
		keep = keep[:len(keep)-1]
		delete(used, allocIndex(a.Name))
		if !a.TerminalStatus() {
			rc.stop(a, descNotNeeded, false)
			u.Stop++
		}
	}

	room := tg.Count - len(keep)
	slices.SortStableFunc(repls, func(a, b replacement) int {
		return cmp.Compare(allocIndex(a.alloc.Name), allocIndex(b.alloc.Name))
	})
	for _, rp := range repls {
		a := rp.alloc
		idx := allocIndex(a.Name)
		if rp.kind == replaceLost {
			rc.stop(a, descLost, true)
			u.Lost++
		}
		if room <= 0 || idx < 0 || used[idx] {
			// Count went down meanwhile: nothing to replace. A migrating
			// allocation still has to leave its node; a failed one is
			// already stopped.
			if rp.kind == replaceMigrate {
				rc.stop(a, descNotNeeded, false)
				u.Stop++
			}
			continue
		}
		used[idx] = true
		room--
		p := &placement{name: a.Name, index: idx, tg: tg, previous: a}
		switch rp.kind {
		case replaceLost:
			u.Place++
		case replaceMigrate:
			p.stopPrevious, p.stopDesc = true, descMigrating
			u.Migrate++
		case replaceReschedule:
			p.reschedule = true
			p.stopPrevious, p.stopDesc = true, descRescheduled
			u.Reschedule++
		}
		rc.r.place = append(rc.r.place, p)
	}
	for i := 0; room > 0; i++ {
		if used[i] {
			continue
		}
		used[i] = true
		room--
		rc.r.place = append(rc.r.place, &placement{name: allocName(in.Job.ID, tg.Name, i), index: i, tg: tg})
		u.Place++
	}

	rc.laterReschedules(tg, keep, later)
	rc.updateKept(tg, allocs, keep, canaries)
}

// laterReschedules creates the follow-up evaluations of failed
// allocations to replace later; reschedules close in time share one.
func (rc *reconciler) laterReschedules(tg *structs.TaskGroup, keep []*structs.Allocation, later map[string]time.Time) {
	if len(later) == 0 {
		return
	}
	var waiting []*structs.Allocation
	for _, a := range keep {
		if _, ok := later[a.ID]; ok {
			waiting = append(waiting, a)
		}
	}
	slices.SortStableFunc(waiting, func(a, b *structs.Allocation) int { return later[a.ID].Compare(later[b.ID]) })
	var cur *structs.Evaluation
	var start time.Time
	for _, a := range waiting {
		at := later[a.ID]
		if cur == nil || at.Sub(start) > followupBatchWindow {
			cur = newFollowupEval(rc.in.Job, rc.in.EvalID, structs.EvalTriggerReschedule, at, rc.in.Now)
			start = at
			rc.r.followupEvals[tg.Name] = append(rc.r.followupEvals[tg.Name], cur)
		}
		c := a.Copy()
		c.FollowupEvalID = cur.ID
		rc.r.attributeUpdates[c.ID] = c
		rc.updates(tg.Name).RescheduleLater++
	}
}

// updateKept moves the kept live allocations of an older job version to
// the current one: in place, or by replacement within max_parallel, after
// the group's canaries, if it has any, are promoted.
func (rc *reconciler) updateKept(tg *structs.TaskGroup, allocs, keep, canaries []*structs.Allocation) {
	in := rc.in
	u := rc.updates(tg.Name)
	var destructive []*structs.Allocation
	for _, a := range keep {
		if a.TerminalStatus() {
			continue
		}
		if upToDate(a, in.Job) {
			u.Ignore++
			continue
		}
		if a.Job != nil && !groupChanged(a.Job.LookupGroup(tg.Name), tg) {
			c := a.Copy()
			c.Job = in.Job
			c.EvalID = in.EvalID
			c.ModifyTime = in.Now.UnixNano()
			rc.r.inplaceUpdate = append(rc.r.inplaceUpdate, c)
			u.InPlaceUpdate++
			continue
		}
		destructive = append(destructive, a)
	}
	strategy := updateStrategy(in.Job, tg)
	if gated, ended := rc.canaryGate(tg, strategy); gated && (len(destructive) > 0 || len(canaries) > 0) {
		u.Ignore += len(destructive)
		if ended {
			return
		}
		rc.placeCanaries(tg, strategy, destructive, canaries)
		rc.rolloutDone = false
		rc.awaitingPromotion = true
		return
	}
	limit := len(destructive)
	inFlight, unhealthy := 0, false
	if strategy != nil && strategy.MaxParallel > 0 {
		inFlight, unhealthy = rc.rollout(tg, allocs, strategy)
		limit = min(limit, max(strategy.MaxParallel-inFlight, 0))
	}
	for i, a := range destructive {
		if i >= limit {
			u.Ignore++
			continue
		}
		rc.r.destructiveUpdate = append(rc.r.destructiveUpdate, &placement{
			name: a.Name, index: allocIndex(a.Name), tg: tg, previous: a,
			stopPrevious: true, stopDesc: descUpdating, destructive: true,
		})
		u.DestructiveUpdate++
	}
	if len(destructive) > 0 || inFlight > 0 {
		rc.rolloutDone = false
	}
	rc.unhealthy = rc.unhealthy || unhealthy
	if len(destructive) > limit && !unhealthy && strategy != nil {
		at := in.Now.Add(max(strategy.MinHealthyTime.D(), minRollingDelay))
		if rc.rollingAt.IsZero() || at.Before(rc.rollingAt) {
			rc.rollingAt, rc.rollingGroup = at, tg.Name
		}
	}
}

// rollout counts the group's allocations of the current version that are
// in flight (placed, not yet healthy), and says whether one of them is
// unhealthy, which holds the rolling update back.
func (rc *reconciler) rollout(tg *structs.TaskGroup, allocs []*structs.Allocation, s *structs.UpdateStrategy) (inFlight int, unhealthy bool) {
	for _, a := range allocs {
		if a.DesiredStatus != structs.AllocDesiredRun || rc.replaced[a.ID] || !upToDate(a, rc.in.Job) || rc.stopped[a.ID] {
			// Stopped (before or by this very evaluation), replaced or
			// old: not in flight.
			continue
		}
		healthy, bad := allocHealth(a, s, rc.in.Now)
		if bad {
			unhealthy = true
		}
		if !healthy {
			inFlight++
		}
	}
	return inFlight, unhealthy
}

// allocHealth says whether an allocation counts as healthy for a rolling
// update: its deployment status when the client set one. An allocation of
// a deployment waits for that, since only its client knows whether its
// checks pass; one outside any deployment counts once it has run for
// min_healthy_time (or simply runs, when the client gave no start times).
func allocHealth(a *structs.Allocation, s *structs.UpdateStrategy, now time.Time) (healthy, unhealthy bool) {
	if ds := a.DeploymentStatus; ds != nil && ds.Healthy != nil {
		return *ds.Healthy, !*ds.Healthy
	}
	switch a.ClientStatus {
	case structs.AllocClientFailed, structs.AllocClientLost:
		return false, true
	case structs.AllocClientRunning:
		if a.DeploymentID != "" {
			return false, false
		}
	default:
		return false, false
	}
	var started int64
	for _, ts := range a.TaskStates {
		if ts != nil && ts.StartedAt > started {
			started = ts.StartedAt
		}
	}
	if s.MinHealthyTime == 0 || started == 0 {
		return true, false
	}
	return now.Sub(time.Unix(0, started)) >= s.MinHealthyTime.D(), false
}

// reconcileDeployment cancels a deployment of an older version, and
// creates or advances the deployment of the current one when this
// evaluation rolls out a new version (destructive updates).
func (rc *reconciler) reconcileDeployment() {
	in, r := rc.in, rc.r
	job, d := in.Job, in.Deployment
	if d != nil && d.Active() && (d.JobVersion != job.Version || d.JobCreateIndex != job.CreateIndex) {
		rc.cancelDeployment("cancelled because the job was updated")
		d = nil
	}
	if job.Type != structs.JobTypeService {
		return
	}
	placed := make(map[string]int)
	for _, p := range r.place {
		placed[p.tg.Name]++
	}
	for _, p := range r.destructiveUpdate {
		placed[p.tg.Name]++
	}
	waiting := rc.awaitingPromotion
	if d != nil && d.JobVersion == job.Version && d.JobCreateIndex == job.CreateIndex {
		if !d.Active() {
			return
		}
		r.deploymentID = d.ID
		switch {
		case len(placed) > 0:
			nd := d.Copy()
			for name, n := range placed {
				if s := nd.TaskGroups[name]; s != nil {
					s.PlacedAllocs += n
				}
			}
			nd.ModifyTime = in.Now.UnixNano()
			r.deployment = nd
		case rc.rolloutDone:
			r.deploymentUpdates = append(r.deploymentUpdates, &structs.DeploymentStatusUpdate{
				DeploymentID: d.ID, Status: structs.DeploymentStatusSuccessful,
				StatusDescription: "deployment completed successfully",
			})
		case !rc.unhealthy && !waiting:
			// Still in flight: look again once they may be healthy, so
			// the deployment is seen through.
			if rc.rollingAt.IsZero() {
				rc.rollingAt = in.Now.Add(minRollingDelay)
				rc.rollingGroup = job.Groups[0].Name
			}
		}
		return
	}
	// With auto_revert, a job's first placements start a deployment too
	// (not only a rollout's replacements), so a first version that comes
	// up healthy is marked stable and a failed update has something to go
	// back to. Without it they do not: a deployment keeps the scheduler
	// looking again until its allocations are healthy.
	if len(r.destructiveUpdate) == 0 && len(rc.desiredCanaries) == 0 &&
		(len(r.place) == 0 || anyLive(in.Allocs) || !anyAutoRevert(job)) {
		return
	}
	nd := &structs.Deployment{
		ID: structs.GenerateUUID(), Namespace: job.Namespace, JobID: job.ID,
		JobVersion: job.Version, JobModifyIndex: job.JobModifyIndex, JobCreateIndex: job.CreateIndex,
		TaskGroups: make(map[string]*structs.DeploymentState, len(job.Groups)),
		Status:     structs.DeploymentStatusRunning, StatusDescription: structs.DeploymentDescRunning,
		CreateTime: in.Now.UnixNano(), ModifyTime: in.Now.UnixNano(),
	}
	for _, tg := range job.Groups {
		s := updateStrategy(job, tg)
		if s == nil {
			s = &structs.UpdateStrategy{}
		}
		nd.TaskGroups[tg.Name] = &structs.DeploymentState{
			AutoRevert: s.AutoRevert, AutoPromote: s.AutoPromote, ProgressDeadline: s.ProgressDeadline,
			DesiredTotal: tg.Count, PlacedAllocs: placed[tg.Name], DesiredCanaries: rc.desiredCanaries[tg.Name],
		}
	}
	r.deployment = nd
	r.deploymentID = nd.ID
}

func (rc *reconciler) cancelDeployment(desc string) {
	if d := rc.in.Deployment; d != nil && d.Active() {
		rc.r.deploymentUpdates = append(rc.r.deploymentUpdates, &structs.DeploymentStatusUpdate{
			DeploymentID: d.ID, Status: structs.DeploymentStatusCancelled, StatusDescription: desc,
		})
	}
}

func anyAutoRevert(job *structs.Job) bool {
	for _, tg := range job.Groups {
		if s := updateStrategy(job, tg); s != nil && s.AutoRevert {
			return true
		}
	}
	return false
}

// anyLive reports whether some allocation is not terminal: the
// placements of a job without any are its version's first.
func anyLive(allocs []*structs.Allocation) bool {
	for _, a := range allocs {
		if !a.TerminalStatus() {
			return true
		}
	}
	return false
}

// replacedAllocs are the allocations another allocation replaces.
func replacedAllocs(allocs []*structs.Allocation) map[string]bool {
	out := make(map[string]bool)
	for _, a := range allocs {
		if a.PreviousAllocation != "" {
			out[a.PreviousAllocation] = true
		}
		if a.NextAllocation != "" {
			out[a.ID] = true
		}
	}
	return out
}

// upToDate reports whether the allocation runs the job's current version.
func upToDate(a *structs.Allocation, job *structs.Job) bool {
	return a.Job != nil && a.Job.Version == job.Version && a.Job.JobModifyIndex == job.JobModifyIndex
}

// groupChanged reports whether moving from group old (nil when the old
// version had no such group) to tg needs new allocations.
func groupChanged(old, tg *structs.TaskGroup) bool {
	return old == nil || structs.TasksUpdated(old, tg)
}

// updateStrategy is the group's update strategy, else the job's.
func updateStrategy(job *structs.Job, tg *structs.TaskGroup) *structs.UpdateStrategy {
	if tg.Update != nil {
		return tg.Update
	}
	return job.Update
}

// newFollowupEval is an evaluation of job created by evaluation prev, to
// run at the given time.
func newFollowupEval(job *structs.Job, prev, trigger string, at, now time.Time) *structs.Evaluation {
	e := &structs.Evaluation{
		ID: structs.GenerateUUID(), Namespace: job.Namespace, Priority: job.Priority,
		Type: job.Type, TriggeredBy: trigger, JobID: job.ID, JobModifyIndex: job.JobModifyIndex,
		Status: structs.EvalStatusPending, PreviousEval: prev,
		CreateTime: now.UnixNano(), ModifyTime: now.UnixNano(),
	}
	if at.After(now) {
		e.WaitUntil = at.UnixNano()
	}
	return e
}

// allocName is the name of the index-th allocation of a group.
func allocName(jobID, group string, index int) string {
	return jobID + "." + group + "[" + strconv.Itoa(index) + "]"
}

// allocIndex is the index in an allocation's name, or -1.
func allocIndex(name string) int {
	open := strings.LastIndexByte(name, '[')
	if open < 0 || !strings.HasSuffix(name, "]") {
		return -1
	}
	n, err := strconv.Atoi(name[open+1 : len(name)-1])
	if err != nil || n < 0 {
		return -1
	}
	return n
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
