package scheduler

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/drover-sh/drover/structs"
	"github.com/drover-sh/drover/structs/mock"
)

// commitAllPlanner accepts every plan without applying it, so a benchmark
// measures the scheduler alone.
type commitAllPlanner struct{ placed int }

func (p *commitAllPlanner) SubmitPlan(plan *structs.Plan) (*structs.PlanResult, State, error) {
	for _, allocs := range plan.NodeAllocation {
		p.placed += len(allocs)
	}
	return &structs.PlanResult{NodeUpdate: plan.NodeUpdate, NodeAllocation: plan.NodeAllocation}, nil, nil
}
func (p *commitAllPlanner) UpdateEval(*structs.Evaluation) error  { return nil }
func (p *commitAllPlanner) CreateEval(*structs.Evaluation) error  { return nil }
func (p *commitAllPlanner) ReblockEval(*structs.Evaluation) error { return nil }

func benchState(nodes int) *MemState {
	s := NewMemState()
	for i := range nodes {
		n := mock.Node()
		n.Name = fmt.Sprintf("node-%05d", i)
		s.UpsertNode(n)
	}
	return s
}

// BenchmarkServiceJob_1000Allocs_5000Nodes is one Process of a count-1000
// service job over 5,000 nodes: reconcile, 1,000 selections, the plan.
func BenchmarkServiceJob_1000Allocs_5000Nodes(b *testing.B) {
	state := benchState(5000)
	planner := &commitAllPlanner{}
	sched := Builtin(Options{})[structs.JobTypeService]
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		b.StopTimer()
		job := mock.Job()
		job.Groups[0].Count = 1000
		job = state.UpsertJob(job)
		eval := mock.EvalFor(job)
		b.StartTimer()
		if err := sched(hclog.NewNullLogger(), state, planner, time.Now).Process(eval); err != nil {
			b.Fatal(err)
		}
	}
	if planner.placed != 1000*b.N {
		b.Fatalf("placed %d allocations, want %d", planner.placed, 1000*b.N)
	}
	b.ReportMetric(float64(planner.placed)/time.Since(start).Seconds(), "placements/s")
}

// BenchmarkServiceJob_1000Allocs_5000Nodes_Harness is the same with each
// plan checked and applied to the in-memory state, so every run places
// onto the fuller cluster the previous runs left.
func BenchmarkServiceJob_1000Allocs_5000Nodes_Harness(b *testing.B) {
	h := NewHarness()
	h.State = benchState(5000)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		job := mock.Job()
		job.Groups[0].Count = 1000
		job.Groups[0].Tasks[0].Resources = &structs.Resources{CPU: 10, Memory: 10}
		job = h.State.UpsertJob(job)
		eval := mock.EvalFor(job)
		b.StartTimer()
		if err := h.Process(eval); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSystemJob_5000Nodes is one Process of a system job over 5,000
// nodes.
func BenchmarkSystemJob_5000Nodes(b *testing.B) {
	state := benchState(5000)
	planner := &commitAllPlanner{}
	sched := Builtin(Options{})[structs.JobTypeSystem]
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		job := state.UpsertJob(mock.SystemJob())
		eval := mock.EvalFor(job)
		b.StartTimer()
		if err := sched(hclog.NewNullLogger(), state, planner, time.Now).Process(eval); err != nil {
			b.Fatal(err)
		}
	}
}
