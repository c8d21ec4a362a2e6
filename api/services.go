package api

import (
	"context"

	"github.com/drover-sh/drover/structs"
)

// Services reads the service registry: the healthy instances the clients'
// checks report.
type Services struct{ c *Client }

// Services returns the service registry endpoints.
func (c *Client) Services() *Services { return &Services{c: c} }

// List lists the services of the namespace ("*" for all) with their
// instance counts and tags. With q.WaitIndex it blocks until the registry
// changes past that index.
func (s *Services) List(ctx context.Context, q *QueryOptions) ([]*structs.ServiceListStub, *QueryMeta, error) {
	var out []*structs.ServiceListStub
	meta, err := s.c.query(ctx, "/services", q, &out)
	if err != nil {
		return nil, nil, err
	}
	return out, meta, nil
}

// Get reads the healthy instances of one service. A service without any
// is an *Error with code not_found.
func (s *Services) Get(ctx context.Context, name string, q *QueryOptions) ([]*structs.ServiceRegistration, *QueryMeta, error) {
	var out []*structs.ServiceRegistration
	meta, err := s.c.query(ctx, "/service/"+escape(name), q, &out)
	if err != nil {
		return nil, nil, err
	}
	return out, meta, nil
}
