package fsm

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/go-memdb"

	"github.com/drover-sh/drover/structs"
)

// allNamespaces as the namespace of a list read means every namespace.
const allNamespaces = "*"

// JobByID returns the job, or nil when it does not exist.
func (r *stateReader) JobByID(ws memdb.WatchSet, namespace, id string) (*structs.Job, error) {
	return jobByIDTxn(r.readTxn(), ws, namespace, id)
}

// JobsByPrefix returns the jobs of namespace ("*" for all) whose ID starts
// with prefix, sorted by namespace then ID.
func (r *stateReader) JobsByPrefix(ws memdb.WatchSet, namespace, prefix string) ([]*structs.Job, error) {
	txn := r.readTxn()
	var it memdb.ResultIterator
	var err error
	if namespace == allNamespaces {
		it, err = txn.Get(tableJobs, "id")
	} else {
		it, err = txn.Get(tableJobs, "id_prefix", namespace, prefix)
	}
	if err != nil {
		return nil, fmt.Errorf("listing jobs in namespace %q: %w", namespace, err)
	}
	watch(ws, it.WatchCh())
	var out []*structs.Job
	for raw := it.Next(); raw != nil; raw = it.Next() {
		j := raw.(*structs.Job)
		if namespace == allNamespaces && !strings.HasPrefix(j.ID, prefix) {
			continue
		}
		out = append(out, j)
	}
	return out, nil
}

// JobVersionsByID returns the kept versions of a job, newest first.
func (r *stateReader) JobVersionsByID(ws memdb.WatchSet, namespace, id string) ([]*structs.Job, error) {
	versions, err := jobVersions(r.readTxn(), ws, namespace, id)
	if err != nil {
		return nil, err
	}
	slices.Reverse(versions)
	return versions, nil
}

// JobByIDAndVersion returns one kept version of a job, or nil.
func (r *stateReader) JobByIDAndVersion(ws memdb.WatchSet, namespace, id string, version uint64) (*structs.Job, error) {
	ch, raw, err := r.readTxn().FirstWatch(tableJobVersions, "id", namespace, id, version)
	if err != nil {
		return nil, fmt.Errorf("reading version %d of job %q in namespace %q: %w", version, id, namespace, err)
	}
	watch(ws, ch)
	if raw == nil {
		return nil, nil
	}
	return raw.(*structs.Job), nil
}

// jobVersions returns a job's kept versions, oldest first (key order).
func jobVersions(txn *memdb.Txn, ws memdb.WatchSet, namespace, id string) ([]*structs.Job, error) {
	// A prefix scan on the ID also finds "web-2" for "web"; the filter
	// keeps the exact ID, whose versions sort together by version.
	it, err := txn.Get(tableJobVersions, "id_prefix", namespace, id)
	if err != nil {
		return nil, fmt.Errorf("reading versions of job %q in namespace %q: %w", id, namespace, err)
	}
	watch(ws, it.WatchCh())
	var out []*structs.Job
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if j := raw.(*structs.Job); j.ID == id {
			out = append(out, j)
		}
	}
	return out, nil
}

// jobByIDTxn reads a job in a transaction the caller holds, so reads and
// writes spanning tables see one state.
func jobByIDTxn(txn *memdb.Txn, ws memdb.WatchSet, namespace, id string) (*structs.Job, error) {
	ch, raw, err := txn.FirstWatch(tableJobs, "id", namespace, id)
	if err != nil {
		return nil, fmt.Errorf("reading job %q in namespace %q: %w", id, namespace, err)
	}
	watch(ws, ch)
	if raw == nil {
		return nil, nil
	}
	return raw.(*structs.Job), nil
}

// jobUpsert is a job write whose objects the store owns from here on: Apply
// hands over what it decoded, so the hot path copies nothing.
type jobUpsert struct {
	job        *structs.Job
	eval       *structs.Evaluation
	submitTime int64
	// enforceIndex makes the write conditional on the job's current
	// JobModifyIndex equalling jobModifyIndex (0: the job must not exist).
	enforceIndex   bool
	jobModifyIndex uint64
}

// UpsertJob registers or updates a job and, in the same transaction, the
// evaluation that schedules it. The store keeps copies of both.
func (s *StateStore) UpsertJob(index uint64, submitTime int64, job *structs.Job, eval *structs.Evaluation) error {
	if job == nil {
		return structs.NewError(structs.ErrInvalid, "upserting a nil job")
	}
	return s.upsertJob(index, jobUpsert{job: job.Copy(), eval: eval.Copy(), submitTime: submitTime})
}

