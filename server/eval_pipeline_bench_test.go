package server

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/fsm"
	"github.com/drover-sh/drover/structs"
	"github.com/drover-sh/drover/structs/mock"
)

// BenchmarkEvalWatcher_Pass measures one pass of the leader's store
// watcher that finds 500 new pending evaluations (what 5,000 a second
// looks like at ten passes a second) in a store that already holds
// 100,000 finished ones and 10,000 allocations: the cost must follow the
// new writes, not the size of the store.
func BenchmarkEvalWatcher_Pass(b *testing.B) {
	f, err := fsm.New(hclog.NewNullLogger())
	require.NoError(b, err)
	s := &Server{fsm: f, logger: hclog.NewNullLogger(), evalBroker: NewEvalBroker(time.Minute, 3), blockedEvals: NewBlockedEvals()}
	s.evalBroker.SetEnabled(true)
	s.blockedEvals.SetEnabled(true)
	defer s.evalBroker.SetEnabled(false)
	store := f.State()

	index := uint64(1)
	job := mock.Job()
	require.NoError(b, store.UpsertJob(index, 1, job, nil))
	old := make([]*structs.Evaluation, 0, 100_000)
	for i := 0; i < 100_000; i++ {
		e := mock.EvalFor(job)
		e.Status = structs.EvalStatusComplete
		old = append(old, e)
	}
	index++
	require.NoError(b, store.UpsertEvals(index, old))
	allocs := make([]*structs.Allocation, 0, 10_000)
	for i := 0; i < 10_000; i++ {
		allocs = append(allocs, mock.AllocFor(job, fmt.Sprintf("node-%d", i%100), i))
	}
	index++
	require.NoError(b, store.UpsertAllocs(index, allocs))

	w := newEvalWatcher(s)
	require.NoError(b, w.pass(b.Context(), store.Snapshot(), nil))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		fresh := make([]*structs.Evaluation, 500)
		for j := range fresh {
			e := mock.Eval() // a job of its own: the broker holds one per job
			fresh[j] = e
		}
		index++
		require.NoError(b, store.UpsertEvals(index, fresh))
		b.StartTimer()
		require.NoError(b, w.pass(b.Context(), store.Snapshot(), nil))
	}
	b.StopTimer()
	require.Equal(b, 500*b.N, s.evalBroker.Stats().Ready)
}
