package client

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/drover-sh/drover/structs"
)

// The client keeps a finished allocation (its directory, logs and local
// state) until the servers garbage-collect it, so `alloc logs` works
// after the fact. On a node that runs many short batch allocations that
// is thousands of directories within the servers' hour. Like Nomad's
// gc_max_allocs, the client therefore destroys its oldest finished
// allocations once it holds more than GCMaxAllocs in all.

// gcCollectable reports whether the runner may be destroyed: its tasks
// are all done and the servers acknowledged a terminal status, so
// nothing is lost but the files.
func (ar *allocRunner) gcCollectable() bool {
	select {
	case <-ar.waitCh:
	default:
		return false
	}
	return ar.terminalSent.Load()
}

// finishedAt is when the allocation's last task ended (0 if never).
func (ar *allocRunner) finishedAt() int64 {
	var last int64
	for _, tr := range ar.tasks {
		last = max(last, tr.taskState().FinishedAt)
	}
	return last
}

// gcLoop collects when the servers acknowledge a finished allocation
// (kickGC), and every GCInterval for those restored at start.
func (c *Client) gcLoop(ctx context.Context) {
	t := time.NewTicker(c.cfg.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.gcKick:
		}
		c.collectGarbage()
	}
}

func (c *Client) kickGC() {
	select {
	case c.gcKick <- struct{}{}:
	default:
	}
}

// collectGarbage destroys the oldest finished allocations beyond
// GCMaxAllocs; it returns how many it destroyed.
func (c *Client) collectGarbage() int {
	c.allocsMu.Lock()
	excess := len(c.allocs) - c.cfg.GCMaxAllocs
	if excess <= 0 {
		c.allocsMu.Unlock()
		return 0
	}
	type candidate struct {
		ar       *allocRunner
		finished int64
	}
	var done []candidate
	for _, ar := range c.allocs {
		if ar.gcCollectable() {
			done = append(done, candidate{ar, ar.finishedAt()})
		}
	}
	slices.SortFunc(done, func(a, b candidate) int { return cmp.Compare(a.finished, b.finished) })
	done = done[:min(excess, len(done))]
	for _, d := range done {
		delete(c.allocs, d.ar.id)
		c.collected[d.ar.id] = true
	}
	c.allocsMu.Unlock()
	for _, d := range done {
		c.logger.Debug("garbage-collecting finished allocation", "alloc_id", d.ar.id)
		c.destroyWG.Add(1)
		go func() {
			defer c.destroyWG.Done()
			d.ar.destroy("allocation garbage-collected by the client")
		}()
	}
	if len(done) > 0 {
		c.logger.Info("garbage-collected finished allocations", "count", len(done), "limit", c.cfg.GCMaxAllocs)
	}
	return len(done)
}

// forgetCollected drops the record of collected allocations the servers
// no longer have. Called with allocsMu held.
func (c *Client) forgetCollected(present map[string]uint64) {
	for id := range c.collected {
		if _, ok := present[id]; !ok {
			delete(c.collected, id)
		}
	}
}

// notOnNode is the error for an allocation this client does not hold.
func (c *Client) notOnNode(allocID string) error {
	c.allocsMu.RLock()
	collected := c.collected[allocID]
	c.allocsMu.RUnlock()
	if collected {
		return structs.NewError(structs.ErrNotFound,
			"allocation %s finished and node %s garbage-collected its files (it keeps at most client.gc_max_allocs = %d allocations)",
			allocID, c.cfg.NodeID, c.cfg.GCMaxAllocs)
	}
	return structs.NewError(structs.ErrNotFound, "allocation %s is not on node %s", allocID, c.cfg.NodeID)
}
