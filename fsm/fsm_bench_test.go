package fsm

import (
	"fmt"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/drover-sh/drover/structs"
)

// BenchmarkApplyJobRegister measures Apply of a job register entry with
// its evaluation, decoding included, in the three shapes the log carries:
// a new job, a changed spec (new version, oldest pruned) and a resubmit of
// the same spec.
func BenchmarkApplyJobRegister(b *testing.B) {
	cases := []struct {
		name string
		job  func(i int) *structs.Job
	}{
		{"new", func(i int) *structs.Job { return mockJob("default", fmt.Sprintf("job-%d", i)) }},
		{"changed", func(i int) *structs.Job {
			j := mockJob("default", "web")
			j.Groups[0].Count = i%2 + 1
			return j
		}},
		{"unchanged", func(int) *structs.Job { return mockJob("default", "web") }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			f := newTestFSM(b)
			entries := make([]*raft.Log, b.N)
			for i := range entries {
				job := c.job(i)
				entries[i] = entry(b, uint64(i+1), structs.JobRegisterRequestType, &structs.JobRegisterRequest{
					Job: job, Eval: mockEval(job, fmt.Sprintf("eval-%d", i)), SubmitTime: int64(i),
				})
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if resp := f.Apply(entries[i]); resp != nil {
					b.Fatal(resp)
				}
			}
		})
	}
}

// BenchmarkApplyBatchJobRegister applies new-job entries the way Raft
// hands them over under load: in batches of 1, 16 and 64. ns/op is per
// entry.
func BenchmarkApplyBatchJobRegister(b *testing.B) {
	for _, size := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			f := newTestFSM(b)
			entries := make([]*raft.Log, b.N)
			for i := range entries {
				job := mockJob("default", fmt.Sprintf("job-%d", i))
				entries[i] = entry(b, uint64(i+1), structs.JobRegisterRequestType, &structs.JobRegisterRequest{
					Job: job, Eval: mockEval(job, fmt.Sprintf("eval-%d", i)), SubmitTime: int64(i),
				})
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += size {
				for _, resp := range f.ApplyBatch(entries[i:min(i+size, b.N)]) {
					if resp != nil {
						b.Fatal(resp)
					}
				}
			}
		})
	}
}
