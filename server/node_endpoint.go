package server

import (
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/drover-sh/drover/fsm"
	"github.com/drover-sh/drover/server/pool"
	"github.com/drover-sh/drover/structs"
)

// Node is the RPC endpoint clients use to register, heartbeat, watch their
// allocations and report on them, and operators use to drain nodes.
type Node struct{ srv *Server }

// Register adds a node or updates its fingerprint, starts its heartbeat
// timer and, when the node is new or comes back, evaluates the jobs that
// may now place there or must stop what ran there.
func (n *Node) Register(args *structs.NodeRegisterRequest, reply *structs.NodeUpdateResponse) error {
	if done, err := n.srv.forwardWrite("Node.Register", args, reply); done {
		return pool.EncodeError(err)
	}
	return pool.EncodeError(n.register(args, reply))
}

func (n *Node) register(args *structs.NodeRegisterRequest, reply *structs.NodeUpdateResponse) error {
	if args.Node == nil {
		return structs.NewError(structs.ErrInvalid, "missing node")
	}
	node := args.Node.Copy()
	if err := validateNode(node); err != nil {
		return err
	}
	switch node.Status {
	case "":
		node.Status = structs.NodeStatusReady
	case structs.NodeStatusReady, structs.NodeStatusInit:
	default:
		return structs.NewError(structs.ErrInvalid, "node.status: a node registers as %q or %q, not %q", structs.NodeStatusReady, structs.NodeStatusInit, node.Status)
	}
	now := time.Now().UnixNano()
	node.StatusUpdatedAt = now

	snap := n.srv.fsm.State().Snapshot()
	existing, err := snap.NodeByID(nil, node.ID)
	if err != nil {
		return err
	}
	req := *args
	req.Node = node
	_, index, err := n.srv.raftApply(structs.NodeRegisterRequestType, &req)
	if err != nil {
		return err
	}
	reply.NodeModifyIndex = index
	reply.Index = index

	// Evaluate when scheduling on the node may change: a new ready node
	// (system jobs, blocked jobs) or one back from down (stale allocations).
	if node.Status == structs.NodeStatusReady && (existing == nil || existing.Status != structs.NodeStatusReady) {
		if err := n.createNodeEvals(node.ID, true, reply); err != nil {
			return err
		}
	}
	return n.heartbeatReply(node.ID, reply)
}

// validateNode checks what a client must send, naming every bad field.
func validateNode(node *structs.Node) error {
	var problems []*structs.FieldError
	bad := func(field, msg string) {
		problems = append(problems, &structs.FieldError{Field: field, Message: msg})
	}
	switch {
	case node.ID == "":
		bad("node.id", "is required")
	case strings.ContainsAny(node.ID, "/ \t\n"):
		bad("node.id", "must not contain '/' or spaces")
	}
	if node.Name == "" {
		bad("node.name", "is required")
	}
	if node.Datacenter == "" {
		bad("node.datacenter", "is required")
	}
	if r := node.Resources; r == nil {
		bad("node.resources", "is required")
	} else {
		if r.CPU < 0 {
			bad("node.resources.cpu", "must not be negative")
		}
		if r.Memory < 0 {
			bad("node.resources.memory", "must not be negative")
		}
		if r.MinDynamicPort < 0 || r.MaxDynamicPort > 65535 || r.MinDynamicPort > r.MaxDynamicPort {
			bad("node.resources.min_dynamic_port", "the dynamic port range must lie within 0-65535, min before max")
		}
	}
	switch node.SchedulingEligibility {
	case "", structs.NodeEligible, structs.NodeIneligible:
	default:
		bad("node.scheduling_eligibility", "must be eligible or ineligible")
	}
	if len(problems) == 0 {
		return nil
	}
	err := structs.NewError(structs.ErrInvalid, "invalid node: %s %s", problems[0].Field, problems[0].Message)
	err.Problems = problems
	return err
}

// Heartbeat resets the node's TTL. It writes to Raft only when the node's
// status changes (a node that was marked down comes back).
func (n *Node) Heartbeat(args *structs.NodeHeartbeatRequest, reply *structs.NodeUpdateResponse) error {
	if done, err := n.srv.forwardWrite("Node.Heartbeat", args, reply); done {
		return pool.EncodeError(err)
	}
	return pool.EncodeError(n.heartbeat(args, reply))
}

