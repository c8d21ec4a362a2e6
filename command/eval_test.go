package command

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
)

func failedEval() *structs.Evaluation {
	return &structs.Evaluation{
		ID: "4e4c0f4e-aaaa-4bbb-8ccc-000000000001", Namespace: "default", Priority: 50, Type: "service",
		TriggeredBy: "job-register", JobID: "web", Status: "complete", CreateIndex: 12, CreateTime: t1, ModifyTime: t2,
		BlockedEval: "77777777-aaaa-4bbb-8ccc-000000000007",
		FailedTGAllocs: map[string]*structs.AllocMetric{
			"frontend": {NodesEvaluated: 1, NodesExhausted: 1, DimensionExhausted: map[string]int{"memory": 1}},
			"backend": {NodesEvaluated: 0, NodesAvailable: map[string]int{"dc1": 0}, CoalescedFailures: 1,
				ClassFiltered: map[string]int{"gpu": 2}},
		},
	}
}

func TestEvalStatus(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /v1/evaluation/4e4c", failedEval())
	r := run(t, "eval", "status", "4e4c")
	requireOK(t, r)
	require.Equal(t, lines(
		"ID                 = 4e4c0f4e",
		"Create Time        = 2026-11-23T01:00:00Z",
		"Modify Time        = 2026-11-23T02:30:00Z",
		"Status             = complete",
		"Status Description = <none>",
		"Type               = service",
		"Triggered By       = job-register",
		"Job ID             = web",
		"Namespace          = default",
		"Priority           = 50",
		"Placement Failures = true",
		"Blocked Eval       = 77777777",
		"",
		"Failed Placements",
		`Task Group "backend" (failed to place 2 allocations):`,
		"  * No nodes were eligible for evaluation",
		`  * No nodes are available in datacenter "dc1"`,
		`  * Class "gpu": 2 nodes filtered`,
		`Task Group "frontend" (failed to place 1 allocation):`,
		"  * Resources exhausted on 1 node: memory exhausted on 1 node",
		"",
		`Evaluation "77777777" waiting for additional capacity to place remainder`,
	), r.stdout)

	r = run(t, "eval", "status", "-json", "4e4c")
	requireOK(t, r)
	var got structs.Evaluation
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	require.Equal(t, failedEval(), &got)
}

func TestEvalStatus_NoFailures(t *testing.T) {
	f := newFakeAPI(t)
	e := failedEval()
	e.FailedTGAllocs, e.BlockedEval = nil, ""
	f.reply("GET /v1/evaluation/4e4c", e)
	r := run(t, "eval", "status", "4e4c")
	requireOK(t, r)
	require.Contains(t, r.stdout, "Placement Failures = false\n")
	require.NotContains(t, r.stdout, "Failed Placements")
}

func TestEvalStatus_AmbiguousPrefix(t *testing.T) {
	f := newFakeAPI(t)
	f.fail("GET /v1/evaluation/4", http.StatusBadRequest, map[string]any{
		"error": "prefix \"4\" matches 2 evaluations", "code": "invalid", "field": "id"})
	f.reply("GET /v1/evaluations", []*structs.Evaluation{failedEval(), {ID: "4f000000-aaaa-4bbb-8ccc-000000000002", JobID: "db"}})
	r := run(t, "eval", "status", "4")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "Error: prefix \"4\" matches 2 evaluations; use one of these IDs:\n")
	require.Contains(t, r.stderr, "4e4c0f4e-aaaa-4bbb-8ccc-000000000001  50")
}

func TestEvalList(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /v1/evaluations", webEvals())
	r := run(t, "eval", "list", "-job", "web", "-status", "pending")
	requireOK(t, r)
	require.Equal(t, lines(
		"ID        Priority  Triggered By  Job ID  Namespace  Status    Placement Failures",
		"22222222  50        node-update                      pending   false",
		"11111111  50        job-register                     complete  false",
	), r.stdout)
	q := f.find("GET /v1/evaluations").Query
	require.Equal(t, []string{"web"}, q["job"])
	require.Equal(t, []string{"pending"}, q["status"])

	r = run(t, "eval", "list", "-json")
	requireOK(t, r)
	var got []*structs.Evaluation
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	require.Len(t, got, 2)
	require.Empty(t, f.find("GET /v1/evaluations").Query["job"])

	f.reply("GET /v1/evaluations", []*structs.Evaluation{})
	r = run(t, "eval", "list")
	requireOK(t, r)
	require.Equal(t, "No evaluations found\n", r.stdout)
}

func TestJobStatus_ShowsPlacementFailures(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /v1/job/web", webJob())
	blocked := &structs.Evaluation{ID: failedEval().BlockedEval, Status: "blocked", CreateIndex: 13}
	f.reply("GET /v1/evaluations", []*structs.Evaluation{failedEval(), blocked})
	f.reply("GET /v1/job/web/allocations", []*structs.AllocListStub{})
	r := run(t, "job", "status", "web")
	requireOK(t, r)
	require.Contains(t, r.stdout, lines(
		"Submit Date = 2026-11-23T01:00:00Z",
		"",
		"Placement Failure",
		`Task Group "backend" (failed to place 2 allocations):`,
		"  * No nodes were eligible for evaluation",
		`  * No nodes are available in datacenter "dc1"`,
		`  * Class "gpu": 2 nodes filtered`,
		`Task Group "frontend" (failed to place 1 allocation):`,
		"  * Resources exhausted on 1 node: memory exhausted on 1 node",
		`Evaluation "77777777" waiting for additional capacity to place remainder`,
		"",
		"Latest Evaluations",
	))

	// A later evaluation that placed everything clears the section.
	fixed := &structs.Evaluation{ID: "88888888-aaaa-4bbb-8ccc-000000000008", Status: "complete", CreateIndex: 20}
	f.reply("GET /v1/evaluations", []*structs.Evaluation{failedEval(), blocked, fixed})
	r = run(t, "job", "status", "web")
	requireOK(t, r)
	require.NotContains(t, r.stdout, "Placement Failure")
}

func TestPlacementReasons(t *testing.T) {
	require.Equal(t, []string{"No reason was recorded"}, placementReasons(nil))
	require.Equal(t, []string{"Memory exhausted on 2 nodes"},
		placementReasons(&structs.AllocMetric{NodesEvaluated: 2, DimensionExhausted: map[string]int{"memory": 2}}))
	require.Equal(t, []string{"Resources exhausted on 1 node"},
		placementReasons(&structs.AllocMetric{NodesEvaluated: 1, NodesExhausted: 1}))
	require.Equal(t, []string{"3 nodes evaluated, none could take the allocation"},
		placementReasons(&structs.AllocMetric{NodesEvaluated: 3}))
}
