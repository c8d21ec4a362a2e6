package scheduler

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
	"github.com/drover-sh/drover/structs/mock"
)

// TestConstraintOperators places a system job (one allocation per node
// that passes) with one constraint per case, so the nodes that got an
// allocation are exactly those the constraint let through.
func TestConstraintOperators(t *testing.T) {
	attrs := []struct {
		class string
		attrs map[string]string
		rack  string
	}{
		{"edge", map[string]string{"version": "1.2.3", "tags": "a,b,c", "num": "10"}, "r1"},
		{"core", map[string]string{"version": "2.0.0", "tags": "b", "num": "9"}, "r2"},
		{"", map[string]string{"num": "100"}, "r3"},
	}
	cases := []struct {
		attr, op, value string
		want            []int
	}{
		{"${meta.rack}", "=", "r1", []int{0}},
		{"${meta.rack}", "!=", "r1", []int{1, 2}},
		{"${attr.num}", "<", "10", []int{1}},
		{"${attr.num}", ">", "9", []int{0, 2}},
		{"${attr.num}", "<=", "10", []int{0, 1}},
		{"${attr.num}", ">=", "100", []int{2}},
		{"${node.class}", "regexp", "^(edge|core)$", []int{0, 1}},
		{"${attr.version}", "version", ">= 1.5, < 3", []int{1}},
		{"${attr.version}", "version", "~> 1.2.0", []int{0}},
		{"${attr.tags}", "set_contains", "a,b", []int{0}},
		{"${attr.tags}", "set_contains", "b", []int{0, 1}},
		{"${attr.version}", "is_set", "", []int{0, 1}},
		{"${attr.version}", "is_not_set", "", []int{2}},
		{"${node.datacenter}", "=", "dc1", []int{0, 1, 2}},
		{"${node.unique.name}", "=", "node-001", []int{1}},
		{"${node.class}", "=", "edge", []int{0}},
		{"${attr.missing}", "=", "x", nil},
	}
	for _, tc := range cases {
		t.Run(tc.attr+" "+tc.op+" "+tc.value, func(t *testing.T) {
			h := newTestHarness(t)
			var nodes []*structs.Node
			for i, a := range attrs {
				n := addNodes(h, 1, func(n *structs.Node) {
					n.Name = "node-00" + string(rune('0'+i))
					n.NodeClass = a.class
					n.Meta["rack"] = a.rack
					for k, v := range a.attrs {
						n.Attributes[k] = v
					}
				})[0]
				nodes = append(nodes, n)
			}
			job := mock.SystemJob()
			job.Groups[0].Constraints = []*structs.Constraint{{Attribute: tc.attr, Operator: tc.op, Value: tc.value}}
			job, _ = register(t, h, job)
			counts := perNode(liveAllocs(t, h, job))
			var got []int
			for i, n := range nodes {
				if counts[n.ID] > 0 {
					got = append(got, i)
				}
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestConstraintFilteredCounted(t *testing.T) {
	h := newTestHarness(t)
	addNodes(h, 4, func(n *structs.Node) { n.Attributes["cpu.arch"] = "arm64" })
	job := mock.Job()
	job.Groups[0].Constraints = []*structs.Constraint{{Attribute: "${attr.cpu.arch}", Operator: "=", Value: "amd64"}}
	register(t, h, job)
	m := requireComplete(t, h).FailedTGAllocs["web"]
	require.Equal(t, 4, m.NodesEvaluated)
	require.Equal(t, 4, m.NodesFiltered)
	require.Equal(t, map[string]int{"${attr.cpu.arch} = amd64": 4}, m.ConstraintFiltered)
	require.Empty(t, m.DimensionExhausted)
}

func TestDistinctHosts(t *testing.T) {
	h := newTestHarness(t)
	addNodes(h, 3)
	job := mock.Job()
	job.Groups[0].Count = 5
	job.Constraints = []*structs.Constraint{{Operator: "distinct_hosts"}}
	job, _ = register(t, h, job)
	live := liveAllocs(t, h, job)
	require.Len(t, live, 3)
	for _, n := range perNode(live) {
		require.Equal(t, 1, n)
	}
	m := requireComplete(t, h).FailedTGAllocs["web"]
	require.Equal(t, 3, m.ConstraintFiltered["distinct_hosts"])
}

func TestBinPackFillsNodesFirst(t *testing.T) {
	h := newTestHarness(t)
	nodes := addNodes(h, 2)
	small := func() *structs.Job {
		j := mock.Job()
		j.Groups[0].Count = 1
		j.Groups[0].Tasks[0].Resources.CPU = 1000
		return j
	}
	var allocs []*structs.Allocation
	for range 3 {
		job, _ := register(t, h, small())
		allocs = append(allocs, liveAllocs(t, h, job)...)
	}
	counts := perNode(allocs)
	require.Len(t, counts, 1, "three fit on one node, so one node takes them all")
	job, _ := register(t, h, small())
	allocs = append(allocs, liveAllocs(t, h, job)...)
	counts = perNode(allocs)
	require.Len(t, counts, 2, "the fourth does not fit and opens the other node")
	require.ElementsMatch(t, []int{3, 1}, []int{counts[nodes[0].ID], counts[nodes[1].ID]})
}

func TestSpreadAlgorithmSpreads(t *testing.T) {
	h := newTestHarness(t)
	h.Options.Algorithm = structs.SchedulerAlgorithmSpread
	nodes := addNodes(h, 2)
	var allocs []*structs.Allocation
	for range 4 {
		j := mock.Job()
		j.Groups[0].Count = 1
		job, _ := register(t, h, j)
		allocs = append(allocs, liveAllocs(t, h, job)...)
	}
	counts := perNode(allocs)
	require.Equal(t, 2, counts[nodes[0].ID])
	require.Equal(t, 2, counts[nodes[1].ID])
}

func TestJobAntiAffinitySpreadsReplicas(t *testing.T) {
	h := newTestHarness(t)
	addNodes(h, 4)
	job := mock.Job()
	job.Groups[0].Count = 4
	job, _ = register(t, h, job)
	counts := perNode(liveAllocs(t, h, job))
	require.Len(t, counts, 4, "replicas of a group avoid sharing a node")
}

func TestAffinityPrefersMatchingNodes(t *testing.T) {
	h := newTestHarness(t)
	addNodes(h, 5)
	preferred := addNodes(h, 1, func(n *structs.Node) { n.Meta["rack"] = "r2" })[0]
	job := mock.Job()
	job.Groups[0].Count = 1
	job.Affinities = []*structs.Affinity{{Attribute: "${meta.rack}", Operator: "=", Value: "r2", Weight: 100}}
	job, _ = register(t, h, job)
	live := liveAllocs(t, h, job)
	require.Len(t, live, 1)
	require.Equal(t, preferred.ID, live[0].NodeID)

	avoid := mock.Job()
	avoid.Groups[0].Count = 3
	avoid.Affinities = []*structs.Affinity{{Attribute: "${meta.rack}", Operator: "=", Value: "r2", Weight: -100}}
	avoid, _ = register(t, h, avoid)
	for _, a := range liveAllocs(t, h, avoid) {
		require.NotEqual(t, preferred.ID, a.NodeID)
	}
}

func TestSpreadBlockTargets(t *testing.T) {
	h := newTestHarness(t)
	r1 := addNodes(h, 3)
	r2 := addNodes(h, 3, func(n *structs.Node) { n.Meta["rack"] = "r2" })
	job := mock.Job()
	job.Groups[0].Count = 8
	job.Groups[0].Spreads = []*structs.Spread{{Attribute: "${meta.rack}", Weight: 100, Targets: []*structs.SpreadTarget{
		{Value: "r1", Percent: 25}, {Value: "r2", Percent: 75},
	}}}
	job, _ = register(t, h, job)
	counts := perNode(liveAllocs(t, h, job))
	sum := func(nodes []*structs.Node) int {
		n := 0
		for _, node := range nodes {
			n += counts[node.ID]
		}
		return n
	}
	require.Equal(t, 2, sum(r1))
	require.Equal(t, 6, sum(r2))
}

func TestPortsAvoidConflicts(t *testing.T) {
	h := newTestHarness(t)
	node := addNodes(h, 1, func(n *structs.Node) {
		n.Resources.MinDynamicPort = 20000
		n.Resources.MaxDynamicPort = 20004
	})[0]
	other := mock.AllocFor(mock.Job(), node.ID, 0)
	other.ClientStatus = structs.AllocClientRunning
	other.Resources.Ports = []*structs.AllocatedPort{
		{Label: "a", Value: 20000}, {Label: "b", Value: 20001}, {Label: "c", Value: 20003}, {Label: "d", Value: 9090},
	}
	h.State.UpsertAllocs(other)

	job := mock.Job()
	job.Groups[0].Count = 3
	job.Groups[0].Network.Ports = []*structs.Port{{Label: "http", To: 8080}}
	job, _ = register(t, h, job)
	live := liveAllocs(t, h, job)
	require.Len(t, live, 2, "two dynamic ports are left")
	var got []int
	for _, a := range live {
		got = append(got, a.Resources.Ports[0].Value)
	}
	slices.Sort(got)
	require.Equal(t, []int{20002, 20004}, got)
	m := requireComplete(t, h).FailedTGAllocs["web"]
	require.Equal(t, map[string]int{"ports": 1}, m.DimensionExhausted)

	// A static port already taken makes the node infeasible.
	static := mock.Job()
	static.Groups[0].Count = 1
	static.Groups[0].Network.Ports = []*structs.Port{{Label: "admin", Static: 9090, To: 9090}}
	static, _ = register(t, h, static)
	require.Empty(t, liveAllocs(t, h, static))
	require.Equal(t, map[string]int{"ports": 1}, requireComplete(t, h).FailedTGAllocs["web"].DimensionExhausted)
}

func TestStaticPortOncePerNode(t *testing.T) {
	h := newTestHarness(t)
	addNodes(h, 2)
	job := mock.Job()
	job.Groups[0].Count = 3
	job.Groups[0].Network.Ports = []*structs.Port{{Label: "admin", Static: 9090, To: 9090}, {Label: "http", To: 8080}}
	job, _ = register(t, h, job)
	live := liveAllocs(t, h, job)
	require.Len(t, live, 2)
	for _, n := range perNode(live) {
		require.Equal(t, 1, n)
	}
	for _, a := range live {
		require.Len(t, a.Resources.Ports, 2)
		require.Equal(t, 9090, a.Resources.Ports[0].Value)
		require.NotEqual(t, 9090, a.Resources.Ports[1].Value)
	}
}

func TestAllocsFit(t *testing.T) {
	node := mock.Node() // 3,900 MHz and 7,936 MiB after reservations
	a := mock.Alloc()
	a.NodeID = node.ID
	a.Resources.Tasks["server"] = &structs.Resources{CPU: 2000, Memory: 4000}
	a.Resources.Ports = []*structs.AllocatedPort{{Label: "http", Value: 20000}}
	b := a.Copy()
	b.ID = structs.GenerateUUID()
	b.Resources.Ports[0].Value = 20001

	fit, dim := AllocsFit(node, []*structs.Allocation{a, b})
	require.False(t, fit)
	require.Equal(t, "cpu", dim)

	b.Resources.Tasks["server"].CPU = 1900
	fit, dim = AllocsFit(node, []*structs.Allocation{a, b})
	require.False(t, fit)
	require.Equal(t, "memory", dim)

	b.Resources.Tasks["server"].Memory = 3936
	fit, _ = AllocsFit(node, []*structs.Allocation{a, b})
	require.True(t, fit)

	b.Resources.Ports[0].Value = 20000
	fit, dim = AllocsFit(node, []*structs.Allocation{a, b})
	require.False(t, fit)
	require.Equal(t, "ports", dim)

	b.DesiredStatus = structs.AllocDesiredStop
	fit, _ = AllocsFit(node, []*structs.Allocation{a, b})
	require.True(t, fit, "terminal allocations hold nothing")
}

func TestSpreadBlockEven(t *testing.T) {
	h := newTestHarness(t)
	var racks [3][]*structs.Node
	for i, rack := range []string{"r1", "r2", "r3"} {
		racks[i] = addNodes(h, 3, func(n *structs.Node) { n.Meta["rack"] = rack })
	}
	job := mock.Job()
	job.Groups[0].Count = 9
	job.Spreads = []*structs.Spread{{Attribute: "${meta.rack}", Weight: 100}}
	job, _ = register(t, h, job)
	counts := perNode(liveAllocs(t, h, job))
	for i, nodes := range racks {
		n := 0
		for _, node := range nodes {
			n += counts[node.ID]
		}
		require.Equal(t, 3, n, "rack r%d", i+1)
	}
}

// A node whose containerd is unhealthy gets nothing; one whose CNI
// networking is unhealthy gets host-network groups but no bridge ones.
func TestUnhealthyDriversFilterNodes(t *testing.T) {
	unhealthy := &structs.DriverInfo{Detected: true, Healthy: false, HealthDescription: "broken"}
	healthy := &structs.DriverInfo{Detected: true, Healthy: true}
	drivers := func(ctrd, cni *structs.DriverInfo) func(*structs.Node) {
		return func(n *structs.Node) {
			n.Drivers = map[string]*structs.DriverInfo{containerdDriver: ctrd, cniDriver: cni}
		}
	}
	for _, mode := range []string{structs.NetworkModeBridge, structs.NetworkModeHost} {
		t.Run(mode, func(t *testing.T) {
			h := newTestHarness(t)
			noRuntime := addNodes(h, 1, drivers(unhealthy, healthy))[0]
			noCNI := addNodes(h, 1, drivers(healthy, unhealthy))[0]
			job := mock.Job()
			job.Type = structs.JobTypeSystem
			job.Groups[0].Network = &structs.NetworkSpec{Mode: mode}
			job, _ = register(t, h, job)
			live := liveAllocs(t, h, job)
			on := perNode(live)
			require.Zero(t, on[noRuntime.ID], "no allocation where containerd is unhealthy")
			if mode == structs.NetworkModeBridge {
				require.Empty(t, live, "a bridge group needs CNI")
			} else {
				require.Equal(t, 1, on[noCNI.ID], "host networking does not need CNI")
			}
		})
	}
}

func TestUnhealthyCNIIsTheReasonGiven(t *testing.T) {
	h := newTestHarness(t)
	addNodes(h, 2, func(n *structs.Node) {
		n.Drivers = map[string]*structs.DriverInfo{cniDriver: {Detected: true, Healthy: false}}
	})
	job := mock.Job()
	job.Groups[0].Network = &structs.NetworkSpec{Mode: "cni/mynet"}
	register(t, h, job)
	m := requireComplete(t, h).FailedTGAllocs["web"]
	require.NotNil(t, m)
	require.Equal(t, 2, m.ConstraintFiltered["cni networking unhealthy"])
}
