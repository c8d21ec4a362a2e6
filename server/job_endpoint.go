package server

import (
	"errors"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/drover-sh/drover/fsm"
	"github.com/drover-sh/drover/server/pool"
	"github.com/drover-sh/drover/structs"
)

// Job is the RPC endpoint for jobs.
type Job struct{ srv *Server }

// Register creates or updates a job and the evaluation that schedules it.
func (j *Job) Register(args *structs.JobRegisterRequest, reply *structs.JobRegisterResponse) error {
	if done, err := j.srv.forwardWrite("Job.Register", args, reply); done {
		return pool.EncodeError(err)
	}
	return pool.EncodeError(j.register(args, reply))
}

func (j *Job) register(args *structs.JobRegisterRequest, reply *structs.JobRegisterResponse) error {
	if args.Job == nil {
		return structs.NewError(structs.ErrInvalid, "missing job")
	}
	// Work on a copy: the request may be the caller's own object in-process.
	job := args.Job.Copy()
	if job.Namespace == "" {
		job.Namespace = args.Namespace
	}
	job.Canonicalize()
	if err := job.Validate(); err != nil {
		return err
	}

	now := time.Now().UnixNano()
	eval := &structs.Evaluation{
		ID:          structs.GenerateUUID(),
		Namespace:   job.Namespace,
		Priority:    job.Priority,
		Type:        job.Type,
		TriggeredBy: structs.EvalTriggerJobRegister,
		JobID:       job.ID,
		Status:      structs.EvalStatusPending,
		CreateTime:  now,
		ModifyTime:  now,
	}
	req := *args
	req.Job = job
	req.Eval = eval
	req.SubmitTime = now
	_, index, err := j.srv.raftApply(structs.JobRegisterRequestType, &req)
	if err != nil {
		return err
	}

	stored, err := j.srv.fsm.State().JobByID(nil, job.Namespace, job.ID)
	if err != nil {
		return err
	}
	reply.EvalID = eval.ID
	reply.EvalCreateIndex = index
	reply.Index = index
	if stored != nil {
		reply.JobModifyIndex = stored.JobModifyIndex
		reply.JobVersion = stored.Version
	}
	return nil
}

// Deregister stops a job (or purges it) and evaluates it so its
// allocations stop.
func (j *Job) Deregister(args *structs.JobDeregisterRequest, reply *structs.JobDeregisterResponse) error {
	if done, err := j.srv.forwardWrite("Job.Deregister", args, reply); done {
		return pool.EncodeError(err)
	}
	return pool.EncodeError(j.deregister(args, reply))
}

func (j *Job) deregister(args *structs.JobDeregisterRequest, reply *structs.JobDeregisterResponse) error {
	if args.JobID == "" {
		return structs.NewError(structs.ErrInvalid, "missing job id")
	}
	ns := namespaceOf(args.Namespace)
	existing, err := j.srv.fsm.State().JobByID(nil, ns, args.JobID)
	if err != nil {
		return err
	}
	if existing == nil {
		return structs.NewError(structs.ErrNotFound, "job %q not found in namespace %q", args.JobID, ns)
	}
	now := time.Now().UnixNano()
	eval := &structs.Evaluation{
		ID:          structs.GenerateUUID(),
		Namespace:   ns,
		Priority:    existing.Priority,
		Type:        existing.Type,
		TriggeredBy: structs.EvalTriggerJobDeregister,
		JobID:       args.JobID,
		Status:      structs.EvalStatusPending,
		CreateTime:  now,
		ModifyTime:  now,
	}
	req := *args
	req.Namespace = ns
	req.Eval = eval
	req.SubmitTime = now
	_, index, err := j.srv.raftApply(structs.JobDeregisterRequestType, &req)
	if err != nil {
		if errors.Is(err, fsm.ErrNotFound) {
			return structs.NewError(structs.ErrNotFound, "job %q not found in namespace %q", args.JobID, ns)
		}
		return err
	}
	reply.EvalID = eval.ID
	reply.EvalCreateIndex = index
	reply.JobModifyIndex = index
	reply.Index = index
	return nil
}

