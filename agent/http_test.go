package agent

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// startSingle starts one server that bootstraps alone.
func startSingle(t *testing.T) *testNode {
	t.Helper()
	prefix := loopbackBlock(t, 1)
	n := &testNode{t: t, name: "solo", ip: prefix + "1", dir: t.TempDir(), expect: 1}
	n.start()
	t.Cleanup(n.stop)
	waitForLeader(t, []*testNode{n}, 1)
	return n
}

func doHTTP(t *testing.T, method, url, contentType, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	if len(raw) > 0 && raw[0] == '{' {
		require.NoError(t, json.Unmarshal(raw, &out), string(raw))
	}
	return resp, out
}

func TestHTTP_BadInputIsRefusedWithNoWrite(t *testing.T) {
	n := startSingle(t)
	base := "http://" + n.agent.HTTPAddr()

	cases := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        string
		status      int
		code        string
		field       string
		line        int
	}{
		{name: "unknown field", method: "PUT", path: "/v1/jobs", contentType: "application/yaml",
			body:   "id: a\ngroups:\n  - name: g\n    tasks:\n      - name: t\n        imagee: x\n",
			status: 400, code: "invalid", field: "groups[0].tasks[0].imagee", line: 6},
		{name: "negative count", method: "PUT", path: "/v1/jobs", contentType: "application/yaml",
			body:   "id: a\ngroups:\n  - name: g\n    count: -2\n    tasks:\n      - name: t\n        image: x\n",
			status: 400, code: "invalid", field: "groups[0].count", line: 4},
		{name: "wrong type in JSON", method: "PUT", path: "/v1/jobs", contentType: "application/json",
			body:   "{\"id\": \"a\", \"priority\": \"high\", \"groups\": []}",
			status: 400, code: "invalid", field: "priority", line: 1},
		{name: "unsupported content type", method: "PUT", path: "/v1/jobs", contentType: "application/xml",
			body: "<job/>", status: 415, code: "unsupported"},
		{name: "bad blocking index", method: "GET", path: "/v1/jobs?index=abc", status: 400, code: "invalid", field: "index"},
		{name: "bad wait", method: "GET", path: "/v1/jobs?index=1&wait=soon", status: 400, code: "invalid", field: "wait"},
		{name: "missing job", method: "GET", path: "/v1/job/nope", status: 404, code: "not_found"},
		{name: "stop missing job", method: "DELETE", path: "/v1/job/nope", status: 404, code: "not_found"},
		{name: "missing eval", method: "GET", path: "/v1/evaluation/nope", status: 404, code: "not_found"},
		{name: "unknown endpoint", method: "GET", path: "/v1/nothing", status: 404, code: "not_found"},
		{name: "wrong method", method: "POST", path: "/v1/job/x", status: 405, code: "method_not_allowed"},
		{name: "join without address", method: "PUT", path: "/v1/agent/join", status: 400, code: "invalid", field: "address"},
		{name: "remove peer without id", method: "DELETE", path: "/v1/operator/raft/peer", status: 400, code: "invalid", field: "id"},
		{name: "remove unknown peer", method: "DELETE", path: "/v1/operator/raft/peer?id=ghost", status: 404, code: "not_found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := doHTTP(t, tc.method, base+tc.path, tc.contentType, tc.body)
			require.Equal(t, tc.status, resp.StatusCode, "%v", body)
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			require.Equal(t, tc.code, body["code"], "%v", body)
			require.NotEmpty(t, body["error"])
			if tc.field != "" {
				require.Equal(t, tc.field, body["field"], "%v", body)
			}
			if tc.line != 0 {
				require.EqualValues(t, tc.line, body["line"], "%v", body)
				require.NotZero(t, body["column"], "%v", body)
			}
		})
	}

	// None of it wrote anything.
	jobs, _, err := n.client().Jobs().List(ctx(t), nil)
	require.NoError(t, err)
	require.Empty(t, jobs)
}

func TestHTTP_BodyTooLarge(t *testing.T) {
	n := startSingle(t)
	big := "id: big\nmeta:\n" + strings.Repeat("  k: "+strings.Repeat("x", 1000)+"\n", 5000)
	resp, body := doHTTP(t, "PUT", "http://"+n.agent.HTTPAddr()+"/v1/jobs", "application/yaml", big)
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	require.Equal(t, "too_large", body["code"])
}

