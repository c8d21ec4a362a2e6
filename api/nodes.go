package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/drover-sh/drover/structs"
)

// Nodes reads client nodes and changes their drain and eligibility.
type Nodes struct{ c *Client }

// Nodes returns the nodes endpoints.
func (c *Client) Nodes() *Nodes { return &Nodes{c: c} }

// List lists nodes; q.Prefix filters by ID prefix.
func (n *Nodes) List(ctx context.Context, q *QueryOptions) ([]*structs.NodeListStub, *QueryMeta, error) {
	var out []*structs.NodeListStub
	meta, err := n.c.query(ctx, "/nodes", q, &out)
	if err != nil {
		return nil, nil, err
	}
	return out, meta, nil
}

// Info reads one node by its ID or a unique prefix of it. A prefix that
// matches several nodes is an *Error with code invalid listing them.
func (n *Nodes) Info(ctx context.Context, id string, q *QueryOptions) (*structs.Node, *QueryMeta, error) {
	var out structs.Node
	meta, err := n.c.query(ctx, "/node/"+escape(id), q, &out)
	if err != nil {
		return nil, nil, err
	}
	return &out, meta, nil
}

// Allocations lists every allocation of a node, terminal ones included.
func (n *Nodes) Allocations(ctx context.Context, id string, q *QueryOptions) ([]*structs.Allocation, *QueryMeta, error) {
	var out []*structs.Allocation
	meta, err := n.c.query(ctx, "/node/"+escape(id)+"/allocations", q, &out)
	if err != nil {
		return nil, nil, err
	}
	return out, meta, nil
}

// DrainSpec starts a drain. A zero Deadline drains at the jobs' own pace
// with no deadline; a negative one forces every allocation off at once.
type DrainSpec struct {
	Deadline         time.Duration
	IgnoreSystemJobs bool
}

type drainSpecJSON struct {
	Deadline         string `json:"deadline"`
	IgnoreSystemJobs bool   `json:"ignore_system_jobs"`
}

type drainRequestJSON struct {
	DrainSpec    *drainSpecJSON `json:"drain_spec"`
	MarkEligible bool           `json:"mark_eligible"`
}

// UpdateDrain starts a drain of the node (spec set) or cancels it (nil);
// markEligible makes a node whose drain is cancelled eligible again. id
// is a full node ID.
func (n *Nodes) UpdateDrain(ctx context.Context, id string, spec *DrainSpec, markEligible bool, w *WriteOptions) (*structs.NodeUpdateStatusResponse, error) {
	req := drainRequestJSON{MarkEligible: markEligible}
	if spec != nil {
		req.DrainSpec = &drainSpecJSON{Deadline: spec.Deadline.String(), IgnoreSystemJobs: spec.IgnoreSystemJobs}
	}
	return n.putStatus(ctx, id, "drain", req, w)
}

// UpdateEligibility marks the node eligible for new allocations or not;
// id is a full node ID.
func (n *Nodes) UpdateEligibility(ctx context.Context, id string, eligible bool, w *WriteOptions) (*structs.NodeUpdateStatusResponse, error) {
	e := structs.NodeIneligible
	if eligible {
		e = structs.NodeEligible
	}
	return n.putStatus(ctx, id, "eligibility", map[string]string{"eligibility": e}, w)
}

func (n *Nodes) putStatus(ctx context.Context, id, what string, body any, w *WriteOptions) (*structs.NodeUpdateStatusResponse, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encoding the %s request of node %s: %w", what, id, err)
	}
	r := n.c.newRequest(http.MethodPut, "/node/"+escape(id)+"/"+what)
	r.body, r.contentType = raw, ContentTypeJSON
	var out structs.NodeUpdateStatusResponse
	if err := n.c.write(ctx, r, w, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
