package fsm

import (
	"fmt"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
)

// bigStore returns an FSM whose store holds nodes nodes and allocs
// allocations of one job spread over them, as after the scheduler bench.
func bigStore(b *testing.B, nodes, allocs int) (*FSM, *structs.Job, []*structs.Allocation) {
	f := newTestFSM(b)
	store := f.State()
	job := mockJob("default", "big")
	require.NoError(b, store.UpsertJob(1, 1, job, nil))
	for i := 0; i < nodes; i++ {
		require.NoError(b, store.UpsertNode(2, mockNode(fmt.Sprintf("node-%05d", i))))
	}
	list := make([]*structs.Allocation, allocs)
	for i := range list {
		list[i] = mockAlloc(job, structs.GenerateUUID(), fmt.Sprintf("node-%05d", i%nodes), "eval-1")
		// The store links the job it holds.
		list[i].Job = nil
	}
	require.NoError(b, store.UpsertAllocs(3, list))
	return f, job, list
}

// BenchmarkApplyAllocClientUpdate applies client updates (running) to
// allocations of a store of 100,000, in entries of different sizes; ns/op
// is per allocation updated.
func BenchmarkApplyAllocClientUpdate(b *testing.B) {
	for _, size := range []int{256, 1024, 4096} {
		b.Run(fmt.Sprintf("entry=%d", size), func(b *testing.B) {
			f, _, allocs := bigStore(b, 5000, 100_000)
			index := uint64(10)
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; {
				b.StopTimer()
				n := min(size, b.N-done)
				updates := make([]*structs.Allocation, n)
				for i := range updates {
					a := allocs[(done+i)%len(allocs)]
					updates[i] = &structs.Allocation{ID: a.ID, ClientStatus: structs.AllocClientRunning, ModifyTime: int64(done + i)}
				}
				index++
				l := entry(b, index, structs.AllocClientUpdateRequestType, &structs.AllocUpdateRequest{Alloc: updates})
				b.StartTimer()
				if resp := f.ApplyBatch([]*raft.Log{l}); resp[0] != nil {
					b.Fatal(resp[0])
				}
				done += n
			}
		})
	}
}

// BenchmarkApplyPlanResults applies plans of 1,000 new allocations (as the
// plan applier encodes them: the job once) to a store that already holds
// 50,000 over 5,000 nodes; ns/op is per allocation placed.
func BenchmarkApplyPlanResults(b *testing.B) {
	f, job, _ := bigStore(b, 5000, 50_000)
	stored, err := f.State().JobByID(nil, job.Namespace, job.ID)
	require.NoError(b, err)
	index := uint64(10)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		b.StopTimer()
		n := min(1000, b.N-done)
		req := &structs.ApplyPlanResultsRequest{Job: stored, EvalID: "eval-2", UpdatedAt: int64(done)}
		for i := range n {
			a := mockAlloc(stored, structs.GenerateUUID(), fmt.Sprintf("node-%05d", (done+i)*7%5000), "eval-2")
			a.Job = nil
			req.Allocs = append(req.Allocs, a)
		}
		index++
		l := entry(b, index, structs.ApplyPlanResultsRequestType, req)
		b.StartTimer()
		if resp := f.ApplyBatch([]*raft.Log{l}); resp[0] != nil {
			b.Fatal(resp[0])
		}
		done += n
	}
}
