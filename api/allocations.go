package api

import (
	"context"

	"github.com/drover-sh/drover/structs"
)

// Allocations reads allocations.
type Allocations struct{ c *Client }

// Allocations returns the allocations endpoints.
func (c *Client) Allocations() *Allocations { return &Allocations{c: c} }

// List lists allocations of the namespace ("*" for all); q.Prefix
// filters by ID prefix.
func (a *Allocations) List(ctx context.Context, q *QueryOptions) ([]*structs.AllocListStub, *QueryMeta, error) {
	var out []*structs.AllocListStub
	meta, err := a.c.query(ctx, "/allocations", q, &out)
	if err != nil {
		return nil, nil, err
	}
	return out, meta, nil
}

// Info reads one allocation by its ID or a unique prefix of it. A prefix
// that matches several allocations is an *Error with code invalid.
func (a *Allocations) Info(ctx context.Context, id string, q *QueryOptions) (*structs.Allocation, *QueryMeta, error) {
	var out structs.Allocation
	meta, err := a.c.query(ctx, "/allocation/"+escape(id), q, &out)
	if err != nil {
		return nil, nil, err
	}
	return &out, meta, nil
}
