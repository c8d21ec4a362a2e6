package fsm

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/hashicorp/go-memdb"

	"github.com/drover-sh/drover/structs"
)

// Store sentinels, checked with errors.Is. The errors the store returns
// also carry a *structs.Error with the matching code, so the API layer maps
// them without knowing this package.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
)

// storeError ties a sentinel to a coded API error with a message that names
// the object.
type storeError struct {
	sentinel error
	coded    *structs.Error
}

func (e *storeError) Error() string   { return e.coded.Message }
func (e *storeError) Unwrap() []error { return []error{e.sentinel, e.coded} }

func notFound(format string, args ...any) error {
	return &storeError{sentinel: ErrNotFound, coded: structs.NewError(structs.ErrNotFound, format, args...)}
}

func conflict(format string, args ...any) error {
	return &storeError{sentinel: ErrConflict, coded: structs.NewError(structs.ErrConflict, format, args...)}
}

// stateReader holds every read so it is written once and shared by the
// live store (a fresh read transaction per call) and by snapshots (one read
// transaction for a consistent view).
type stateReader struct {
	db  *memdb.MemDB
	txn *memdb.Txn
}

func (r *stateReader) readTxn() *memdb.Txn {
	if r.txn != nil {
		return r.txn
	}
	return r.db.Txn(false)
}

// Index returns the Raft index of the last write to table, 0 if none.
func (r *stateReader) Index(table string) uint64 {
	raw, err := r.readTxn().First(tableIndex, "id", table)
	if err != nil || raw == nil {
		return 0
	}
	return raw.(*indexEntry).Value
}

// LatestIndex returns the Raft index of the last write to any table.
func (r *stateReader) LatestIndex() uint64 {
	it, err := r.readTxn().Get(tableIndex, "id")
	if err != nil {
		return 0
	}
	var latest uint64
	for raw := it.Next(); raw != nil; raw = it.Next() {
		latest = max(latest, raw.(*indexEntry).Value)
	}
	return latest
}

// StateStore is the cluster object store. Writes come only from the FSM, at
// Raft indexes; reads may come from any goroutine. Objects returned by reads
// are shared with the store and must not be modified.
type StateStore struct {
	stateReader
	// batch is set while the FSM applies a batch of entries in one
	// transaction; only the FSM's goroutine writes, so it needs no lock.
	batch     *applyBatch
	abandonCh chan struct{}
	// successor is the store a Restore put in this one's place; it is set
	// before abandonCh closes, so a woken query can follow it.
	successor atomic.Pointer[StateStore]
}

// StateSnapshot is a consistent read-only view of the store as of the
// moment it was taken; later writes do not show through.
type StateSnapshot struct {
	stateReader
}

// NewStateStore returns an empty store.
func NewStateStore() (*StateStore, error) {
	db, err := newMemDB()
	if err != nil {
		return nil, err
	}
	return newStateStore(db), nil
}

func newStateStore(db *memdb.MemDB) *StateStore {
	return &StateStore{stateReader: stateReader{db: db}, abandonCh: make(chan struct{})}
}

// Snapshot returns a read-only view; it costs one read transaction, not a
// copy of the data.
func (s *StateStore) Snapshot() *StateSnapshot {
	return &StateSnapshot{stateReader{txn: s.db.Txn(false)}}
}

// AbandonCh is closed when a Restore replaced this store: readers holding
// it must move to the FSM's new store.
func (s *StateStore) AbandonCh() <-chan struct{} { return s.abandonCh }

func (s *StateStore) abandon(next *StateStore) {
	s.successor.Store(next)
	close(s.abandonCh)
}

// latest follows restores to the store now in use.
func (s *StateStore) latest() *StateStore {
	for {
		next := s.successor.Load()
		if next == nil {
			return s
		}
		s = next
	}
}

