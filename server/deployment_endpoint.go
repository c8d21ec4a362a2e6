package server

import (
	"cmp"
	"slices"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/drover-sh/drover/fsm"
	"github.com/drover-sh/drover/server/pool"
	"github.com/drover-sh/drover/structs"
)

// Deployment is the RPC endpoint for deployments.
type Deployment struct{ srv *Server }

// GetDeployment reads one deployment; Deployment is nil when it does not
// exist.
func (d *Deployment) GetDeployment(args *structs.DeploymentSpecificRequest, reply *structs.SingleDeploymentResponse) error {
	if done, err := d.srv.forwardRead("Deployment.GetDeployment", &args.QueryOptions, args, reply); done {
		return pool.EncodeError(err)
	}
	return pool.EncodeError(d.srv.blockingRPC(&args.QueryOptions, &reply.QueryMeta,
		func(ws memdb.WatchSet, snap *fsm.StateSnapshot) (uint64, error) {
			dep, err := snap.DeploymentByID(ws, args.DeploymentID)
			if err != nil {
				return 0, err
			}
			reply.Deployment = dep
			if dep != nil {
				return maxIndex(dep.ModifyIndex), nil
			}
			return maxIndex(snap.Index("deployments")), nil
		}))
}

// List lists deployments by ID prefix, optionally of one job, newest
// first.
func (d *Deployment) List(args *structs.DeploymentListRequest, reply *structs.DeploymentListResponse) error {
	if done, err := d.srv.forwardRead("Deployment.List", &args.QueryOptions, args, reply); done {
		return pool.EncodeError(err)
	}
	ns := namespaceOf(args.Namespace)
	return pool.EncodeError(d.srv.blockingRPC(&args.QueryOptions, &reply.QueryMeta,
		func(ws memdb.WatchSet, snap *fsm.StateSnapshot) (uint64, error) {
			var deps []*structs.Deployment
			var err error
			if args.JobID != "" {
				deps, err = snap.DeploymentsByJob(ws, ns, args.JobID)
			} else {
				deps, err = snap.DeploymentsByPrefix(ws, ns, args.Prefix)
			}
			if err != nil {
				return 0, err
			}
			reply.Deployments = reply.Deployments[:0]
			for _, dep := range deps {
				if args.JobID != "" && args.Prefix != "" && !hasPrefix(dep.ID, args.Prefix) {
					continue
				}
				reply.Deployments = append(reply.Deployments, dep)
			}
			sortDeployments(reply.Deployments)
			return maxIndex(snap.Index("deployments")), nil
		}))
}

// sortDeployments orders newest first, then by ID.
func sortDeployments(deps []*structs.Deployment) {
	slices.SortFunc(deps, func(a, b *structs.Deployment) int {
		return cmp.Or(cmp.Compare(b.CreateIndex, a.CreateIndex), cmp.Compare(a.ID, b.ID))
	})
}

// Fail ends an active deployment as failed; with auto_revert the job's
// newest stable version is registered again, as when the watcher fails
// it.
func (d *Deployment) Fail(args *structs.DeploymentFailRequest, reply *structs.DeploymentUpdateResponse) error {
	if done, err := d.srv.forwardWrite("Deployment.Fail", args, reply); done {
		return pool.EncodeError(err)
	}
	return pool.EncodeError(d.fail(args, reply))
}

func (d *Deployment) fail(args *structs.DeploymentFailRequest, reply *structs.DeploymentUpdateResponse) error {
	snap := d.srv.fsm.State().Snapshot()
	dep, job, err := activeDeployment(snap, args.DeploymentID)
	if err != nil {
		return err
	}
	nd := dep.Copy()
	now := time.Now()
	nd.Status, nd.StatusDescription = structs.DeploymentStatusFailed, "failed by a user"
	nd.ModifyTime = now.UnixNano()
	req := &structs.DeploymentUpdateRequest{Deployment: nd, Eval: deploymentEval(job, dep.ID, now), SubmitTime: now.UnixNano()}
	if job.Version == dep.JobVersion && job.CreateIndex == dep.JobCreateIndex {
		if err := addRevert(snap, job, req); err != nil {
			return err
		}
	}
	return d.apply(req, reply)
}

// Promote promotes the canaries of an active deployment.
func (d *Deployment) Promote(args *structs.DeploymentPromoteRequest, reply *structs.DeploymentUpdateResponse) error {
	if done, err := d.srv.forwardWrite("Deployment.Promote", args, reply); done {
		return pool.EncodeError(err)
	}
	return pool.EncodeError(d.promote(args, reply))
}

func (d *Deployment) promote(args *structs.DeploymentPromoteRequest, reply *structs.DeploymentUpdateResponse) error {
	snap := d.srv.fsm.State().Snapshot()
	dep, job, err := activeDeployment(snap, args.DeploymentID)
	if err != nil {
		return err
	}
	allocs, err := snap.AllocsByDeployment(nil, dep)
	if err != nil {
		return err
	}
	if err := promotable(dep, canaryHealth(allocs)); err != nil {
		return err
	}
	nd := dep.Copy()
	now := time.Now()
	promote(nd, now)
	nd.StatusDescription = structs.DeploymentDescRunning
	nd.ModifyTime = now.UnixNano()
	return d.apply(&structs.DeploymentUpdateRequest{Deployment: nd, Eval: deploymentEval(job, dep.ID, now), SubmitTime: now.UnixNano()}, reply)
}

