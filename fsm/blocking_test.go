package fsm

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
)

// jobQuery reads one job and answers with its ModifyIndex (or the jobs
// table index when it is absent), the way the server's endpoints do.
func jobQuery(runs *atomic.Int32, out **structs.Job) QueryFn {
	return func(ws memdb.WatchSet, snap *StateSnapshot) (uint64, error) {
		runs.Add(1)
		job, err := snap.JobByID(ws, "default", "web")
		if err != nil {
			return 0, err
		}
		*out = job
		if job != nil {
			return job.ModifyIndex, nil
		}
		return snap.Index(tableJobs), nil
	}
}

type queryResult struct {
	index   uint64
	err     error
	elapsed time.Duration
}

func runQuery(s *StateStore, ctx context.Context, minIndex uint64, maxWait time.Duration, fn QueryFn) <-chan queryResult {
	done := make(chan queryResult, 1)
	go func() {
		start := time.Now()
		idx, err := s.BlockingQuery(ctx, minIndex, maxWait, fn)
		done <- queryResult{idx, err, time.Since(start)}
	}()
	return done
}

func waitResult(t *testing.T, done <-chan queryResult, within time.Duration) queryResult {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(within):
		t.Fatalf("blocking query did not return within %s", within)
		return queryResult{}
	}
}

// waitRuns waits until fn has run n times, so a test writes only once the
// query is blocked.
func waitRuns(t *testing.T, runs *atomic.Int32, n int32) {
	t.Helper()
	require.Eventually(t, func() bool { return runs.Load() >= n }, 5*time.Second, time.Millisecond)
}

func TestBlockingQuery_NoMinIndex(t *testing.T) {
	s := newTestStore(t)
	var runs atomic.Int32
	var job *structs.Job
	idx, err := s.BlockingQuery(context.Background(), 0, 0, jobQuery(&runs, &job))
	require.NoError(t, err)
	require.Equal(t, uint64(1), idx, "never index 0")
	require.Nil(t, job)
	require.Equal(t, int32(1), runs.Load())
}

func TestBlockingQuery_AlreadyNewer(t *testing.T) {
	s := newTestStore(t)
	require.NoError(t, s.UpsertJob(10, 0, mockJob("default", "web"), nil))
	var runs atomic.Int32
	var job *structs.Job
	idx, err := s.BlockingQuery(context.Background(), 5, time.Minute, jobQuery(&runs, &job))
	require.NoError(t, err)
	require.Equal(t, uint64(10), idx)
	require.Equal(t, int32(1), runs.Load())
}

func TestBlockingQuery_WakesOnWrite(t *testing.T) {
	s := newTestStore(t)
	require.NoError(t, s.UpsertJob(10, 0, mockJob("default", "web"), nil))
	var runs atomic.Int32
	var job *structs.Job
	done := runQuery(s, context.Background(), 10, time.Minute, jobQuery(&runs, &job))
	waitRuns(t, &runs, 1)

	changed := mockJob("default", "web")
	changed.Groups[0].Count = 2
	require.NoError(t, s.UpsertJob(11, 0, changed, nil))

	r := waitResult(t, done, 5*time.Second)
	require.NoError(t, r.err)
	require.Equal(t, uint64(11), r.index)
	require.Equal(t, 2, job.Groups[0].Count, "the answer is from the re-run")
}

func TestBlockingQuery_WakesOnCreate(t *testing.T) {
	s := newTestStore(t)
	require.NoError(t, s.UpsertNode(10, mockNode("n-1")))
	var runs atomic.Int32
	var job *structs.Job
	done := runQuery(s, context.Background(), 10, time.Minute, jobQuery(&runs, &job))
	waitRuns(t, &runs, 1)

	require.NoError(t, s.UpsertJob(11, 0, mockJob("default", "web"), nil))
	r := waitResult(t, done, 5*time.Second)
	require.NoError(t, r.err)
	require.Equal(t, uint64(11), r.index)
	require.NotNil(t, job)
}

func TestBlockingQuery_IgnoresUnrelatedWrites(t *testing.T) {
	s := newTestStore(t)
	require.NoError(t, s.UpsertJob(10, 0, mockJob("default", "web"), nil))
	var runs atomic.Int32
	var job *structs.Job
	done := runQuery(s, context.Background(), 10, 200*time.Millisecond, jobQuery(&runs, &job))
	waitRuns(t, &runs, 1)

	require.NoError(t, s.UpsertNode(11, mockNode("n-1")))
	require.NoError(t, s.UpsertJob(12, 0, mockJob("default", "other"), nil))

	r := waitResult(t, done, 5*time.Second)
	require.NoError(t, r.err)
	require.Equal(t, uint64(10), r.index)
	require.Equal(t, int32(1), runs.Load(), "writes to other objects do not re-run the query")
}

func TestBlockingQuery_Timeout(t *testing.T) {
	s := newTestStore(t)
	require.NoError(t, s.UpsertJob(10, 0, mockJob("default", "web"), nil))
	var runs atomic.Int32
	var job *structs.Job
	const maxWait = 50 * time.Millisecond
	r := waitResult(t, runQuery(s, context.Background(), 10, maxWait, jobQuery(&runs, &job)), 5*time.Second)
	require.NoError(t, r.err, "running out of time is not an error")
	require.Equal(t, uint64(10), r.index)
	require.GreaterOrEqual(t, r.elapsed, maxWait)
	require.Less(t, r.elapsed, 2*time.Second)
	require.NotNil(t, job)
}

func TestBlockingQuery_ContextCancel(t *testing.T) {
	s := newTestStore(t)
	require.NoError(t, s.UpsertJob(10, 0, mockJob("default", "web"), nil))
	ctx, cancel := context.WithCancel(context.Background())
	var runs atomic.Int32
	var job *structs.Job
	done := runQuery(s, ctx, 10, time.Minute, jobQuery(&runs, &job))
	waitRuns(t, &runs, 1)
	cancel()

	r := waitResult(t, done, 5*time.Second)
	require.ErrorIs(t, r.err, context.Canceled)
	require.Equal(t, uint64(10), r.index)
}

func TestBlockingQuery_ListWakesOnInsert(t *testing.T) {
	s := newTestStore(t)
	require.NoError(t, s.UpsertEvals(10, []*structs.Evaluation{mockEval(mockJob("default", "web"), "e-1")}))
	var runs atomic.Int32
	var n int
	fn := func(ws memdb.WatchSet, snap *StateSnapshot) (uint64, error) {
		runs.Add(1)
		evals, err := snap.EvalsByPrefix(ws, "*", "")
		n = len(evals)
		return snap.Index(tableEvals), err
	}
	done := runQuery(s, context.Background(), 10, time.Minute, fn)
	waitRuns(t, &runs, 1)
	require.NoError(t, s.UpsertEvals(11, []*structs.Evaluation{mockEval(mockJob("default", "web"), "e-2")}))

	r := waitResult(t, done, 5*time.Second)
	require.NoError(t, r.err)
	require.Equal(t, uint64(11), r.index)
	require.Equal(t, 2, n)
}
