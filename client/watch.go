package client

import (
	"context"
	"fmt"
	"time"

	"github.com/drover-sh/drover/client/driver"
	"github.com/drover-sh/drover/structs"
)

// watchWait is how long one blocking allocation query may wait on a
// server; shorter than the servers' limit so a silently dead server is
// noticed.
const watchWait = 30 * time.Second

// restore brings back the allocations of an earlier run. Their task
// runners reattach to the tasks that kept running; the first answer from
// the servers then stops what was stopped or removed meanwhile.
func (c *Client) restore() {
	stored, errs, err := c.db.Allocs()
	if err != nil {
		c.logger.Error("loading client state failed; starting without it", "error", err)
		return
	}
	for id, err := range errs {
		c.logger.Error("skipping unreadable allocation state", "alloc_id", id, "error", err)
	}
	c.allocsMu.Lock()
	defer c.allocsMu.Unlock()
	for _, s := range stored {
		ar := newAllocRunner(c, s.Alloc, s)
		c.allocs[ar.id] = ar
		go ar.run()
		c.updater.mark(ar)
	}
	if len(stored) > 0 {
		c.logger.Info("restored allocations", "count", len(stored))
	}
}

// watchLoop follows the node's allocations with blocking queries and
// makes the runners match.
func (c *Client) watchLoop() {
	select {
	case <-c.registered:
	case <-c.ctx.Done():
		return
	}
	// What the restored allocations were received at: they are fetched
	// again only if the servers changed them since.
	seen := make(map[string]uint64)
	c.allocsMu.RLock()
	for id, ar := range c.allocs {
		seen[id] = ar.allocation().AllocModifyIndex
	}
	c.allocsMu.RUnlock()

	var index uint64
	retry := time.Duration(0)
	fail := func(what string, err error) bool {
		if err == errShutdown {
			return false
		}
		retry = backoff(retry, 250*time.Millisecond, 5*time.Second)
		c.logger.Warn("watching allocations failed; retrying", "call", what, "retry_in", retry, "error", err)
		return c.sleep(retry)
	}
	for c.ctx.Err() == nil {
		if c.sweepPending {
			if err := c.sweepOrphans(); err != nil {
				c.logger.Warn("sweeping orphan containers failed; will retry", "error", err)
			} else {
				c.sweepPending = false
			}
		}
		req := &structs.NodeSpecificRequest{NodeID: c.cfg.NodeID}
		req.MinQueryIndex = index
		req.MaxQueryTime = watchWait
		// The first answer decides what a restarted client removes, so
		// it comes from the leader, not a follower that may lag.
		req.AllowStale = index > 0
		var resp structs.NodeClientAllocsResponse
		if err := c.rpc("Node.GetClientAllocs", req, &resp); err != nil {
			if !fail("Node.GetClientAllocs", err) {
				return
			}
			continue
		}
		changed, err := resp.Sync(seen, func(get *structs.AllocsGetRequest) ([]*structs.Allocation, error) {
			var allocs structs.AllocsGetResponse
			err := c.rpc("Alloc.GetAllocs", get, &allocs)
			return allocs.Allocs, err
		})
		if err != nil {
			if !fail("Alloc.GetAllocs", err) {
				return
			}
			continue
		}
		if len(changed) > 0 {
			c.applyAllocs(changed)
		}
		c.removeAllocs(resp.Allocs)
		retry = 0
		// A snapshot restore or a new leader may move the index back.
		if resp.Index < index {
			index = 0
		} else {
			index = resp.Index
		}
	}
}

// applyAllocs starts runners for new allocations and hands newer
// versions to existing ones.
func (c *Client) applyAllocs(allocs []*structs.Allocation) {
	for _, a := range allocs {
		c.allocsMu.Lock()
		ar := c.allocs[a.ID]
		if ar == nil {
			if a.TerminalStatus() {
				// Stopped or finished before this client ran it (or
				// its local state was lost): nothing to run.
				c.allocsMu.Unlock()
				continue
			}
			ar = newAllocRunner(c, a, nil)
			c.allocs[a.ID] = ar
			c.allocsMu.Unlock()
			c.logger.Debug("starting allocation", "alloc_id", a.ID, "job_id", a.JobID)
			go ar.run()
			continue
		}
		c.allocsMu.Unlock()
		ar.update(a)
	}
}

// removeAllocs destroys the runners of allocations the servers no longer
// have (garbage collected).
func (c *Client) removeAllocs(present map[string]uint64) {
	c.allocsMu.Lock()
	var gone []*allocRunner
	for id, ar := range c.allocs {
		if _, ok := present[id]; !ok {
			gone = append(gone, ar)
			delete(c.allocs, id)
		}
	}
	c.forgetCollected(present)
	c.allocsMu.Unlock()
	for _, ar := range gone {
		c.logger.Debug("destroying allocation removed by the servers", "alloc_id", ar.id)
		c.destroyWG.Add(1)
		go func() {
			defer c.destroyWG.Done()
			ar.destroy("allocation removed by the servers")
		}()
	}
}

// sweepOrphans destroys the containers of this node that no allocation
// owns: left by allocations removed while the agent was down, or by a
// crash between creating a container and recording it.
func (c *Client) sweepOrphans() error {
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	tasks, err := c.driver.ListTasks(ctx)
	if err != nil {
		return err
	}
	owned := make(map[string]bool)
	c.allocsMu.RLock()
	for _, ar := range c.allocs {
		for _, tr := range ar.tasks {
			owned[tr.id] = true
		}
	}
	c.allocsMu.RUnlock()
	for _, t := range tasks {
		if t.Labels[driver.LabelNode] != c.cfg.NodeID || t.Labels[driver.LabelAlloc] == "" || owned[t.ID] {
			continue
		}
		c.logger.Info("destroying orphan container", "task_id", t.ID, "alloc_id", t.Labels[driver.LabelAlloc])
		if err := c.driver.DestroyTask(ctx, t.ID); err != nil {
			c.logger.Warn("destroying orphan container failed", "task_id", t.ID, "error", err)
		}
	}
	// After the containers: a namespace is released once nothing runs
	// in it. Allocations the client holds (terminal ones too) release
	// their own network when their tasks end.
	if sw, ok := c.cfg.Network.(NetworkSweeper); ok {
		live := func(id string) bool {
			c.allocsMu.RLock()
			defer c.allocsMu.RUnlock()
			return c.allocs[id] != nil
		}
		if err := sw.Sweep(ctx, live); err != nil {
			return fmt.Errorf("sweeping orphan networks: %w", err)
		}
	}
	return nil
}