func (s *StateStore) upsertJob(index uint64, u jobUpsert) error {
	txn := s.writeTxn()
	defer txn.Abort()
	if err := upsertJobTxn(txn.Txn, index, u); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

func upsertJobTxn(txn *memdb.Txn, index uint64, u jobUpsert) error {
	job := u.job
	existing, err := jobByIDTxn(txn, nil, job.Namespace, job.ID)
	if err != nil {
		return err
	}
	if u.enforceIndex {
		if err := checkJobModifyIndex(existing, job, u.jobModifyIndex); err != nil {
			return err
		}
	}
	var touched []jobKey
	if u.eval != nil {
		if touched, err = upsertEvalsTxn(txn, index, []*structs.Evaluation{u.eval}); err != nil {
			return err
		}
	}

	newVersion := true
	switch {
	case existing == nil:
		job.CreateIndex = index
		job.Version = 0
		job.StatusDescription = ""
	case job.SpecChanged(existing):
		job.CreateIndex = existing.CreateIndex
		job.Version = existing.Version + 1
		job.StatusDescription = existing.StatusDescription
	default:
		newVersion = false
		job.CreateIndex = existing.CreateIndex
		job.Version = existing.Version
		job.JobModifyIndex = existing.JobModifyIndex
		job.SubmitTime = existing.SubmitTime
		job.StatusDescription = existing.StatusDescription
		job.Stable = existing.Stable
	}
	if newVersion {
		job.JobModifyIndex = index
		job.SubmitTime = u.submitTime
		job.Stable = false // only a successful deployment makes a version stable
	}
	job.ModifyIndex = index
	if job.Status, err = jobStatus(txn, job); err != nil {
		return err
	}
	if err := txn.Insert(tableJobs, job); err != nil {
		return fmt.Errorf("writing job %q in namespace %q: %w", job.ID, job.Namespace, err)
	}
	if err := setIndex(txn, index, tableJobs); err != nil {
		return err
	}
	// The job's own status is derived above; an eval naming another job
	// still moves that job's status.
	self := jobKey{job.Namespace, job.ID}
	touched = slices.DeleteFunc(touched, func(k jobKey) bool { return k == self })
	if err := setJobStatuses(txn, index, touched); err != nil {
		return err
	}
	if !newVersion {
		return nil
	}
	// The version row shares the job object: neither is ever modified in
	// place, and a later status change copies the job row only.
	if err := txn.Insert(tableJobVersions, job); err != nil {
		return fmt.Errorf("writing version %d of job %q: %w", job.Version, job.ID, err)
	}
	if err := pruneJobVersions(txn, job.Namespace, job.ID); err != nil {
		return err
	}
	return setIndex(txn, index, tableJobVersions)
}

func checkJobModifyIndex(existing, job *structs.Job, want uint64) error {
	switch {
	case want == 0 && existing != nil:
		return conflict("job %q in namespace %q already exists (job modify index %d)",
			job.ID, job.Namespace, existing.JobModifyIndex)
	case want != 0 && existing == nil:
		return conflict("job %q in namespace %q does not exist; expected job modify index %d",
			job.ID, job.Namespace, want)
	case existing != nil && existing.JobModifyIndex != want:
		return conflict("job %q in namespace %q has job modify index %d, not %d",
			job.ID, job.Namespace, existing.JobModifyIndex, want)
	}
	return nil
}

// pruneJobVersions deletes the oldest versions beyond JobTrackedVersions.
func pruneJobVersions(txn *memdb.Txn, namespace, id string) error {
	versions, err := jobVersions(txn, nil, namespace, id)
	if err != nil {
		return err
	}
	if len(versions) <= structs.JobTrackedVersions {
		return nil
	}
	return deleteJobVersions(txn, versions[:len(versions)-structs.JobTrackedVersions])
}

func deleteJobVersions(txn *memdb.Txn, versions []*structs.Job) error {
	for _, v := range versions {
		if err := txn.Delete(tableJobVersions, v); err != nil {
			return fmt.Errorf("deleting version %d of job %q: %w", v.Version, v.ID, err)
		}
	}
	return nil
}

// DeregisterJob stops a job (purge false: a new version with Stop set) or
// removes it with all its versions (purge true), writing eval in the same
// transaction. A missing job is ErrNotFound either way.
func (s *StateStore) DeregisterJob(index uint64, submitTime int64, namespace, jobID string, purge bool, eval *structs.Evaluation) error {
	return s.deregisterJob(index, submitTime, namespace, jobID, purge, eval.Copy())
}

func (s *StateStore) deregisterJob(index uint64, submitTime int64, namespace, jobID string, purge bool, eval *structs.Evaluation) error {
	txn := s.writeTxn()
	defer txn.Abort()
	existing, err := jobByIDTxn(txn.Txn, nil, namespace, jobID)
	if err != nil {
		return err
	}
	if existing == nil {
		return notFound("job %q not found in namespace %q", jobID, namespace)
	}
	if !purge {
		stopped := existing.Copy()
		stopped.Stop = true
		if err := upsertJobTxn(txn.Txn, index, jobUpsert{job: stopped, eval: eval, submitTime: submitTime}); err != nil {
			return err
		}
		txn.Commit()
		return nil
	}

	if err := txn.Delete(tableJobs, existing); err != nil {
		return fmt.Errorf("deleting job %q in namespace %q: %w", jobID, namespace, err)
	}
	versions, err := jobVersions(txn.Txn, nil, namespace, jobID)
	if err != nil {
		return err
	}
	if err := deleteJobVersions(txn.Txn, versions); err != nil {
		return err
	}
	if err := setIndex(txn.Txn, index, tableJobs, tableJobVersions); err != nil {
		return err
	}
	if eval != nil {
		touched, err := upsertEvalsTxn(txn.Txn, index, []*structs.Evaluation{eval})
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

// PurgeJobs removes stopped jobs with all their versions: the garbage
// collector's write. Jobs already gone are skipped.
func (s *StateStore) PurgeJobs(index uint64, jobs []structs.NamespacedID) error {
	txn := s.writeTxn()
	defer txn.Abort()
	for _, id := range jobs {
		existing, err := jobByIDTxn(txn.Txn, nil, id.Namespace, id.ID)
		if err != nil {
			return err
		}
		if existing == nil {
			continue
		}
		if err := txn.Delete(tableJobs, existing); err != nil {
			return fmt.Errorf("deleting job %q in namespace %q: %w", id.ID, id.Namespace, err)
		}
		versions, err := jobVersions(txn.Txn, nil, id.Namespace, id.ID)
		if err != nil {
			return err
		}
		if err := deleteJobVersions(txn.Txn, versions); err != nil {
			return err
		}
	}
	if err := setIndex(txn.Txn, index, tableJobs, tableJobVersions); err != nil {
		return err
	}
	txn.Commit()
	return nil
}