// promotable says why a deployment's canaries cannot be promoted yet, as
// Nomad does: there are none, they are promoted already, or some group
// has fewer healthy canaries than it asked for.
func promotable(dep *structs.Deployment, healthyCanaries map[string]int) error {
	waiting := false
	var names []string
	for name, s := range dep.TaskGroups {
		if s.DesiredCanaries > 0 && !s.Promoted {
			waiting = true
			names = append(names, name)
		}
	}
	if !waiting {
		for _, s := range dep.TaskGroups {
			if s.DesiredCanaries > 0 {
				return structs.NewError(structs.ErrInvalid, "deployment %s: its canaries are promoted already", dep.ID)
			}
		}
		return structs.NewError(structs.ErrInvalid, "deployment %s has no canaries to promote", dep.ID)
	}
	slices.Sort(names)
	for _, name := range names {
		s := dep.TaskGroups[name]
		if n := healthyCanaries[name]; n < s.DesiredCanaries {
			return structs.NewError(structs.ErrInvalid, "deployment %s: group %q has %d of %d canaries healthy; promote once all are",
				dep.ID, name, n, s.DesiredCanaries)
		}
	}
	return nil
}

func (d *Deployment) apply(req *structs.DeploymentUpdateRequest, reply *structs.DeploymentUpdateResponse) error {
	_, index, err := d.srv.raftApply(structs.DeploymentStatusUpdateRequestType, req)
	if err != nil {
		return err
	}
	reply.EvalID = req.Eval.ID
	reply.DeploymentModifyIndex = index
	reply.Index = index
	if req.RevertJob != nil {
		reply.Reverted, reply.RevertedJobVersion = true, req.RevertJob.Version
	}
	return nil
}

// activeDeployment reads a deployment a user acts on, with its job: a
// coded not-found or invalid error names what is wrong.
func activeDeployment(snap *fsm.StateSnapshot, id string) (*structs.Deployment, *structs.Job, error) {
	if id == "" {
		return nil, nil, structs.NewError(structs.ErrInvalid, "missing deployment ID")
	}
	dep, err := snap.DeploymentByID(nil, id)
	if err != nil {
		return nil, nil, err
	}
	if dep == nil {
		return nil, nil, structs.NewError(structs.ErrNotFound, "deployment %s not found", id)
	}
	if !dep.Active() {
		return nil, nil, structs.NewError(structs.ErrInvalid, "deployment %s is not active: it is %s", id, dep.Status)
	}
	job, err := snap.JobByID(nil, dep.Namespace, dep.JobID)
	if err != nil {
		return nil, nil, err
	}
	if job == nil {
		return nil, nil, structs.NewError(structs.ErrNotFound, "job %s of deployment %s not found", dep.JobID, id)
	}
	return dep, job, nil
}

// deploymentEval is the evaluation that lets the scheduler act on a
// deployment's change.
func deploymentEval(job *structs.Job, deploymentID string, now time.Time) *structs.Evaluation {
	return &structs.Evaluation{
		ID: structs.GenerateUUID(), Namespace: job.Namespace, Priority: job.Priority, Type: job.Type,
		TriggeredBy: structs.EvalTriggerDeploymentWatcher, JobID: job.ID, JobModifyIndex: job.JobModifyIndex,
		DeploymentID: deploymentID, Status: structs.EvalStatusPending, CreateTime: now.UnixNano(), ModifyTime: now.UnixNano(),
	}
}

// Revert registers a kept version's spec of a job again, as a new
// version.
func (j *Job) Revert(args *structs.JobRevertRequest, reply *structs.JobRegisterResponse) error {
	if done, err := j.srv.forwardWrite("Job.Revert", args, reply); done {
		return pool.EncodeError(err)
	}
	return pool.EncodeError(j.revert(args, reply))
}

func (j *Job) revert(args *structs.JobRevertRequest, reply *structs.JobRegisterResponse) error {
	ns := namespaceOf(args.Namespace)
	state := j.srv.fsm.State()
	cur, err := state.JobByID(nil, ns, args.JobID)
	if err != nil {
		return err
	}
	if cur == nil {
		return structs.NewError(structs.ErrNotFound, "job %q not found in namespace %q", args.JobID, ns)
	}
	if cur.Version == args.JobVersion {
		return structs.NewError(structs.ErrInvalid, "job %q is already at version %d", args.JobID, args.JobVersion)
	}
	v, err := state.JobByIDAndVersion(nil, ns, args.JobID, args.JobVersion)
	if err != nil {
		return err
	}
	if v == nil {
		return structs.NewError(structs.ErrNotFound, "job %q has no version %d (kept: the last %d)", args.JobID, args.JobVersion, structs.JobTrackedVersions)
	}
	spec := v.Copy()
	spec.Stop = false
	return j.register(&structs.JobRegisterRequest{Job: spec, WriteRequest: args.WriteRequest}, reply)
}
