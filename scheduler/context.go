package scheduler

import (
	"hash/fnv"
	"math/rand/v2"
	"regexp"
	"slices"

	"github.com/hashicorp/go-hclog"

	"github.com/drover-sh/drover/structs"
)

// evalContext is what the iterators of one planning attempt share: the
// snapshot, the plan being built, the metric of the current selection,
// and caches that keep repeated placements cheap. Every change the
// scheduler makes to the plan goes through it, so the per-node usage it
// caches always equals "snapshot + plan".
type evalContext struct {
	state   State
	plan    *structs.Plan
	logger  hclog.Logger
	rng     *rand.Rand
	metrics structs.AllocMetric

	// usage caches what live allocations use on a node, loaded on first
	// visit and kept current as the plan grows.
	usage map[string]*structs.NodeUsage
	// jobAllocs holds the live allocations of the plan's job per node.
	jobAllocs map[string][]*structs.Allocation
	// nodes caches node lookups by ID.
	nodes map[string]*structs.Node

	regexps  map[string]*regexp.Regexp
	versions map[string][]structs.VersionCheck

	// pool holds the ranked nodes of the current selection, reused
	// between selections so the hot loop allocates nothing per node.
	pool []*RankedNode
	used int
}

func newEvalContext(state State, plan *structs.Plan, logger hclog.Logger, jobAllocs []*structs.Allocation, seed string) *evalContext {
	h := fnv.New64a()
	h.Write([]byte(seed))
	s := h.Sum64()
	ctx := &evalContext{
		state:     state,
		plan:      plan,
		logger:    logger,
		rng:       rand.New(rand.NewPCG(s, s>>1|1)),
		usage:     make(map[string]*structs.NodeUsage),
		jobAllocs: make(map[string][]*structs.Allocation),
		nodes:     make(map[string]*structs.Node),
		regexps:   make(map[string]*regexp.Regexp),
		versions:  make(map[string][]structs.VersionCheck),
	}
	for _, a := range jobAllocs {
		if !a.TerminalStatus() {
			ctx.jobAllocs[a.NodeID] = append(ctx.jobAllocs[a.NodeID], a)
		}
	}
	return ctx
}

// node returns a node by ID from the cache or the snapshot (nil when it
// is gone).
func (c *evalContext) node(id string) *structs.Node {
	if n, ok := c.nodes[id]; ok {
		return n
	}
	n, err := c.state.NodeByID(id)
	if err != nil {
		c.logger.Warn("reading node", "node_id", id, "error", err)
		n = nil
	}
	c.nodes[id] = n
	return n
}

// nodeUsage returns the usage of node: the store's usage row (what its
// live allocations take) corrected by what the plan already stops and
// places there. It is loaded on first use and kept current after.
func (c *evalContext) nodeUsage(node *structs.Node) *structs.NodeUsage {
	if u, ok := c.usage[node.ID]; ok {
		return u
	}
	u, err := c.loadUsage(node.ID)
	if err != nil {
		// An unreadable node is treated as full: placing blind could
		// overcommit it.
		c.logger.Warn("reading usage of node", "node_id", node.ID, "error", err)
		u = &structs.NodeUsage{NodeID: node.ID, CPU: 1 << 40, Memory: 1 << 40}
	}
	c.usage[node.ID] = u
	return u
}

func (c *evalContext) loadUsage(nodeID string) (*structs.NodeUsage, error) {
	row, err := c.state.NodeUsage(nodeID)
	if err != nil {
		return nil, err
	}
	u := &structs.NodeUsage{NodeID: nodeID}
	if row != nil {
		u = row.Copy()
	}
	stops := c.plan.NodeUpdate[nodeID]
	for i, s := range stops {
		if planHas(stops[:i], s.ID) {
			continue
		}
		a, err := c.state.AllocByID(s.ID)
		if err != nil {
			return nil, err
		}
		if a != nil && a.NodeID == nodeID && !a.TerminalStatus() {
			u.Remove(a)
		}
	}
	// Placements already in the plan; updates of allocations the row
	// counts (same ID on this node) do not change what the node uses.
	for _, a := range c.plan.NodeAllocation[nodeID] {
		if a.TerminalStatus() {
			continue
		}
		existing, err := c.state.AllocByID(a.ID)
		if err != nil {
			return nil, err
		}
		if existing == nil || existing.NodeID != nodeID {
			u.Add(a)
		}
	}
	return u, nil
}

func planHas(list []*structs.Allocation, id string) bool {
	for _, a := range list {
		if a.ID == id {
			return true
		}
	}
	return false
}

