package scheduler

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/drover-sh/drover/structs"
)

// MemState is an in-memory State for tests: objects go in through the
// Upsert methods and come out as the store would give them. Every write
// bumps the index. It is safe for concurrent use.
type MemState struct {
	mu          sync.RWMutex
	index       uint64
	nodes       map[string]*structs.Node
	jobs        map[nsKey]*structs.Job
	allocs      map[string]*structs.Allocation
	byNode      map[string]map[string]*structs.Allocation
	byJob       map[nsKey]map[string]*structs.Allocation
	evals       map[string]*structs.Evaluation
	deployments map[string]*structs.Deployment
}

type nsKey struct{ ns, id string }

var _ State = (*MemState)(nil)

// NewMemState returns an empty state at index 1.
func NewMemState() *MemState {
	return &MemState{
		index:       1,
		nodes:       make(map[string]*structs.Node),
		jobs:        make(map[nsKey]*structs.Job),
		allocs:      make(map[string]*structs.Allocation),
		byNode:      make(map[string]map[string]*structs.Allocation),
		byJob:       make(map[nsKey]map[string]*structs.Allocation),
		evals:       make(map[string]*structs.Evaluation),
		deployments: make(map[string]*structs.Deployment),
	}
}

// next bumps the index; the caller holds the write lock.
func (m *MemState) next() uint64 {
	m.index++
	return m.index
}

// UpsertNode stores a copy of the node.
func (m *MemState) UpsertNode(node *structs.Node) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := node.Copy()
	idx := m.next()
	c.CreateIndex, c.ModifyIndex = idx, idx
	if old, ok := m.nodes[c.ID]; ok {
		c.CreateIndex = old.CreateIndex
	}
	m.nodes[c.ID] = c
}

// UpsertJob stores a copy of the job. As in the store, a job whose spec
// changed gets the next version and a new JobModifyIndex.
func (m *MemState) UpsertJob(job *structs.Job) *structs.Job {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := job.Copy()
	idx := m.next()
	c.ModifyIndex = idx
	if old, ok := m.jobs[nsKey{c.Namespace, c.ID}]; ok {
		c.CreateIndex = old.CreateIndex
		c.Version, c.JobModifyIndex = old.Version, old.JobModifyIndex
		if old.SpecChanged(c) {
			c.Version = old.Version + 1
			c.JobModifyIndex = idx
		}
	} else {
		c.CreateIndex, c.JobModifyIndex = idx, idx
		c.Version = 0
	}
	m.jobs[nsKey{c.Namespace, c.ID}] = c
	return c
}

// UpsertAllocs stores copies of the allocations as given (client and
// desired status included), replacing those with the same ID.
func (m *MemState) UpsertAllocs(allocs ...*structs.Allocation) {
	m.mu.Lock()
	defer m.mu.Unlock()
	idx := m.next()
	for _, a := range allocs {
		c := a.Copy()
		c.ModifyIndex, c.AllocModifyIndex = idx, idx
		c.CreateIndex = idx
		if old, ok := m.allocs[c.ID]; ok {
			c.CreateIndex = old.CreateIndex
		}
		m.putAlloc(c)
	}
}

func (m *MemState) putAlloc(a *structs.Allocation) {
	if old, ok := m.allocs[a.ID]; ok && old.NodeID != a.NodeID {
		delete(m.byNode[old.NodeID], a.ID)
	}
	m.allocs[a.ID] = a
	if m.byNode[a.NodeID] == nil {
		m.byNode[a.NodeID] = make(map[string]*structs.Allocation)
	}
	m.byNode[a.NodeID][a.ID] = a
	k := nsKey{a.Namespace, a.JobID}
	if m.byJob[k] == nil {
		m.byJob[k] = make(map[string]*structs.Allocation)
	}
	m.byJob[k][a.ID] = a
}

// UpsertEvals stores copies of the evaluations.
func (m *MemState) UpsertEvals(evals ...*structs.Evaluation) {
	m.mu.Lock()
	defer m.mu.Unlock()
	idx := m.next()
	for _, e := range evals {
		c := e.Copy()
		c.ModifyIndex = idx
		c.CreateIndex = idx
		if old, ok := m.evals[c.ID]; ok {
			c.CreateIndex = old.CreateIndex
		}
		m.evals[c.ID] = c
	}
}

// UpsertDeployment stores a copy of the deployment.
func (m *MemState) UpsertDeployment(d *structs.Deployment) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.putDeployment(d.Copy(), m.next())
}

func (m *MemState) putDeployment(d *structs.Deployment, idx uint64) {
	d.CreateIndex, d.ModifyIndex = idx, idx
	if old, ok := m.deployments[d.ID]; ok {
		d.CreateIndex = old.CreateIndex
	}
	m.deployments[d.ID] = d
}

// Nodes returns every node, sorted by ID.
func (m *MemState) Nodes() ([]*structs.Node, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]*structs.Node, 0, len(m.nodes))
	for _, n := range m.nodes {
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b *structs.Node) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// NodeByID returns the node, or nil.
func (m *MemState) NodeByID(id string) (*structs.Node, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.nodes[id], nil
}

