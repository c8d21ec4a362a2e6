package scheduler

import (
	"path"
	"strconv"
	"strings"

	"github.com/drover-sh/drover/structs"
)

// FeasibleIterator yields the nodes that pass its checks, each once per
// Reset.
type FeasibleIterator interface {
	Next() *structs.Node
	Reset()
}

// FeasibilityChecker decides about one node; it records why it refused
// in the evaluation context's metric.
type FeasibilityChecker interface {
	Feasible(*structs.Node) bool
}

// staticIterator yields a fixed list of nodes. A pass starts where the
// previous one stopped, so consecutive placements that each look at only
// a few nodes (the limit) still visit the whole cluster in turn.
//
// The first pref nodes are preferred: passes cycle through them alone
// while they supply what a placement looks for. A pass that has seen all
// of them goes on with the others, and from then on every pass cycles
// through all nodes: a preference orders the walk, it never hides a node.
type staticIterator struct {
	ctx    *evalContext
	nodes  []*structs.Node
	pref   int
	offset int
	seen   int
}

func (it *staticIterator) Next() *structs.Node {
	n := len(it.nodes)
	if it.seen >= n {
		return nil
	}
	if it.seen == it.pref {
		// Every preferred node was seen in this pass: go on with the
		// rest, which this pass has not seen, and prefer nothing more.
		it.offset, it.pref = it.pref, n
	}
	if it.offset >= it.pref {
		it.offset = 0
	}
	node := it.nodes[it.offset]
	it.offset++
	it.seen++
	it.ctx.metrics.NodesEvaluated++
	return node
}

func (it *staticIterator) Reset() { it.seen = 0 }

// setNodes sets the list; its first pref nodes are preferred.
func (it *staticIterator) setNodes(nodes []*structs.Node, pref int) {
	it.nodes = nodes
	it.pref = min(max(pref, 0), len(nodes))
	if it.pref == 0 {
		it.pref = len(nodes)
	}
	it.offset = 0
	it.seen = 0
}

// checkerIterator passes on the nodes every checker accepts.
type checkerIterator struct {
	source   FeasibleIterator
	checkers []FeasibilityChecker
}

func (it *checkerIterator) Next() *structs.Node {
next:
	for node := it.source.Next(); node != nil; node = it.source.Next() {
		for _, c := range it.checkers {
			if !c.Feasible(node) {
				continue next
			}
		}
		return node
	}
	return nil
}

func (it *checkerIterator) Reset() { it.source.Reset() }

// containerdDriver is the task driver every task uses.
const containerdDriver = "containerd"

// cniDriver is the node's CNI networking, which bridge and cni/<name>
// groups need.
const cniDriver = "cni"

// driverChecker refuses nodes whose containerd driver reports unhealthy,
// and, for groups with their own network, nodes whose CNI networking is
// unhealthy. A node that says nothing about drivers (a simulated one) is
// accepted.
type driverChecker struct {
	ctx *evalContext
	// needsCNI is set per group: bridge or cni/<name> network mode.
	needsCNI bool
}

func (c *driverChecker) setGroup(tg *structs.TaskGroup) { c.needsCNI = groupNeedsCNI(tg) }

func groupNeedsCNI(tg *structs.TaskGroup) bool {
	if tg.Network == nil {
		return false
	}
	m := tg.Network.Mode
	return m == structs.NetworkModeBridge || strings.HasPrefix(m, "cni/")
}

func (c *driverChecker) Feasible(node *structs.Node) bool {
	reason, ok := driversFit(node, c.needsCNI)
	if !ok {
		c.ctx.filterNode(node, reason)
	}
	return ok
}

// driversFit says whether node's runtime (and networking, when needed)
// can run a group, and if not, why.
func driversFit(node *structs.Node, needsCNI bool) (string, bool) {
	if d, ok := node.Drivers[containerdDriver]; ok && (!d.Detected || !d.Healthy) {
		return "driver containerd unhealthy", false
	}
	if needsCNI {
		if d, ok := node.Drivers[cniDriver]; ok && (!d.Detected || !d.Healthy) {
			return "cni networking unhealthy", false
		}
	}
	return "", true
}

// constraintChecker applies a list of compiled constraints.
type constraintChecker struct {
	ctx         *evalContext
	constraints []*matcher
}

func (c *constraintChecker) Feasible(node *structs.Node) bool {
	for _, m := range c.constraints {
		if !m.match(c.ctx, node) {
			c.ctx.filterNode(node, m.desc)
			return false
		}
	}
	return true
}

// targetKind says where a constraint's attribute or value comes from.
type targetKind uint8

const (
	targetLiteral targetKind = iota
	targetNodeID
	targetNodeName
	targetDatacenter
	targetClass
	targetAttr
	targetMeta
	targetUnknown
)

