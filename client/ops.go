package client

import (
	"context"
	"slices"
	"strings"

	"github.com/drover-sh/drover/client/driver"
	"github.com/drover-sh/drover/structs"
)

// AllocDir returns the directory of an allocation on this node (its
// shared dir is alloc/ under it, logs in alloc/logs).
func (c *Client) AllocDir(allocID string) (string, error) {
	ar, err := c.getAlloc(allocID)
	if err != nil {
		return "", err
	}
	return ar.root, nil
}

// Exec runs a command inside a running task and returns its exit code.
func (c *Client) Exec(ctx context.Context, allocID, task string, opts *driver.ExecOptions) (int, error) {
	if opts == nil || len(opts.Command) == 0 || strings.TrimSpace(opts.Command[0]) == "" {
		return 0, structs.NewError(structs.ErrInvalid, "command: required")
	}
	ar, err := c.getAlloc(allocID)
	if err != nil {
		return 0, err
	}
	tr, err := ar.task(task)
	if err != nil {
		return 0, err
	}
	if !tr.running() {
		return 0, structs.NewError(structs.ErrConflict, "task %q of allocation %s is not running", task, allocID)
	}
	return c.driver.ExecTask(ctx, tr.id, opts)
}

// RestartAlloc restarts one task of an allocation, or every running task
// when task is empty, in place: the restart_signaled event, no new
// allocation, and no attempt used from the restart policy.
func (c *Client) RestartAlloc(allocID, task string) error {
	ar, err := c.getAlloc(allocID)
	if err != nil {
		return err
	}
	if a := ar.allocation(); a.DesiredStatus != structs.AllocDesiredRun {
		return structs.NewError(structs.ErrConflict, "allocation %s is stopping (desired status %s)", allocID, a.DesiredStatus)
	}
	if task != "" {
		tr, err := ar.task(task)
		if err != nil {
			return err
		}
		if tr.finished() {
			return structs.NewError(structs.ErrConflict, "task %q of allocation %s has finished", task, allocID)
		}
		tr.requestRestart()
		return nil
	}
	n := 0
	for _, tr := range ar.tasks {
		if !tr.finished() {
			tr.requestRestart()
			n++
		}
	}
	if n == 0 {
		return structs.NewError(structs.ErrConflict, "allocation %s has no task left to restart", allocID)
	}
	return nil
}

// Allocs returns the allocations on this node as the client sees them
// (client status and task states its own), ordered by ID.
func (c *Client) Allocs() []*structs.Allocation {
	c.allocsMu.RLock()
	runners := make([]*allocRunner, 0, len(c.allocs))
	for _, ar := range c.allocs {
		runners = append(runners, ar)
	}
	c.allocsMu.RUnlock()
	out := make([]*structs.Allocation, len(runners))
	for i, ar := range runners {
		out[i] = ar.snapshot()
	}
	slices.SortFunc(out, func(a, b *structs.Allocation) int { return strings.Compare(a.ID, b.ID) })
	return out
}
