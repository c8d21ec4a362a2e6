package server

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/drover-sh/drover/scheduler"
	"github.com/drover-sh/drover/structs"
)

// fakeScheduler is a small first-fit scheduler behind the real
// scheduler interfaces, so the leader's pipeline is tested without the
// scheduler package: it tops each group up to its count on the first
// ready node (by name) where the allocation fits, stops everything of a
// stopped or purged job, retries after a partial commit, and blocks when
// something does not fit anywhere.
type fakeScheduler struct {
	state   scheduler.State
	planner scheduler.Planner
	// beforeSubmit, when set, runs before each plan is submitted.
	beforeSubmit func(*structs.Evaluation)
}

func fakeSchedulers(beforeSubmit func(*structs.Evaluation)) map[string]scheduler.Factory {
	f := func(_ hclog.Logger, s scheduler.State, p scheduler.Planner, _ func() time.Time) scheduler.Scheduler {
		return &fakeScheduler{state: s, planner: p, beforeSubmit: beforeSubmit}
	}
	return map[string]scheduler.Factory{
		structs.JobTypeService: f,
		structs.JobTypeBatch:   f,
		structs.JobTypeSystem:  f,
	}
}

func (s *fakeScheduler) Process(eval *structs.Evaluation) error {
	for attempt := 0; attempt < 5; attempt++ {
		plan, failed, err := s.computePlan(eval)
		if err != nil {
			return err
		}
		if !plan.IsNoOp() {
			if s.beforeSubmit != nil {
				s.beforeSubmit(eval)
			}
			result, fresh, err := s.planner.SubmitPlan(plan)
			if err != nil {
				return err
			}
			if fresh != nil {
				s.state = fresh
				continue
			}
			if full, _, _ := result.FullCommit(plan); !full {
				return fmt.Errorf("partial commit without a refresh")
			}
		}
		done := eval.Copy()
		done.Status = structs.EvalStatusComplete
		if len(failed) > 0 {
			done.FailedTGAllocs = failed
			blocked := &structs.Evaluation{
				ID: structs.GenerateUUID(), Namespace: eval.Namespace, Priority: eval.Priority,
				Type: eval.Type, TriggeredBy: structs.EvalTriggerQueuedAllocs, JobID: eval.JobID,
				Status: structs.EvalStatusBlocked, PreviousEval: eval.ID,
			}
			if err := s.planner.CreateEval(blocked); err != nil {
				return err
			}
			done.BlockedEval = blocked.ID
		}
		return s.planner.UpdateEval(done)
	}
	return fmt.Errorf("evaluation %s: too many partial commits", eval.ID)
}

func (s *fakeScheduler) computePlan(eval *structs.Evaluation) (*structs.Plan, map[string]*structs.AllocMetric, error) {
	job, err := s.state.JobByID(eval.Namespace, eval.JobID)
	if err != nil {
		return nil, nil, err
	}
	plan := &structs.Plan{EvalID: eval.ID, Priority: eval.Priority, Job: job, SnapshotIndex: s.state.Index()}
	allocs, err := s.state.AllocsByJob(eval.Namespace, eval.JobID)
	if err != nil {
		return nil, nil, err
	}
	live := make(map[string]int)
	for _, a := range allocs {
		if a.TerminalStatus() {
			continue
		}
		if job == nil || job.Stop {
			plan.AppendStoppedAlloc(a, "job stopped", "")
			continue
		}
		live[a.TaskGroup]++
	}
	if job == nil || job.Stop {
		return plan, nil, nil
	}
	nodes, err := s.state.Nodes()
	if err != nil {
		return nil, nil, err
	}
	slices.SortFunc(nodes, func(a, b *structs.Node) int { return strings.Compare(a.Name, b.Name) })
	failed := make(map[string]*structs.AllocMetric)
	for _, g := range job.Groups {
		for i := live[g.Name]; i < g.Count; i++ {
			alloc := &structs.Allocation{
				ID: structs.GenerateUUID(), Namespace: job.Namespace, EvalID: eval.ID,
				Name: fmt.Sprintf("%s.%s[%d]", job.ID, g.Name, i), JobID: job.ID, Job: job,
				TaskGroup: g.Name, Resources: &structs.AllocatedResources{Tasks: map[string]*structs.Resources{}},
				DesiredStatus: structs.AllocDesiredRun, ClientStatus: structs.AllocClientPending,
			}
			for _, t := range g.Tasks {
				r := *t.Resources
				alloc.Resources.Tasks[t.Name] = &r
			}
			node, err := s.firstFit(nodes, plan, alloc)
			if err != nil {
				return nil, nil, err
			}
			if node == nil {
				m := failed[g.Name]
				if m == nil {
					m = &structs.AllocMetric{NodesEvaluated: len(nodes), DimensionExhausted: map[string]int{}}
					failed[g.Name] = m
				}
				m.CoalescedFailures++
				m.NodesExhausted = len(nodes)
				m.DimensionExhausted["memory"] = len(nodes)
				continue
			}
			alloc.NodeID, alloc.NodeName = node.ID, node.Name
			plan.AppendAlloc(alloc)
		}
	}
	return plan, failed, nil
}

func (s *fakeScheduler) firstFit(nodes []*structs.Node, plan *structs.Plan, alloc *structs.Allocation) (*structs.Node, error) {
	for _, n := range nodes {
		if !n.Ready() {
			continue
		}
		existing, err := s.state.AllocsByNode(n.ID)
		if err != nil {
			return nil, err
		}
		proposed := append(slices.Clone(existing), plan.NodeAllocation[n.ID]...)
		proposed = append(proposed, alloc)
		if ok, _ := scheduler.AllocsFit(n, proposed); ok {
			return n, nil
		}
	}
	return nil, nil
}