// target is a parsed "${attr.kernel.name}" or literal, so the hot loop
// does no string parsing.
type target struct {
	kind targetKind
	key  string
}

func parseTarget(s string) target {
	inner, ok := strings.CutPrefix(s, "${")
	if !ok {
		return target{kind: targetLiteral, key: s}
	}
	inner, ok = strings.CutSuffix(inner, "}")
	if !ok {
		return target{kind: targetLiteral, key: s}
	}
	switch inner {
	case "node.unique.id":
		return target{kind: targetNodeID}
	case "node.unique.name":
		return target{kind: targetNodeName}
	case "node.datacenter":
		return target{kind: targetDatacenter}
	case "node.class":
		return target{kind: targetClass}
	}
	if k, ok := strings.CutPrefix(inner, "attr."); ok {
		return target{kind: targetAttr, key: k}
	}
	if k, ok := strings.CutPrefix(inner, "meta."); ok {
		return target{kind: targetMeta, key: k}
	}
	return target{kind: targetUnknown, key: s}
}

// resolve returns the target's value on node, and whether it has one.
func (t target) resolve(node *structs.Node) (string, bool) {
	switch t.kind {
	case targetLiteral:
		return t.key, true
	case targetNodeID:
		return node.ID, true
	case targetNodeName:
		return node.Name, true
	case targetDatacenter:
		return node.Datacenter, true
	case targetClass:
		return node.NodeClass, node.NodeClass != ""
	case targetAttr:
		v, ok := node.Attributes[t.key]
		return v, ok
	case targetMeta:
		v, ok := node.Meta[t.key]
		return v, ok
	}
	return "", false
}

// matcher is a compiled constraint or affinity: attribute, operator,
// value.
type matcher struct {
	desc string
	op   string
	l, r target
}

func newMatcher(attribute, op, value string) *matcher {
	if op == "" {
		op = "="
	}
	return &matcher{
		desc: strings.TrimSpace(attribute + " " + op + " " + value),
		op:   op,
		l:    parseTarget(attribute),
		r:    parseTarget(value),
	}
}

func compileConstraints(cs []*structs.Constraint) []*matcher {
	var out []*matcher
	for _, c := range cs {
		if c == nil || c.Operator == "distinct_hosts" || c.Operator == "distinct_property" {
			continue
		}
		out = append(out, newMatcher(c.Attribute, c.Operator, c.Value))
	}
	return out
}

// match reports whether node satisfies the matcher. As in Nomad, a
// missing attribute fails every operator but "!=" and "is_not_set".
func (m *matcher) match(ctx *evalContext, node *structs.Node) bool {
	lv, lok := m.l.resolve(node)
	switch m.op {
	case "is_set":
		return lok
	case "is_not_set":
		return !lok
	}
	rv, rok := m.r.resolve(node)
	switch m.op {
	case "=", "==", "is":
		return lok && rok && lv == rv
	case "!=", "not":
		return !(lok && rok && lv == rv)
	}
	if !lok || !rok {
		return false
	}
	switch m.op {
	case "<", "<=", ">", ">=":
		return compareOrder(m.op, lv, rv)
	case "regexp":
		re := ctx.regexp(rv)
		return re != nil && re.MatchString(lv)
	case "version", "semver":
		return versionMatch(ctx.versionConstraint(rv), lv)
	case "set_contains":
		return setContains(lv, rv, true)
	case "set_contains_any":
		return setContains(lv, rv, false)
	}
	return false
}

// compareOrder compares numerically when both sides are numbers, else
// lexically.
func compareOrder(op, l, r string) bool {
	var c int
	lf, lerr := strconv.ParseFloat(l, 64)
	rf, rerr := strconv.ParseFloat(r, 64)
	switch {
	case lerr == nil && rerr == nil:
		switch {
		case lf < rf:
			c = -1
		case lf > rf:
			c = 1
		}
	default:
		c = strings.Compare(l, r)
	}
	switch op {
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	}
	return c >= 0
}

func versionMatch(checks []structs.VersionCheck, value string) bool {
	if len(checks) == 0 {
		return false
	}
	v, err := structs.ParseVersion(value)
	if err != nil {
		return false
	}
	for _, chk := range checks {
		c := structs.CompareVersions(v, chk.Version)
		var ok bool
		switch chk.Op {
		case "=":
			ok = c == 0
		case "!=":
			ok = c != 0
		case ">":
			ok = c > 0
		case ">=":
			ok = c >= 0
		case "<":
			ok = c < 0
		case "<=":
			ok = c <= 0
		case "~>":
			ok = c >= 0 && structs.CompareVersions(v, pessimisticCeiling(chk.Version)) < 0
		}
		if !ok {
			return false
		}
	}
	return true
}

