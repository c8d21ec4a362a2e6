package agent

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/drover-sh/drover/structs"
)

// jobRegister is PUT /v1/jobs: the body is the job file, YAML or JSON.
// It is decoded here, so problems come back with the file's line and
// column, and validated again by the server for RPC callers.
func (h *httpHandler) jobRegister(w http.ResponseWriter, r *http.Request) (any, error) {
	if err := checkJobContentType(r); err != nil {
		return nil, err
	}
	body, err := h.readBody(w, r)
	if err != nil {
		return nil, err
	}
	job, err := structs.ParseJob(body)
	if err != nil {
		return nil, err
	}
	args := &structs.JobRegisterRequest{Job: job}
	args.AuthToken = r.Header.Get(headerToken)
	if s := r.URL.Query().Get("enforce_index"); s != "" {
		idx, perr := strconv.ParseUint(s, 10, 64)
		if perr != nil {
			return nil, invalidParam("enforce_index", "must be a non-negative integer, got %q", s)
		}
		args.EnforceIndex, args.JobModifyIndex = true, idx
	}
	var reply structs.JobRegisterResponse
	if err := h.agent.rpc("Job.Register", args, &reply); err != nil {
		return nil, err
	}
	setIndex(w, reply.Index)
	return &reply, nil
}

func (h *httpHandler) jobList(w http.ResponseWriter, r *http.Request) (any, error) {
	var args structs.JobListRequest
	if err := parseQuery(r, &args.QueryOptions); err != nil {
		return nil, err
	}
	var reply structs.JobListResponse
	if err := h.agent.rpc("Job.List", &args, &reply); err != nil {
		return nil, err
	}
	setMeta(w, &reply.QueryMeta)
	if reply.Jobs == nil {
		reply.Jobs = []*structs.JobListStub{}
	}
	return reply.Jobs, nil
}

func (h *httpHandler) jobGet(w http.ResponseWriter, r *http.Request) (any, error) {
	args := structs.JobSpecificRequest{JobID: r.PathValue("id")}
	if err := parseQuery(r, &args.QueryOptions); err != nil {
		return nil, err
	}
	var reply structs.SingleJobResponse
	if err := h.agent.rpc("Job.GetJob", &args, &reply); err != nil {
		return nil, err
	}
	setMeta(w, &reply.QueryMeta)
	if reply.Job == nil {
		return nil, structs.NewError(structs.ErrNotFound, "job %q not found", args.JobID)
	}
	return reply.Job, nil
}

func (h *httpHandler) jobVersions(w http.ResponseWriter, r *http.Request) (any, error) {
	args := structs.JobSpecificRequest{JobID: r.PathValue("id")}
	if err := parseQuery(r, &args.QueryOptions); err != nil {
		return nil, err
	}
	var reply structs.JobVersionsResponse
	if err := h.agent.rpc("Job.GetJobVersions", &args, &reply); err != nil {
		return nil, err
	}
	setMeta(w, &reply.QueryMeta)
	if len(reply.Versions) == 0 {
		return nil, structs.NewError(structs.ErrNotFound, "job %q not found", args.JobID)
	}
	return map[string]any{"versions": reply.Versions}, nil
}

func (h *httpHandler) jobDeregister(w http.ResponseWriter, r *http.Request) (any, error) {
	args := &structs.JobDeregisterRequest{JobID: r.PathValue("id")}
	q := r.URL.Query()
	if s := q.Get("purge"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, invalidParam("purge", "must be true or false, got %q", s)
		}
		args.Purge = b
	}
	args.Namespace = q.Get("namespace")
	args.AuthToken = r.Header.Get(headerToken)
	var reply structs.JobDeregisterResponse
	if err := h.agent.rpc("Job.Deregister", args, &reply); err != nil {
		return nil, err
	}
	setIndex(w, reply.Index)
	return &reply, nil
}

// jobAllocations lists the allocations of one job.
func (h *httpHandler) jobAllocations(w http.ResponseWriter, r *http.Request) (any, error) {
	args := structs.JobSpecificRequest{JobID: r.PathValue("id")}
	if err := parseQuery(r, &args.QueryOptions); err != nil {
		return nil, err
	}
	var reply structs.JobAllocationsResponse
	if err := h.agent.rpc("Job.Allocations", &args, &reply); err != nil {
		return nil, err
	}
	setMeta(w, &reply.QueryMeta)
	if reply.Allocations == nil {
		reply.Allocations = []*structs.AllocListStub{}
	}
	return reply.Allocations, nil
}

// jobPlan is PUT /v1/job/:id/plan: the scheduler's dry run of a job file,
// with the diff against the running version unless diff=false. The body
// is read as PUT /v1/jobs reads it; its id must be the path's.
func (h *httpHandler) jobPlan(w http.ResponseWriter, r *http.Request) (any, error) {
	if err := checkJobContentType(r); err != nil {
		return nil, err
	}
	args := &structs.JobPlanRequest{Diff: true}
	if s := r.URL.Query().Get("diff"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, invalidParam("diff", "must be true or false, got %q", s)
		}
		args.Diff = b
	}
	body, err := h.readBody(w, r)
	if err != nil {
		return nil, err
	}
	job, err := structs.ParseJob(body)
	if err != nil {
		return nil, err
	}
	if id := r.PathValue("id"); job.ID != id {
		e := structs.NewError(structs.ErrInvalid, "the job file's id %q is not the path's %q", job.ID, id)
		e.Problems = []*structs.FieldError{{Field: "id", Message: fmt.Sprintf("must be %q, as in the path, got %q", id, job.ID)}}
		return nil, e
	}
	args.Job = job
	args.Namespace = r.URL.Query().Get("namespace")
	args.AuthToken = r.Header.Get(headerToken)
	var reply structs.JobPlanResponse
	if err := h.agent.rpc("Job.Plan", args, &reply); err != nil {
		return nil, err
	}
	return &reply, nil
}
