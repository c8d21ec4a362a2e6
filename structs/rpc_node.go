package structs

import "time"

// NodeRegisterRequest registers a node or updates its fingerprint. The
// leader sets Node.StatusUpdatedAt (and the status, ready unless the node
// says otherwise) before the request becomes a Raft entry.
type NodeRegisterRequest struct {
	Node *Node
	WriteRequest
}

// NodeHeartbeatRequest says a node is alive. Heartbeats reset a timer on
// the leader and touch Raft only when the node's status changes.
type NodeHeartbeatRequest struct {
	NodeID string
	// Status is what the node believes it is: ready, or initializing
	// while it fingerprints.
	Status string
	WriteRequest
}

// NodeUpdateStatusRequest is the Raft entry that moves nodes to a new
// status (NodeUpdateStatusRequestType); the liveness controller batches
// the nodes whose TTL expired together.
type NodeUpdateStatusRequest struct {
	NodeIDs []string
	Status  string
	// Evals are the evaluations of the jobs on the nodes, written in the
	// same transaction so a node going down always reschedules.
	Evals     []*Evaluation
	UpdatedAt int64
	WriteRequest
}

// NodeUpdateResponse answers registrations and heartbeats.
type NodeUpdateResponse struct {
	// HeartbeatTTL is how long the leader waits for the next heartbeat
	// before it marks the node down. It grows with the cluster size.
	HeartbeatTTL time.Duration
	// Servers are the RPC addresses of the servers, leader first, so a
	// client can fail over without waiting for gossip.
	Servers         []string
	EvalIDs         []string
	EvalCreateIndex uint64
	NodeModifyIndex uint64
	Index           uint64
}

// NodeUpdateDrainRequest starts (DrainStrategy set) or stops (nil) a drain.
type NodeUpdateDrainRequest struct {
	NodeID        string
	DrainStrategy *DrainStrategy
	// MarkEligible makes the node eligible again when a drain is cancelled.
	MarkEligible bool
	Evals        []*Evaluation
	UpdatedAt    int64
	WriteRequest
}

// NodeUpdateEligibilityRequest sets a node's scheduling eligibility.
type NodeUpdateEligibilityRequest struct {
	NodeID      string
	Eligibility string
	Evals       []*Evaluation
	UpdatedAt   int64
	WriteRequest
}

// NodeUpdateStatusResponse answers drain and eligibility changes.
type NodeUpdateStatusResponse struct {
	EvalIDs         []string `json:"eval_ids,omitempty"`
	EvalCreateIndex uint64   `json:"eval_create_index,omitempty"`
	NodeModifyIndex uint64   `json:"node_modify_index"`
	Index           uint64   `json:"index"`
}

// NodeSpecificRequest reads one node, or the allocations of one node.
type NodeSpecificRequest struct {
	NodeID string
	QueryOptions
}

// SingleNodeResponse carries one node, nil when it does not exist.
type SingleNodeResponse struct {
	Node *Node
	QueryMeta
}

// NodeListRequest lists nodes, by ID prefix.
type NodeListRequest struct {
	QueryOptions
}

// NodeListResponse carries node stubs.
type NodeListResponse struct {
	Nodes []*NodeListStub
	QueryMeta
}

// NodeAllocsResponse carries the allocations of one node, terminal ones
// included, so the client can stop what the servers stopped.
type NodeAllocsResponse struct {
	Allocs []*Allocation
	QueryMeta
}

// AllocUpdateRequest carries clients' allocation updates. Only the fields
// a client owns are taken from each allocation: ClientStatus,
// ClientDescription, TaskStates, DeploymentStatus and ModifyTime. One
// batch is one Raft entry (AllocClientUpdateRequestType).
type AllocUpdateRequest struct {
	Alloc []*Allocation
	// Evals are written in the same transaction: the leader adds one per
	// job with a failed allocation, so it is rescheduled.
	Evals     []*Evaluation
	UpdatedAt int64
	WriteRequest
}

// AllocSpecificRequest reads one allocation.
type AllocSpecificRequest struct {
	AllocID string
	QueryOptions
}

// SingleAllocResponse carries one allocation, nil when it does not exist.
type SingleAllocResponse struct {
	Alloc *Allocation
	QueryMeta
}

// AllocListRequest lists allocations of a namespace ("*" for all), by ID
// prefix.
type AllocListRequest struct {
	QueryOptions
}

// AllocListResponse carries allocation stubs.
type AllocListResponse struct {
	Allocations []*AllocListStub
	QueryMeta
}

// JobAllocationsResponse carries the allocations of one job.
type JobAllocationsResponse struct {
	Allocations []*AllocListStub
	QueryMeta
}

// JobPlanRequest asks what registering Job would do, without doing it.
type JobPlanRequest struct {
	Job  *Job
	Diff bool
	WriteRequest
}

