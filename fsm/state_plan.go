package fsm

import (
	"fmt"

	"github.com/hashicorp/go-memdb"

	"github.com/drover-sh/drover/structs"
)

// UpsertPlanResults writes a committed plan in one transaction: new and
// updated allocations, stops, the deployment and its status updates, and
// the evaluations that came with the plan. The store keeps copies.
func (s *StateStore) UpsertPlanResults(index uint64, req *structs.ApplyPlanResultsRequest) error {
	c := *req
	c.Allocs = make([]*structs.Allocation, len(req.Allocs))
	for i, a := range req.Allocs {
		c.Allocs[i] = a.Copy()
	}
	c.AllocsStopped = make([]*structs.Allocation, len(req.AllocsStopped))
	for i, a := range req.AllocsStopped {
		c.AllocsStopped[i] = a.Copy()
	}
	c.Deployment = req.Deployment.Copy()
	c.Evals = copyEvals(req.Evals)
	return s.upsertPlanResults(index, &c)
}

// upsertPlanResults takes ownership of everything req points to.
func (s *StateStore) upsertPlanResults(index uint64, req *structs.ApplyPlanResultsRequest) error {
	txn := s.writeTxn()
	defer txn.Abort()
	touched := make([]jobKey, 0, 1+len(req.Evals))
	if req.Job != nil {
		touched = append(touched, jobKey{req.Job.Namespace, req.Job.ID})
	}
	tables := []string{tableAllocs}
	for _, stop := range req.AllocsStopped {
		if stop == nil {
			return structs.NewError(structs.ErrInvalid, "plan stops a nil allocation")
		}
		raw, err := txn.First(tableAllocs, "id", stop.ID)
		if err != nil {
			return fmt.Errorf("reading allocation %q: %w", stop.ID, err)
		}
		if raw == nil {
			// Garbage collected since the plan was made: nothing to stop.
			continue
		}
		prev := raw.(*structs.Allocation)
		a := *prev
		a.DesiredStatus = stop.DesiredStatus
		a.DesiredDescription = stop.DesiredDescription
		if stop.ClientStatus != "" {
			a.ClientStatus = stop.ClientStatus
		}
		a.ModifyTime = stop.ModifyTime
		a.ModifyIndex = index
		a.AllocModifyIndex = index
		if err := insertAllocTxn(txn.Txn, prev, &a); err != nil {
			return err
		}
		touched = append(touched, jobKey{a.Namespace, a.JobID})
	}
	for _, a := range req.Allocs {
		if err := upsertPlannedAllocTxn(txn.Txn, index, req.Job, a); err != nil {
			return err
		}
		if req.Job == nil {
			touched = append(touched, jobKey{a.Namespace, a.JobID})
		}
	}
	if d := req.Deployment; d != nil && !deploymentEnded(txn.Txn, d.ID) {
		raw, err := txn.First(tableDeployments, "id", d.ID)
		if err != nil {
			return fmt.Errorf("reading deployment %q: %w", d.ID, err)
		}
		d.CreateIndex = index
		if raw != nil {
			// The plan's copy may be older than what the watcher or a
			// promotion wrote since; what the plan changes, the count of
			// placed allocations, is counted again below.
			d = raw.(*structs.Deployment).Copy()
		}
		if err := countDeploymentTxn(txn.Txn, d, false); err != nil {
			return err
		}
		d.ModifyIndex = index
		if err := txn.Insert(tableDeployments, d); err != nil {
			return fmt.Errorf("writing deployment %q: %w", d.ID, err)
		}
		tables = append(tables, tableDeployments)
	}
	for _, u := range req.DeploymentUpdates {
		if err := updateDeploymentStatusTxn(txn.Txn, index, u); err != nil {
			return err
		}
		if len(tables) == 1 {
			tables = append(tables, tableDeployments)
		}
	}
	if err := setIndex(txn.Txn, index, tables...); err != nil {
		return err
	}
	if len(req.Evals) > 0 {
		t, err := upsertEvalsTxn(txn.Txn, index, req.Evals)
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

// upsertPlannedAllocTxn writes one placement or in-place update of a plan.
// An existing allocation keeps what its client reported, unless the
// scheduler decided its client status (lost). A replacement is linked
// from the allocation it replaces.
func upsertPlannedAllocTxn(txn *memdb.Txn, index uint64, job *structs.Job, a *structs.Allocation) error {
	if a == nil {
		return structs.NewError(structs.ErrInvalid, "plan places a nil allocation")
	}
	raw, err := txn.First(tableAllocs, "id", a.ID)
	if err != nil {
		return fmt.Errorf("reading allocation %q: %w", a.ID, err)
	}
	var existing *structs.Allocation
	if raw != nil {
		existing = raw.(*structs.Allocation)
		a.CreateIndex = existing.CreateIndex
		a.CreateTime = existing.CreateTime
		if a.ClientStatus != structs.AllocClientLost {
			a.ClientStatus = existing.ClientStatus
			a.ClientDescription = existing.ClientDescription
			a.TaskStates = existing.TaskStates
		}
		if a.DeploymentStatus == nil {
			a.DeploymentStatus = existing.DeploymentStatus
		}
		if a.Job == nil {
			a.Job = existing.Job
		}
	} else {
		a.CreateIndex = index
	}
	if a.Job == nil {
		a.Job = job
	}
	if a.Job == nil {
		if a.Job, err = jobByIDTxn(txn, nil, a.Namespace, a.JobID); err != nil {
			return err
		}
	}
	a.ModifyIndex = index
	a.AllocModifyIndex = index
	if err := insertAllocTxn(txn, existing, a); err != nil {
		return err
	}
	if a.PreviousAllocation == "" || raw != nil {
		return nil
	}
	prevRaw, err := txn.First(tableAllocs, "id", a.PreviousAllocation)
	if err != nil {
		return fmt.Errorf("reading allocation %q: %w", a.PreviousAllocation, err)
	}
	if prevRaw == nil {
		return nil
	}
	old := prevRaw.(*structs.Allocation)
	prev := *old
	prev.NextAllocation = a.ID
	prev.ModifyIndex = index
	if err := insertAllocTxn(txn, old, &prev); err != nil {
		return err
	}
	return nil
}

// updateDeploymentStatusTxn moves a deployment to a new status.
func updateDeploymentStatusTxn(txn *memdb.Txn, index uint64, u *structs.DeploymentStatusUpdate) error {
	if u == nil {
		return structs.NewError(structs.ErrInvalid, "nil deployment status update")
	}
	raw, err := txn.First(tableDeployments, "id", u.DeploymentID)
	if err != nil {
		return fmt.Errorf("reading deployment %q: %w", u.DeploymentID, err)
	}
	if raw == nil {
		return notFound("deployment %q not found", u.DeploymentID)
	}
	if !raw.(*structs.Deployment).Active() {
		return nil // an ended deployment keeps its status
	}
	d := raw.(*structs.Deployment).Copy()
	d.Status = u.Status
	d.StatusDescription = u.StatusDescription
	if !d.Active() {
		if err := countDeploymentTxn(txn, d, true); err != nil {
			return err
		}
	}
	d.ModifyIndex = index
	if err := txn.Insert(tableDeployments, d); err != nil {
		return fmt.Errorf("writing deployment %q: %w", d.ID, err)
	}
	if d.Status == structs.DeploymentStatusSuccessful {
		return markStableTxn(txn, index, d)
	}
	return nil
}
