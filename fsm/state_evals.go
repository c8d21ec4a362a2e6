package fsm

import (
	"fmt"

	"github.com/hashicorp/go-memdb"

	"github.com/drover-sh/drover/structs"
)

// EvalByID returns the evaluation, or nil when it does not exist.
func (r *stateReader) EvalByID(ws memdb.WatchSet, id string) (*structs.Evaluation, error) {
	ch, raw, err := r.readTxn().FirstWatch(tableEvals, "id", id)
	if err != nil {
		return nil, fmt.Errorf("reading evaluation %q: %w", id, err)
	}
	watch(ws, ch)
	if raw == nil {
		return nil, nil
	}
	return raw.(*structs.Evaluation), nil
}

// EvalsByPrefix returns the evaluations of namespace ("*" for all) whose ID
// starts with prefix, sorted by ID.
func (r *stateReader) EvalsByPrefix(ws memdb.WatchSet, namespace, prefix string) ([]*structs.Evaluation, error) {
	it, err := r.readTxn().Get(tableEvals, "id_prefix", prefix)
	if err != nil {
		return nil, fmt.Errorf("listing evaluations by prefix %q: %w", prefix, err)
	}
	watch(ws, it.WatchCh())
	var out []*structs.Evaluation
	for raw := it.Next(); raw != nil; raw = it.Next() {
		e := raw.(*structs.Evaluation)
		if namespace == allNamespaces || e.Namespace == namespace {
			out = append(out, e)
		}
	}
	return out, nil
}

// EvalsByJob returns the evaluations of one job, sorted by ID.
func (r *stateReader) EvalsByJob(ws memdb.WatchSet, namespace, jobID string) ([]*structs.Evaluation, error) {
	it, err := r.readTxn().Get(tableEvals, "job", namespace, jobID)
	if err != nil {
		return nil, fmt.Errorf("listing evaluations of job %q in namespace %q: %w", jobID, namespace, err)
	}
	watch(ws, it.WatchCh())
	var out []*structs.Evaluation
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*structs.Evaluation))
	}
	return out, nil
}

// UpsertEvals writes evaluations, keeping the CreateIndex of existing ones,
// and derives the status of their jobs again. The store keeps copies.
func (s *StateStore) UpsertEvals(index uint64, evals []*structs.Evaluation) error {
	copies := make([]*structs.Evaluation, len(evals))
	for i, e := range evals {
		copies[i] = e.Copy()
	}
	return s.upsertEvals(index, copies)
}

// upsertEvals takes ownership of evals.
func (s *StateStore) upsertEvals(index uint64, evals []*structs.Evaluation) error {
	txn := s.writeTxn()
	defer txn.Abort()
	touched, err := upsertEvalsTxn(txn.Txn, index, evals)
	if err != nil {
		return err
	}
	if err := setJobStatuses(txn.Txn, index, touched); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

// upsertEvalsTxn writes evals and returns the jobs whose status may have
// moved; the caller derives those once it has written everything else.
func upsertEvalsTxn(txn *memdb.Txn, index uint64, evals []*structs.Evaluation) ([]jobKey, error) {
	touched := make([]jobKey, 0, len(evals))
	for _, e := range evals {
		if e == nil {
			return nil, structs.NewError(structs.ErrInvalid, "upserting a nil evaluation")
		}
		raw, err := txn.First(tableEvals, "id", e.ID)
		if err != nil {
			return nil, fmt.Errorf("reading evaluation %q: %w", e.ID, err)
		}
		e.CreateIndex = index
		if raw != nil {
			e.CreateIndex = raw.(*structs.Evaluation).CreateIndex
		}
		e.ModifyIndex = index
		if err := txn.Insert(tableEvals, e); err != nil {
			return nil, fmt.Errorf("writing evaluation %q: %w", e.ID, err)
		}
		touched = append(touched, jobKey{e.Namespace, e.JobID})
	}
	return touched, setIndex(txn, index, tableEvals)
}

// DeleteEvals removes evaluations; IDs already gone are skipped, since
// garbage collection may race with itself across leaders.
func (s *StateStore) DeleteEvals(index uint64, ids []string) error {
	txn := s.writeTxn()
	defer txn.Abort()
	touched := make([]jobKey, 0, len(ids))
	for _, id := range ids {
		raw, err := txn.First(tableEvals, "id", id)
		if err != nil {
			return fmt.Errorf("reading evaluation %q: %w", id, err)
		}
		if raw == nil {
			continue
		}
		e := raw.(*structs.Evaluation)
		if err := txn.Delete(tableEvals, e); err != nil {
			return fmt.Errorf("deleting evaluation %q: %w", id, err)
		}
		touched = append(touched, jobKey{e.Namespace, e.JobID})
	}
	if err := setIndex(txn.Txn, index, tableEvals); err != nil {
		return err
	}
	if err := setJobStatuses(txn.Txn, index, touched); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

// EvalsModifiedSince returns the evaluations last written after index, in
// index order, and watches the evaluations table for the next write.
func (r *stateReader) EvalsModifiedSince(ws memdb.WatchSet, index uint64) ([]*structs.Evaluation, error) {
	r.IndexWatch(ws, tableEvals)
	it, err := r.readTxn().LowerBound(tableEvals, "modify", index+1)
	if err != nil {
		return nil, fmt.Errorf("listing evaluations modified after index %d: %w", index, err)
	}
	var out []*structs.Evaluation
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*structs.Evaluation))
	}
	return out, nil
}
