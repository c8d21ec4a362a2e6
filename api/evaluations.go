package api

import (
	"context"

	"github.com/drover-sh/drover/structs"
)

// Evaluations reads evaluations.
type Evaluations struct{ c *Client }

// Evaluations returns the evaluations endpoints.
func (c *Client) Evaluations() *Evaluations { return &Evaluations{c: c} }

// List lists evaluations. q.Prefix filters by ID prefix; q.Params may
// carry "job" (a job ID) and "status" (see EvalFilter).
func (e *Evaluations) List(ctx context.Context, q *QueryOptions) ([]*structs.Evaluation, *QueryMeta, error) {
	var out []*structs.Evaluation
	meta, err := e.c.query(ctx, "/evaluations", q, &out)
	if err != nil {
		return nil, nil, err
	}
	return out, meta, nil
}

// Info reads one evaluation by its ID or a unique prefix of it. A prefix
// that matches several evaluations is an *Error with code invalid.
func (e *Evaluations) Info(ctx context.Context, id string, q *QueryOptions) (*structs.Evaluation, *QueryMeta, error) {
	var out structs.Evaluation
	meta, err := e.c.query(ctx, "/evaluation/"+escape(id), q, &out)
	if err != nil {
		return nil, nil, err
	}
	return &out, meta, nil
}

// EvalFilter returns the query parameters that list the evaluations of one
// job and/or with one status; empty values are left out.
func EvalFilter(jobID, status string) map[string]string {
	p := make(map[string]string, 2)
	if jobID != "" {
		p["job"] = jobID
	}
	if status != "" {
		p["status"] = status
	}
	return p
}
