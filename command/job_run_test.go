package command

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/api"
	"github.com/drover-sh/drover/structs"
)

const runEvalID = "44444444-aaaa-4bbb-8ccc-000000000004"

// evalFinished makes the fake answer the registration's evaluation as
// complete, with failed as its placement failures, and list one
// allocation it placed (and one of an older evaluation).
func evalFinished(f *fakeAPI, failed map[string]*structs.AllocMetric) {
	eval := &structs.Evaluation{ID: runEvalID, JobID: "web", Namespace: "default", TriggeredBy: "job-register",
		Status: structs.EvalStatusComplete, FailedTGAllocs: failed}
	if failed != nil {
		eval.BlockedEval = "55555555-aaaa-4bbb-8ccc-000000000005"
	}
	f.reply("GET /v1/evaluation/"+runEvalID, eval)
	allocs := webAllocs()
	allocs[1].EvalID = runEvalID
	f.reply("GET /v1/job/web/allocations", allocs)
}

func TestJobRun_WaitsForTheEvaluation(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("PUT /v1/jobs", registered(1))
	// pending, then complete: the monitor blocks on the index it saw.
	var calls atomic.Int32
	f.handle("GET /v1/evaluation/"+runEvalID, func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		eval := &structs.Evaluation{ID: runEvalID, JobID: "web", Status: structs.EvalStatusPending}
		if n > 1 {
			if got := r.URL.Query().Get("index"); got != "7" {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "index " + got + ", want the first read's 7", "code": "invalid"})
				return
			}
			eval.Status = structs.EvalStatusComplete
		}
		w.Header().Set(api.HeaderIndex, strconv.Itoa(int(6+n)))
		writeJSON(w, http.StatusOK, eval)
	})
	f.reply("GET /v1/job/web/allocations", []*structs.AllocListStub{})
	r := run(t, "job", "run", writeFile(t, "web.yaml", webYAML))
	requireOK(t, r)
	require.Equal(t, lines(
		`Job "web" registered: version 1, evaluation 44444444-aaaa-4bbb-8ccc-000000000004`,
		`==> Monitoring evaluation "44444444"`,
		`    Evaluation triggered by job "web"`,
		`    Evaluation status changed: "pending" -> "complete"`,
		`==> Evaluation "44444444" finished with status "complete"`,
	), r.stdout)
	require.EqualValues(t, 2, calls.Load())
}

func TestJobRun_PlacementFailureExits2(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("PUT /v1/jobs", registered(1))
	evalFinished(f, map[string]*structs.AllocMetric{"frontend": {
		NodesEvaluated: 3, NodesExhausted: 3, DimensionExhausted: map[string]int{"memory": 3}, CoalescedFailures: 2,
	}})
	r := run(t, "job", "run", writeFile(t, "web.yaml", webYAML))
	require.Equal(t, 2, r.code, r.stderr)
	require.Empty(t, r.stderr)
	require.Equal(t, lines(
		`Job "web" registered: version 1, evaluation 44444444-aaaa-4bbb-8ccc-000000000004`,
		`==> Monitoring evaluation "44444444"`,
		`    Evaluation triggered by job "web"`,
		`    Allocation "bbbbbbbb" created: node "dddddddd", group "frontend"`,
		`==> Evaluation "44444444" finished with status "complete" but failed to place all allocations:`,
		`    Task Group "frontend" (failed to place 3 allocations):`,
		`      * Resources exhausted on 3 nodes: memory exhausted on 3 nodes`,
		`    Evaluation "55555555" waiting for additional capacity to place remainder`,
	), r.stdout)
}

func TestJobRun_FailedEvaluationIsAnError(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("PUT /v1/jobs", registered(1))
	f.reply("GET /v1/evaluation/"+runEvalID, &structs.Evaluation{ID: runEvalID, JobID: "web",
		Status: structs.EvalStatusFailed, StatusDescription: "maximum attempts reached (5)"})
	f.reply("GET /v1/job/web/allocations", []*structs.AllocListStub{})
	r := run(t, "job", "run", writeFile(t, "web.yaml", webYAML))
	require.Equal(t, 1, r.code)
	require.Equal(t, "Error: evaluation \"44444444\" failed: maximum attempts reached (5)\n", r.stderr)
}

func TestJobRun_FollowsNextEval(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("PUT /v1/jobs", registered(1))
	next := "66666666-aaaa-4bbb-8ccc-000000000006"
	f.reply("GET /v1/evaluation/"+runEvalID, &structs.Evaluation{ID: runEvalID, JobID: "web",
		Status: structs.EvalStatusComplete, NextEval: next})
	f.reply("GET /v1/evaluation/"+next, &structs.Evaluation{ID: next, JobID: "web", TriggeredBy: "max-plan-attempts",
		Status: structs.EvalStatusComplete})
	f.reply("GET /v1/job/web/allocations", []*structs.AllocListStub{})
	r := run(t, "job", "run", writeFile(t, "web.yaml", webYAML))
	requireOK(t, r)
	require.Contains(t, r.stdout, `    Evaluation "44444444" continues in evaluation "66666666"`+"\n")
	require.Contains(t, r.stdout, `==> Evaluation "66666666" finished with status "complete"`+"\n")
}

func TestJobRun_CheckIndex(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("PUT /v1/jobs", registered(1))
	path := writeFile(t, "web.yaml", webYAML)
	requireOK(t, run(t, "job", "run", "-detach", "-check-index", "0", path))
	require.Equal(t, []string{"0"}, f.find("PUT /v1/jobs").Query["enforce_index"])
	requireOK(t, run(t, "job", "run", "-detach", path))
	require.Empty(t, f.find("PUT /v1/jobs").Query["enforce_index"])

	f.fail("PUT /v1/jobs", http.StatusConflict, map[string]any{
		"error": "job \"web\" modify index is 9, not 5", "code": "conflict"})
	r := run(t, "job", "run", "-check-index", "5", path)
	require.Equal(t, 1, r.code)
	require.Equal(t, "Error: submitting "+path+": job \"web\" modify index is 9, not 5\n", r.stderr)
}
