package structs

import (
	"fmt"
	"sort"
	"strings"
)

// Plan is what one scheduler run asks the leader to commit for one job:
// allocations to stop and allocations to create or update, keyed by node
// so the plan applier can accept or reject each node's part on its own.
type Plan struct {
	EvalID   string `json:"eval_id"`
	Priority int    `json:"priority"`
	// Job is the version the plan was computed for (nil when the job was
	// purged).
	Job *Job `json:"job,omitempty"`
	// NodeUpdate holds allocations to stop, with DesiredStatus,
	// DesiredDescription and, for lost ones, ClientStatus already set.
	NodeUpdate map[string][]*Allocation `json:"node_update,omitempty"`
	// NodeAllocation holds new allocations and updates of existing ones
	// (same ID): in-place updates to a new job version, and annotations
	// such as FollowupEvalID on a failed allocation.
	NodeAllocation map[string][]*Allocation `json:"node_allocation,omitempty"`
	// Deployment is a deployment to create, or a new copy of the job's
	// current one with the scheduler's counters updated.
	Deployment        *Deployment               `json:"deployment,omitempty"`
	DeploymentUpdates []*DeploymentStatusUpdate `json:"deployment_updates,omitempty"`
	// Annotations explain the plan per group; `job plan` prints them.
	Annotations *PlanAnnotations `json:"annotations,omitempty"`
	// SnapshotIndex is the index of the state the plan was computed
	// against; the applier re-checks every node newer than it.
	SnapshotIndex uint64 `json:"snapshot_index"`
}

// PlanAnnotations say what a plan does to each group.
type PlanAnnotations struct {
	DesiredTGUpdates map[string]*DesiredUpdates `json:"desired_tg_updates,omitempty"`
}

// DesiredUpdates counts the changes the scheduler wants for one group.
type DesiredUpdates struct {
	Ignore            int `json:"ignore"`
	Place             int `json:"place"`
	Migrate           int `json:"migrate"`
	Stop              int `json:"stop"`
	InPlaceUpdate     int `json:"in_place_update"`
	DestructiveUpdate int `json:"destructive_update"`
	Reschedule        int `json:"reschedule"`
	RescheduleLater   int `json:"reschedule_later"`
	Lost              int `json:"lost"`
	Canary            int `json:"canary"`
}

func (d *DesiredUpdates) String() string {
	return fmt.Sprintf("(place %d) (in-place %d) (destructive %d) (canary %d) (stop %d) (migrate %d) (ignore %d) (reschedule %d/%d later) (lost %d)",
		d.Place, d.InPlaceUpdate, d.DestructiveUpdate, d.Canary, d.Stop, d.Migrate, d.Ignore, d.Reschedule, d.RescheduleLater, d.Lost)
}

// DeploymentStatusUpdate moves a deployment to a new status.
type DeploymentStatusUpdate struct {
	DeploymentID      string `json:"deployment_id"`
	Status            string `json:"status"`
	StatusDescription string `json:"status_description,omitempty"`
}

// AppendStoppedAlloc adds a stop of alloc to the plan. clientStatus, when
// not empty, overrides what the client reported: the scheduler marks
// allocations of down nodes lost, since their client cannot say so.
func (p *Plan) AppendStoppedAlloc(alloc *Allocation, desc, clientStatus string) {
	c := *alloc
	c.DesiredStatus = AllocDesiredStop
	c.DesiredDescription = desc
	if clientStatus != "" {
		c.ClientStatus = clientStatus
	}
	if p.NodeUpdate == nil {
		p.NodeUpdate = make(map[string][]*Allocation)
	}
	p.NodeUpdate[c.NodeID] = append(p.NodeUpdate[c.NodeID], &c)
}

// AppendAlloc adds a new or updated allocation to the plan.
func (p *Plan) AppendAlloc(alloc *Allocation) {
	if p.NodeAllocation == nil {
		p.NodeAllocation = make(map[string][]*Allocation)
	}
	p.NodeAllocation[alloc.NodeID] = append(p.NodeAllocation[alloc.NodeID], alloc)
}

// PopUpdate takes back the stop of alloc when it is the last one added for
// its node: a replacement that found no node must not leave its group one
// allocation short.
func (p *Plan) PopUpdate(alloc *Allocation) {
	existing := p.NodeUpdate[alloc.NodeID]
	n := len(existing)
	if n == 0 || existing[n-1].ID != alloc.ID {
		return
	}
	existing[n-1] = nil
	if n == 1 {
		delete(p.NodeUpdate, alloc.NodeID)
		return
	}
	p.NodeUpdate[alloc.NodeID] = existing[:n-1]
}

// IsNoOp reports whether the plan changes nothing.
func (p *Plan) IsNoOp() bool {
	return len(p.NodeUpdate) == 0 && len(p.NodeAllocation) == 0 &&
		p.Deployment == nil && len(p.DeploymentUpdates) == 0
}

