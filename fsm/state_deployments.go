package fsm

import (
	"fmt"

	"github.com/hashicorp/go-memdb"

	"github.com/drover-sh/drover/structs"
)

// DeploymentByID returns the deployment, or nil when it does not exist.
func (r *stateReader) DeploymentByID(ws memdb.WatchSet, id string) (*structs.Deployment, error) {
	ch, raw, err := r.readTxn().FirstWatch(tableDeployments, "id", id)
	if err != nil {
		return nil, fmt.Errorf("reading deployment %q: %w", id, err)
	}
	watch(ws, ch)
	if raw == nil {
		return nil, nil
	}
	return raw.(*structs.Deployment), nil
}

// DeploymentsByJob returns the deployments of a job, sorted by ID.
func (r *stateReader) DeploymentsByJob(ws memdb.WatchSet, namespace, jobID string) ([]*structs.Deployment, error) {
	it, err := r.readTxn().Get(tableDeployments, "job", namespace, jobID)
	if err != nil {
		return nil, fmt.Errorf("listing deployments of job %q in namespace %q: %w", jobID, namespace, err)
	}
	watch(ws, it.WatchCh())
	var out []*structs.Deployment
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*structs.Deployment))
	}
	return out, nil
}

// LatestDeploymentByJob returns the job's most recently created
// deployment, or nil when it has none.
func (r *stateReader) LatestDeploymentByJob(ws memdb.WatchSet, namespace, jobID string) (*structs.Deployment, error) {
	all, err := r.DeploymentsByJob(ws, namespace, jobID)
	if err != nil {
		return nil, err
	}
	var latest *structs.Deployment
	for _, d := range all {
		if latest == nil || d.CreateIndex > latest.CreateIndex {
			latest = d
		}
	}
	return latest, nil
}

// DeploymentsByPrefix returns the deployments of namespace ("*" for all)
// whose ID starts with prefix, sorted by ID.
func (r *stateReader) DeploymentsByPrefix(ws memdb.WatchSet, namespace, prefix string) ([]*structs.Deployment, error) {
	it, err := r.readTxn().Get(tableDeployments, "id_prefix", prefix)
	if err != nil {
		return nil, fmt.Errorf("listing deployments by prefix %q: %w", prefix, err)
	}
	watch(ws, it.WatchCh())
	var out []*structs.Deployment
	for raw := it.Next(); raw != nil; raw = it.Next() {
		d := raw.(*structs.Deployment)
		if namespace == allNamespaces || d.Namespace == namespace {
			out = append(out, d)
		}
	}
	return out, nil
}

// UpsertDeployment writes a deployment, keeping the CreateIndex of an
// existing one. The store keeps a copy.
func (s *StateStore) UpsertDeployment(index uint64, d *structs.Deployment) error {
	if d == nil {
		return structs.NewError(structs.ErrInvalid, "upserting a nil deployment")
	}
	return s.upsertDeployment(index, d.Copy())
}

// upsertDeployment takes ownership of d.
func (s *StateStore) upsertDeployment(index uint64, d *structs.Deployment) error {
	txn := s.writeTxn()
	defer txn.Abort()
	raw, err := txn.First(tableDeployments, "id", d.ID)
	if err != nil {
		return fmt.Errorf("reading deployment %q: %w", d.ID, err)
	}
	d.CreateIndex = index
	if raw != nil {
		d.CreateIndex = raw.(*structs.Deployment).CreateIndex
	}
	d.ModifyIndex = index
	if err := txn.Insert(tableDeployments, d); err != nil {
		return fmt.Errorf("writing deployment %q: %w", d.ID, err)
	}
	if err := setIndex(txn.Txn, index, tableDeployments); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

// AllocsByDeployment returns the allocations placed by a deployment,
// read from those of its job; ws watches all of the job's.
func (r *stateReader) AllocsByDeployment(ws memdb.WatchSet, d *structs.Deployment) ([]*structs.Allocation, error) {
	var out []*structs.Allocation
	err := deploymentAllocsTxn(r.readTxn(), ws, d, func(a *structs.Allocation) { out = append(out, a) })
	return out, err
}

// deploymentAllocsTxn calls fn with each allocation of deployment d.
func deploymentAllocsTxn(txn *memdb.Txn, ws memdb.WatchSet, d *structs.Deployment, fn func(*structs.Allocation)) error {
	it, err := txn.Get(tableAllocs, "job", d.Namespace, d.JobID)
	if err != nil {
		return fmt.Errorf("listing allocations of deployment %q: %w", d.ID, err)
	}
	watch(ws, it.WatchCh())
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if a := raw.(*structs.Allocation); a.DeploymentID == d.ID {
			fn(a)
		}
	}
	return nil
}
