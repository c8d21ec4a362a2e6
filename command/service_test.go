package command

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
)

func TestServiceList(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /v1/services", []*structs.ServiceListStub{
		{ServiceName: "api", Namespace: "default", Instances: 1},
		{ServiceName: "web", Namespace: "default", Tags: []string{"canary", "v1"}, Instances: 3},
	})
	r := run(t, "service", "list")
	requireOK(t, r)
	require.Equal(t, lines(
		"Service Name  Namespace  Instances  Tags",
		"api           default    1          -",
		"web           default    3          [canary,v1]",
	), r.stdout)

	r = run(t, "service", "list", "-namespace", "*", "-json")
	requireOK(t, r)
	require.Equal(t, []string{"*"}, f.find("GET /v1/services").Query["namespace"])
	var stubs []*structs.ServiceListStub
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &stubs))
	require.Len(t, stubs, 2)

	f.reply("GET /v1/services", []*structs.ServiceListStub{})
	r = run(t, "service", "list")
	requireOK(t, r)
	require.Equal(t, "No services found\n", r.stdout)
}

func TestServiceInfo(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /v1/service/web", []*structs.ServiceRegistration{
		{ID: "aaaaaaaa-0000-4000-8000-000000000001/web/http", ServiceName: "web", Namespace: "default",
			NodeID: "bbbbbbbb-0000-4000-8000-000000000002", JobID: "web", AllocID: "aaaaaaaa-0000-4000-8000-000000000001",
			Address: "172.26.64.5", Port: 8080, HostAddress: "192.168.1.10", HostPort: 23456, Tags: []string{"v1"}},
		{ID: "cccccccc-0000-4000-8000-000000000003/web/http", ServiceName: "web", Namespace: "default",
			NodeID: "bbbbbbbb-0000-4000-8000-000000000002", JobID: "web", AllocID: "cccccccc-0000-4000-8000-000000000003",
			Address: "192.168.1.10", Port: 8080},
	})
	r := run(t, "service", "info", "web")
	requireOK(t, r)
	require.Equal(t, lines(
		"Alloc ID  Node ID   Job ID  Address            Host Address        Tags",
		"aaaaaaaa  bbbbbbbb  web     172.26.64.5:8080   192.168.1.10:23456  [v1]",
		"cccccccc  bbbbbbbb  web     192.168.1.10:8080  -                   -",
	), r.stdout)

	r = run(t, "service", "info", "-json", "web")
	requireOK(t, r)
	var regs []*structs.ServiceRegistration
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &regs))
	require.Equal(t, 23456, regs[0].HostPort)

	f.fail("GET /v1/service/nope", http.StatusNotFound, map[string]any{
		"error": `service "nope" not found in namespace "default" (no healthy instances)`, "code": "not_found"})
	r = run(t, "service", "info", "nope")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, `service "nope" not found`)

	r = run(t, "service", "info")
	require.NotEqual(t, 0, r.code)
	require.Contains(t, r.stderr, "<service name>")
}
