package server

import (
	"sync"

	"github.com/drover-sh/drover/structs"
)

// BlockedEvals holds, on the leader, the evaluations that could not place
// everything and wait for capacity: at most one per job. It is a plain
// data structure driven by the leader's store watcher (evalWatcher),
// which feeds it blocked evaluations and capacity changes and writes what
// it decides (unblocked: back to pending; duplicates: canceled) through
// Raft, so the store always says where an evaluation is and a new leader
// rebuilds this from it.
//
// Capacity is tracked by datacenter: a node that became ready or eligible,
// or an allocation that stopped, in datacenter dc wakes the blocked
// evaluations whose job may run in dc. Finer keys (node class, attributes)
// would need the scheduler to record which classes it found infeasible;
// a datacenter is what every job names, and a wake-up that finds nothing
// new only costs one scheduler pass.
type BlockedEvals struct {
	mu      sync.Mutex
	enabled bool
	byJob   map[jobKey]*blockedEval
	byID    map[string]jobKey
	// capacity is the store index of the last capacity change seen per
	// datacenter; capacityAll of one that may concern any datacenter
	// (the first look at the store of a new leader).
	capacity    map[string]uint64
	capacityAll uint64
	// duplicates are older blocked evaluations of a job that got a newer
	// one; the watcher writes them as canceled.
	duplicates []*structs.Evaluation
}

type blockedEval struct {
	eval *structs.Evaluation
	// datacenters the job may run in; AnyDatacenter matches all.
	datacenters []string
}

// BlockedStats are the tracker's counters, for status output and tests.
type BlockedStats struct {
	Blocked int
}

// NewBlockedEvals returns a disabled tracker.
func NewBlockedEvals() *BlockedEvals {
	return &BlockedEvals{}
}

// SetEnabled turns the tracker on (a new leader) or off, dropping all
// state: the next leader rebuilds it from the store.
func (b *BlockedEvals) SetEnabled(on bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.enabled = on
	b.byJob = make(map[jobKey]*blockedEval)
	b.byID = make(map[string]jobKey)
	b.capacity = make(map[string]uint64)
	b.capacityAll = 0
	b.duplicates = nil
}

// Block tracks a blocked evaluation of a job that may run in datacenters.
// It reports true when capacity appeared in one of them after the
// evaluation's snapshot: the evaluation missed it and must not wait for
// the next change; the caller unblocks it and it is not tracked.
func (b *BlockedEvals) Block(eval *structs.Evaluation, datacenters []string) (unblockNow bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.enabled {
		return false
	}
	key := jobKey{eval.Namespace, eval.JobID}
	if old, ok := b.byJob[key]; ok {
		if old.eval.ID == eval.ID {
			old.eval = eval
			return false
		}
		if old.eval.CreateIndex > eval.CreateIndex {
			b.duplicates = append(b.duplicates, eval)
			return false
		}
		b.duplicates = append(b.duplicates, old.eval)
		b.untrackLocked(key)
	}
	if b.missedLocked(eval, datacenters) {
		return true
	}
	b.byJob[key] = &blockedEval{eval: eval, datacenters: datacenters}
	b.byID[eval.ID] = key
	return false
}

func (b *BlockedEvals) missedLocked(eval *structs.Evaluation, datacenters []string) bool {
	if b.capacityAll > eval.SnapshotIndex {
		return true
	}
	for dc, idx := range b.capacity {
		if idx > eval.SnapshotIndex && matchDatacenter(datacenters, dc) {
			return true
		}
	}
	return false
}

// Capacity records capacity that appeared in datacenter at store index
// and returns the blocked evaluations it wakes, which are no longer
// tracked.
func (b *BlockedEvals) Capacity(datacenter string, index uint64) []*structs.Evaluation {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.enabled {
		return nil
	}
	b.capacity[datacenter] = max(b.capacity[datacenter], index)
	var out []*structs.Evaluation
	for key, be := range b.byJob {
		if be.eval.SnapshotIndex < index && matchDatacenter(be.datacenters, datacenter) {
			out = append(out, be.eval)
			b.untrackLocked(key)
		}
	}
	return out
}

// CapacityAll records a change that may concern every datacenter and
// returns every blocked evaluation older than index.
func (b *BlockedEvals) CapacityAll(index uint64) []*structs.Evaluation {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.enabled {
		return nil
	}
	b.capacityAll = max(b.capacityAll, index)
	var out []*structs.Evaluation
	for key, be := range b.byJob {
		if be.eval.SnapshotIndex < index {
			out = append(out, be.eval)
			b.untrackLocked(key)
		}
	}
	return out
}

// Remove forgets an evaluation that is no longer blocked in the store.
func (b *BlockedEvals) Remove(evalID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if key, ok := b.byID[evalID]; ok {
		b.untrackLocked(key)
	}
}

// JobSatisfied is told that an evaluation of the job placed everything it
// had to with a snapshot at index; a blocked evaluation computed before it
// has nothing left to wait for and is returned (untracked) to cancel.
func (b *BlockedEvals) JobSatisfied(namespace, jobID string, index uint64) *structs.Evaluation {
	b.mu.Lock()
	defer b.mu.Unlock()
	key := jobKey{namespace, jobID}
	be, ok := b.byJob[key]
	if !ok || be.eval.SnapshotIndex >= index {
		return nil
	}
	b.untrackLocked(key)
	return be.eval
}

// Duplicates returns and forgets the evaluations replaced by newer
// blocked evaluations of their job.
func (b *BlockedEvals) Duplicates() []*structs.Evaluation {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.duplicates
	b.duplicates = nil
	return out
}

// Stats returns the tracker's counters.
func (b *BlockedEvals) Stats() BlockedStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return BlockedStats{Blocked: len(b.byJob)}
}

func (b *BlockedEvals) untrackLocked(key jobKey) {
	if be, ok := b.byJob[key]; ok {
		delete(b.byID, be.eval.ID)
		delete(b.byJob, key)
	}
}

// matchDatacenter reports whether a job that may run in datacenters may
// run in dc.
func matchDatacenter(datacenters []string, dc string) bool {
	for _, d := range datacenters {
		if d == structs.AnyDatacenter || d == dc {
			return true
		}
	}
	return false
}
