package api

import (
	"context"
	"net/http"

	"github.com/drover-sh/drover/structs"
)

// Operator is for cluster operators: the Raft configuration.
type Operator struct{ c *Client }

// Operator returns the operator endpoints.
func (c *Client) Operator() *Operator { return &Operator{c: c} }

// RaftConfiguration returns the Raft configuration as the leader (or, with
// q.AllowStale, the agent answering) sees it.
func (o *Operator) RaftConfiguration(ctx context.Context, q *QueryOptions) (*structs.RaftConfigurationResponse, error) {
	var out structs.RaftConfigurationResponse
	if _, err := o.c.query(ctx, "/operator/raft/configuration", q, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RaftRemovePeerByID removes a server from the Raft configuration by its
// Raft ID.
func (o *Operator) RaftRemovePeerByID(ctx context.Context, id string) error {
	return o.removePeer(ctx, "id", id)
}

// RaftRemovePeerByAddress removes a server from the Raft configuration by
// its RPC address (host:port).
func (o *Operator) RaftRemovePeerByAddress(ctx context.Context, addr string) error {
	return o.removePeer(ctx, "address", addr)
}

func (o *Operator) removePeer(ctx context.Context, param, value string) error {
	r := o.c.newRequest(http.MethodDelete, "/operator/raft/peer")
	r.params.Set(param, value)
	return o.c.write(ctx, r, nil, nil)
}