func (n *Node) heartbeat(args *structs.NodeHeartbeatRequest, reply *structs.NodeUpdateResponse) error {
	if args.NodeID == "" {
		return structs.NewError(structs.ErrInvalid, "missing node id")
	}
	status := args.Status
	if status == "" {
		status = structs.NodeStatusReady
	}
	if status != structs.NodeStatusReady && status != structs.NodeStatusInit {
		return structs.NewError(structs.ErrInvalid, "status: a heartbeat reports %q or %q, not %q", structs.NodeStatusReady, structs.NodeStatusInit, status)
	}
	node, err := n.srv.fsm.State().Snapshot().NodeByID(nil, args.NodeID)
	if err != nil {
		return err
	}
	if node == nil {
		return structs.NewError(structs.ErrNotFound, "node %q is not registered", args.NodeID)
	}
	reply.Index = node.ModifyIndex
	if node.Status != status {
		req := &structs.NodeUpdateStatusRequest{NodeIDs: []string{node.ID}, Status: status, UpdatedAt: time.Now().UnixNano()}
		_, index, err := n.srv.raftApply(structs.NodeUpdateStatusRequestType, req)
		if err != nil {
			return err
		}
		reply.NodeModifyIndex = index
		reply.Index = index
		n.srv.logger.Info("node status changed by heartbeat", "node_id", node.ID, "from", node.Status, "to", status)
		if status == structs.NodeStatusReady {
			if err := n.createNodeEvals(node.ID, true, reply); err != nil {
				return err
			}
		}
	}
	return n.heartbeatReply(node.ID, reply)
}

// heartbeatReply resets the node's timer and fills the TTL and servers.
func (n *Node) heartbeatReply(nodeID string, reply *structs.NodeUpdateResponse) error {
	ttl, ok := n.srv.heartbeats.reset(nodeID)
	if !ok {
		return structs.NewError(structs.ErrNoLeader, "this server stopped leading while handling the heartbeat; retry")
	}
	reply.HeartbeatTTL = ttl
	reply.Servers = n.srv.serverAddrs()
	return nil
}

// createNodeEvals writes evaluations for the jobs affected by a node's
// change and records them in the reply.
func (n *Node) createNodeEvals(nodeID string, withSystem bool, reply *structs.NodeUpdateResponse) error {
	evals, err := nodeEvals(n.srv.fsm.State().Snapshot(), []string{nodeID}, withSystem, time.Now().UnixNano())
	if err != nil || len(evals) == 0 {
		return err
	}
	_, index, err := n.srv.raftApply(structs.EvalUpdateRequestType, &structs.EvalUpdateRequest{Evals: evals})
	if err != nil {
		return err
	}
	for _, e := range evals {
		reply.EvalIDs = append(reply.EvalIDs, e.ID)
	}
	reply.EvalCreateIndex = index
	reply.Index = index
	return nil
}

// nodeEvals returns one evaluation per job with an allocation that is not
// terminal on any of the nodes, and with withSystem one per system job too
// (a node that becomes usable may need one of each system job).
func nodeEvals(snap *fsm.StateSnapshot, nodeIDs []string, withSystem bool, now int64) ([]*structs.Evaluation, error) {
	type key struct{ ns, id string }
	seen := map[key]bool{}
	var evals []*structs.Evaluation
	add := func(job *structs.Job, nodeID string) {
		k := key{job.Namespace, job.ID}
		if seen[k] {
			return
		}
		seen[k] = true
		evals = append(evals, &structs.Evaluation{
			ID:             structs.GenerateUUID(),
			Namespace:      job.Namespace,
			Priority:       job.Priority,
			Type:           job.Type,
			TriggeredBy:    structs.EvalTriggerNodeUpdate,
			JobID:          job.ID,
			JobModifyIndex: job.ModifyIndex,
			NodeID:         nodeID,
			Status:         structs.EvalStatusPending,
			CreateTime:     now,
			ModifyTime:     now,
		})
	}
	for _, nodeID := range nodeIDs {
		allocs, err := snap.AllocsByNode(nil, nodeID)
		if err != nil {
			return nil, err
		}
		for _, a := range allocs {
			if a.TerminalStatus() {
				continue
			}
			job, err := snap.JobByID(nil, a.Namespace, a.JobID)
			if err != nil {
				return nil, err
			}
			if job == nil {
				job = a.Job
			}
			if job != nil {
				add(job, nodeID)
			}
		}
	}
	if withSystem {
		jobs, err := snap.JobsByPrefix(nil, "*", "")
		if err != nil {
			return nil, err
		}
		for _, job := range jobs {
			if job.Type == structs.JobTypeSystem && !job.Stop {
				add(job, nodeIDs[0])
			}
		}
	}
	return evals, nil
}

