package api

import (
	"context"
	"io"
	"net/http"
	"strconv"

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

// Stop stops an allocation; the scheduler replaces it if it can.
func (a *Allocations) Stop(ctx context.Context, id string) (*structs.AllocStopResponse, error) {
	var out structs.AllocStopResponse
	r := a.c.newRequest(http.MethodPut, "/allocation/"+escape(id)+"/stop")
	if err := a.c.write(ctx, r, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Restart restarts an allocation's tasks in place (one task if named),
// on the client that runs it.
func (a *Allocations) Restart(ctx context.Context, id, task string) error {
	r := a.c.newRequest(http.MethodPut, "/client/allocation/"+escape(id)+"/restart")
	if task != "" {
		r.params.Set("task", task)
	}
	return a.c.write(ctx, r, nil, nil)
}

// LogOptions select a task's log stream.
type LogOptions struct {
	Task   string // empty: the group's only task
	Stderr bool
	Follow bool
	// Origin "start" (default) or "end"; Offset counts bytes from it.
	Origin string
	Offset int64
	// Lines, when positive, starts the stream at the last Lines lines.
	Lines int
}

// Logs streams a task's output from the client that runs the allocation.
// The caller reads and closes the stream; with Follow it ends when ctx
// does or the task's allocation is gone.
func (a *Allocations) Logs(ctx context.Context, id string, opts *LogOptions) (io.ReadCloser, error) {
	r := a.c.newRequest(http.MethodGet, "/client/fs/logs/"+escape(id))
	r.setQuery(nil, a.c.config.Namespace)
	typ := "stdout"
	if opts.Stderr {
		typ = "stderr"
	}
	r.params.Set("type", typ)
	if opts.Task != "" {
		r.params.Set("task", opts.Task)
	}
	if opts.Follow {
		r.params.Set("follow", "true")
	}
	if opts.Origin != "" {
		r.params.Set("origin", opts.Origin)
	}
	if opts.Offset != 0 {
		r.params.Set("offset", strconv.FormatInt(opts.Offset, 10))
	}
	if opts.Lines > 0 {
		r.params.Set("lines", strconv.Itoa(opts.Lines))
	}
	resp, _, err := a.c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}
