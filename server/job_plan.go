package server

import (
	"fmt"
	"time"

	"github.com/drover-sh/drover/scheduler"
	"github.com/drover-sh/drover/server/pool"
	"github.com/drover-sh/drover/structs"
)

// Plan is a dry run of Job.Register: the scheduler runs against the
// leader's newest state with the job as if registered, and the answer
// says what it would do (per-group counts, what could not be placed and
// why, and the diff against the running version). Nothing is written.
// It runs on the leader so the state is the newest there is.
func (j *Job) Plan(args *structs.JobPlanRequest, reply *structs.JobPlanResponse) error {
	if done, err := j.srv.forwardWrite("Job.Plan", args, reply); done {
		return pool.EncodeError(err)
	}
	return pool.EncodeError(j.plan(args, reply))
}

func (j *Job) plan(args *structs.JobPlanRequest, reply *structs.JobPlanResponse) error {
	if args.Job == nil {
		return structs.NewError(structs.ErrInvalid, "missing job")
	}
	job := args.Job.Copy()
	if job.Namespace == "" {
		job.Namespace = namespaceOf(args.Namespace)
	}
	job.Canonicalize()
	if err := job.Validate(); err != nil {
		return err
	}
	factory := j.srv.schedulers[job.Type]
	if factory == nil {
		return structs.NewError(structs.ErrInvalid, "job.type: no scheduler for job type %q", job.Type)
	}

	snap := j.srv.fsm.State().Snapshot()
	existing, err := snap.JobByID(nil, job.Namespace, job.ID)
	if err != nil {
		return fmt.Errorf("planning job %q: %w", job.ID, err)
	}
	// The index the registration would commit at, were it sent now.
	index := snap.LatestIndex() + 1
	planned := asRegistered(job, existing, index)

	now := time.Now()
	eval := &structs.Evaluation{
		ID:             structs.GenerateUUID(),
		Namespace:      job.Namespace,
		Priority:       job.Priority,
		Type:           job.Type,
		TriggeredBy:    structs.EvalTriggerJobRegister,
		JobID:          job.ID,
		JobModifyIndex: planned.JobModifyIndex,
		Status:         structs.EvalStatusPending,
		AnnotatePlan:   true,
		CreateIndex:    index,
		ModifyIndex:    index,
		CreateTime:     now.UnixNano(),
		ModifyTime:     now.UnixNano(),
	}
	state := &jobOverlayState{snapshotState: newSnapshotState(snap), job: planned}
	planner := &dryRunPlanner{}
	logger := j.srv.logger.Named("job_plan").With("job_id", job.ID, "namespace", job.Namespace)
	if err := factory(logger, state, planner, time.Now).Process(eval); err != nil {
		return fmt.Errorf("planning job %q: %w", job.ID, err)
	}

	if planner.plan != nil {
		reply.Annotations = planner.plan.Annotations
	}
	if planner.eval != nil {
		reply.FailedTGAllocs = planner.eval.FailedTGAllocs
	}
	if existing != nil {
		reply.JobModifyIndex = existing.JobModifyIndex
	}
	if args.Diff {
		reply.Diff = structs.DiffJobs(existing, planned)
		reply.Diff.Annotate(reply.Annotations)
	}
	reply.Index = snap.LatestIndex()
	return nil
}

// asRegistered returns job with the fields the store would set on
// registering it at index after existing, so the scheduler tells a new
// version from the running one exactly as it will after `job run`.
func asRegistered(job, existing *structs.Job, index uint64) *structs.Job {
	job.Stop = false
	job.Status = structs.JobStatusPending
	job.ModifyIndex = index
	switch {
	case existing == nil:
		job.CreateIndex, job.Version, job.JobModifyIndex = index, 0, index
	case job.SpecChanged(existing):
		job.CreateIndex, job.Version, job.JobModifyIndex = existing.CreateIndex, existing.Version+1, index
	default:
		job.CreateIndex, job.Version, job.JobModifyIndex = existing.CreateIndex, existing.Version, existing.JobModifyIndex
		job.Status = existing.Status
	}
	return job
}

// dryRunPlanner records what the scheduler would do and commits it all
// in its answer (a full commit), so one pass gives the whole picture.
type dryRunPlanner struct {
	plan *structs.Plan
	eval *structs.Evaluation
}

var _ scheduler.Planner = (*dryRunPlanner)(nil)

func (p *dryRunPlanner) SubmitPlan(plan *structs.Plan) (*structs.PlanResult, scheduler.State, error) {
	p.plan = plan
	return &structs.PlanResult{
		NodeUpdate:        plan.NodeUpdate,
		NodeAllocation:    plan.NodeAllocation,
		Deployment:        plan.Deployment,
		DeploymentUpdates: plan.DeploymentUpdates,
	}, nil, nil
}

func (p *dryRunPlanner) UpdateEval(eval *structs.Evaluation) error {
	p.eval = eval
	return nil
}

func (p *dryRunPlanner) CreateEval(*structs.Evaluation) error { return nil }

func (p *dryRunPlanner) ReblockEval(*structs.Evaluation) error { return nil }
