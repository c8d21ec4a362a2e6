package server

import (
	"cmp"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/drover-sh/drover/structs"
)

// allocUpdateWindow is how long client updates wait for others to share
// their Raft entry. Thousands of clients reporting a few updates each
// become a few entries per window instead of thousands.
const allocUpdateWindow = 50 * time.Millisecond

// maxAllocUpdateBatch flushes a batch early once it is this big.
const maxAllocUpdateBatch = 8192

// maxAllocUpdateEntry bounds the updates in one Raft entry: a batch is
// committed as several entries of at most this many. An entry is one
// store transaction, and one that rewrites thousands of allocations
// makes go-immutable-radix walk whole indexes to find the watches to fire
// (see fsm.maxBatchBytes); 512 updates of about 400 bytes stay clear of
// that.
const maxAllocUpdateEntry = 512

// allocUpdateBatcher coalesces Node.UpdateAllocs calls on the leader.
type allocUpdateBatcher struct {
	srv *Server

	mu      sync.Mutex
	pending *allocBatch
}

// allocBatch is one future Raft entry and the callers waiting for it.
type allocBatch struct {
	updates []*structs.Allocation
	done    chan struct{}
	index   uint64
	err     error
}

// submit adds updates to the open batch and waits until it committed.
func (b *allocUpdateBatcher) submit(updates []*structs.Allocation) (uint64, error) {
	b.mu.Lock()
	batch := b.pending
	if batch == nil {
		batch = &allocBatch{done: make(chan struct{})}
		b.pending = batch
		time.AfterFunc(allocUpdateWindow, func() { b.flush(batch) })
	}
	batch.updates = append(batch.updates, updates...)
	full := len(batch.updates) >= maxAllocUpdateBatch
	b.mu.Unlock()
	if full {
		b.flush(batch)
	}
	select {
	case <-batch.done:
		return batch.index, batch.err
	case <-b.srv.shutdownCtx.Done():
		return 0, structs.NewError(structs.ErrUnavailable, "server is shutting down")
	}
}

// flush commits batch unless it was flushed already.
func (b *allocUpdateBatcher) flush(batch *allocBatch) {
	b.mu.Lock()
	if b.pending != batch {
		b.mu.Unlock()
		return
	}
	b.pending = nil
	b.mu.Unlock()

	defer close(batch.done)
	now := time.Now().UnixNano()
	evals, err := b.failedAllocEvals(batch.updates, now)
	if err != nil {
		batch.err = err
		return
	}
	// The entries are proposed back to back and commit in order; the
	// evaluations ride in the last, so they are stored only once every
	// update they react to is.
	var futures []raft.ApplyFuture
	for start := 0; start < len(batch.updates); start += maxAllocUpdateEntry {
		end := min(start+maxAllocUpdateEntry, len(batch.updates))
		req := &structs.AllocUpdateRequest{Alloc: batch.updates[start:end], UpdatedAt: now}
		if end == len(batch.updates) {
			req.Evals = evals
		}
		f, err := b.srv.raftApplyAsync(structs.AllocClientUpdateRequestType, req)
		if err != nil {
			batch.err = err
			break
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		if err := b.srv.awaitFuture(f); err != nil {
			batch.err = cmp.Or(batch.err, raftError(err))
			continue
		}
		if rerr, ok := f.Response().(error); ok && rerr != nil {
			batch.err = cmp.Or(batch.err, rerr)
			continue
		}
		batch.index = max(batch.index, f.Index())
	}
}

// failedAllocEvals returns one evaluation per job with a newly failed
// allocation that the servers still want running, so the scheduler can
// reschedule it under the group's policy.
func (b *allocUpdateBatcher) failedAllocEvals(updates []*structs.Allocation, now int64) ([]*structs.Evaluation, error) {
	snap := b.srv.fsm.State().Snapshot()
	type key struct{ ns, id string }
	seen := map[key]bool{}
	var evals []*structs.Evaluation
	for _, u := range updates {
		if u.ClientStatus != structs.AllocClientFailed {
			continue
		}
		a, err := snap.AllocByID(nil, u.ID)
		if err != nil {
			return nil, err
		}
		if a == nil || a.DesiredStatus != structs.AllocDesiredRun || a.ClientStatus == structs.AllocClientFailed {
			continue
		}
		k := key{a.Namespace, a.JobID}
		if seen[k] {
			continue
		}
		seen[k] = true
		job, err := snap.JobByID(nil, a.Namespace, a.JobID)
		if err != nil {
			return nil, err
		}
		if job == nil || job.Stop {
			continue
		}
		evals = append(evals, &structs.Evaluation{
			ID:             structs.GenerateUUID(),
			Namespace:      job.Namespace,
			Priority:       job.Priority,
			Type:           job.Type,
			TriggeredBy:    structs.EvalTriggerRetryFailed,
			JobID:          job.ID,
			JobModifyIndex: job.ModifyIndex,
			Status:         structs.EvalStatusPending,
			CreateTime:     now,
			ModifyTime:     now,
		})
	}
	return evals, nil
}