// pessimisticCeiling is the exclusive upper bound of "~> v": the next
// release of the second-to-last part (~> 1.2.3 means < 1.3).
func pessimisticCeiling(v []int) []int {
	if len(v) == 1 {
		return []int{v[0] + 1}
	}
	c := append([]int(nil), v[:len(v)-1]...)
	c[len(c)-1]++
	return c
}

// setContains reports whether the comma-separated set have holds all
// (or, with all false, any) of the comma-separated want.
func setContains(have, want string, all bool) bool {
	for w := range strings.SplitSeq(want, ",") {
		w = strings.TrimSpace(w)
		found := false
		for h := range strings.SplitSeq(have, ",") {
			if strings.TrimSpace(h) == w {
				found = true
				break
			}
		}
		if found && !all {
			return true
		}
		if !found && all {
			return false
		}
	}
	return all
}

// distinctHostsChecker refuses nodes that already run an allocation of
// the job (job-level constraint) or of the group (group-level).
type distinctHostsChecker struct {
	ctx      *evalContext
	jobLevel bool
	group    bool
	tg       string
}

func (c *distinctHostsChecker) setGroup(job *structs.Job, tg *structs.TaskGroup) {
	c.jobLevel = hasOperator(job.Constraints, "distinct_hosts")
	c.group = hasOperator(tg.Constraints, "distinct_hosts")
	c.tg = tg.Name
}

func (c *distinctHostsChecker) Feasible(node *structs.Node) bool {
	if !c.jobLevel && !c.group {
		return true
	}
	for _, a := range c.ctx.jobAllocs[node.ID] {
		if c.jobLevel || a.TaskGroup == c.tg {
			c.ctx.filterNode(node, "distinct_hosts")
			return false
		}
	}
	return true
}

func hasOperator(cs []*structs.Constraint, op string) bool {
	for _, c := range cs {
		if c != nil && c.Operator == op {
			return true
		}
	}
	return false
}

// distinctPropertyChecker allows at most Value (default 1) allocations of
// the job (or group) per value of a node property.
type distinctPropertyChecker struct {
	ctx   *evalContext
	props []*distinctProperty
}

type distinctProperty struct {
	attr  target
	limit int
	tg    string // "" for a job-level constraint
	desc  string
	used  map[string]int
}

func (c *distinctPropertyChecker) setGroup(job *structs.Job, tg *structs.TaskGroup) {
	c.props = c.props[:0]
	add := func(cs []*structs.Constraint, group string) {
		for _, k := range cs {
			if k == nil || k.Operator != "distinct_property" {
				continue
			}
			limit := 1
			if n, err := strconv.Atoi(k.Value); err == nil && n > 0 {
				limit = n
			}
			p := &distinctProperty{attr: parseTarget(k.Attribute), limit: limit, tg: group,
				desc: "distinct_property " + k.Attribute, used: make(map[string]int)}
			c.props = append(c.props, p)
		}
	}
	add(job.Constraints, "")
	add(tg.Constraints, tg.Name)
	if len(c.props) == 0 {
		return
	}
	// The plan changes between selections, so the counts are taken
	// again for each one.
	for nodeID, allocs := range c.ctx.jobAllocs {
		if len(allocs) == 0 {
			continue
		}
		node := c.ctx.node(nodeID)
		if node == nil {
			continue
		}
		for _, p := range c.props {
			v, ok := p.attr.resolve(node)
			if !ok {
				continue
			}
			for _, a := range allocs {
				if p.tg == "" || a.TaskGroup == p.tg {
					p.used[v]++
				}
			}
		}
	}
}

func (c *distinctPropertyChecker) Feasible(node *structs.Node) bool {
	for _, p := range c.props {
		v, ok := p.attr.resolve(node)
		if !ok || p.used[v] >= p.limit {
			c.ctx.filterNode(node, p.desc)
			return false
		}
	}
	return true
}

// readyNodes returns the nodes that can take new allocations of a job in
// datacenters dcs, and how many of them each datacenter has.
func readyNodes(state State, dcs []string) ([]*structs.Node, map[string]int, error) {
	all, err := state.Nodes()
	if err != nil {
		return nil, nil, err
	}
	out := make([]*structs.Node, 0, len(all))
	byDC := make(map[string]int)
	for _, n := range all {
		if !n.Ready() || !inDatacenters(n.Datacenter, dcs) {
			continue
		}
		out = append(out, n)
		byDC[n.Datacenter]++
	}
	return out, byDC, nil
}

// inDatacenters reports whether dc matches one of the job's datacenters;
// "*" and other glob patterns match as in path.Match.
func inDatacenters(dc string, dcs []string) bool {
	for _, want := range dcs {
		if want == structs.AnyDatacenter || want == dc {
			return true
		}
		if strings.ContainsAny(want, "*?[") {
			if ok, _ := path.Match(want, dc); ok {
				return true
			}
		}
	}
	return false
}