// JobByID returns the job, or nil.
func (m *MemState) JobByID(namespace, id string) (*structs.Job, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.jobs[nsKey{namespace, id}], nil
}

// AllocsByJob returns the job's allocations sorted by creation.
func (m *MemState) AllocsByJob(namespace, jobID string) ([]*structs.Allocation, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return sortedAllocs(m.byJob[nsKey{namespace, jobID}]), nil
}

// AllocsByNode returns the node's allocations sorted by creation.
func (m *MemState) AllocsByNode(nodeID string) ([]*structs.Allocation, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return sortedAllocs(m.byNode[nodeID]), nil
}

// NodeUsage adds up the node's live allocations.
func (m *MemState) NodeUsage(nodeID string) (*structs.NodeUsage, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	u := &structs.NodeUsage{NodeID: nodeID}
	for _, a := range sortedAllocs(m.byNode[nodeID]) {
		if !a.TerminalStatus() {
			u.Add(a)
		}
	}
	if u.Allocs == 0 {
		return nil, nil
	}
	return u, nil
}

func sortedAllocs(set map[string]*structs.Allocation) []*structs.Allocation {
	out := make([]*structs.Allocation, 0, len(set))
	for _, a := range set {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b *structs.Allocation) int {
		return cmp.Or(cmp.Compare(a.CreateIndex, b.CreateIndex), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// AllocByID returns the allocation, or nil.
func (m *MemState) AllocByID(id string) (*structs.Allocation, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.allocs[id], nil
}

// EvalByID returns the evaluation, or nil.
func (m *MemState) EvalByID(id string) (*structs.Evaluation, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.evals[id], nil
}

// LatestDeploymentByJob returns the job's most recently created
// deployment, or nil.
func (m *MemState) LatestDeploymentByJob(namespace, jobID string) (*structs.Deployment, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var latest *structs.Deployment
	for _, d := range m.deployments {
		if d.Namespace != namespace || d.JobID != jobID {
			continue
		}
		if latest == nil || d.CreateIndex > latest.CreateIndex || (d.CreateIndex == latest.CreateIndex && d.ID > latest.ID) {
			latest = d
		}
	}
	return latest, nil
}

// Index is the index of the last write.
func (m *MemState) Index() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.index
}

// applyPlan commits the parts of plan whose nodes pass check, the way the
// leader's plan applier and the store do: a node's part is committed
// whole or refused whole.
func (m *MemState) applyPlan(plan *structs.Plan, reject func(nodeID string) bool) *structs.PlanResult {
	res := &structs.PlanResult{
		NodeUpdate:     make(map[string][]*structs.Allocation),
		NodeAllocation: make(map[string][]*structs.Allocation),
	}
	nodeIDs := make(map[string]bool)
	for id := range plan.NodeUpdate {
		nodeIDs[id] = true
	}
	for id := range plan.NodeAllocation {
		nodeIDs[id] = true
	}
	// The test's hook runs unlocked: it may write to the state, as a
	// racing plan would.
	rejected := make(map[string]bool)
	for _, id := range sortedKeys(nodeIDs) {
		rejected[id] = reject != nil && reject(id)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var ok []string
	for _, id := range sortedKeys(nodeIDs) {
		if reason := m.checkNode(plan, id, rejected[id]); reason != "" {
			res.RejectedNodes = append(res.RejectedNodes, &structs.PlanRejection{NodeID: id, Reason: reason})
			continue
		}
		ok = append(ok, id)
	}
	idx := m.next()
	res.AllocIndex = idx
	if len(res.RejectedNodes) > 0 {
		res.RefreshIndex = idx
	}
	for _, id := range ok {
		for _, stop := range plan.NodeUpdate[id] {
			cur, exists := m.allocs[stop.ID]
			if !exists {
				continue
			}
			c := cur.Copy()
			c.DesiredStatus, c.DesiredDescription = stop.DesiredStatus, stop.DesiredDescription
			if stop.ClientStatus == structs.AllocClientLost {
				c.ClientStatus = structs.AllocClientLost
			}
			c.ModifyIndex, c.AllocModifyIndex = idx, idx
			m.putAlloc(c)
		}
		res.NodeUpdate[id] = plan.NodeUpdate[id]
		for _, a := range plan.NodeAllocation[id] {
			c := a.Copy()
			c.ModifyIndex, c.AllocModifyIndex = idx, idx
			if c.Job == nil {
				c.Job = plan.Job
			}
			if cur, exists := m.allocs[c.ID]; exists {
				// The client owns its status.
				c.CreateIndex = cur.CreateIndex
				c.ClientStatus, c.ClientDescription, c.TaskStates = cur.ClientStatus, cur.ClientDescription, cur.TaskStates
				if c.DeploymentStatus == nil {
					c.DeploymentStatus = cur.DeploymentStatus
				}
			} else {
				c.CreateIndex = idx
				if prev, ok := m.allocs[c.PreviousAllocation]; ok {
					p := prev.Copy()
					p.NextAllocation = c.ID
					p.ModifyIndex = idx
					m.putAlloc(p)
				}
			}
			m.putAlloc(c)
		}
		if len(plan.NodeAllocation[id]) > 0 {
			res.NodeAllocation[id] = plan.NodeAllocation[id]
		}
	}
	if d := plan.Deployment; d != nil {
		m.putDeployment(d.Copy(), idx)
		res.Deployment = d
	}
	for _, u := range plan.DeploymentUpdates {
		if d, ok := m.deployments[u.DeploymentID]; ok {
			c := d.Copy()
			c.Status, c.StatusDescription = u.Status, u.StatusDescription
			c.ModifyIndex = idx
			m.deployments[c.ID] = c
		}
	}
	res.DeploymentUpdates = plan.DeploymentUpdates
	return res
}

// checkNode says why the plan's part on node id cannot be committed, or
// "" when it can: the node must exist and be ready for placements, and
// everything on it must fit.
func (m *MemState) checkNode(plan *structs.Plan, id string, rejected bool) string {
	if rejected {
		return "rejected by the test"
	}
	if len(plan.NodeAllocation[id]) == 0 {
		return ""
	}
	node := m.nodes[id]
	if node == nil {
		return "node does not exist"
	}
	if node.Status != structs.NodeStatusReady {
		return "node is not ready"
	}
	removed := make(map[string]bool)
	for _, a := range plan.NodeUpdate[id] {
		removed[a.ID] = true
	}
	for _, a := range plan.NodeAllocation[id] {
		removed[a.ID] = true
	}
	var proposed []*structs.Allocation
	for _, a := range m.byNode[id] {
		if !removed[a.ID] {
			proposed = append(proposed, a)
		}
	}
	proposed = append(proposed, plan.NodeAllocation[id]...)
	if fit, dim := AllocsFit(node, proposed); !fit {
		return "resources exhausted: " + dim
	}
	return ""
}

// Harness runs schedulers against a MemState and is their Planner: it
// records what they submit and applies each plan to the state, so the
// next Process sees the previous one's result.
type Harness struct {
	State   *MemState
	Logger  hclog.Logger
	Options Options
	// Now is the scheduler's clock; time.Now when nil.
	Now func() time.Time
	// Reject, when set, refuses the plan's part on the nodes for which it
	// returns true, as the plan applier does when another plan took the
	// node's capacity first.
	Reject func(nodeID string) bool

	mu           sync.Mutex
	Plans        []*structs.Plan
	Results      []*structs.PlanResult
	CreateEvals  []*structs.Evaluation
	UpdateEvals  []*structs.Evaluation
	ReblockEvals []*structs.Evaluation
}

var _ Planner = (*Harness)(nil)

// NewHarness returns a harness over an empty MemState.
func NewHarness() *Harness {
	return &Harness{State: NewMemState(), Logger: hclog.NewNullLogger()}
}

// Process runs the scheduler of the evaluation's type on it.
func (h *Harness) Process(eval *structs.Evaluation) error {
	f, ok := Builtin(h.Options)[eval.Type]
	if !ok {
		return fmt.Errorf("no scheduler for evaluation type %q", eval.Type)
	}
	now := h.Now
	if now == nil {
		now = time.Now
	}
	return f(h.Logger, h.State, h, now).Process(eval)
}

// SubmitPlan records and applies the plan; a partial commit returns the
// state to refresh from.
func (h *Harness) SubmitPlan(plan *structs.Plan) (*structs.PlanResult, State, error) {
	res := h.State.applyPlan(plan, h.Reject)
	h.mu.Lock()
	h.Plans = append(h.Plans, plan)
	h.Results = append(h.Results, res)
	h.mu.Unlock()
	if len(res.RejectedNodes) > 0 {
		return res, h.State, nil
	}
	return res, nil, nil
}

// UpdateEval records and stores the evaluation.
func (h *Harness) UpdateEval(e *structs.Evaluation) error {
	h.record(&h.UpdateEvals, e)
	return nil
}

// CreateEval records and stores the evaluation.
func (h *Harness) CreateEval(e *structs.Evaluation) error {
	h.record(&h.CreateEvals, e)
	return nil
}

// ReblockEval records and stores the evaluation.
func (h *Harness) ReblockEval(e *structs.Evaluation) error {
	h.record(&h.ReblockEvals, e)
	return nil
}

func (h *Harness) record(list *[]*structs.Evaluation, e *structs.Evaluation) {
	c := e.Copy()
	h.mu.Lock()
	*list = append(*list, c)
	h.mu.Unlock()
	h.State.UpsertEvals(c)
}

// LastPlan returns the last plan submitted, or nil.
func (h *Harness) LastPlan() *structs.Plan {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.Plans) == 0 {
		return nil
	}
	return h.Plans[len(h.Plans)-1]
}

// LastEval returns the last final status written, or nil.
func (h *Harness) LastEval() *structs.Evaluation {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.UpdateEvals) == 0 {
		return nil
	}
	return h.UpdateEvals[len(h.UpdateEvals)-1]
}
