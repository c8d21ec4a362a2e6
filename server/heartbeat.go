package server

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/drover-sh/drover/structs"
)

// heartbeatBatchWindow is how long the liveness controller gathers expired
// nodes before it marks them down in one Raft entry: when a rack loses
// power, a hundred nodes go down in one write, not a hundred.
const heartbeatBatchWindow = 50 * time.Millisecond

// heartbeater keeps one timer per node on the leader. A heartbeat resets
// the node's timer; a timer that fires queues the node, and the liveness
// loop marks the queued nodes down, with evaluations for their jobs, in
// one entry. Timers live only in the leader's memory: a new leader starts
// them again from the store, giving every node a grace period first.
type heartbeater struct {
	srv *Server

	mu      sync.Mutex
	enabled bool
	timers  map[string]*time.Timer
	expired map[string]struct{}
	// hurried are the nodes whose timer gossip cut short.
	hurried map[string]bool
	wakeCh  chan struct{}
}

func newHeartbeater(srv *Server) *heartbeater {
	return &heartbeater{srv: srv, timers: map[string]*time.Timer{}, hurried: map[string]bool{}, wakeCh: make(chan struct{}, 1)}
}

// run is the liveness controller, a leader service.
func (h *heartbeater) run(ctx context.Context) {
	h.start()
	defer h.stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.wakeCh:
		}
		// Gather the nodes that expire together.
		select {
		case <-ctx.Done():
			return
		case <-time.After(heartbeatBatchWindow):
		}
		h.mu.Lock()
		ids := make([]string, 0, len(h.expired))
		for id := range h.expired {
			ids = append(ids, id)
		}
		h.expired = map[string]struct{}{}
		h.mu.Unlock()
		if err := h.markDown(ids); err != nil {
			h.srv.logger.Error("failed to mark nodes down, retrying", "nodes", len(ids), "error", err)
			h.mu.Lock()
			for _, id := range ids {
				if _, ok := h.timers[id]; !ok {
					h.expired[id] = struct{}{}
				}
			}
			h.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			h.wake()
		}
	}
}

// start gives every live node in the store a timer of the failover TTL.
func (h *heartbeater) start() {
	nodes, err := h.srv.fsm.State().Snapshot().NodesByPrefix(nil, "")
	if err != nil {
		h.srv.logger.Error("failed to read nodes for heartbeat timers", "error", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.enabled = true
	h.expired = map[string]struct{}{}
	for _, n := range nodes {
		if n.Status == structs.NodeStatusDown {
			continue
		}
		h.resetLocked(n.ID, h.srv.config.FailoverHeartbeatTTL)
	}
	h.srv.logger.Info("heartbeat timers started", "nodes", len(h.timers), "grace", h.srv.config.FailoverHeartbeatTTL)
}

// stop drops every timer when leadership ends.
func (h *heartbeater) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.enabled = false
	for id, t := range h.timers {
		t.Stop()
		delete(h.timers, id)
	}
	h.expired = nil
	clear(h.hurried)
}

// reset restarts a node's timer and returns the TTL the node must
// heartbeat within. ok is false when this server is not running timers
// (not the leader, or leadership just changed).
func (h *heartbeater) reset(nodeID string) (ttl time.Duration, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.enabled {
		return 0, false
	}
	ttl = h.ttlLocked()
	h.resetLocked(nodeID, ttl+h.srv.config.HeartbeatGrace)
	delete(h.expired, nodeID)
	delete(h.hurried, nodeID)
	return ttl, true
}

// ttlLocked scales the TTL with the number of nodes so the leader gets at
// most MaxHeartbeatsPerSecond heartbeats, and staggers it so nodes that
// registered together do not heartbeat together forever.
func (h *heartbeater) ttlLocked() time.Duration {
	cfg := h.srv.config
	ttl := cfg.MinHeartbeatTTL
	scaled := time.Duration(float64(len(h.timers)) / cfg.MaxHeartbeatsPerSecond * float64(time.Second))
	if scaled > ttl {
		ttl = scaled
	}
	return ttl + rand.N(ttl/4+1)
}

func (h *heartbeater) resetLocked(nodeID string, d time.Duration) {
	if t, ok := h.timers[nodeID]; ok {
		t.Reset(d)
		return
	}
	h.timers[nodeID] = time.AfterFunc(d, func() { h.expire(nodeID) })
}

// hurry cuts a node's timer to d: gossip saw the node fail. A heartbeat
// that still arrives restores the full TTL.
func (h *heartbeater) hurry(nodeID string, d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.enabled {
		return
	}
	if t, ok := h.timers[nodeID]; ok {
		t.Reset(d)
		h.hurried[nodeID] = true
		h.srv.logger.Info("gossip reports node failed, shortening its heartbeat timer", "node_id", nodeID, "timer", d)
	}
}

// relax undoes hurry when gossip sees the node alive again (it refuted
// the failure, say after a pause or a short partition): its heartbeats
// alone decide again, with a full TTL to send the next one.
func (h *heartbeater) relax(nodeID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.enabled || !h.hurried[nodeID] {
		return
	}
	delete(h.hurried, nodeID)
	if _, ok := h.timers[nodeID]; ok {
		h.resetLocked(nodeID, h.ttlLocked()+h.srv.config.HeartbeatGrace)
		h.srv.logger.Info("gossip sees node alive again, restoring its heartbeat timer", "node_id", nodeID)
	}
}

// clear forgets a node (deregistered, or marked down).
func (h *heartbeater) clear(nodeID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t, ok := h.timers[nodeID]; ok {
		t.Stop()
		delete(h.timers, nodeID)
	}
	delete(h.hurried, nodeID)
}

// expire runs on the timer's goroutine: it only queues the node.
func (h *heartbeater) expire(nodeID string) {
	h.mu.Lock()
	if !h.enabled {
		h.mu.Unlock()
		return
	}
	delete(h.timers, nodeID)
	delete(h.hurried, nodeID)
	h.expired[nodeID] = struct{}{}
	h.mu.Unlock()
	h.wake()
}

func (h *heartbeater) wake() {
	select {
	case h.wakeCh <- struct{}{}:
	default:
	}
}

// count is the number of nodes with a running timer.
func (h *heartbeater) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.timers)
}

// markDown writes one entry that moves the expired nodes still up to down,
// with an evaluation for every job that had allocations on them.
func (h *heartbeater) markDown(ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	snap := h.srv.fsm.State().Snapshot()
	var down []string
	for _, id := range ids {
		n, err := snap.NodeByID(nil, id)
		if err != nil {
			return err
		}
		if n == nil || n.Status == structs.NodeStatusDown {
			continue
		}
		down = append(down, id)
	}
	if len(down) == 0 {
		return nil
	}
	now := time.Now().UnixNano()
	evals, err := nodeEvals(snap, down, false, now)
	if err != nil {
		return err
	}
	req := &structs.NodeUpdateStatusRequest{NodeIDs: down, Status: structs.NodeStatusDown, Evals: evals, UpdatedAt: now}
	if _, _, err := h.srv.raftApply(structs.NodeUpdateStatusRequestType, req); err != nil {
		return err
	}
	h.srv.logger.Warn("nodes missed their heartbeat, marked down", "nodes", len(down), "evals", len(evals))
	return nil
}