// JobPlanResponse is the dry run's answer.
type JobPlanResponse struct {
	Annotations    *PlanAnnotations        `json:"annotations,omitempty"`
	FailedTGAllocs map[string]*AllocMetric `json:"failed_tg_allocs,omitempty"`
	// JobModifyIndex is the current job's, for a later conditional
	// `job run -check-index`.
	JobModifyIndex uint64   `json:"job_modify_index"`
	Diff           *JobDiff `json:"diff,omitempty"`
	Warnings       []string `json:"warnings,omitempty"`
	Index          uint64   `json:"index"`
}

// AllocGCRequest removes terminal allocations (AllocGCRequestType).
type AllocGCRequest struct {
	AllocIDs []string
	WriteRequest
}

// JobBatchDeregisterRequest purges stopped jobs that have nothing left
// (JobBatchDeregisterRequestType): the garbage collector's entry.
type JobBatchDeregisterRequest struct {
	Jobs []NamespacedID
	WriteRequest
}

// NamespacedID names an object in a namespace.
type NamespacedID struct {
	Namespace string
	ID        string
}

// AllocUpdateDesiredTransitionRequest sets desired transitions on
// allocations and writes the evaluations that act on them, in one entry
// (AllocUpdateDesiredTransitionRequestType).
type AllocUpdateDesiredTransitionRequest struct {
	Allocs map[string]*DesiredTransition
	Evals  []*Evaluation
	WriteRequest
}

// NodeDeregisterRequest removes nodes from the cluster
// (NodeDeregisterRequestType).
type NodeDeregisterRequest struct {
	NodeIDs []string
	WriteRequest
}

// NodeClientAllocsResponse is what a client watches: the allocations of
// its node as ID -> AllocModifyIndex, and in full those the servers
// changed after the request's MinQueryIndex (all of them when it is 0).
// A node with many allocations so receives only what changed, jobs
// included, and needs no second call for it. A client that finds an ID
// whose index moved but that is not in Changed (a server of an older
// version answered) fetches it with Alloc.GetAllocs.
type NodeClientAllocsResponse struct {
	Allocs  map[string]uint64
	Changed []*Allocation
	QueryMeta
}

// Delta compares the answer with seen, the AllocModifyIndex of each
// allocation the client holds: it returns the allocations of Changed the
// client does not hold at that index, and the IDs whose index moved that
// Changed does not carry, which the client must fetch.
func (r *NodeClientAllocsResponse) Delta(seen map[string]uint64) (changed []*Allocation, fetch []string) {
	carried := make(map[string]bool, len(r.Changed))
	for _, a := range r.Changed {
		if idx, ok := r.Allocs[a.ID]; !ok || idx != a.AllocModifyIndex {
			continue // not what the list says: fetch it
		}
		carried[a.ID] = true
		if seen[a.ID] != a.AllocModifyIndex {
			changed = append(changed, a)
		}
	}
	for id, idx := range r.Allocs {
		if seen[id] != idx && !carried[id] {
			fetch = append(fetch, id)
		}
	}
	return changed, fetch
}

// Sync brings seen, the AllocModifyIndex of each allocation a client
// holds, up to date with the answer: it returns what the client must
// apply, the allocations Changed carries and those get fetched (with
// Alloc.GetAllocs, at the answer's index), records their indexes and
// forgets the IDs the answer no longer lists. When get fails, seen is
// left as it was.
func (r *NodeClientAllocsResponse) Sync(seen map[string]uint64, get func(*AllocsGetRequest) ([]*Allocation, error)) ([]*Allocation, error) {
	changed, fetch := r.Delta(seen)
	if len(fetch) > 0 {
		req := &AllocsGetRequest{AllocIDs: fetch}
		req.MinQueryIndex = r.Index
		req.AllowStale = true
		got, err := get(req)
		if err != nil {
			return nil, err
		}
		changed = append(changed, got...)
	}
	for _, a := range changed {
		seen[a.ID] = a.AllocModifyIndex
	}
	for id := range seen {
		if _, ok := r.Allocs[id]; !ok {
			delete(seen, id) // stopped and garbage collected
		}
	}
	return changed, nil
}

// AllocsGetRequest fetches allocations by ID.
type AllocsGetRequest struct {
	AllocIDs []string
	QueryOptions
}

// AllocsGetResponse carries the allocations found, in request order;
// IDs that no longer exist are left out.
type AllocsGetResponse struct {
	Allocs []*Allocation
	QueryMeta
}

// AllocStopRequest stops one allocation; the scheduler places a
// replacement, as for a migration (Alloc.Stop).
type AllocStopRequest struct {
	AllocID string
	WriteRequest
}

// AllocStopResponse names the evaluation that replaces the allocation.
type AllocStopResponse struct {
	EvalID string `json:"eval_id"`
	Index  uint64 `json:"index"`
}
