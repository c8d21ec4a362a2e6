package fsm

import (
	"fmt"
	"slices"

	"github.com/hashicorp/go-memdb"

	"github.com/drover-sh/drover/structs"
)

// AllocByID returns the allocation, or nil when it does not exist.
func (r *stateReader) AllocByID(ws memdb.WatchSet, id string) (*structs.Allocation, error) {
	ch, raw, err := r.readTxn().FirstWatch(tableAllocs, "id", id)
	if err != nil {
		return nil, fmt.Errorf("reading allocation %q: %w", id, err)
	}
	watch(ws, ch)
	if raw == nil {
		return nil, nil
	}
	return raw.(*structs.Allocation), nil
}

// AllocsByPrefix returns the allocations of namespace ("*" for all) whose
// ID starts with prefix, sorted by ID.
func (r *stateReader) AllocsByPrefix(ws memdb.WatchSet, namespace, prefix string) ([]*structs.Allocation, error) {
	it, err := r.readTxn().Get(tableAllocs, "id_prefix", prefix)
	if err != nil {
		return nil, fmt.Errorf("listing allocations by prefix %q: %w", prefix, err)
	}
	watch(ws, it.WatchCh())
	var out []*structs.Allocation
	for raw := it.Next(); raw != nil; raw = it.Next() {
		a := raw.(*structs.Allocation)
		if namespace == allNamespaces || a.Namespace == namespace {
			out = append(out, a)
		}
	}
	return out, nil
}

// AllocsByJob returns the allocations of a job. Unless all is set, it
// leaves out allocations of an earlier job with the same ID (one that was
// purged and registered again), told apart by the job's CreateIndex.
func (r *stateReader) AllocsByJob(ws memdb.WatchSet, namespace, jobID string, all bool) ([]*structs.Allocation, error) {
	txn := r.readTxn()
	var job *structs.Job
	if !all {
		var err error
		if job, err = jobByIDTxn(txn, ws, namespace, jobID); err != nil {
			return nil, err
		}
	}
	it, err := txn.Get(tableAllocs, "job", namespace, jobID)
	if err != nil {
		return nil, fmt.Errorf("listing allocations of job %q in namespace %q: %w", jobID, namespace, err)
	}
	watch(ws, it.WatchCh())
	var out []*structs.Allocation
	for raw := it.Next(); raw != nil; raw = it.Next() {
		a := raw.(*structs.Allocation)
		if job != nil && a.Job != nil && a.Job.CreateIndex != job.CreateIndex {
			continue
		}
		out = append(out, a)
	}
	return out, nil
}

// AllocsByNode returns the allocations placed on a node, sorted by ID.
func (r *stateReader) AllocsByNode(ws memdb.WatchSet, nodeID string) ([]*structs.Allocation, error) {
	return r.allocsBy(ws, "node", nodeID)
}

func (r *stateReader) allocsBy(ws memdb.WatchSet, index, value string) ([]*structs.Allocation, error) {
	it, err := r.readTxn().Get(tableAllocs, index, value)
	if err != nil {
		return nil, fmt.Errorf("listing allocations by %s %q: %w", index, value, err)
	}
	watch(ws, it.WatchCh())
	var out []*structs.Allocation
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*structs.Allocation))
	}
	return out, nil
}

// UpsertAllocs writes allocations and derives the status of their jobs
// again. An existing allocation keeps its CreateIndex. An allocation
// without a Job keeps the one it had, or for a new allocation gets the
// job's current version, so entries need not carry the job. The store
// keeps copies.
func (s *StateStore) UpsertAllocs(index uint64, allocs []*structs.Allocation) error {
	copies := make([]*structs.Allocation, len(allocs))
	for i, a := range allocs {
		copies[i] = a.Copy()
	}
	return s.upsertAllocs(index, copies)
}

