package scheduler

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/drover-sh/drover/structs"
)

func newSystemScheduler(logger hclog.Logger, state State, planner Planner, now func() time.Time, opts Options) Scheduler {
	return newScheduler(logger, state, planner, now, opts, kindSystem)
}

// systemInput is what the system reconciler decides from.
type systemInput struct {
	Job    *structs.Job
	Allocs []*structs.Allocation
	// Eligible are, per group, the nodes by ID an allocation of it
	// should run on: ready, eligible, not draining, in the job's
	// datacenters and passing its constraints.
	Eligible     map[string]map[string]*structs.Node
	TaintedNodes map[string]*structs.Node
	EvalID       string
	Now          time.Time
}

// reconcileSystem decides what to place, stop and update for a system
// job: one allocation of each group per eligible node. Allocations on
// down nodes are stopped as lost and not replaced elsewhere; those on
// nodes no longer eligible (ineligible, filtered by a changed constraint)
// are stopped; on a draining node they stay until the drainer flags them
// for migration; a node with two gets one stopped; an eligible node
// without one gets one. A failed or completed allocation of the current
// version keeps its node: retrying a system task is the client's restart
// policy's work. Version changes go in place or destructively (on the
// same node) within max_parallel, as for service jobs.
func reconcileSystem(in *systemInput) *reconcileResult {
	rc := newReconciler(&reconcileInput{
		Job: in.Job, Allocs: in.Allocs, TaintedNodes: in.TaintedNodes, EvalID: in.EvalID, Now: in.Now,
	})
	byGroup := groupAllocs(in.Allocs)
	if rc.stopJob(byGroup) {
		return rc.r
	}
	for _, tg := range in.Job.Groups {
		rc.systemGroup(tg, byGroup[tg.Name], in.Eligible[tg.Name])
		delete(byGroup, tg.Name)
	}
	for _, name := range sortedKeys(byGroup) {
		rc.stopAll(name, byGroup[name], descGroupRemoved)
	}
	rc.rollingFollowup()
	return rc.r
}

func (rc *reconciler) systemGroup(tg *structs.TaskGroup, allocs []*structs.Allocation, eligible map[string]*structs.Node) {
	job := rc.in.Job
	u := rc.updates(tg.Name)
	// The best allocation on a node is seen first and kept: live, of the
	// current version, newest.
	sorted := slices.Clone(allocs)
	slices.SortStableFunc(sorted, func(a, b *structs.Allocation) int {
		return cmp.Or(
			cmp.Compare(boolRank(a.TerminalStatus()), boolRank(b.TerminalStatus())),
			cmp.Compare(boolRank(!upToDate(a, job)), boolRank(!upToDate(b, job))),
			cmp.Compare(b.CreateIndex, a.CreateIndex),
			cmp.Compare(a.ID, b.ID),
		)
	})
	held := make(map[string]bool, len(eligible))
	var keep []*structs.Allocation
	for _, a := range sorted {
		switch {
		case a.DesiredStatus == structs.AllocDesiredStop || a.DesiredStatus == structs.AllocDesiredEvict,
			a.ClientStatus == structs.AllocClientLost:
		case a.ClientTerminalStatus():
			if upToDate(a, job) && eligible[a.NodeID] != nil {
				held[a.NodeID] = true
			}
		case rc.nodeDown(a.NodeID):
			rc.stop(a, descLost, true)
			u.Lost++
		case eligible[a.NodeID] == nil:
			n := rc.in.TaintedNodes[a.NodeID]
			switch {
			case n == nil || n.Drain == nil:
				rc.stop(a, descIneligible, false)
				u.Stop++
			case a.DesiredTransition.Migrate:
				rc.stop(a, descMigrating, false)
				u.Migrate++
			case held[a.NodeID]:
				rc.stop(a, descDuplicate, false)
				u.Stop++
			default:
				// The drainer moves system allocations last, after the
				// node's other work left, and not at all when the drain
				// ignores system jobs: it says when, with Migrate.
				held[a.NodeID] = true
				u.Ignore++
			}
		case held[a.NodeID]:
			rc.stop(a, descDuplicate, false)
			u.Stop++
		default:
			held[a.NodeID] = true
			keep = append(keep, a)
		}
	}
	for _, id := range sortedKeys(eligible) {
		if held[id] {
			continue
		}
		rc.r.place = append(rc.r.place, &placement{name: allocName(job.ID, tg.Name, 0), tg: tg, node: eligible[id]})
		u.Place++
	}
	first := len(rc.r.destructiveUpdate)
	rc.updateKept(tg, allocs, keep, nil)
	for _, p := range rc.r.destructiveUpdate[first:] {
		p.node = eligible[p.previous.NodeID]
	}
}

// reconcileSystem finds the nodes each group should run on and runs the
// system reconciler.
func (s *genericScheduler) reconcileSystem(job *structs.Job, allocs []*structs.Allocation, tainted map[string]*structs.Node, now time.Time) (*reconcileResult, error) {
	var eligible map[string]map[string]*structs.Node
	if job != nil && !job.Stop {
		nodes, _, err := readyNodes(s.state, job.Datacenters)
		if err != nil {
			return nil, fmt.Errorf("listing nodes for job %s: %w", job.ID, err)
		}
		st := newStack(s.ctx, false, s.opts.Algorithm)
		st.setJob(job)
		eligible = make(map[string]map[string]*structs.Node, len(job.Groups))
		for _, tg := range job.Groups {
			m := make(map[string]*structs.Node, len(nodes))
			for _, n := range nodes {
				if st.feasibleOn(tg, n) {
					m[n.ID] = n
				}
			}
			eligible[tg.Name] = m
		}
	}
	return reconcileSystem(&systemInput{
		Job: job, Allocs: allocs, Eligible: eligible, TaintedNodes: tainted, EvalID: s.eval.ID, Now: now,
	}), nil
}