func TestHTTP_EveryProblemReported(t *testing.T) {
	n := startSingle(t)
	job := `id: Bad_ID
priority: 500
groups:
  - name: g
    count: -1
    tasks:
      - name: t
      - name: t
        image: x
`
	resp, body := doHTTP(t, "PUT", "http://"+n.agent.HTTPAddr()+"/v1/jobs", "application/yaml", job)
	require.Equal(t, 400, resp.StatusCode)
	problems := body["errors"].([]any)
	require.GreaterOrEqual(t, len(problems), 4, "%v", body)
	fields := map[string]bool{}
	for _, p := range problems {
		pm := p.(map[string]any)
		fields[pm["field"].(string)] = true
		require.NotZero(t, pm["line"], "%v", pm)
	}
	for _, f := range []string{"id", "priority", "groups[0].count", "groups[0].tasks[0].image"} {
		require.True(t, fields[f], "missing problem for %s in %v", f, fields)
	}
}

func TestHTTP_BlockingQueryWakesOnWrite(t *testing.T) {
	n := startSingle(t)
	base := "http://" + n.agent.HTTPAddr()
	_, err := n.client().Jobs().Register(ctx(t), jobYAML("first", 1), "application/yaml", nil)
	require.NoError(t, err)

	resp, err := http.Get(base + "/v1/jobs")
	require.NoError(t, err)
	resp.Body.Close()
	idx, err := strconv.ParseUint(resp.Header.Get("X-Drover-Index"), 10, 64)
	require.NoError(t, err)
	require.NotZero(t, idx)

	// Without a write the query waits out its wait time.
	start := time.Now()
	resp, err = http.Get(fmt.Sprintf("%s/v1/jobs?index=%d&wait=300ms", base, idx))
	require.NoError(t, err)
	resp.Body.Close()
	require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)
	require.Equal(t, strconv.FormatUint(idx, 10), resp.Header.Get("X-Drover-Index"))

	// With a write it returns at once, with the new index.
	done := make(chan *http.Response, 1)
	go func() {
		r, err := http.Get(fmt.Sprintf("%s/v1/jobs?index=%d&wait=20s", base, idx))
		if err == nil {
			r.Body.Close()
		}
		done <- r
	}()
	time.Sleep(100 * time.Millisecond) // let the query block first
	_, err = n.client().Jobs().Register(ctx(t), jobYAML("second", 1), "application/yaml", nil)
	require.NoError(t, err)
	select {
	case r := <-done:
		require.NotNil(t, r)
		newIdx, _ := strconv.ParseUint(r.Header.Get("X-Drover-Index"), 10, 64)
		require.Greater(t, newIdx, idx)
	case <-time.After(10 * time.Second):
		t.Fatal("blocking query did not wake on a write")
	}
}

func TestHTTP_JobRoundTripAndVersions(t *testing.T) {
	n := startSingle(t)
	c := n.client()
	r1, err := c.Jobs().Register(ctx(t), jobYAML("rt", 1), "application/yaml", nil)
	require.NoError(t, err)
	require.EqualValues(t, 0, r1.JobVersion)

	// Same spec again: no new version.
	r2, err := c.Jobs().Register(ctx(t), jobYAML("rt", 1), "application/yaml", nil)
	require.NoError(t, err)
	require.EqualValues(t, 0, r2.JobVersion)
	require.Equal(t, r1.JobModifyIndex, r2.JobModifyIndex)

	// A job read back as JSON can be submitted again unchanged.
	job, _, err := c.Jobs().Info(ctx(t), "rt", nil)
	require.NoError(t, err)
	raw, err := json.Marshal(job)
	require.NoError(t, err)
	r3, err := c.Jobs().Register(ctx(t), raw, "application/json", nil)
	require.NoError(t, err)
	require.EqualValues(t, 0, r3.JobVersion)

	// A changed spec is version 1; stop is version 2; both are kept.
	_, err = c.Jobs().Register(ctx(t), jobYAML("rt", 4), "application/yaml", nil)
	require.NoError(t, err)
	_, err = c.Jobs().Deregister(ctx(t), "rt", false)
	require.NoError(t, err)
	versions, _, err := c.Jobs().Versions(ctx(t), "rt", nil)
	require.NoError(t, err)
	require.Len(t, versions, 3)
	require.True(t, versions[0].Stop)
	require.EqualValues(t, 2, versions[0].Version)

	evals, _, err := c.Jobs().Evaluations(ctx(t), "rt", nil)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(evals), 4)

	// Purge removes it.
	_, err = c.Jobs().Deregister(ctx(t), "rt", true)
	require.NoError(t, err)
	_, _, err = c.Jobs().Info(ctx(t), "rt", nil)
	require.Error(t, err)
}