// GetNode reads one node; Node is nil when it does not exist.
func (n *Node) GetNode(args *structs.NodeSpecificRequest, reply *structs.SingleNodeResponse) error {
	if done, err := n.srv.forwardRead("Node.GetNode", &args.QueryOptions, args, reply); done {
		return pool.EncodeError(err)
	}
	return pool.EncodeError(n.srv.blockingRPC(&args.QueryOptions, &reply.QueryMeta,
		func(ws memdb.WatchSet, snap *fsm.StateSnapshot) (uint64, error) {
			node, err := snap.NodeByID(ws, args.NodeID)
			if err != nil {
				return 0, err
			}
			reply.Node = node
			if node != nil {
				return maxIndex(node.ModifyIndex), nil
			}
			return maxIndex(snap.Index("nodes")), nil
		}))
}

// List lists nodes by ID prefix.
func (n *Node) List(args *structs.NodeListRequest, reply *structs.NodeListResponse) error {
	if done, err := n.srv.forwardRead("Node.List", &args.QueryOptions, args, reply); done {
		return pool.EncodeError(err)
	}
	return pool.EncodeError(n.srv.blockingRPC(&args.QueryOptions, &reply.QueryMeta,
		func(ws memdb.WatchSet, snap *fsm.StateSnapshot) (uint64, error) {
			nodes, err := snap.NodesByPrefix(ws, args.Prefix)
			if err != nil {
				return 0, err
			}
			reply.Nodes = make([]*structs.NodeListStub, len(nodes))
			for i, node := range nodes {
				reply.Nodes[i] = node.Stub()
			}
			return maxIndex(snap.Index("nodes")), nil
		}))
}

// GetAllocs is the client's watch on its allocations: a blocking query
// that returns every allocation of the node, terminal ones included, once
// one of them changed after MinQueryIndex.
func (n *Node) GetAllocs(args *structs.NodeSpecificRequest, reply *structs.NodeAllocsResponse) error {
	if done, err := n.srv.forwardRead("Node.GetAllocs", &args.QueryOptions, args, reply); done {
		return pool.EncodeError(err)
	}
	if args.NodeID == "" {
		return pool.EncodeError(structs.NewError(structs.ErrInvalid, "missing node id"))
	}
	return pool.EncodeError(n.srv.blockingRPC(&args.QueryOptions, &reply.QueryMeta,
		func(ws memdb.WatchSet, snap *fsm.StateSnapshot) (uint64, error) {
			allocs, err := snap.AllocsByNode(ws, args.NodeID)
			if err != nil {
				return 0, err
			}
			reply.Allocs = allocs
			var idx uint64
			for _, a := range allocs {
				idx = max(idx, a.ModifyIndex)
			}
			if idx == 0 {
				// Nothing on the node: any later placement moves the
				// allocations index past this one.
				idx = snap.Index("allocs")
			}
			return maxIndex(idx), nil
		}))
}

