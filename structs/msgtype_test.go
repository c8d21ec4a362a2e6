package structs_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
	"github.com/drover-sh/drover/structs/mock"
)

// planEntry is a committed plan of n new allocations as the plan applier
// writes it: the job once, the allocations without it.
func planEntry(n int) *structs.ApplyPlanResultsRequest {
	job := mock.Job()
	req := &structs.ApplyPlanResultsRequest{Job: job, EvalID: structs.GenerateUUID(), UpdatedAt: 1}
	for range n {
		a := mock.Alloc()
		a.Job = nil
		req.Allocs = append(req.Allocs, a)
	}
	return req
}

// An entry is its type byte and the msgpack body, whatever encoded before
// it (the encoder and its buffer are reused).
func TestEncode_TypeByteAndBody(t *testing.T) {
	for _, n := range []int{1000, 0, 3} {
		req := planEntry(n)
		buf, err := structs.Encode(structs.ApplyPlanResultsRequestType, req)
		require.NoError(t, err)
		require.Equal(t, byte(structs.ApplyPlanResultsRequestType), buf[0])
		var out structs.ApplyPlanResultsRequest
		require.NoError(t, structs.Decode(buf[1:], &out))
		require.Len(t, out.Allocs, n)
		require.Equal(t, req.EvalID, out.EvalID)
		require.Equal(t, req.Job.ID, out.Job.ID)
		for i := range out.Allocs {
			require.Equal(t, req.Allocs[i].ID, out.Allocs[i].ID)
		}
	}
}

// BenchmarkEncode_PlanEntry1000 encodes the Raft entry of a plan of 1,000
// new allocations, as the plan applier does for every plan.
func BenchmarkEncode_PlanEntry1000(b *testing.B) {
	req := planEntry(1000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := structs.Encode(structs.ApplyPlanResultsRequestType, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecode_JobRegister decodes a job registration entry, as every
// server's FSM does for each registration.
func BenchmarkDecode_JobRegister(b *testing.B) {
	buf, err := structs.Encode(structs.JobRegisterRequestType, &structs.JobRegisterRequest{Job: mock.Job()})
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		var req structs.JobRegisterRequest
		if err := structs.Decode(buf[1:], &req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncode_JobRegister encodes a job registration entry.
func BenchmarkEncode_JobRegister(b *testing.B) {
	req := &structs.JobRegisterRequest{Job: mock.Job()}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := structs.Encode(structs.JobRegisterRequestType, req); err != nil {
			b.Fatal(err)
		}
	}
}