// PlanResult is what the applier committed of a plan. A node's part is
// committed whole or not at all.
type PlanResult struct {
	NodeUpdate        map[string][]*Allocation  `json:"node_update,omitempty"`
	NodeAllocation    map[string][]*Allocation  `json:"node_allocation,omitempty"`
	Deployment        *Deployment               `json:"deployment,omitempty"`
	DeploymentUpdates []*DeploymentStatusUpdate `json:"deployment_updates,omitempty"`
	// RejectedNodes says which nodes' parts were refused, and why.
	RejectedNodes []*PlanRejection `json:"rejected_nodes,omitempty"`
	// RefreshIndex, when the commit was partial, is the index the
	// scheduler's state must reach before it plans again.
	RefreshIndex uint64 `json:"refresh_index,omitempty"`
	// AllocIndex is the Raft index the plan was committed at.
	AllocIndex uint64 `json:"alloc_index"`
}

// PlanRejection is one node whose part of a plan the applier refused.
type PlanRejection struct {
	NodeID string `json:"node_id"`
	Reason string `json:"reason"`
}

// FullCommit reports whether every allocation plan asked for was
// committed, with how many were asked for and how many made it.
func (r *PlanResult) FullCommit(plan *Plan) (bool, int, int) {
	expected, actual := 0, 0
	for node, allocs := range plan.NodeAllocation {
		expected += len(allocs)
		actual += len(r.NodeAllocation[node])
	}
	return actual == expected, expected, actual
}

// IsNoOp reports whether nothing was committed.
func (r *PlanResult) IsNoOp() bool {
	return len(r.NodeUpdate) == 0 && len(r.NodeAllocation) == 0 &&
		r.Deployment == nil && len(r.DeploymentUpdates) == 0
}

// ApplyPlanResultsRequest is the Raft entry of a committed plan
// (ApplyPlanResultsRequestType): one transaction writes the allocations,
// the stops, the deployment changes and the evaluations that follow from
// the plan.
type ApplyPlanResultsRequest struct {
	// Job is the version the plan was computed for. New allocations may
	// leave their Job nil to keep the entry small; updates of existing
	// allocations (in-place updates) must carry theirs.
	Job *Job `json:"job,omitempty"`
	// Allocs are placements and updates. For an existing allocation the
	// store keeps what the client owns (ClientStatus, TaskStates) unless
	// the scheduler marked it lost.
	Allocs []*Allocation `json:"allocs,omitempty"`
	// AllocsStopped carry only ID, DesiredStatus, DesiredDescription,
	// ClientStatus (set when the scheduler marked them lost) and
	// ModifyTime: the store applies them to its own copies.
	AllocsStopped     []*Allocation             `json:"allocs_stopped,omitempty"`
	Deployment        *Deployment               `json:"deployment,omitempty"`
	DeploymentUpdates []*DeploymentStatusUpdate `json:"deployment_updates,omitempty"`
	// EvalID is the evaluation whose plan this is.
	EvalID string `json:"eval_id"`
	// Evals are evaluations to write in the same transaction (follow-ups,
	// blocked ones).
	Evals     []*Evaluation `json:"evals,omitempty"`
	UpdatedAt int64         `json:"updated_at"`
	WriteRequest
}

// StoppedAllocDiff is the part of a stopped allocation that goes into
// ApplyPlanResultsRequest.AllocsStopped.
func StoppedAllocDiff(a *Allocation, now int64) *Allocation {
	return &Allocation{
		ID:                 a.ID,
		Namespace:          a.Namespace,
		NodeID:             a.NodeID,
		JobID:              a.JobID,
		TaskGroup:          a.TaskGroup,
		DesiredStatus:      a.DesiredStatus,
		DesiredDescription: a.DesiredDescription,
		ClientStatus:       a.ClientStatus,
		ModifyTime:         now,
	}
}

// PlacementError says why a group's allocations could not all be placed.
type PlacementError struct {
	TaskGroup string
	// Missing is how many allocations of the group found no node.
	Missing int
	Metric  *AllocMetric
}

func (e *PlacementError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "placing %d allocation(s) of group %q failed", e.Missing, e.TaskGroup)
	if m := e.Metric; m != nil {
		fmt.Fprintf(&b, ": %d node(s) evaluated", m.NodesEvaluated)
		if m.NodesEvaluated == 0 && len(m.NodesAvailable) == 0 {
			b.WriteString(", no node is ready in the job's datacenters")
		}
		writeCounts(&b, "filtered", m.NodesFiltered, m.ConstraintFiltered)
		writeCounts(&b, "exhausted", m.NodesExhausted, m.DimensionExhausted)
	}
	return b.String()
}

// writeCounts appends ", 3 filtered (reason 2, other 1)" in a stable order.
func writeCounts(b *strings.Builder, what string, n int, by map[string]int) {
	if n == 0 {
		return
	}
	fmt.Fprintf(b, ", %d %s", n, what)
	if len(by) == 0 {
		return
	}
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b.WriteString(" (")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(b, "%s: %d", k, by[k])
	}
	b.WriteString(")")
}

// PlanRejectedError is returned by a plan applier that refused a plan as a
// whole, e.g. because its evaluation is no longer outstanding.
type PlanRejectedError struct {
	EvalID string
	Reason string
}

func (e *PlanRejectedError) Error() string {
	return fmt.Sprintf("plan of evaluation %s rejected: %s", e.EvalID, e.Reason)
}
