package fsm

import (
	"fmt"

	"github.com/hashicorp/go-memdb"

	"github.com/drover-sh/drover/structs"
)

func init() {
	register(structs.DeploymentStatusUpdateRequestType, (*FSM).applyDeploymentUpdate)
}

func (f *FSM) applyDeploymentUpdate(index uint64, body []byte) interface{} {
	var req structs.DeploymentUpdateRequest
	if err := structs.Decode(body, &req); err != nil {
		return fmt.Errorf("decoding deployment update at index %d: %w", index, err)
	}
	return f.State().updateDeployment(index, &req)
}

// UpdateDeployment writes a deployment watcher's update (see
// structs.DeploymentUpdateRequest). The store keeps copies.
func (s *StateStore) UpdateDeployment(index uint64, req *structs.DeploymentUpdateRequest) error {
	c := *req
	c.Deployment = req.Deployment.Copy()
	c.Eval = req.Eval.Copy()
	c.RevertJob = req.RevertJob.Copy()
	return s.updateDeployment(index, &c)
}

// updateDeployment takes ownership of what req points to.
func (s *StateStore) updateDeployment(index uint64, req *structs.DeploymentUpdateRequest) error {
	d := req.Deployment
	if d == nil {
		return structs.NewError(structs.ErrInvalid, "deployment update without a deployment")
	}
	txn := s.writeTxn()
	defer txn.Abort()
	raw, err := txn.First(tableDeployments, "id", d.ID)
	if err != nil {
		return fmt.Errorf("reading deployment %q: %w", d.ID, err)
	}
	if raw == nil {
		return notFound("deployment %q not found", d.ID)
	}
	old := raw.(*structs.Deployment)
	if !old.Active() {
		// Ended meanwhile (cancelled by a newer version, or failed by a
		// person): the watcher's view is stale, and so is its revert.
		return nil
	}
	d.CreateIndex = old.CreateIndex
	d.ModifyIndex = index
	for name, s := range old.TaskGroups {
		// A promotion is never undone by a write made from an older read.
		if n := d.TaskGroups[name]; n != nil && s.Promoted {
			n.Promoted = true
		}
	}
	if !d.Active() {
		// The final counts are the allocations' as of this entry, not as
		// of the writer's read.
		if err := countDeploymentTxn(txn.Txn, d, true); err != nil {
			return err
		}
	}
	if err := txn.Insert(tableDeployments, d); err != nil {
		return fmt.Errorf("writing deployment %q: %w", d.ID, err)
	}
	tables := []string{tableDeployments}
	if d.Status == structs.DeploymentStatusSuccessful {
		if err := markStableTxn(txn.Txn, index, d); err != nil {
			return err
		}
	}
	if err := setIndex(txn.Txn, index, tables...); err != nil {
		return err
	}
	switch {
	case req.RevertJob != nil:
		// The evaluation goes with the job it schedules.
		if err := upsertJobTxn(txn.Txn, index, jobUpsert{job: req.RevertJob, eval: req.Eval, submitTime: req.SubmitTime}); err != nil {
			return fmt.Errorf("reverting job %q of deployment %q: %w", req.RevertJob.ID, d.ID, err)
		}
	case req.Eval != nil:
		touched, err := upsertEvalsTxn(txn.Txn, index, []*structs.Evaluation{req.Eval})
		if err != nil {
			return err
		}
		if err := setIndex(txn.Txn, index, tableEvals); err != nil {
			return err
		}
		if err := setJobStatuses(txn.Txn, index, touched); err != nil {
			return err
		}
	}
	txn.Commit()
	return nil
}

// deploymentEnded reports whether the deployment exists and has ended: a
// plan made before then carries a stale copy, which must not bring it
// back to running nor undo the watcher's final counts.
func deploymentEnded(txn *memdb.Txn, id string) bool {
	raw, err := txn.First(tableDeployments, "id", id)
	return err == nil && raw != nil && !raw.(*structs.Deployment).Active()
}

// markStableTxn marks the deployment's job version stable, in the
// versions table and, when it is still the current version, in the jobs
// table, and moves the index rows of what it wrote.
func markStableTxn(txn *memdb.Txn, index uint64, d *structs.Deployment) error {
	raw, err := txn.First(tableJobVersions, "id", d.Namespace, d.JobID, d.JobVersion)
	if err != nil {
		return fmt.Errorf("reading version %d of job %q: %w", d.JobVersion, d.JobID, err)
	}
	if raw != nil && !raw.(*structs.Job).Stable {
		v := raw.(*structs.Job).Copy()
		v.Stable = true
		if err := txn.Insert(tableJobVersions, v); err != nil {
			return fmt.Errorf("writing version %d of job %q: %w", d.JobVersion, d.JobID, err)
		}
		if err := setIndex(txn, index, tableJobVersions); err != nil {
			return err
		}
	}
	job, err := jobByIDTxn(txn, nil, d.Namespace, d.JobID)
	if err != nil || job == nil || job.Version != d.JobVersion || job.Stable {
		return err
	}
	j := job.Copy()
	j.Stable = true
	j.ModifyIndex = index
	if err := txn.Insert(tableJobs, j); err != nil {
		return fmt.Errorf("writing job %q: %w", d.JobID, err)
	}
	return setIndex(txn, index, tableJobs)
}

// countDeploymentTxn sets d's placed allocations and canaries per group
// from the allocations table, and with health also its healthy and
// unhealthy counts. d must be the caller's own copy.
func countDeploymentTxn(txn *memdb.Txn, d *structs.Deployment, health bool) error {
	d.ClearCounts(health)
	return deploymentAllocsTxn(txn, nil, d, func(a *structs.Allocation) { d.CountAlloc(a, health) })
}
