package agent

import (
	"fmt"
	"net/http"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/api"
	"github.com/drover-sh/drover/structs"
)

// Bad input is refused before any RPC, with a coded error naming the field.
func TestHTTP_NodeAllocPlanBadInput(t *testing.T) {
	n := startSingle(t)
	base := "http://" + n.agent.HTTPAddr()
	id := structs.GenerateUUID()

	cases := []struct {
		name, method, path, contentType, body string
		status                                int
		code, field                           string
	}{
		{name: "bad drain deadline", method: "PUT", path: "/v1/node/" + id + "/drain",
			body:   `{"drain_spec": {"deadline": "soon"}}`,
			status: 400, code: "invalid", field: "drain_spec.deadline"},
		{name: "drain deadline of the wrong type", method: "PUT", path: "/v1/node/" + id + "/drain",
			body:   `{"drain_spec": {"deadline": true}}`,
			status: 400, code: "invalid", field: "drain_spec.deadline"},
		{name: "drain flag of the wrong type", method: "PUT", path: "/v1/node/" + id + "/drain",
			body:   `{"drain_spec": {"deadline": "1h", "ignore_system_jobs": "yes"}}`,
			status: 400, code: "invalid", field: "drain_spec.ignore_system_jobs"},
		{name: "unknown drain field", method: "PUT", path: "/v1/node/" + id + "/drain",
			body:   `{"drain_spec": null, "force": true}`,
			status: 400, code: "invalid", field: "force"},
		{name: "drain without a body", method: "PUT", path: "/v1/node/" + id + "/drain",
			status: 400, code: "invalid"},
		{name: "drain body not JSON", method: "PUT", path: "/v1/node/" + id + "/drain", body: "drain please",
			status: 400, code: "invalid"},
		{name: "bad eligibility", method: "PUT", path: "/v1/node/" + id + "/eligibility",
			body:   `{"eligibility": "maybe"}`,
			status: 400, code: "invalid", field: "eligibility"},
		{name: "missing eligibility", method: "PUT", path: "/v1/node/" + id + "/eligibility",
			body:   `{}`,
			status: 400, code: "invalid", field: "eligibility"},
		{name: "plan of another job", method: "PUT", path: "/v1/job/other/plan", contentType: "application/yaml",
			body:   string(jobYAML("web", 1)),
			status: 400, code: "invalid", field: "id"},
		{name: "plan with a bad diff flag", method: "PUT", path: "/v1/job/web/plan?diff=maybe", contentType: "application/yaml",
			body:   string(jobYAML("web", 1)),
			status: 400, code: "invalid", field: "diff"},
		{name: "plan of a bad job file", method: "PUT", path: "/v1/job/web/plan", contentType: "application/yaml",
			body:   "id: web\ngroups:\n  - name: g\n    count: -1\n    tasks:\n      - name: t\n        image: x\n",
			status: 400, code: "invalid", field: "groups[0].count"},
		{name: "plan in XML", method: "PUT", path: "/v1/job/web/plan", contentType: "application/xml", body: "<job/>",
			status: 415, code: "unsupported"},
		{name: "get a node the wrong way", method: "DELETE", path: "/v1/node/" + id, status: 405, code: "method_not_allowed"},
		{name: "bad index on allocations", method: "GET", path: "/v1/allocations?index=x", status: 400, code: "invalid", field: "index"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			contentType := tc.contentType
			if contentType == "" && tc.method == "PUT" {
				contentType = "application/json"
			}
			resp, body := doHTTP(t, tc.method, base+tc.path, contentType, tc.body)
			require.Equal(t, tc.status, resp.StatusCode, "%v", body)
			require.Equal(t, tc.code, body["code"], "%v", body)
			require.NotEmpty(t, body["error"])
			if tc.field != "" {
				require.Equal(t, tc.field, body["field"], "%v", body)
			}
		})
	}
	jobs, _, err := n.client().Jobs().List(ctx(t), nil)
	require.NoError(t, err)
	require.Empty(t, jobs, "a refused plan wrote nothing")
}

func TestHTTP_EvaluationByPrefix(t *testing.T) {
	n := startSingle(t)
	c := n.client()
	base := "http://" + n.agent.HTTPAddr()

	// Seventeen evaluations: two of them share a first hex digit.
	var ids []string
	for i := 0; i < 17; i++ {
		resp, err := c.Jobs().Register(ctx(t), jobYAML(fmt.Sprintf("j%d", i), 1), "application/yaml", nil)
		require.NoError(t, err)
		ids = append(ids, resp.EvalID)
	}
	sort.Strings(ids)
	var shared string
	for i := 1; i < len(ids); i++ {
		if ids[i][0] == ids[i-1][0] {
			shared = ids[i][:1]
			break
		}
	}
	require.NotEmpty(t, shared)

	// The full ID, and a unique prefix of it.
	eval, meta, err := c.Evaluations().Info(ctx(t), ids[0], nil)
	require.NoError(t, err)
	require.Equal(t, ids[0], eval.ID)
	require.NotZero(t, meta.LastIndex)
	// The scheduler adds blocked evaluations the test does not know, so the
	// prefix is long enough to be unique among any number of them.
	unique := ids[0][:13]
	eval, _, err = c.Evaluations().Info(ctx(t), unique, nil)
	require.NoError(t, err)
	require.Equal(t, ids[0], eval.ID)

	// An ambiguous prefix lists what it matches; an unknown one is a 404.
	resp, body := doHTTP(t, "GET", base+"/v1/evaluation/"+shared, "", "")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%v", body)
	require.Equal(t, "invalid", body["code"])
	require.Equal(t, "id", body["field"])
	require.Contains(t, body["error"], "evaluations")
	for _, id := range ids {
		if id[:1] == shared {
			require.Contains(t, body["error"], id)
		}
	}
	resp, body = doHTTP(t, "GET", base+"/v1/evaluation/ffffffffffff-nope", "", "")
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "%v", body)
	require.Equal(t, "not_found", body["code"])

	// The list takes a job and a status.
	// (The scheduler may have added a blocked evaluation: no nodes.)
	evals, _, err := c.Evaluations().List(ctx(t), &api.QueryOptions{Params: map[string]string{"job": "j3"}})
	require.NoError(t, err)
	require.NotEmpty(t, evals)
	for _, e := range evals {
		require.Equal(t, "j3", e.JobID)
	}
}
