package command

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/api"
	"github.com/drover-sh/drover/structs"
)

const (
	node1 = "9f3c0000-aaaa-4bbb-8ccc-000000000001"
	node2 = "9f3c1111-aaaa-4bbb-8ccc-000000000002"
)

func nodeStubs() []*structs.NodeListStub {
	return []*structs.NodeListStub{
		{ID: node2, Name: "worker-b", Datacenter: "dc2", NodeClass: "edge", SchedulingEligibility: "ineligible", Drain: true, Status: "ready"},
		{ID: node1, Name: "worker-a", Datacenter: "dc1", SchedulingEligibility: "eligible", Status: "down"},
	}
}

func fullNode() *structs.Node {
	return &structs.Node{
		ID: node1, Name: "worker-a", Datacenter: "dc1", HTTPAddr: "10.0.0.5:4750",
		Attributes: map[string]string{"kernel.name": "linux", "cpu.arch": "amd64"},
		Meta:       map[string]string{"rack": "r1"},
		Resources:  &structs.NodeResources{CPU: 4000, Memory: 8192},
		Reserved:   &structs.NodeResources{CPU: 100, Memory: 256},
		Drivers: map[string]*structs.DriverInfo{
			"containerd": {Detected: true, Healthy: true},
			"cni":        {Detected: true, Healthy: false, HealthDescription: "no bridge plugin"},
		},
		Status: "ready", SchedulingEligibility: "eligible",
	}
}

func nodeAllocs() []*structs.Allocation {
	job := &structs.Job{ID: "web", Version: 3}
	return []*structs.Allocation{
		{ID: "aaaaaaaa-1111-4bbb-8ccc-000000000001", JobID: "web", Job: job, TaskGroup: "frontend", DesiredStatus: "run",
			ClientStatus: "running", CreateIndex: 30, CreateTime: t2,
			Resources: &structs.AllocatedResources{Tasks: map[string]*structs.Resources{"server": {CPU: 500, Memory: 256}}}},
		{ID: "bbbbbbbb-1111-4bbb-8ccc-000000000002", JobID: "web", Job: job, TaskGroup: "frontend", DesiredStatus: "stop",
			ClientStatus: "complete", CreateIndex: 10, CreateTime: t1,
			Resources: &structs.AllocatedResources{Tasks: map[string]*structs.Resources{"server": {CPU: 500, Memory: 256}}}},
	}
}

func TestNodeStatus_List(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /v1/nodes", nodeStubs())
	r := run(t, "node", "status")
	requireOK(t, r)
	require.Equal(t, lines(
		"ID        Name      DC   Class   Eligibility  Drain  Status",
		"9f3c0000  worker-a  dc1  <none>  eligible     false  down",
		"9f3c1111  worker-b  dc2  edge    ineligible   true   ready",
	), r.stdout)

	r = run(t, "node", "status", "-json")
	requireOK(t, r)
	require.Contains(t, r.stdout, `"scheduling_eligibility": "eligible"`)

	f.reply("GET /v1/nodes", []*structs.NodeListStub{})
	r = run(t, "node", "status")
	requireOK(t, r)
	require.Equal(t, "No nodes registered\n", r.stdout)
}

func TestNodeStatus_OneNode(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /v1/node/9f3c0", fullNode())
	f.reply("GET /v1/node/"+node1+"/allocations", nodeAllocs())
	r := run(t, "node", "status", "9f3c0")
	requireOK(t, r)
	require.Equal(t, lines(
		"ID                 = 9f3c0000",
		"Name               = worker-a",
		"Class              = <none>",
		"DC                 = dc1",
		"HTTP Addr          = 10.0.0.5:4750",
		"Drain              = false",
		"Eligibility        = eligible",
		"Status             = ready",
		"Status Description = <none>",
		"Drivers            = cni (unhealthy: no bridge plugin), containerd (healthy)",
		"",
		"Allocated Resources",
		"CPU           Memory",
		"500/3900 MHz  256/7936 MiB",
		"",
		"Allocations",
		"ID        Job ID  Task Group  Version  Desired  Status    Created",
		"aaaaaaaa  web     frontend    3        run      running   2026-11-23T02:30:00Z",
		"bbbbbbbb  web     frontend    3        stop     complete  2026-11-23T01:00:00Z",
	), r.stdout)

	r = run(t, "node", "status", "-verbose", "9f3c0")
	requireOK(t, r)
	require.Contains(t, r.stdout, "ID                 = "+node1+"\n")
	require.Contains(t, r.stdout, lines("Attributes", "cpu.arch    = amd64", "kernel.name = linux", "", "Meta", "rack = r1"))
}

