// Package nodesim runs hollow client nodes: each registers through the
// real Node RPCs, heartbeats at the TTL the servers ask for, watches its
// allocations with a blocking Node.GetClientAllocs (which carries what
// changed), and reports them running
// (and complete once the servers stop them) through Node.UpdateAllocs,
// without running anything. It lets the scheduler, the plan applier and
// the heartbeat machinery be tested and benchmarked with thousands of
// nodes on one machine, as Nomad's nomad-nodesim and Kubernetes' kubemark
// hollow nodes do.
package nodesim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/drover-sh/drover/server/pool"
	"github.com/drover-sh/drover/structs"
)

// Config describes the simulated fleet.
type Config struct {
	// Servers are RPC addresses (host:port) of one or more servers.
	Servers []string
	// Nodes is how many nodes to simulate.
	Nodes int
	// Name prefixes node names: "<Name>-<i>".
	Name       string
	Datacenter string
	NodeClass  string
	// CPU (MHz) and Memory (MiB) offered by each node.
	CPU    int
	Memory int
	// Meta is copied to every node; "sim.index" is added per node.
	Meta map[string]string
	// RegisterParallel bounds concurrent registrations.
	RegisterParallel int
	// ReportInterval is how often allocation updates are flushed to the
	// servers, all nodes' updates in one batch per flush.
	ReportInterval time.Duration
	Logger         hclog.Logger
}

func (c *Config) fill() {
	if c.Name == "" {
		c.Name = "sim"
	}
	if c.Datacenter == "" {
		c.Datacenter = "dc1"
	}
	if c.CPU == 0 {
		c.CPU = 4000
	}
	if c.Memory == 0 {
		c.Memory = 8192
	}
	if c.RegisterParallel == 0 {
		c.RegisterParallel = 32
	}
	if c.ReportInterval == 0 {
		c.ReportInterval = 100 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
}

// Stats are counters over the simulator's life.
type Stats struct {
	Registered  int64
	Heartbeats  int64
	AllocsSeen  int64 // distinct allocations delivered to the nodes
	Running     int64 // reported running
	Stopped     int64 // reported complete after the servers stopped them
	RPCErrors   int64
	UpdateCalls int64
}

// Sim is a running fleet.
type Sim struct {
	cfg   Config
	pool  *pool.Pool
	nodes []*simNode

	mu      sync.Mutex
	pending []*structs.Allocation // updates not yet flushed
	server  atomic.Int64          // index into cfg.Servers of the server in use

	registered, heartbeats, allocsSeen, running, stopped, rpcErrors, updateCalls atomic.Int64
}

type simNode struct {
	node *structs.Node
	// known maps allocation ID to the last state reported for it.
	known map[string]string
	// seen maps allocation ID to the AllocModifyIndex last fetched.
	seen map[string]uint64
	ttl  atomic.Int64
	// down is set when the simulator was told to stop heartbeating this
	// node (to test liveness).
	down atomic.Bool
}

// New builds a fleet; nothing is registered until Run.
func New(cfg Config) (*Sim, error) {
	cfg.fill()
	if len(cfg.Servers) == 0 {
		return nil, errors.New("nodesim: no server addresses")
	}
	if cfg.Nodes <= 0 {
		return nil, fmt.Errorf("nodesim: nodes must be positive, got %d", cfg.Nodes)
	}
	s := &Sim{cfg: cfg, pool: pool.New(5 * time.Second)}
	for i := 0; i < cfg.Nodes; i++ {
		s.nodes = append(s.nodes, &simNode{node: s.newNode(i), known: make(map[string]string), seen: make(map[string]uint64)})
	}
	return s, nil
}

func (s *Sim) newNode(i int) *structs.Node {
	meta := map[string]string{"sim.index": fmt.Sprint(i)}
	for k, v := range s.cfg.Meta {
		meta[k] = v
	}
	name := fmt.Sprintf("%s-%d", s.cfg.Name, i)
	return &structs.Node{
		ID:         structs.GenerateUUID(),
		Name:       name,
		Datacenter: s.cfg.Datacenter,
		NodeClass:  s.cfg.NodeClass,
		Attributes: map[string]string{
			"kernel.name":     "linux",
			"cpu.arch":        "amd64",
			"unique.hostname": name,
			"drover.version":  structs.Version,
			"simulated":       "true",
		},
		Meta: meta,
		Resources: &structs.NodeResources{
			CPU: s.cfg.CPU, Memory: s.cfg.Memory, Cores: max(1, s.cfg.CPU/1000),
			MinDynamicPort: 20000, MaxDynamicPort: 32000,
		},
		Status: structs.NodeStatusReady,
	}
}

// NodeIDs returns the simulated nodes' IDs, in index order.
func (s *Sim) NodeIDs() []string {
	ids := make([]string, len(s.nodes))
	for i, n := range s.nodes {
		ids[i] = n.node.ID
	}
	return ids
}

// StopHeartbeating makes node i go silent, as if it had crashed: no more
// heartbeats, no more allocation updates.
func (s *Sim) StopHeartbeating(i int) { s.nodes[i].down.Store(true) }

// Stats returns the counters so far.
func (s *Sim) Stats() Stats {
	return Stats{
		Registered: s.registered.Load(), Heartbeats: s.heartbeats.Load(),
		AllocsSeen: s.allocsSeen.Load(), Running: s.running.Load(), Stopped: s.stopped.Load(),
		RPCErrors: s.rpcErrors.Load(), UpdateCalls: s.updateCalls.Load(),
	}
}

// rpc calls a server, moving to the next address on transport errors so
// the fleet survives a server's death.
func (s *Sim) rpc(method string, args, reply any) error {
	var err error
	for range len(s.cfg.Servers) {
		i := int(s.server.Load()) % len(s.cfg.Servers)
		err = s.pool.RPC(s.cfg.Servers[i], method, args, reply)
		// Move on when the server could not be reached or is going
		// away; any other answer is the cluster's.
		var te *pool.TransportError
		if !errors.As(err, &te) && structs.CodeOf(err) != structs.ErrUnavailable {
			break
		}
		s.server.CompareAndSwap(int64(i), int64(i+1))
	}
	if err != nil {
		s.rpcErrors.Add(1)
	}
	return err
}

// Register registers every node, RegisterParallel at a time, and returns
// when all are registered or ctx ends.
func (s *Sim) Register(ctx context.Context) error {
	sem := make(chan struct{}, s.cfg.RegisterParallel)
	errCh := make(chan error, 1)
	var wg sync.WaitGroup
	for _, n := range s.nodes {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		}
		wg.Add(1)
		go func(n *simNode) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := s.register(ctx, n); err != nil {
				select {
				case errCh <- err:
				default:
				}
			}
		}(n)
	}
	wg.Wait()
	select {
	case err := <-errCh:
		return err
	default:
		return nil
	}
}