// setIndex records index as the last write to each table, in the caller's
// transaction so the index moves together with the data.
func setIndex(txn *memdb.Txn, index uint64, tables ...string) error {
	for _, t := range tables {
		if err := txn.Insert(tableIndex, &indexEntry{Key: t, Value: index}); err != nil {
			return fmt.Errorf("updating index of table %s: %w", t, err)
		}
	}
	return nil
}

func watch(ws memdb.WatchSet, ch <-chan struct{}) {
	if ws != nil {
		ws.Add(ch)
	}
}

// jobKey names a job whose status must be derived again at the end of a
// write.
type jobKey struct{ namespace, id string }

// setJobStatuses derives the status of every job in keys again and writes
// the jobs whose status changed, updating the jobs index if any did. Keys
// may repeat.
func setJobStatuses(txn *memdb.Txn, index uint64, keys []jobKey) error {
	if len(keys) > 1 {
		slices.SortFunc(keys, func(a, b jobKey) int {
			return cmp.Or(cmp.Compare(a.namespace, b.namespace), cmp.Compare(a.id, b.id))
		})
		keys = slices.Compact(keys)
	}
	changed := false
	for _, k := range keys {
		c, err := setJobStatus(txn, index, k.namespace, k.id)
		if err != nil {
			return err
		}
		changed = changed || c
	}
	if !changed {
		return nil
	}
	return setIndex(txn, index, tableJobs)
}

func setJobStatus(txn *memdb.Txn, index uint64, namespace, id string) (bool, error) {
	job, err := jobByIDTxn(txn, nil, namespace, id)
	if err != nil || job == nil {
		return false, err
	}
	status, err := jobStatus(txn, job)
	if err != nil {
		return false, err
	}
	if status == job.Status {
		return false, nil
	}
	updated := job.Copy()
	updated.Status = status
	updated.ModifyIndex = index
	if err := txn.Insert(tableJobs, updated); err != nil {
		return false, fmt.Errorf("writing job %q in namespace %q: %w", id, namespace, err)
	}
	return true, nil
}

// jobStatus derives a job's status from its allocations and evaluations,
// as the transaction sees them. Allocations left over from an earlier job
// of the same ID (purged, then registered again) do not count. A batch job
// is dead once it ran and nothing is left to do; a batch job nothing has
// happened to yet stays pending.
func jobStatus(txn *memdb.Txn, job *structs.Job) (string, error) {
	it, err := txn.Get(tableAllocs, "job", job.Namespace, job.ID)
	if err != nil {
		return "", fmt.Errorf("reading allocations of job %q: %w", job.ID, err)
	}
	hasAlloc := false
	for raw := it.Next(); raw != nil; raw = it.Next() {
		a := raw.(*structs.Allocation)
		if a.Job != nil && a.Job.CreateIndex != job.CreateIndex {
			continue
		}
		if !a.TerminalStatus() {
			return structs.JobStatusRunning, nil
		}
		hasAlloc = true
	}
	if job.Stop {
		return structs.JobStatusDead, nil
	}
	if job.Type != structs.JobTypeBatch {
		return structs.JobStatusPending, nil
	}
	it, err = txn.Get(tableEvals, "job", job.Namespace, job.ID)
	if err != nil {
		return "", fmt.Errorf("reading evaluations of job %q: %w", job.ID, err)
	}
	hasEval := false
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if !raw.(*structs.Evaluation).TerminalStatus() {
			return structs.JobStatusPending, nil
		}
		hasEval = true
	}
	if hasAlloc || hasEval {
		return structs.JobStatusDead, nil
	}
	return structs.JobStatusPending, nil
}

// IndexWatch returns the Raft index of the last write to table and adds
// a watch that fires on the next one, without reading the table itself.
func (r *stateReader) IndexWatch(ws memdb.WatchSet, table string) uint64 {
	ch, raw, err := r.readTxn().FirstWatch(tableIndex, "id", table)
	if err != nil {
		return 0
	}
	watch(ws, ch)
	if raw == nil {
		return 0
	}
	return raw.(*indexEntry).Value
}
