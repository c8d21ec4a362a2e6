package command

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/api"
	"github.com/drover-sh/drover/structs"
)

var (
	t1 = time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC).UnixNano()
	t2 = time.Date(2026, 11, 23, 2, 30, 0, 0, time.UTC).UnixNano()
)

func stubs() []*structs.JobListStub {
	return []*structs.JobListStub{
		{ID: "worker", Namespace: "default", Type: "batch", Priority: 100, Status: "pending", SubmitTime: t2},
		{ID: "web", Namespace: "default", Type: "service", Priority: 50, Status: "running", SubmitTime: t1},
		{ID: "old", Namespace: "default", Type: "system", Priority: 5, Status: "dead", Stop: true, SubmitTime: t1},
	}
}

func webJob() *structs.Job {
	return &structs.Job{
		ID: "web", Namespace: "default", Type: "service", Priority: 50, Datacenters: []string{"dc1", "dc2"},
		Status: "running", Version: 3, SubmitTime: t1, ModifyIndex: 40, JobModifyIndex: 40,
		Groups: []*structs.TaskGroup{{Name: "frontend", Count: 3}},
	}
}

func webEvals() []*structs.Evaluation {
	return []*structs.Evaluation{
		{ID: "11111111-aaaa-4bbb-8ccc-000000000001", Priority: 50, TriggeredBy: "job-register", Status: "complete", CreateIndex: 10, CreateTime: t1},
		{ID: "22222222-aaaa-4bbb-8ccc-000000000002", Priority: 50, TriggeredBy: "node-update", Status: "pending", CreateIndex: 30, CreateTime: t2},
	}
}

func webAllocs() []*structs.AllocListStub {
	return []*structs.AllocListStub{
		{ID: "aaaaaaaa-1111-4bbb-8ccc-000000000001", NodeID: "cccccccc-1111-4bbb-8ccc-000000000001", JobID: "web", JobVersion: 2,
			TaskGroup: "frontend", DesiredStatus: "stop", ClientStatus: "failed", CreateIndex: 20, CreateTime: t1},
		{ID: "bbbbbbbb-1111-4bbb-8ccc-000000000002", NodeID: "dddddddd-1111-4bbb-8ccc-000000000002", JobID: "web", JobVersion: 3,
			TaskGroup: "frontend", DesiredStatus: "run", ClientStatus: "running", CreateIndex: 41, CreateTime: t2},
	}
}

func TestJobStatus_ListsJobsInAlignedTable(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /v1/jobs", stubs())
	r := run(t, "job", "status")
	requireOK(t, r)
	require.Equal(t, lines(
		"ID      Type     Priority  Status          Submit Date",
		"old     system   5         dead (stopped)  2026-11-23T01:00:00Z",
		"web     service  50        running         2026-11-23T01:00:00Z",
		"worker  batch    100       pending         2026-11-23T02:30:00Z",
	), r.stdout)
	require.Empty(t, f.find("GET /v1/jobs").Query, "no namespace asked, none sent")
}

func TestJobStatus_AllNamespacesAddsAColumn(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /v1/jobs", []*structs.JobListStub{
		{ID: "web", Namespace: "prod", Type: "service", Priority: 50, Status: "running", SubmitTime: t1},
	})
	r := run(t, "job", "status", "-namespace", "*")
	requireOK(t, r)
	require.Equal(t, lines(
		"ID   Namespace  Type     Priority  Status   Submit Date",
		"web  prod       service  50        running  2026-11-23T01:00:00Z",
	), r.stdout)
	require.Equal(t, []string{"*"}, f.find("GET /v1/jobs").Query["namespace"])
}

func TestJobStatus_NoJobs(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /v1/jobs", []*structs.JobListStub{})
	r := run(t, "job", "status")
	requireOK(t, r)
	require.Equal(t, "No running jobs\n", r.stdout)

	r = run(t, "job", "status", "-json")
	requireOK(t, r)
	require.Equal(t, "[]\n", r.stdout)
}

