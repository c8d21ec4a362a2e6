package fsm

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/drover-sh/drover/structs"
)

// watchSets are reused across queries: a client's watch wakes, is
// answered and comes back many times a second across a fleet, and making
// a fresh set (a map) each time was 3.5% of the CPU of the server the e2e
// bench's simulated nodes read from. memdb copies the channels out of the
// set when it waits, so nothing holds a set once its query returned.
var watchSets = sync.Pool{New: func() any { return memdb.NewWatchSet() }}

// QueryFn reads what a query needs from snap, adding what it read to ws,
// and returns the index its answer is as new as.
type QueryFn func(ws memdb.WatchSet, snap *StateSnapshot) (index uint64, err error)

// BlockingQuery runs fn against a fresh snapshot. With minIndex > 0 it runs
// fn again each time something fn read changes, until fn returns an index
// above minIndex, maxWait passes (0 means structs.DefaultQueryTime; capped
// at structs.MaxQueryTime; plus up to 1/16 jitter so clients that started
// together do not come back together), or ctx ends. It returns fn's last
// index, at least 1 so a caller looping on it never sends index 0 (which
// would not block). A timeout is not an error: the caller answers with what
// fn last read. A restore of the store wakes the query, which then reads
// from the new store.
func (s *StateStore) BlockingQuery(ctx context.Context, minIndex uint64, maxWait time.Duration, fn QueryFn) (uint64, error) {
	store := s.latest()
	if minIndex == 0 {
		idx, err := fn(nil, store.Snapshot())
		return max(idx, 1), err
	}

	if maxWait <= 0 {
		maxWait = structs.DefaultQueryTime
	}
	maxWait = min(maxWait, structs.MaxQueryTime)
	maxWait += rand.N(maxWait/16 + 1)
	deadline := time.Now().Add(maxWait)
	// The wait's context (and its timer) is made only when the first
	// answer is not new enough: many queries (a client fetching the
	// allocations it was just told about) are answered at once.
	var waitCtx context.Context
	ws := watchSets.Get().(memdb.WatchSet)
	defer func() {
		clear(ws)
		watchSets.Put(ws)
	}()
	for {
		clear(ws)
		ws.Add(store.AbandonCh())
		idx, err := fn(ws, store.Snapshot())
		idx = max(idx, 1)
		if err != nil || idx > minIndex {
			return idx, err
		}
		if waitCtx == nil {
			var cancel context.CancelFunc
			waitCtx, cancel = context.WithDeadline(ctx, deadline)
			defer cancel()
		}
		if err := ws.WatchCtx(waitCtx); err != nil {
			// The wait ended without a change: report why only when the
			// caller gave up, not when the query simply ran its time.
			return idx, ctx.Err()
		}
		store = store.latest()
	}
}