// stopAlloc adds the stop of alloc (as read from the snapshot) to the plan.
func (c *evalContext) stopAlloc(alloc *structs.Allocation, desc, clientStatus string) {
	c.plan.AppendStoppedAlloc(alloc, desc, clientStatus)
	if alloc.TerminalStatus() {
		return
	}
	if u, ok := c.usage[alloc.NodeID]; ok {
		u.Remove(alloc)
	}
	list := c.jobAllocs[alloc.NodeID]
	if i := slices.IndexFunc(list, func(a *structs.Allocation) bool { return a.ID == alloc.ID }); i >= 0 {
		c.jobAllocs[alloc.NodeID] = slices.Delete(list, i, i+1)
	}
}

// popStop takes back the stop of alloc added last for its node.
func (c *evalContext) popStop(alloc *structs.Allocation) {
	before := len(c.plan.NodeUpdate[alloc.NodeID])
	c.plan.PopUpdate(alloc)
	if len(c.plan.NodeUpdate[alloc.NodeID]) == before || alloc.TerminalStatus() {
		return
	}
	if u, ok := c.usage[alloc.NodeID]; ok {
		u.Add(alloc)
	}
	c.jobAllocs[alloc.NodeID] = append(c.jobAllocs[alloc.NodeID], alloc)
}

// placeAlloc adds a new allocation to the plan.
func (c *evalContext) placeAlloc(alloc *structs.Allocation) {
	c.plan.AppendAlloc(alloc)
	if u, ok := c.usage[alloc.NodeID]; ok {
		u.Add(alloc)
	}
	c.jobAllocs[alloc.NodeID] = append(c.jobAllocs[alloc.NodeID], alloc)
}

// updateAlloc adds an update of an existing allocation (same ID, same
// resources) to the plan.
func (c *evalContext) updateAlloc(alloc *structs.Allocation) {
	c.plan.AppendAlloc(alloc)
}

// resetSelect starts the metric and the ranked-node pool of a new
// selection.
func (c *evalContext) resetSelect() {
	m := &c.metrics
	m.NodesEvaluated, m.NodesFiltered, m.NodesExhausted, m.CoalescedFailures = 0, 0, 0, 0
	clear(m.ClassFiltered)
	clear(m.ConstraintFiltered)
	clear(m.DimensionExhausted)
	c.used = 0
}

// metric returns a copy of the current selection's metric.
func (c *evalContext) metric() *structs.AllocMetric {
	m := c.metrics.Copy()
	// Empty maps read as "nothing" in JSON either way; nil keeps the
	// stored evaluation small.
	for _, p := range []*map[string]int{&m.ClassFiltered, &m.ConstraintFiltered, &m.DimensionExhausted, &m.NodesAvailable} {
		if len(*p) == 0 {
			*p = nil
		}
	}
	return m
}

func (c *evalContext) filterNode(node *structs.Node, reason string) {
	m := &c.metrics
	m.NodesFiltered++
	if node.NodeClass != "" {
		if m.ClassFiltered == nil {
			m.ClassFiltered = make(map[string]int)
		}
		m.ClassFiltered[node.NodeClass]++
	}
	if reason != "" {
		if m.ConstraintFiltered == nil {
			m.ConstraintFiltered = make(map[string]int)
		}
		m.ConstraintFiltered[reason]++
	}
}

func (c *evalContext) exhaustNode(dimension string) {
	m := &c.metrics
	m.NodesExhausted++
	if m.DimensionExhausted == nil {
		m.DimensionExhausted = make(map[string]int)
	}
	m.DimensionExhausted[dimension]++
}

// ranked returns a ranked node from the pool for node.
func (c *evalContext) ranked(node *structs.Node) *RankedNode {
	if c.used == len(c.pool) {
		c.pool = append(c.pool, &RankedNode{})
	}
	r := c.pool[c.used]
	c.used++
	r.Node = node
	r.FinalScore = 0
	r.Scores = r.Scores[:0]
	r.Ports = r.Ports[:0]
	return r
}

func (c *evalContext) regexp(expr string) *regexp.Regexp {
	if re, ok := c.regexps[expr]; ok {
		return re
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		c.logger.Warn("invalid regular expression in constraint", "expression", expr, "error", err)
		re = nil
	}
	c.regexps[expr] = re
	return re
}

func (c *evalContext) versionConstraint(expr string) []structs.VersionCheck {
	if v, ok := c.versions[expr]; ok {
		return v
	}
	v, err := structs.ParseVersionConstraint(expr)
	if err != nil {
		c.logger.Warn("invalid version constraint", "constraint", expr, "error", err)
		v = nil
	}
	c.versions[expr] = v
	return v
}