// register retries until the node is registered: a leader election in the
// middle of a large registration is part of what the simulator exercises.
func (s *Sim) register(ctx context.Context, n *simNode) error {
	for {
		var resp structs.NodeUpdateResponse
		err := s.rpc("Node.Register", &structs.NodeRegisterRequest{Node: n.node}, &resp)
		if err == nil {
			n.ttl.Store(int64(resp.HeartbeatTTL))
			s.registered.Add(1)
			return nil
		}
		var coded *structs.Error
		if errors.As(err, &coded) && coded.Code == structs.ErrInvalid {
			return fmt.Errorf("registering node %s: %w", n.node.ID, err)
		}
		s.cfg.Logger.Debug("node registration failed; retrying", "node_id", n.node.ID, "error", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Run registers the fleet (if not yet done) and then heartbeats, watches
// and reports for every node until ctx ends.
func (s *Sim) Run(ctx context.Context) error {
	if s.registered.Load() < int64(len(s.nodes)) {
		if err := s.Register(ctx); err != nil {
			return err
		}
	}
	var wg sync.WaitGroup
	for _, n := range s.nodes {
		wg.Add(2)
		go func(n *simNode) { defer wg.Done(); s.heartbeatLoop(ctx, n) }(n)
		go func(n *simNode) { defer wg.Done(); s.watchLoop(ctx, n) }(n)
	}
	wg.Add(1)
	go func() { defer wg.Done(); s.flushLoop(ctx) }()
	// Blocking allocation queries wait up to 30 s on the servers; closing
	// the connections ends them at once, so Run returns promptly.
	<-ctx.Done()
	s.pool.Close()
	wg.Wait()
	return nil
}

// heartbeatLoop heartbeats at a random point in the first half of each
// TTL, so 5,000 nodes spread their heartbeats instead of bursting.
func (s *Sim) heartbeatLoop(ctx context.Context, n *simNode) {
	for {
		ttl := time.Duration(n.ttl.Load())
		if ttl <= 0 {
			ttl = 10 * time.Second
		}
		wait := ttl/4 + rand.N(ttl/4)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if n.down.Load() {
			continue
		}
		var resp structs.NodeUpdateResponse
		err := s.rpc("Node.Heartbeat", &structs.NodeHeartbeatRequest{NodeID: n.node.ID, Status: structs.NodeStatusReady}, &resp)
		var coded *structs.Error
		switch {
		case err == nil:
			s.heartbeats.Add(1)
			if resp.HeartbeatTTL > 0 {
				n.ttl.Store(int64(resp.HeartbeatTTL))
			}
		case errors.As(err, &coded) && coded.Code == structs.ErrNotFound:
			// The servers forgot the node (garbage collected): a real
			// client registers again.
			_ = s.register(ctx, n)
		}
	}
}

// watchLoop follows the node's allocations with blocking queries.
func (s *Sim) watchLoop(ctx context.Context, n *simNode) {
	var index uint64
	for ctx.Err() == nil {
		if n.down.Load() {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		req := &structs.NodeSpecificRequest{NodeID: n.node.ID}
		req.MinQueryIndex = index
		req.MaxQueryTime = 30 * time.Second
		req.AllowStale = true
		var resp structs.NodeClientAllocsResponse
		if err := s.rpc("Node.GetClientAllocs", req, &resp); err != nil {
			s.pause(ctx, 500*time.Millisecond)
			continue
		}
		// Take what changed since the node last looked, as a real client
		// does.
		changed, err := resp.Sync(n.seen, func(get *structs.AllocsGetRequest) ([]*structs.Allocation, error) {
			var allocs structs.AllocsGetResponse
			err := s.rpc("Alloc.GetAllocs", get, &allocs)
			return allocs.Allocs, err
		})
		if err != nil {
			s.pause(ctx, 500*time.Millisecond)
			continue
		}
		if len(changed) > 0 {
			s.observe(n, changed)
		}
		// A restore or a new leader may move the index backwards.
		if resp.Index < index {
			index = 0
		} else {
			index = resp.Index
		}
	}
}

// pause waits d or until ctx ends.
func (s *Sim) pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// observe turns the servers' view of a node's allocations into the
// updates a real client would send: new ones start running, stopped ones
// complete.
func (s *Sim) observe(n *simNode, allocs []*structs.Allocation) {
	var updates []*structs.Allocation
	for _, a := range allocs {
		last, seen := n.known[a.ID]
		if !seen {
			s.allocsSeen.Add(1)
		}
		var want string
		switch {
		case a.ClientTerminalStatus():
			want = a.ClientStatus
		case a.DesiredStatus != structs.AllocDesiredRun:
			want = structs.AllocClientComplete
		default:
			want = structs.AllocClientRunning
		}
		if last == want {
			continue
		}
		n.known[a.ID] = want
		if a.ClientStatus == want {
			continue
		}
		switch want {
		case structs.AllocClientRunning:
			s.running.Add(1)
		case structs.AllocClientComplete:
			s.stopped.Add(1)
		}
		updates = append(updates, s.update(a, want))
	}
	if len(updates) == 0 {
		return
	}
	s.mu.Lock()
	s.pending = append(s.pending, updates...)
	s.mu.Unlock()
}

// update is the client-owned part of an allocation in a new state.
func (s *Sim) update(a *structs.Allocation, status string) *structs.Allocation {
	now := time.Now().UnixNano()
	states := make(map[string]*structs.TaskState)
	if a.Job != nil {
		if g := a.Job.LookupGroup(a.TaskGroup); g != nil {
			for _, t := range g.Tasks {
				ts := &structs.TaskState{State: structs.TaskStateRunning, StartedAt: now}
				if status != structs.AllocClientRunning {
					ts.State, ts.FinishedAt = structs.TaskStateDead, now
				}
				states[t.Name] = ts
			}
		}
	}
	return &structs.Allocation{
		ID: a.ID, NodeID: a.NodeID, Namespace: a.Namespace, JobID: a.JobID, TaskGroup: a.TaskGroup,
		ClientStatus: status, ClientDescription: "simulated", TaskStates: states, ModifyTime: now,
	}
}

// flushLoop sends the pending updates of all nodes every ReportInterval.
func (s *Sim) flushLoop(ctx context.Context) {
	tick := time.NewTicker(s.cfg.ReportInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		s.mu.Lock()
		batch := s.pending
		s.pending = nil
		s.mu.Unlock()
		for len(batch) > 0 {
			n := min(len(batch), 2000)
			var resp structs.GenericResponse
			if err := s.rpc("Node.UpdateAllocs", &structs.AllocUpdateRequest{Alloc: batch[:n]}, &resp); err != nil {
				// Keep what did not go through for the next flush.
				s.mu.Lock()
				s.pending = append(batch, s.pending...)
				s.mu.Unlock()
				break
			}
			s.updateCalls.Add(1)
			batch = batch[n:]
		}
	}
}

// Close releases the connections.
func (s *Sim) Close() { s.pool.Close() }
