package server

import (
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/fsm"
	"github.com/drover-sh/drover/scheduler"
	"github.com/drover-sh/drover/structs"
	"github.com/drover-sh/drover/structs/mock"
)

// storePlanner commits every plan straight into a store, as the plan
// applier and the FSM would without Raft.
type storePlanner struct {
	store *fsm.StateStore
	index *uint64
	// b, when set, stops the clock while the plan is committed.
	b *testing.B
}

func (p *storePlanner) SubmitPlan(plan *structs.Plan) (*structs.PlanResult, scheduler.State, error) {
	if p.b != nil {
		p.b.StopTimer()
		defer p.b.StartTimer()
	}
	*p.index++
	req := planResultsRequest(p.store.Snapshot(), plan, &structs.PlanResult{NodeUpdate: plan.NodeUpdate, NodeAllocation: plan.NodeAllocation}, 1)
	if err := p.store.UpsertPlanResults(*p.index, req); err != nil {
		return nil, nil, err
	}
	return &structs.PlanResult{NodeUpdate: plan.NodeUpdate, NodeAllocation: plan.NodeAllocation, AllocIndex: *p.index}, nil, nil
}
func (p *storePlanner) UpdateEval(*structs.Evaluation) error  { return nil }
func (p *storePlanner) CreateEval(*structs.Evaluation) error  { return nil }
func (p *storePlanner) ReblockEval(*structs.Evaluation) error { return nil }

// schedBenchJob is the e2e scheduler bench's job: count allocations of
// 100 MHz and 64 MiB, host networking, no ports.
func schedBenchJob(count int) *structs.Job {
	j := mock.Job()
	j.Groups[0].Count = count
	j.Groups[0].Network = &structs.NetworkSpec{Mode: structs.NetworkModeHost}
	j.Groups[0].Tasks[0].Resources = &structs.Resources{CPU: 100, Memory: 64}
	return j
}

// BenchmarkSchedule_1000Allocs_5000Nodes is one evaluation of a count-1000
// service job against the real store (through the snapshot adapter the
// workers use) holding 5,000 nodes and 50,000 allocations: the scheduler's
// cost per evaluation as the e2e bench's leader pays it halfway through.
// Committing the plan is not timed.
func BenchmarkSchedule_1000Allocs_5000Nodes(b *testing.B) {
	store, err := fsm.NewStateStore()
	require.NoError(b, err)
	index := uint64(1)
	for range 5000 {
		index++
		n := mock.Node()
		require.NoError(b, store.UpsertNode(index, n))
	}
	sched := scheduler.Builtin(scheduler.Options{})[structs.JobTypeService]
	planner := &storePlanner{store: store, index: &index}
	run := func() {
		job := schedBenchJob(1000)
		index++
		require.NoError(b, store.UpsertJob(index, 1, job, nil))
		stored, err := store.JobByID(nil, job.Namespace, job.ID)
		require.NoError(b, err)
		eval := mock.EvalFor(stored)
		snap := store.Snapshot()
		require.NoError(b, sched(hclog.NewNullLogger(), newSnapshotState(snap), planner, time.Now).Process(eval))
	}
	for range 50 {
		run()
	}
	planner.b = b
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		run()
	}
}
