package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/drover-sh/drover/structs"
)

// Content types of job bodies.
const (
	ContentTypeYAML = "application/yaml"
	ContentTypeJSON = "application/json"
)

// Jobs reads and writes jobs.
type Jobs struct{ c *Client }

// Jobs returns the jobs endpoints.
func (c *Client) Jobs() *Jobs { return &Jobs{c: c} }

// Register submits a job file as it is (YAML or JSON, per contentType), so
// the agent reports problems with the file's lines and columns.
func (j *Jobs) Register(ctx context.Context, body []byte, contentType string, w *WriteOptions) (*structs.JobRegisterResponse, error) {
	r := j.c.newRequest(http.MethodPut, "/jobs")
	r.body, r.contentType = body, contentType
	var out structs.JobRegisterResponse
	if err := j.c.write(ctx, r, w, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RegisterJob submits a job object, as JSON. Server-set fields (status,
// version, indexes) are ignored by the agent.
func (j *Jobs) RegisterJob(ctx context.Context, job *structs.Job) (*structs.JobRegisterResponse, error) {
	body, err := json.Marshal(job)
	if err != nil {
		return nil, fmt.Errorf("encoding job %q: %w", job.ID, err)
	}
	return j.Register(ctx, body, ContentTypeJSON, nil)
}

// List lists jobs; q.Prefix filters by ID prefix.
func (j *Jobs) List(ctx context.Context, q *QueryOptions) ([]*structs.JobListStub, *QueryMeta, error) {
	var out []*structs.JobListStub
	meta, err := j.c.query(ctx, "/jobs", q, &out)
	if err != nil {
		return nil, nil, err
	}
	return out, meta, nil
}

// Info reads one job by its exact ID.
func (j *Jobs) Info(ctx context.Context, id string, q *QueryOptions) (*structs.Job, *QueryMeta, error) {
	var out structs.Job
	meta, err := j.c.query(ctx, "/job/"+escape(id), q, &out)
	if err != nil {
		return nil, nil, err
	}
	return &out, meta, nil
}

// Versions reads the versions of a job the cluster keeps, newest first.
func (j *Jobs) Versions(ctx context.Context, id string, q *QueryOptions) ([]*structs.Job, *QueryMeta, error) {
	var out struct {
		Versions []*structs.Job `json:"versions"`
	}
	meta, err := j.c.query(ctx, "/job/"+escape(id)+"/versions", q, &out)
	if err != nil {
		return nil, nil, err
	}
	return out.Versions, meta, nil
}

// Evaluations lists the evaluations of one job.
func (j *Jobs) Evaluations(ctx context.Context, id string, q *QueryOptions) ([]*structs.Evaluation, *QueryMeta, error) {
	qq := QueryOptions{}
	if q != nil {
		qq = *q
	}
	params := make(map[string]string, len(qq.Params)+1)
	for k, v := range qq.Params {
		params[k] = v
	}
	params["job"] = id
	qq.Params = params
	return j.c.Evaluations().List(ctx, &qq)
}

// Deregister stops a job; purge removes it and its history too.
func (j *Jobs) Deregister(ctx context.Context, id string, purge bool) (*structs.JobDeregisterResponse, error) {
	r := j.c.newRequest(http.MethodDelete, "/job/"+escape(id))
	if purge {
		r.params.Set("purge", strconv.FormatBool(purge))
	}
	var out structs.JobDeregisterResponse
	if err := j.c.write(ctx, r, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Allocations lists the allocations of one job.
func (j *Jobs) Allocations(ctx context.Context, id string, q *QueryOptions) ([]*structs.AllocListStub, *QueryMeta, error) {
	var out []*structs.AllocListStub
	meta, err := j.c.query(ctx, "/job/"+escape(id)+"/allocations", q, &out)
	if err != nil {
		return nil, nil, err
	}
	return out, meta, nil
}

// Plan asks what registering the job file would do, without doing it: the
// scheduler's dry run and, with diff, what changes from the running
// version. id must be the file's job ID.
func (j *Jobs) Plan(ctx context.Context, id string, body []byte, contentType string, diff bool, w *WriteOptions) (*structs.JobPlanResponse, error) {
	r := j.c.newRequest(http.MethodPut, "/job/"+escape(id)+"/plan")
	r.body, r.contentType = body, contentType
	r.params.Set("diff", strconv.FormatBool(diff))
	var out structs.JobPlanResponse
	if err := j.c.write(ctx, r, w, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// PlanJob is Plan of a job object, sent as JSON.
func (j *Jobs) PlanJob(ctx context.Context, job *structs.Job, diff bool) (*structs.JobPlanResponse, error) {
	body, err := json.Marshal(job)
	if err != nil {
		return nil, fmt.Errorf("encoding job %q: %w", job.ID, err)
	}
	return j.Plan(ctx, job.ID, body, ContentTypeJSON, diff, nil)
}