// GetClientAllocs is the cheap form of GetAllocs that clients watch: the
// node's allocations as ID -> AllocModifyIndex, and in full those changed
// after MinQueryIndex, returned once the servers changed one of them
// (placed, updated, stopped or removed it) after MinQueryIndex.
//
// The query blocks on the node's usage row (fsm.NodeUsage), whose index
// moves only with such changes: not with the client's own status reports,
// which would otherwise send it one useless answer per report, and not
// with writes to other nodes' allocations. A node that never had an
// allocation answers index 1.
func (n *Node) GetClientAllocs(args *structs.NodeSpecificRequest, reply *structs.NodeClientAllocsResponse) error {
	if done, err := n.srv.forwardRead("Node.GetClientAllocs", &args.QueryOptions, args, reply); done {
		return pool.EncodeError(err)
	}
	if args.NodeID == "" {
		return pool.EncodeError(structs.NewError(structs.ErrInvalid, "missing node id"))
	}
	// Waking only reads the row. The list is read once, at the end, from
	// a fresh snapshot: keeping the one the wait started from would pin
	// that version of the store for up to the whole wait, for every
	// node, and the servers' memory would grow with the write rate.
	err := n.srv.blockingRPC(&args.QueryOptions, &reply.QueryMeta,
		func(ws memdb.WatchSet, snap *fsm.StateSnapshot) (uint64, error) {
			return clientAllocsIndex(ws, snap, args.NodeID)
		})
	if err != nil {
		return pool.EncodeError(err)
	}
	snap := n.srv.fsm.State().Snapshot()
	idx, err := clientAllocsIndex(nil, snap, args.NodeID)
	if err != nil {
		return pool.EncodeError(err)
	}
	allocs, err := snap.AllocsByNode(nil, args.NodeID)
	if err != nil {
		return pool.EncodeError(err)
	}
	reply.Index = idx
	reply.Allocs = make(map[string]uint64, len(allocs))
	for _, a := range allocs {
		reply.Allocs[a.ID] = a.AllocModifyIndex
		// Every allocation at or below the index the client saw was in
		// the answer it saw it in: Raft indexes only grow.
		if a.AllocModifyIndex > args.MinQueryIndex {
			reply.Changed = append(reply.Changed, a)
		}
	}
	return nil
}

// clientAllocsIndex is the index of the servers' last change to the
// node's allocations, 1 if it never had any.
func clientAllocsIndex(ws memdb.WatchSet, snap *fsm.StateSnapshot, nodeID string) (uint64, error) {
	row, err := snap.NodeUsage(ws, nodeID)
	if err != nil || row == nil {
		return 1, err
	}
	return maxIndex(row.Index), nil
}

// UpdateAllocs takes clients' allocation updates. Updates arriving
// together from many clients are coalesced into one Raft entry (see
// allocUpdateBatcher); the call returns once its batch is committed.
func (n *Node) UpdateAllocs(args *structs.AllocUpdateRequest, reply *structs.GenericResponse) error {
	if done, err := n.srv.forwardWrite("Node.UpdateAllocs", args, reply); done {
		return pool.EncodeError(err)
	}
	if len(args.Alloc) == 0 {
		return pool.EncodeError(structs.NewError(structs.ErrInvalid, "no allocation updates"))
	}
	for _, a := range args.Alloc {
		if a == nil || a.ID == "" {
			return pool.EncodeError(structs.NewError(structs.ErrInvalid, "alloc: every update needs an allocation id"))
		}
		switch a.ClientStatus {
		case structs.AllocClientPending, structs.AllocClientRunning, structs.AllocClientComplete, structs.AllocClientFailed:
		default:
			return pool.EncodeError(structs.NewError(structs.ErrInvalid, "alloc.client_status of %s: %q is not a status a client reports", a.ID, a.ClientStatus))
		}
	}
	index, err := n.srv.allocUpdates.submit(args.Alloc)
	if err != nil {
		return pool.EncodeError(err)
	}
	reply.Index = index
	return nil
}

// knownNode reads the node a write names: invalid without an ID, not
// found when the store has none.
func (n *Node) knownNode(id string) (*structs.Node, error) {
	if id == "" {
		return nil, structs.NewError(structs.ErrInvalid, "missing node id")
	}
	node, err := n.srv.fsm.State().Snapshot().NodeByID(nil, id)
	if err != nil {
		return nil, err
	}
	if node == nil {
		return nil, structs.NewError(structs.ErrNotFound, "node %q not found", id)
	}
	return node, nil
}

// UpdateDrain starts or stops draining a node. Starting makes the node
// ineligible; the drainer then migrates its allocations.
func (n *Node) UpdateDrain(args *structs.NodeUpdateDrainRequest, reply *structs.NodeUpdateStatusResponse) error {
	if done, err := n.srv.forwardWrite("Node.UpdateDrain", args, reply); done {
		return pool.EncodeError(err)
	}
	return pool.EncodeError(n.updateDrain(args, reply))
}

