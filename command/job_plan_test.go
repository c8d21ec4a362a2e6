package command

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
)

// planJobs are a running version of web and the file's new one: one more
// instance, a new image, an env change and a new constraint.
func planJobs(t *testing.T) (*structs.Job, *structs.Job) {
	old, err := structs.ParseJob([]byte(webYAML))
	require.NoError(t, err)
	newer, err := structs.ParseJob([]byte(webYAML))
	require.NoError(t, err)
	g := newer.Groups[0]
	g.Count = 2
	g.Tasks[0].Image = "busybox:2"
	g.Tasks[0].Env = map[string]string{"MODE": "debug"}
	newer.Constraints = []*structs.Constraint{{Attribute: "${attr.kernel.name}", Operator: "=", Value: "linux"}}
	return old, newer
}

func TestJobPlan_PrintsDiffAndDryRun(t *testing.T) {
	f := newFakeAPI(t)
	old, newer := planJobs(t)
	f.reply("PUT /v1/job/web/plan", &structs.JobPlanResponse{
		Diff:           structs.DiffJobs(old, newer),
		Annotations:    &structs.PlanAnnotations{DesiredTGUpdates: map[string]*structs.DesiredUpdates{"frontend": {Place: 1, DestructiveUpdate: 1}}},
		JobModifyIndex: 42,
	})
	path := writeFile(t, "web.yaml", webYAML)
	r := run(t, "job", "plan", path)
	require.Equal(t, 1, r.code, r.stderr)
	require.Empty(t, r.stderr)
	require.Equal(t, lines(
		`~ Job: "web"`,
		`+ constraint {`,
		`  + attribute: "${attr.kernel.name}"`,
		`  + operator: "="`,
		`  + value: "linux"`,
		`  }`,
		`~ Task Group: "frontend" (1 create, 1 destructive update)`,
		`  ~ count: "1" => "2"`,
		`  ~ Task: "server" (forces create/destroy update)`,
		`    ~ image: "busybox" => "busybox:2"`,
		`    + env {`,
		`      + MODE: "debug"`,
		`      }`,
		``,
		`Scheduler dry-run:`,
		`- All tasks successfully allocated.`,
		``,
		`Job Modify Index: 42`,
		`To submit the job with version verification run:`,
		``,
		`drover job run -check-index 42 `+path,
	), r.stdout)
	req := f.find("PUT /v1/job/web/plan")
	require.Equal(t, webYAML, string(req.Body))
	require.Equal(t, []string{"true"}, req.Query["diff"])
}

func TestJobPlan_NoChangesExits0(t *testing.T) {
	f := newFakeAPI(t)
	old, _ := planJobs(t)
	f.reply("PUT /v1/job/web/plan", &structs.JobPlanResponse{
		Diff:           structs.DiffJobs(old, old),
		Annotations:    &structs.PlanAnnotations{DesiredTGUpdates: map[string]*structs.DesiredUpdates{"frontend": {Ignore: 1}}},
		JobModifyIndex: 42,
	})
	r := run(t, "job", "plan", writeFile(t, "web.yaml", webYAML))
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, lines(
		`  Job: "web"`,
		`  Task Group: "frontend" (1 ignore)`,
		``,
		`Scheduler dry-run:`,
		`- All tasks successfully allocated.`,
	))
}

func TestJobPlan_PlacementFailuresInPlainWords(t *testing.T) {
	f := newFakeAPI(t)
	_, newer := planJobs(t)
	f.reply("PUT /v1/job/web/plan", &structs.JobPlanResponse{
		Diff:        structs.DiffJobs(nil, newer),
		Annotations: &structs.PlanAnnotations{DesiredTGUpdates: map[string]*structs.DesiredUpdates{"frontend": {Place: 2}}},
		FailedTGAllocs: map[string]*structs.AllocMetric{"frontend": {
			NodesEvaluated: 5, NodesFiltered: 2, NodesExhausted: 3, CoalescedFailures: 2,
			ConstraintFiltered: map[string]int{"${attr.kernel.name} = windows": 2},
			DimensionExhausted: map[string]int{"memory": 3},
			NodesAvailable:     map[string]int{"dc1": 5, "dc2": 0},
		}},
	})
	r := run(t, "job", "plan", writeFile(t, "web.yaml", webYAML))
	require.Equal(t, 1, r.code, r.stderr)
	require.Contains(t, r.stdout, "+ Job: \"web\"\n")
	require.Contains(t, r.stdout, "+ Task Group: \"frontend\" (2 create)\n")
	require.Contains(t, r.stdout, "  + Task: \"server\" (forces create)\n")
	require.Contains(t, r.stdout, lines(
		`Scheduler dry-run:`,
		`- WARNING: Failed to place all allocations.`,
		`  Task Group "frontend" (failed to place 3 allocations):`,
		`    * No nodes are available in datacenter "dc2"`,
		`    * Constraint "${attr.kernel.name} = windows": 2 nodes filtered`,
		`    * Resources exhausted on 3 nodes: memory exhausted on 3 nodes`,
	))
}

func TestJobPlan_JSONAndNoDiff(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("PUT /v1/job/web/plan", &structs.JobPlanResponse{
		Annotations:    &structs.PlanAnnotations{DesiredTGUpdates: map[string]*structs.DesiredUpdates{"frontend": {InPlaceUpdate: 1}}},
		JobModifyIndex: 7,
	})
	r := run(t, "job", "plan", "-json", "-diff=false", writeFile(t, "web.yaml", webYAML))
	require.Equal(t, 1, r.code, "an in-place update is a change")
	var got structs.JobPlanResponse
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	require.Equal(t, uint64(7), got.JobModifyIndex)
	require.Equal(t, []string{"false"}, f.find("PUT /v1/job/web/plan").Query["diff"])
}

func TestJobPlan_ErrorsExit255(t *testing.T) {
	f := newFakeAPI(t)
	// A bad file: its problems, by line, and nothing sent.
	bad := writeFile(t, "bad.yaml", "id: web\ngroups:\n  - name: g\n    count: -1\n    tasks:\n      - name: t\n        image: x\n")
	r := run(t, "job", "plan", bad)
	require.Equal(t, 255, r.code)
	require.Equal(t, bad+":4:12: groups[0].count: must be >= 0, got -1\n", r.stderr)

	// The agent's error.
	f.fail("PUT /v1/job/web/plan", http.StatusServiceUnavailable, map[string]any{"error": "no cluster leader", "code": "no_leader"})
	path := writeFile(t, "web.yaml", webYAML)
	r = run(t, "job", "plan", path)
	require.Equal(t, 255, r.code)
	require.Equal(t, "Error: planning "+path+": no cluster leader\n", r.stderr)

	// Called the wrong way.
	r = run(t, "job", "plan")
	require.Equal(t, 255, r.code)
	require.Equal(t, "Error: missing argument: <file|->\nRun 'drover job plan -help' for usage.\n", r.stderr)
}