// upsertAllocs takes ownership of allocs.
func (s *StateStore) upsertAllocs(index uint64, allocs []*structs.Allocation) error {
	txn := s.writeTxn()
	defer txn.Abort()
	touched := make([]jobKey, 0, len(allocs))
	for _, a := range allocs {
		if a == nil {
			return structs.NewError(structs.ErrInvalid, "upserting a nil allocation")
		}
		raw, err := txn.First(tableAllocs, "id", a.ID)
		if err != nil {
			return fmt.Errorf("reading allocation %q: %w", a.ID, err)
		}
		var existing *structs.Allocation
		if raw != nil {
			existing = raw.(*structs.Allocation)
			a.CreateIndex = existing.CreateIndex
			if a.Job == nil {
				a.Job = existing.Job
			}
		} else {
			a.CreateIndex = index
			if a.Job == nil {
				if a.Job, err = jobByIDTxn(txn.Txn, nil, a.Namespace, a.JobID); err != nil {
					return err
				}
			}
		}
		a.ModifyIndex = index
		a.AllocModifyIndex = index
		if err := insertAllocTxn(txn.Txn, existing, a); err != nil {
			return err
		}
		touched = append(touched, jobKey{a.Namespace, a.JobID})
	}
	if err := setIndex(txn.Txn, index, tableAllocs); err != nil {
		return err
	}
	if err := setJobStatuses(txn.Txn, index, touched); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

// UpdateAllocsFromClient takes what clients own from each update
// (ClientStatus, ClientDescription, TaskStates, DeploymentStatus,
// ModifyTime) and writes evals, in one transaction. Updates of allocations
// that are gone (garbage collected while the client was reporting) are
// skipped: the client learns from its next allocation query.
func (s *StateStore) UpdateAllocsFromClient(index uint64, updates []*structs.Allocation, evals []*structs.Evaluation) error {
	return s.updateAllocsFromClient(index, updates, copyEvals(evals))
}

func (s *StateStore) updateAllocsFromClient(index uint64, updates []*structs.Allocation, evals []*structs.Evaluation) error {
	txn := s.writeTxn()
	defer txn.Abort()
	touched := make([]jobKey, 0, len(updates)+len(evals))
	for _, u := range updates {
		if u == nil {
			return structs.NewError(structs.ErrInvalid, "updating a nil allocation")
		}
		raw, err := txn.First(tableAllocs, "id", u.ID)
		if err != nil {
			return fmt.Errorf("reading allocation %q: %w", u.ID, err)
		}
		if raw == nil {
			continue
		}
		// A shallow copy is enough: the fields replaced below are the
		// only ones that differ, and nested objects are never modified.
		prev := raw.(*structs.Allocation)
		a := *prev
		a.ClientStatus = u.ClientStatus
		a.ClientDescription = u.ClientDescription
		if u.TaskStates != nil {
			a.TaskStates = u.TaskStates
		}
		if u.DeploymentStatus != nil {
			// Health is the client's; whether it is a canary is the
			// scheduler's.
			ds := *u.DeploymentStatus
			ds.Canary = prev.DeploymentStatus != nil && prev.DeploymentStatus.Canary
			a.DeploymentStatus = &ds
		}
		a.ModifyTime = u.ModifyTime
		a.ModifyIndex = index
		if err := insertAllocTxn(txn.Txn, prev, &a); err != nil {
			return err
		}
		touched = append(touched, jobKey{a.Namespace, a.JobID})
	}
	if err := setIndex(txn.Txn, index, tableAllocs); err != nil {
		return err
	}
	if len(evals) > 0 {
		t, err := upsertEvalsTxn(txn.Txn, index, evals)
		if err != nil {
			return err
		}
		touched = append(touched, t...)
	}
	if err := setJobStatuses(txn.Txn, index, touched); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

// UpdateAllocsDesiredTransitions sets the desired transitions of
// allocations and writes the evaluations that act on them. Missing
// allocations are skipped, as for client updates.
func (s *StateStore) UpdateAllocsDesiredTransitions(index uint64, transitions map[string]*structs.DesiredTransition, evals []*structs.Evaluation) error {
	return s.updateAllocsDesiredTransitions(index, transitions, copyEvals(evals))
}

func (s *StateStore) updateAllocsDesiredTransitions(index uint64, transitions map[string]*structs.DesiredTransition, evals []*structs.Evaluation) error {
	txn := s.writeTxn()
	defer txn.Abort()
	// Map order is random; every server must write in the same order.
	ids := make([]string, 0, len(transitions))
	for id := range transitions {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		raw, err := txn.First(tableAllocs, "id", id)
		if err != nil {
			return fmt.Errorf("reading allocation %q: %w", id, err)
		}
		if raw == nil || transitions[id] == nil {
			continue
		}
		prev := raw.(*structs.Allocation)
		a := *prev
		a.DesiredTransition = *transitions[id]
		a.ModifyIndex = index
		if err := insertAllocTxn(txn.Txn, prev, &a); err != nil {
			return err
		}
	}
	if err := setIndex(txn.Txn, index, tableAllocs); err != nil {
		return err
	}
	if len(evals) > 0 {
		touched, err := upsertEvalsTxn(txn.Txn, index, evals)
		if err != nil {
			return err
		}
		if err := setJobStatuses(txn.Txn, index, touched); err != nil {
			return err
		}
	}
	txn.Commit()
	return nil
}

// DeleteAllocs removes allocations; IDs already gone are skipped, since
// garbage collection may race with itself across leaders.
func (s *StateStore) DeleteAllocs(index uint64, ids []string) error {
	txn := s.writeTxn()
	defer txn.Abort()
	touched := make([]jobKey, 0, len(ids))
	for _, id := range ids {
		raw, err := txn.First(tableAllocs, "id", id)
		if err != nil {
			return fmt.Errorf("reading allocation %q: %w", id, err)
		}
		if raw == nil {
			continue
		}
		a := raw.(*structs.Allocation)
		if err := deleteAllocTxn(txn.Txn, index, a); err != nil {
			return err
		}
		touched = append(touched, jobKey{a.Namespace, a.JobID})
	}
	if err := setIndex(txn.Txn, index, tableAllocs); err != nil {
		return err
	}
	if err := setJobStatuses(txn.Txn, index, touched); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

// AllocsStoppedSince calls fn for each terminal allocation last written
// after index, in index order, until fn returns false, and watches the
// allocations table for the next write. A callback rather than a slice:
// the leader's watcher keeps few of them.
func (r *stateReader) AllocsStoppedSince(ws memdb.WatchSet, index uint64, fn func(*structs.Allocation) bool) error {
	r.IndexWatch(ws, tableAllocs)
	it, err := r.readTxn().LowerBound(tableAllocs, "stopped", index+1)
	if err != nil {
		return fmt.Errorf("listing allocations stopped after index %d: %w", index, err)
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if !fn(raw.(*structs.Allocation)) {
			return nil
		}
	}
	return nil
}