func TestJobStatus_JSON(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /v1/jobs", stubs())
	r := run(t, "job", "status", "-json")
	requireOK(t, r)
	var got []*structs.JobListStub
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	require.Len(t, got, 3)
	require.Equal(t, "old", got[0].ID, "sorted by ID")
}

func TestJobStatus_OneJob(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /v1/job/web", webJob())
	f.reply("GET /v1/evaluations", webEvals())
	f.reply("GET /v1/job/web/allocations", webAllocs())
	r := run(t, "job", "status", "web")
	requireOK(t, r)
	require.Equal(t, lines(
		"ID          = web",
		"Namespace   = default",
		"Type        = service",
		"Priority    = 50",
		"Datacenters = dc1,dc2",
		"Status      = running",
		"Version     = 3",
		"Submit Date = 2026-11-23T01:00:00Z",
		"",
		"Latest Evaluations",
		"ID        Priority  Triggered By  Status    Created",
		"22222222  50        node-update   pending   2026-11-23T02:30:00Z",
		"11111111  50        job-register  complete  2026-11-23T01:00:00Z",
		"",
		"Allocations",
		"ID        Node ID   Task Group  Version  Desired  Status   Created",
		"bbbbbbbb  dddddddd  frontend    3        run      running  2026-11-23T02:30:00Z",
		"aaaaaaaa  cccccccc  frontend    2        stop     failed   2026-11-23T01:00:00Z",
	), r.stdout)
	q := f.find("GET /v1/evaluations").Query
	require.Equal(t, []string{"web"}, q["job"])
	require.Equal(t, []string{"default"}, q["namespace"])
}