func TestNodeStatus_AmbiguousPrefixListsTheNodes(t *testing.T) {
	f := newFakeAPI(t)
	f.fail("GET /v1/node/9f3c", http.StatusBadRequest, map[string]any{
		"error": "prefix \"9f3c\" matches 2 nodes", "code": "invalid", "field": "id"})
	f.reply("GET /v1/nodes", nodeStubs())
	r := run(t, "node", "status", "9f3c")
	require.Equal(t, 1, r.code)
	require.Equal(t, lines(
		`Error: prefix "9f3c" matches 2 nodes; use one of these IDs:`,
		"",
		"ID                                    Name      DC   Class   Eligibility  Drain  Status",
		node1+"  worker-a  dc1  <none>  eligible     false  down",
		node2+"  worker-b  dc2  edge    ineligible   true   ready",
	), r.stderr)
	require.Equal(t, []string{"9f3c"}, f.find("GET /v1/nodes").Query["prefix"])
}

func TestNodeStatus_Unknown(t *testing.T) {
	f := newFakeAPI(t)
	f.fail("GET /v1/node/zz", http.StatusNotFound, map[string]any{"error": "no node with ID or ID prefix \"zz\"", "code": "not_found"})
	r := run(t, "node", "status", "zz")
	require.Equal(t, 1, r.code)
	require.Equal(t, "Error: reading node \"zz\": no node with ID or ID prefix \"zz\"\n", r.stderr)
}

func TestNodeDrain(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /v1/node/9f3c0", fullNode())
	f.reply("PUT /v1/node/"+node1+"/drain", &structs.NodeUpdateStatusResponse{Index: 5})

	r := run(t, "node", "drain", "-enable", "-yes", "-deadline", "30m", "-ignore-system", "9f3c0")
	requireOK(t, r)
	require.Equal(t, "Node \"9f3c0000\" drain strategy set\n", r.stdout)
	require.JSONEq(t, `{"drain_spec": {"deadline": "30m0s", "ignore_system_jobs": true}, "mark_eligible": false}`,
		string(f.find("PUT /v1/node/"+node1+"/drain").Body))

	requireOK(t, run(t, "node", "drain", "-enable", "-yes", "9f3c0"))
	require.JSONEq(t, `{"drain_spec": {"deadline": "1h0m0s", "ignore_system_jobs": false}, "mark_eligible": false}`,
		string(f.find("PUT /v1/node/"+node1+"/drain").Body))
	requireOK(t, run(t, "node", "drain", "-enable", "-yes", "-force", "9f3c0"))
	require.JSONEq(t, `{"drain_spec": {"deadline": "-1s", "ignore_system_jobs": false}, "mark_eligible": false}`,
		string(f.find("PUT /v1/node/"+node1+"/drain").Body))

	r = run(t, "node", "drain", "-disable", "-yes", "9f3c0")
	requireOK(t, r)
	require.Equal(t, "Node \"9f3c0000\" drain strategy unset\n", r.stdout)
	require.JSONEq(t, `{"drain_spec": null, "mark_eligible": true}`, string(f.find("PUT /v1/node/"+node1+"/drain").Body))
	requireOK(t, run(t, "node", "drain", "-disable", "-yes", "-keep-ineligible", "9f3c0"))
	require.JSONEq(t, `{"drain_spec": null, "mark_eligible": false}`, string(f.find("PUT /v1/node/"+node1+"/drain").Body))
}

func TestNodeDrain_AsksFirst(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /v1/node/9f3c0", fullNode())
	f.reply("PUT /v1/node/"+node1+"/drain", &structs.NodeUpdateStatusResponse{Index: 5})

	r := runWithInput(t, "n\n", "node", "drain", "-enable", "9f3c0")
	require.Equal(t, 1, r.code)
	require.Equal(t, "Are you sure you want to enable drain mode for node \"worker-a\" (9f3c0000)? [y/N] Canceled: nothing changed\n", r.stdout)
	for _, req := range f.requests {
		require.NotEqual(t, "PUT", req.Method, "nothing was sent")
	}

	r = runWithInput(t, "yes\n", "node", "drain", "-enable", "9f3c0")
	requireOK(t, r)
	require.Contains(t, r.stdout, "Node \"9f3c0000\" drain strategy set\n")
}

