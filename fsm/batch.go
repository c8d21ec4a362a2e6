package fsm

import (
	"github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"
)

// Raft hands the FSM every entry committed together (up to the leader's
// MaxAppendEntries) in one ApplyBatch call. Applying them in one memdb
// write transaction clones each radix-tree path once per batch instead of
// once per entry, and wakes blocking queries once; under load this halves
// the cost of an apply on every server.
var _ raft.BatchingFSM = (*FSM)(nil)

// writeTxn is the store's one write idiom:
//
//	txn := s.writeTxn()
//	defer txn.Abort()
//	... writes ...
//	txn.Commit()
//
// Outside a batch it is a plain memdb write transaction. Inside a batch
// every entry shares the batch's transaction: Commit leaves it open for
// the next entry, and an Abort without Commit (an entry that failed,
// possibly after writing part of its changes) marks the batch failed so
// the FSM can throw it away and apply its entries one by one.
type writeTxn struct {
	*memdb.Txn
	batch     *applyBatch
	committed bool
}

// applyBatch is the transaction shared by the entries of one ApplyBatch.
type applyBatch struct {
	txn    *memdb.Txn
	failed bool
}

// writeTxn opens the write transaction of one store operation. Never call
// s.db.Txn(true) directly: inside a batch it would wait forever for the
// batch's own write lock (TestWritesUseWriteTxn checks the sources).
func (s *StateStore) writeTxn() *writeTxn {
	if b := s.batch; b != nil {
		return &writeTxn{Txn: b.txn, batch: b}
	}
	return &writeTxn{Txn: s.db.Txn(true)}
}

// Commit makes the operation's writes visible: now outside a batch, with
// the batch otherwise.
func (t *writeTxn) Commit() {
	t.committed = true
	if t.batch == nil {
		t.Txn.Commit()
	}
}

// Abort undoes an uncommitted operation; after Commit it does nothing, so
// it can always be deferred.
func (t *writeTxn) Abort() {
	if t.committed {
		return
	}
	if t.batch != nil {
		t.batch.failed = true
		return
	}
	t.Txn.Abort()
}

// maxBatchBytes bounds the entries (by encoded size) that share one
// transaction. go-immutable-radix remembers up to 8,192 modified tree nodes
// per index to close their watch channels on commit; a transaction that
// modifies more falls back to walking the whole index, old and new, which
// in a store of 100,000 allocations costs hundreds of milliseconds. At
// roughly 400 bytes per allocation written, 256 KiB keeps a transaction
// near 650 allocations, well under the limit, while still sharing the
// upper tree paths that make batching pay.
const maxBatchBytes = 256 << 10

// ApplyBatch applies entries committed together, as few transactions as
// the size bound allows. If any entry fails, its transaction is discarded
// and that transaction's entries are applied again one by one, so a
// failed entry leaves no partial write and the others' results are
// exactly what Apply would have given; every server takes the same path,
// so the stores stay identical.
func (f *FSM) ApplyBatch(logs []*raft.Log) []interface{} {
	resp := make([]interface{}, len(logs))
	start := 0
	for _, end := range txnBounds(logs, f.batchBytes) {
		f.applyTxn(logs[start:end], resp[start:end])
		start = end
	}
	return resp
}

// txnBounds splits logs into runs of at most limit bytes of entries (an
// entry bigger than that runs alone) and returns the end of each run.
func txnBounds(logs []*raft.Log, limit int) []int {
	var ends []int
	size := 0
	for i, l := range logs {
		if i > 0 && size+len(l.Data) > limit {
			ends = append(ends, i)
			size = 0
		}
		size += len(l.Data)
	}
	if len(logs) > 0 {
		ends = append(ends, len(logs))
	}
	return ends
}

// applyTxn applies logs in one transaction, their answers into resp.
func (f *FSM) applyTxn(logs []*raft.Log, resp []interface{}) {
	if len(logs) == 1 {
		resp[0] = f.applyLog(logs[0])
		return
	}
	store := f.State()
	b := &applyBatch{txn: store.db.Txn(true)}
	store.batch = b
	for i, l := range logs {
		resp[i] = f.applyLog(l)
		if b.failed {
			break
		}
	}
	store.batch = nil
	if !b.failed {
		b.txn.Commit()
		return
	}
	b.txn.Abort()
	for i, l := range logs {
		resp[i] = f.applyLog(l)
	}
}

// applyLog applies one entry handed over by ApplyBatch, which also passes
// configuration changes: those belong to Raft, not to the store.
func (f *FSM) applyLog(l *raft.Log) interface{} {
	if l.Type != raft.LogCommand {
		return nil
	}
	return f.Apply(l)
}