// GetJob reads one job; Job is nil when it does not exist.
func (j *Job) GetJob(args *structs.JobSpecificRequest, reply *structs.SingleJobResponse) error {
	if done, err := j.srv.forwardRead("Job.GetJob", &args.QueryOptions, args, reply); done {
		return pool.EncodeError(err)
	}
	ns := namespaceOf(args.Namespace)
	return pool.EncodeError(j.srv.blockingRPC(&args.QueryOptions, &reply.QueryMeta,
		func(ws memdb.WatchSet, snap *fsm.StateSnapshot) (uint64, error) {
			job, err := snap.JobByID(ws, ns, args.JobID)
			if err != nil {
				return 0, err
			}
			reply.Job = job
			if job != nil {
				return maxIndex(job.ModifyIndex), nil
			}
			return maxIndex(snap.Index("jobs")), nil
		}))
}

// List lists jobs by ID prefix.
func (j *Job) List(args *structs.JobListRequest, reply *structs.JobListResponse) error {
	if done, err := j.srv.forwardRead("Job.List", &args.QueryOptions, args, reply); done {
		return pool.EncodeError(err)
	}
	ns := namespaceOf(args.Namespace)
	return pool.EncodeError(j.srv.blockingRPC(&args.QueryOptions, &reply.QueryMeta,
		func(ws memdb.WatchSet, snap *fsm.StateSnapshot) (uint64, error) {
			jobs, err := snap.JobsByPrefix(ws, ns, args.Prefix)
			if err != nil {
				return 0, err
			}
			reply.Jobs = make([]*structs.JobListStub, len(jobs))
			for i, job := range jobs {
				reply.Jobs[i] = job.Stub()
			}
			return maxIndex(snap.Index("jobs")), nil
		}))
}

// GetJobVersions reads the kept versions of a job, newest first.
func (j *Job) GetJobVersions(args *structs.JobSpecificRequest, reply *structs.JobVersionsResponse) error {
	if done, err := j.srv.forwardRead("Job.GetJobVersions", &args.QueryOptions, args, reply); done {
		return pool.EncodeError(err)
	}
	ns := namespaceOf(args.Namespace)
	return pool.EncodeError(j.srv.blockingRPC(&args.QueryOptions, &reply.QueryMeta,
		func(ws memdb.WatchSet, snap *fsm.StateSnapshot) (uint64, error) {
			versions, err := snap.JobVersionsByID(ws, ns, args.JobID)
			if err != nil {
				return 0, err
			}
			reply.Versions = versions
			var idx uint64
			for _, v := range versions {
				idx = max(idx, v.ModifyIndex)
			}
			if idx == 0 {
				idx = snap.Index("job_version")
			}
			return maxIndex(idx), nil
		}))
}

// Allocations lists the allocations of a job, terminal ones included.
func (j *Job) Allocations(args *structs.JobSpecificRequest, reply *structs.JobAllocationsResponse) error {
	if done, err := j.srv.forwardRead("Job.Allocations", &args.QueryOptions, args, reply); done {
		return pool.EncodeError(err)
	}
	if args.JobID == "" {
		return pool.EncodeError(structs.NewError(structs.ErrInvalid, "missing job id"))
	}
	ns := namespaceOf(args.Namespace)
	return pool.EncodeError(j.srv.blockingRPC(&args.QueryOptions, &reply.QueryMeta,
		func(ws memdb.WatchSet, snap *fsm.StateSnapshot) (uint64, error) {
			allocs, err := snap.AllocsByJob(ws, ns, args.JobID, false)
			if err != nil {
				return 0, err
			}
			reply.Allocations = make([]*structs.AllocListStub, len(allocs))
			for i, a := range allocs {
				reply.Allocations[i] = a.Stub()
			}
			// The table's index, not the newest allocation's: a garbage
			// collected allocation must also answer a blocking query.
			return maxIndex(snap.Index("allocs")), nil
		}))
}
