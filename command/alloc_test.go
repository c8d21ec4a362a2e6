package command

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
)

const alloc1 = "5bd1c0a2-aaaa-4bbb-8ccc-000000000001"

func fullAlloc() *structs.Allocation {
	job := &structs.Job{ID: "web", Version: 3, Groups: []*structs.TaskGroup{{Name: "frontend",
		Tasks: []*structs.Task{{Name: "server"}, {Name: "sidecar"}}}}}
	at := func(min int) int64 { return time.Date(2026, 11, 23, 3, min, 0, 0, time.UTC).UnixNano() }
	return &structs.Allocation{
		ID: alloc1, Namespace: "default", EvalID: "44444444-aaaa-4bbb-8ccc-000000000004", Name: "web.frontend[0]",
		NodeID: node1, NodeName: "worker-a", JobID: "web", Job: job, TaskGroup: "frontend",
		DesiredStatus: "run", ClientStatus: "running", CreateTime: t1, ModifyTime: t2,
		Resources: &structs.AllocatedResources{
			Tasks: map[string]*structs.Resources{"server": {CPU: 500, Memory: 256}, "sidecar": {CPU: 100, Memory: 64}},
			Ports: []*structs.AllocatedPort{{Label: "http", Value: 23456, To: 8080}},
		},
		TaskStates: map[string]*structs.TaskState{"server": {
			State: "running", Restarts: 1, StartedAt: at(2), LastRestart: at(2),
			Events: []*structs.TaskEvent{
				{Type: "Received", Time: at(0), Message: "Task received by client"},
				{Type: "Terminated", Time: at(1), ExitCode: 137, OOMKilled: true},
				{Type: "Started", Time: at(2), Message: "Task started by client"},
			},
		}},
	}
}

func TestAllocStatus(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /v1/allocation/5bd1", fullAlloc())
	r := run(t, "alloc", "status", "5bd1")
	requireOK(t, r)
	require.Equal(t, lines(
		"ID                  = 5bd1c0a2",
		"Eval ID             = 44444444",
		"Name                = web.frontend[0]",
		"Node ID             = 9f3c0000",
		"Node Name           = worker-a",
		"Job ID              = web",
		"Namespace           = default",
		"Job Version         = 3",
		"Task Group          = frontend",
		"Client Status       = running",
		"Client Description  = <none>",
		"Desired Status      = run",
		"Desired Description = <none>",
		"Created             = 2026-11-23T01:00:00Z",
		"Modified            = 2026-11-23T02:30:00Z",
		"",
		"Allocation Addresses",
		"Label  Host Port  To",
		"http   23456      8080",
		"",
		`Task "server" is "running"`,
		"CPU      Memory",
		"500 MHz  256 MiB",
		"",
		"Started At     = 2026-11-23T03:02:00Z",
		"Finished At    = -",
		"Total Restarts = 1",
		"Last Restart   = 2026-11-23T03:02:00Z",
		"Failed         = false",
		"",
		"Recent Events:",
		"Time                  Type        Description",
		"2026-11-23T03:02:00Z  Started     Task started by client",
		"2026-11-23T03:01:00Z  Terminated  exit code 137; OOM killed",
		"2026-11-23T03:00:00Z  Received    Task received by client",
		"",
		`Task "sidecar" is "pending"`,
		"CPU      Memory",
		"100 MHz  64 MiB",
	), r.stdout)

	r = run(t, "alloc", "status", "-json", "5bd1")
	requireOK(t, r)
	var got structs.Allocation
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	require.Equal(t, alloc1, got.ID)

	r = run(t, "alloc", "status", "-verbose", "5bd1")
	requireOK(t, r)
	require.Contains(t, r.stdout, "ID                  = "+alloc1+"\n")
}

func TestAllocStatus_AmbiguousAndMissing(t *testing.T) {
	f := newFakeAPI(t)
	f.fail("GET /v1/allocation/5b", http.StatusBadRequest, map[string]any{
		"error": "prefix \"5b\" matches 2 allocations", "code": "invalid", "field": "id"})
	f.reply("GET /v1/allocations", webAllocs())
	r := run(t, "alloc", "status", "5b")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "Error: prefix \"5b\" matches 2 allocations; use one of these IDs:\n\n")
	require.Contains(t, r.stderr, "bbbbbbbb-1111-4bbb-8ccc-000000000002  dddddddd-1111-4bbb-8ccc-000000000002  frontend")
	q := f.find("GET /v1/allocations").Query
	require.Equal(t, []string{"5b"}, q["prefix"])
	require.Equal(t, []string{"*"}, q["namespace"], "allocation IDs are unique across namespaces")

	f.fail("GET /v1/allocation/zz", http.StatusNotFound, map[string]any{"error": "no allocation with ID or ID prefix \"zz\"", "code": "not_found"})
	r = run(t, "alloc", "status", "zz")
	require.Equal(t, 1, r.code)
	require.Equal(t, "Error: reading allocation \"zz\": no allocation with ID or ID prefix \"zz\"\n", r.stderr)
}