func TestNodeDrain_UsageErrors(t *testing.T) {
	newFakeAPI(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"9f3c"}, "give exactly one of -enable and -disable (or -monitor alone)"},
		{[]string{"-enable", "-disable", "9f3c"}, "give exactly one of -enable and -disable (or -monitor alone)"},
		{[]string{"-disable", "-monitor", "9f3c"}, "-monitor watches a drain: it goes with -enable, or alone"},
		{[]string{"-enable", "-force", "-deadline", "1m", "9f3c"}, "give at most one of -deadline, -no-deadline and -force"},
		{[]string{"-enable", "-deadline", "-1m", "9f3c"}, "-deadline must be positive (use -no-deadline or -force)"},
		{[]string{"-enable"}, "missing argument: <node id>"},
	} {
		r := run(t, append([]string{"node", "drain"}, tc.args...)...)
		require.Equal(t, 1, r.code, tc.args)
		require.Equal(t, "Error: "+tc.want+"\nRun 'drover node drain -help' for usage.\n", r.stderr, tc.args)
	}
}

func TestNodeDrain_Monitor(t *testing.T) {
	f := newFakeAPI(t)
	draining := fullNode()
	draining.Drain = &structs.DrainStrategy{Deadline: structs.Duration(time.Hour)}
	f.reply("GET /v1/node/9f3c0", draining)
	// The blocking read of the full ID answers with the drain done.
	f.reply("GET /v1/node/"+node1, fullNode())
	f.reply("GET /v1/node/"+node1+"/allocations", nodeAllocs()[1:])
	r := run(t, "node", "drain", "-monitor", "9f3c0")
	requireOK(t, r)
	require.Equal(t, lines(
		`==> Monitoring the drain of node "9f3c0000"`,
		`    0 allocations left on node "9f3c0000"`,
		`==> Drain of node "9f3c0000" complete`,
	), r.stdout)
}

func TestNodeEligibility(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /v1/node/9f3c0", fullNode())
	f.reply("PUT /v1/node/"+node1+"/eligibility", &structs.NodeUpdateStatusResponse{Index: 5})
	r := run(t, "node", "eligibility", "-disable", "9f3c0")
	requireOK(t, r)
	require.Equal(t, "Node \"9f3c0000\" scheduling eligibility set: ineligible for scheduling\n", r.stdout)
	require.JSONEq(t, `{"eligibility": "ineligible"}`, string(f.find("PUT /v1/node/"+node1+"/eligibility").Body))

	r = run(t, "node", "eligibility", "-enable", "9f3c0")
	requireOK(t, r)
	require.Equal(t, "Node \"9f3c0000\" scheduling eligibility set: eligible for scheduling\n", r.stdout)

	r = run(t, "node", "eligibility", "9f3c0")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "Error: give exactly one of -enable and -disable\n")
}

// -self acts on the node of the agent the CLI talks to, for status,
// drain and eligibility alike; it takes no node ID, and an agent that
// runs no client is not a node.
func TestNode_Self(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /v1/agent/self", &api.AgentSelf{Name: "worker-a", NodeID: node1, Role: "client"})
	f.reply("GET /v1/node/"+node1, fullNode())
	f.reply("GET /v1/node/"+node1+"/allocations", nodeAllocs())
	f.reply("PUT /v1/node/"+node1+"/drain", &structs.NodeUpdateStatusResponse{Index: 5})
	f.reply("PUT /v1/node/"+node1+"/eligibility", &structs.NodeUpdateStatusResponse{Index: 6})

	r := run(t, "node", "status", "-self")
	requireOK(t, r)
	require.Contains(t, r.stdout, "worker-a")

	r = run(t, "node", "drain", "-enable", "-yes", "-self")
	requireOK(t, r)
	require.Equal(t, "Node \"9f3c0000\" drain strategy set\n", r.stdout)
	require.JSONEq(t, `{"drain_spec": {"deadline": "1h0m0s", "ignore_system_jobs": false}, "mark_eligible": false}`,
		string(f.find("PUT /v1/node/"+node1+"/drain").Body))

	r = run(t, "node", "eligibility", "-disable", "-self")
	requireOK(t, r)
	require.Equal(t, "Node \"9f3c0000\" scheduling eligibility set: ineligible for scheduling\n", r.stdout)

	for _, args := range [][]string{
		{"status", "-self", "9f3c"},
		{"drain", "-enable", "-yes", "-self", "9f3c"},
		{"eligibility", "-enable", "-self", "9f3c"},
	} {
		r = run(t, append([]string{"node"}, args...)...)
		require.Equal(t, 1, r.code, args)
		require.Equal(t, "Error: -self takes no node id\nRun 'drover node "+args[0]+" -help' for usage.\n", r.stderr, args)
	}

	f.reply("GET /v1/agent/self", &api.AgentSelf{Name: "s1", Role: "server"})
	r = run(t, "node", "drain", "-enable", "-yes", "-self")
	require.Equal(t, 1, r.code)
	require.Equal(t, "Error: agent s1 runs no client, so it is not a node (role server)\n", r.stderr)
}