func (n *Node) updateDrain(args *structs.NodeUpdateDrainRequest, reply *structs.NodeUpdateStatusResponse) error {
	node, err := n.knownNode(args.NodeID)
	if err != nil {
		return err
	}
	now := time.Now()
	req := *args
	req.UpdatedAt = now.UnixNano()
	if s := args.DrainStrategy; s != nil {
		if s.Deadline < 0 {
			return structs.NewError(structs.ErrInvalid, "drain_spec.deadline must not be negative")
		}
		c := *s
		c.StartedAt = now.UnixNano()
		if node.Drain != nil {
			// Changing the deadline of a running drain keeps its start.
			c.StartedAt = node.Drain.StartedAt
		}
		c.ForceDeadline = 0
		if c.Deadline > 0 {
			c.ForceDeadline = c.StartedAt + int64(c.Deadline)
		}
		req.DrainStrategy = &c
	} else if node.Drain == nil && !args.MarkEligible {
		return structs.NewError(structs.ErrInvalid, "node %q is not draining", args.NodeID)
	}
	_, index, err := n.srv.raftApply(structs.NodeUpdateDrainRequestType, &req)
	if err != nil {
		return err
	}
	reply.NodeModifyIndex = index
	reply.Index = index
	if args.DrainStrategy == nil && args.MarkEligible {
		return n.evalsForEligible(node.ID, reply)
	}
	return nil
}

// UpdateEligibility sets whether the schedulers may place on a node.
func (n *Node) UpdateEligibility(args *structs.NodeUpdateEligibilityRequest, reply *structs.NodeUpdateStatusResponse) error {
	if done, err := n.srv.forwardWrite("Node.UpdateEligibility", args, reply); done {
		return pool.EncodeError(err)
	}
	return pool.EncodeError(n.updateEligibility(args, reply))
}

func (n *Node) updateEligibility(args *structs.NodeUpdateEligibilityRequest, reply *structs.NodeUpdateStatusResponse) error {
	node, err := n.knownNode(args.NodeID)
	if err != nil {
		return err
	}
	req := *args
	req.UpdatedAt = time.Now().UnixNano()
	_, index, err := n.srv.raftApply(structs.NodeUpdateEligibilityRequestType, &req)
	if err != nil {
		return err
	}
	reply.NodeModifyIndex = index
	reply.Index = index
	if args.Eligibility == structs.NodeEligible && node.SchedulingEligibility != structs.NodeEligible {
		return n.evalsForEligible(node.ID, reply)
	}
	return nil
}

// evalsForEligible evaluates the system jobs for a node that became
// eligible; blocked evaluations are woken by the store change itself.
func (n *Node) evalsForEligible(nodeID string, reply *structs.NodeUpdateStatusResponse) error {
	var r structs.NodeUpdateResponse
	if err := n.createNodeEvals(nodeID, true, &r); err != nil {
		return err
	}
	reply.EvalIDs = r.EvalIDs
	if r.EvalCreateIndex > 0 {
		reply.EvalCreateIndex = r.EvalCreateIndex
		reply.Index = r.Index
	}
	return nil
}

// Deregister removes nodes; their allocations are evaluated like those of
// a node that went down.
func (n *Node) Deregister(args *structs.NodeDeregisterRequest, reply *structs.GenericResponse) error {
	if done, err := n.srv.forwardWrite("Node.Deregister", args, reply); done {
		return pool.EncodeError(err)
	}
	if len(args.NodeIDs) == 0 {
		return pool.EncodeError(structs.NewError(structs.ErrInvalid, "missing node ids"))
	}
	snap := n.srv.fsm.State().Snapshot()
	evals, err := nodeEvals(snap, args.NodeIDs, false, time.Now().UnixNano())
	if err != nil {
		return pool.EncodeError(err)
	}
	_, index, err := n.srv.raftApply(structs.NodeDeregisterRequestType, args)
	if err != nil {
		return pool.EncodeError(err)
	}
	for _, id := range args.NodeIDs {
		n.srv.heartbeats.clear(id)
	}
	if len(evals) > 0 {
		if _, index, err = n.srv.raftApply(structs.EvalUpdateRequestType, &structs.EvalUpdateRequest{Evals: evals}); err != nil {
			return pool.EncodeError(err)
		}
	}
	reply.Index = index
	return nil
}
