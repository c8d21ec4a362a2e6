package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/drover-sh/drover/structs"
)

// Deployments reads and acts on deployments.
type Deployments struct{ c *Client }

// Deployments returns the deployments endpoints.
func (c *Client) Deployments() *Deployments { return &Deployments{c: c} }

// List lists deployments, newest first. q.Prefix filters by ID prefix;
// q.Params may carry "job" (a job ID).
func (d *Deployments) List(ctx context.Context, q *QueryOptions) ([]*structs.Deployment, *QueryMeta, error) {
	var out []*structs.Deployment
	meta, err := d.c.query(ctx, "/deployments", q, &out)
	if err != nil {
		return nil, nil, err
	}
	return out, meta, nil
}

// Info reads one deployment by its ID or a unique prefix of it.
func (d *Deployments) Info(ctx context.Context, id string, q *QueryOptions) (*structs.Deployment, *QueryMeta, error) {
	var out structs.Deployment
	meta, err := d.c.query(ctx, "/deployment/"+escape(id), q, &out)
	if err != nil {
		return nil, nil, err
	}
	return &out, meta, nil
}

// Fail fails an active deployment (ID or unique prefix); auto_revert
// applies.
func (d *Deployments) Fail(ctx context.Context, id string, w *WriteOptions) (*structs.DeploymentUpdateResponse, error) {
	return d.put(ctx, id, "fail", w)
}

// Promote promotes the canaries of an active deployment.
func (d *Deployments) Promote(ctx context.Context, id string, w *WriteOptions) (*structs.DeploymentUpdateResponse, error) {
	return d.put(ctx, id, "promote", w)
}

func (d *Deployments) put(ctx context.Context, id, what string, w *WriteOptions) (*structs.DeploymentUpdateResponse, error) {
	r := d.c.newRequest(http.MethodPut, "/deployment/"+escape(id)+"/"+what)
	var out structs.DeploymentUpdateResponse
	if err := d.c.write(ctx, r, w, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Revert registers a kept version of a job again, as a new version.
func (j *Jobs) Revert(ctx context.Context, id string, version uint64, w *WriteOptions) (*structs.JobRegisterResponse, error) {
	raw, err := json.Marshal(map[string]uint64{"job_version": version})
	if err != nil {
		return nil, fmt.Errorf("encoding the revert request of job %s: %w", id, err)
	}
	r := j.c.newRequest(http.MethodPut, "/job/"+escape(id)+"/revert")
	r.body, r.contentType = raw, ContentTypeJSON
	var out structs.JobRegisterResponse
	if err := j.c.write(ctx, r, w, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeploymentFilter returns the query parameters that list the
// deployments of one job.
func DeploymentFilter(jobID string) map[string]string {
	if jobID == "" {
		return nil
	}
	return map[string]string{"job": jobID}
}