func TestJobStatus_OneJobJSON(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /v1/job/web", webJob())
	f.reply("GET /v1/evaluations", webEvals())
	f.reply("GET /v1/job/web/allocations", webAllocs())
	r := run(t, "job", "status", "-json", "web")
	requireOK(t, r)
	var got struct {
		Job         *structs.Job             `json:"job"`
		Evaluations []*structs.Evaluation    `json:"evaluations"`
		Allocations []*structs.AllocListStub `json:"allocations"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	require.Equal(t, webJob(), got.Job)
	require.Len(t, got.Evaluations, 2)
	require.Equal(t, webAllocs(), got.Allocations)
	require.Equal(t, uint64(30), got.Evaluations[0].CreateIndex, "newest first")
}

func TestJobStatus_ShowsOnlyTheLatestEvaluations(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /v1/job/web", webJob())
	var evals []*structs.Evaluation
	for i := 1; i <= 7; i++ {
		evals = append(evals, &structs.Evaluation{ID: strings.Repeat(string(rune('0'+i)), 12), CreateIndex: uint64(i)})
	}
	f.reply("GET /v1/evaluations", evals)
	f.reply("GET /v1/job/web/allocations", []*structs.AllocListStub{})
	r := run(t, "job", "status", "web")
	requireOK(t, r)
	require.Contains(t, r.stdout, "77777777")
	require.NotContains(t, r.stdout, "22222222")
	require.Contains(t, r.stdout, "(2 older not shown; -json lists all)\n")
}

func TestJobStatus_UniquePrefix(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /v1/jobs", []*structs.JobListStub{{ID: "web", Namespace: "default"}})
	f.reply("GET /v1/job/web", webJob())
	f.reply("GET /v1/evaluations", []*structs.Evaluation{})
	f.reply("GET /v1/job/web/allocations", []*structs.AllocListStub{})
	r := run(t, "job", "status", "we")
	requireOK(t, r)
	require.Contains(t, r.stdout, "ID          = web\n")
	require.Contains(t, r.stdout, "Latest Evaluations\nNo evaluations\n")
	require.Contains(t, r.stdout, "Allocations\nNo allocations placed\n")
	require.Equal(t, []string{"we"}, f.find("GET /v1/jobs").Query["prefix"])
	f.find("GET /v1/job/we") // the exact ID was tried first
}

func TestJobStatus_AmbiguousPrefix(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /v1/jobs", []*structs.JobListStub{
		{ID: "web-b", Namespace: "default", Type: "service", Priority: 50, Status: "running", SubmitTime: t1},
		{ID: "web-a", Namespace: "default", Type: "batch", Priority: 50, Status: "dead", SubmitTime: t2},
	})
	r := run(t, "job", "status", "web")
	require.Equal(t, 1, r.code)
	require.Empty(t, r.stdout)
	require.Equal(t, lines(
		`Error: prefix "web" matches 2 jobs; use one of these IDs:`,
		"",
		"ID     Namespace  Type     Priority  Status   Submit Date",
		"web-a  default    batch    50        dead     2026-11-23T02:30:00Z",
		"web-b  default    service  50        running  2026-11-23T01:00:00Z",
	), r.stderr)
}

func TestJobStatus_NoMatch(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /v1/jobs", []*structs.JobListStub{})
	r := run(t, "job", "status", "nope")
	require.Equal(t, 1, r.code)
	require.Equal(t, "Error: no job with ID or ID prefix \"nope\"\n", r.stderr)
}

func TestJobStatus_ServerErrorIsNotAPrefixSearch(t *testing.T) {
	f := newFakeAPI(t)
	f.fail("GET /v1/job/web", http.StatusServiceUnavailable, map[string]any{"error": "no cluster leader", "code": "no_leader"})
	r := run(t, "job", "status", "web")
	require.Equal(t, 1, r.code)
	require.Equal(t, "Error: reading job \"web\": no cluster leader\n", r.stderr)
}

func TestStatus_IsJobStatus(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /v1/jobs", stubs())
	want := run(t, "job", "status")
	got := run(t, "status")
	requireOK(t, got)
	require.Equal(t, want.stdout, got.stdout)

	f.reply("GET /v1/job/web", webJob())
	f.reply("GET /v1/evaluations", webEvals())
	f.reply("GET /v1/job/web/allocations", webAllocs())
	want = run(t, "job", "status", "web")
	got = run(t, "status", "web")
	requireOK(t, got)
	require.Equal(t, want.stdout, got.stdout)
}

func TestJobStop(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /v1/job/web", webJob())
	f.reply("DELETE /v1/job/web", &structs.JobDeregisterResponse{EvalID: "33333333-aaaa-4bbb-8ccc-000000000003"})

	r := run(t, "job", "stop", "web")
	requireOK(t, r)
	require.Equal(t, "Job \"web\" stopped: evaluation 33333333-aaaa-4bbb-8ccc-000000000003\n", r.stdout)
	req := f.find("DELETE /v1/job/web")
	require.Empty(t, req.Query["purge"])
	require.Equal(t, []string{"default"}, req.Query["namespace"], "the job's namespace")

	r = run(t, "job", "stop", "-purge", "web")
	requireOK(t, r)
	require.Equal(t, "Job \"web\" purged: evaluation 33333333-aaaa-4bbb-8ccc-000000000003\n", r.stdout)
	require.Equal(t, []string{"true"}, f.find("DELETE /v1/job/web").Query["purge"])
}

func TestJobStop_ByPrefixInAnotherNamespace(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /v1/jobs", []*structs.JobListStub{{ID: "web", Namespace: "prod"}})
	job := webJob()
	job.Namespace = "prod"
	f.reply("GET /v1/job/web", job)
	f.reply("DELETE /v1/job/web", &structs.JobDeregisterResponse{EvalID: "e"})
	r := run(t, "job", "stop", "-namespace", "*", "w")
	requireOK(t, r)
	require.Equal(t, "Job \"web\" stopped: evaluation e\n", r.stdout)
	require.Equal(t, []string{"prod"}, f.find("DELETE /v1/job/web").Query["namespace"])
}

func TestJobInspect(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /v1/job/web", webJob())
	r := run(t, "job", "inspect", "web")
	requireOK(t, r)
	require.True(t, strings.HasPrefix(r.stdout, "{\n  \"id\": \"web\",\n"), r.stdout)
	var got structs.Job
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	require.Equal(t, webJob(), &got)
}

func TestJobHistory(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /v1/job/web", webJob())
	f.reply("GET /v1/job/web/versions", map[string]any{"versions": []*structs.Job{
		{ID: "web", Version: 1, SubmitTime: t1, ModifyIndex: 12},
		{ID: "web", Version: 12, Stop: true, SubmitTime: t2, ModifyIndex: 140},
		{ID: "web", Version: 0, SubmitTime: t1, ModifyIndex: 7},
	}})
	r := run(t, "job", "history", "web")
	requireOK(t, r)
	require.Equal(t, lines(
		"Version  Stable  Stop   Submit Date           Modify Index",
		"12       false   true   2026-11-23T02:30:00Z  140",
		"1        false   false  2026-11-23T01:00:00Z  12",
		"0        false   false  2026-11-23T01:00:00Z  7",
	), r.stdout)

	r = run(t, "job", "history", "-json", "web")
	requireOK(t, r)
	var got []*structs.Job
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	require.Len(t, got, 3)
	require.Equal(t, uint64(12), got[0].Version)
}

const webYAML = `id: web
type: service
groups:
  - name: frontend
    count: 1
    tasks:
      - name: server
        image: busybox
`

func registered(version uint64) *structs.JobRegisterResponse {
	return &structs.JobRegisterResponse{EvalID: "44444444-aaaa-4bbb-8ccc-000000000004", JobVersion: version, JobModifyIndex: 50}
}

func TestJobRun_YAML(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("PUT /v1/jobs", registered(2))
	evalFinished(f, nil)
	path := writeFile(t, "web.yaml", webYAML)
	r := run(t, "job", "run", "-token", "s3cret", path)
	requireOK(t, r)
	req := f.find("PUT /v1/jobs")
	require.Equal(t, webYAML, string(req.Body))
	require.Equal(t, api.ContentTypeYAML, req.Header.Get("Content-Type"))
	require.Equal(t, "s3cret", req.Header.Get(api.HeaderToken))
	require.Equal(t, lines(
		`Job "web" registered: version 2, evaluation 44444444-aaaa-4bbb-8ccc-000000000004`,
		`==> Monitoring evaluation "44444444"`,
		`    Evaluation triggered by job "web"`,
		`    Allocation "bbbbbbbb" created: node "dddddddd", group "frontend"`,
		`==> Evaluation "44444444" finished with status "complete"`,
	), r.stdout)
}

func TestJobRun_JSONFileAndStdin(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("PUT /v1/jobs", registered(0))
	evalFinished(f, nil)
	body := `{"id": "web", "groups": []}`
	path := writeFile(t, "web.json", body)

	requireOK(t, run(t, "job", "run", path))
	require.Equal(t, api.ContentTypeJSON, f.find("PUT /v1/jobs").Header.Get("Content-Type"))

	requireOK(t, runWithInput(t, "\n  "+body, "job", "run", "-"))
	req := f.find("PUT /v1/jobs")
	require.Equal(t, api.ContentTypeJSON, req.Header.Get("Content-Type"))
	require.Equal(t, "\n  "+body, string(req.Body))

	requireOK(t, runWithInput(t, webYAML, "job", "run", "-"))
	require.Equal(t, api.ContentTypeYAML, f.find("PUT /v1/jobs").Header.Get("Content-Type"))
}

func TestJobRun_Detach(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("PUT /v1/jobs", registered(1))
	r := run(t, "job", "run", "-detach", writeFile(t, "web.yaml", webYAML))
	requireOK(t, r)
	require.Equal(t, "44444444-aaaa-4bbb-8ccc-000000000004\n", r.stdout)
}

func TestJobRun_Warnings(t *testing.T) {
	f := newFakeAPI(t)
	resp := registered(1)
	resp.Warnings = []string{"group frontend: no services"}
	f.reply("PUT /v1/jobs", resp)
	r := run(t, "job", "run", "-detach", writeFile(t, "web.yaml", webYAML))
	require.Equal(t, 0, r.code)
	require.Equal(t, "Warning: group frontend: no services\n", r.stderr)
}

func TestJobRun_PrintsTheServersProblems(t *testing.T) {
	f := newFakeAPI(t)
	f.fail("PUT /v1/jobs", http.StatusBadRequest, map[string]any{
		"error": "3 problems", "code": "invalid", "field": "priority", "line": 3, "column": 11,
		"errors": []map[string]any{
			{"field": "priority", "message": "must be between 1 and 100", "line": 3, "column": 11},
			{"field": "groups[0].tasks[0].imag", "message": "unknown field", "line": 8, "column": 9},
			{"field": "groups[0].tasks[0].image", "message": "is required"},
		},
	})
	path := writeFile(t, "bad.yaml", "irrelevant: the fake does not read it\n")
	r := run(t, "job", "run", path)
	require.Equal(t, 1, r.code)
	require.Empty(t, r.stdout)
	require.Equal(t, lines(
		path+":3:11: priority: must be between 1 and 100",
		path+":8:9: groups[0].tasks[0].imag: unknown field",
		path+": groups[0].tasks[0].image: is required",
	), r.stderr)
}

func TestJobRun_OtherServerErrors(t *testing.T) {
	f := newFakeAPI(t)
	f.fail("PUT /v1/jobs", http.StatusRequestEntityTooLarge, map[string]any{
		"error": "request body is larger than 1048576 bytes", "code": "too_large"})
	path := writeFile(t, "big.yaml", webYAML)
	r := run(t, "job", "run", path)
	require.Equal(t, 1, r.code)
	require.Equal(t, "Error: submitting "+path+": request body is larger than 1048576 bytes\n", r.stderr)
}

func TestJobRun_MissingFile(t *testing.T) {
	newFakeAPI(t)
	r := run(t, "job", "run", "/nonexistent/web.yaml")
	require.Equal(t, 1, r.code)
	require.Equal(t, "Error: reading job file: open /nonexistent/web.yaml: no such file or directory\n", r.stderr)
}

func TestJobRun_UnreachableAgent(t *testing.T) {
	f := newFakeAPI(t)
	addr := f.srv.URL
	f.srv.Close()
	path := writeFile(t, "web.yaml", webYAML)
	r := run(t, "job", "run", "-address", addr, path)
	require.Equal(t, 1, r.code)
	require.True(t, strings.HasPrefix(r.stderr, "Error: submitting "+path+": cannot reach drover agent at "+addr+": "), r.stderr)
	require.Empty(t, r.stdout, "no usage text on a runtime error")
}

func TestJobHistory_Diffs(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /v1/job/web", webJob())
	v0 := webJob()
	v0.Version, v0.SubmitTime, v0.Stable = 0, t1, true
	v0.Groups[0].Tasks = []*structs.Task{{Name: "httpd", Image: "127.0.0.1:5000/drover/busybox:1"}}
	v1 := v0.Copy()
	v1.Version, v1.SubmitTime, v1.Stable = 1, t2, false
	v1.Groups[0].Count = v0.Groups[0].Count + 1
	v1.Groups[0].Tasks[0].Image = "127.0.0.1:5000/drover/busybox:2"
	f.reply("GET /v1/job/web/versions", map[string]any{"versions": []*structs.Job{v0, v1}})

	r := run(t, "job", "history", "-p", "web")
	requireOK(t, r)
	require.Contains(t, r.stdout, lines(
		"Version     = 1",
		"Stable      = false",
		"Submit Date = 2026-11-23T02:30:00Z",
		"Diff        = from version 0",
		`~ Job: "web"`,
	))
	require.Contains(t, r.stdout, fmt.Sprintf(`~ count: "%d" => "%d"`, v0.Groups[0].Count, v1.Groups[0].Count))
	require.Contains(t, r.stdout, `~ image: "`+v0.Groups[0].Tasks[0].Image+`" => "127.0.0.1:5000/drover/busybox:2"`)
	require.Contains(t, r.stdout, lines("", "Version     = 0", "Stable      = true"), "the oldest version has nothing to compare with")

	r = run(t, "job", "history", "-p", "-version", "0", "-diff-version", "1", "web")
	requireOK(t, r)
	require.Contains(t, r.stdout, "Diff        = from version 1")
	require.NotContains(t, r.stdout, "Version     = 1")

	r = run(t, "job", "history", "-version", "7", "web")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, `-version: job "web" has no version 7 kept (kept: 1, 0)`)
}
