package structs

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// designExample is the job file of DESIGN.md, the contract for field names.
const designExample = `id: web                      # required
namespace: default
type: service
priority: 50
datacenters: [dc1]
constraints:
  - {attribute: "${node.class}", operator: "=", value: edge}
update: {max_parallel: 1, min_healthy_time: 5s, healthy_deadline: 1m, auto_revert: true}
groups:
  - name: frontend
    count: 3
    restart: {attempts: 2, interval: 30m, delay: 5s, mode: fail}
    reschedule: {attempts: 3, interval: 1h, delay: 10s}
    network:
      mode: bridge
      ports:
        - {label: http, to: 8080}
        - {label: admin, static: 9090, to: 9090}
    services:
      - name: web
        port: http
        checks: [{type: http, path: /, interval: 5s, timeout: 1s}]
    tasks:
      - name: server
        image: 127.0.0.1:5000/drover/busybox:latest
        command: /bin/httpd
        args: ["-f", "-p", "8080", "-h", "/www"]
        env: {GREETING: hello}
        resources: {cpu: 100, memory: 64}
        kill_timeout: 5s
`

func TestParseJob_DesignExample(t *testing.T) {
	job, err := ParseJob([]byte(designExample))
	require.NoError(t, err)
	require.Equal(t, "web", job.ID)
	require.Equal(t, []string{"dc1"}, job.Datacenters)
	require.Equal(t, "${node.class}", job.Constraints[0].Attribute)
	require.Equal(t, Duration(5*time.Second), job.Update.MinHealthyTime)
	require.True(t, job.Update.AutoRevert)
	g := job.Groups[0]
	require.Equal(t, 3, g.Count)
	require.Equal(t, Duration(30*time.Minute), g.Restart.Interval)
	require.Equal(t, 3, g.Reschedule.Attempts)
	require.Equal(t, "exponential", g.Reschedule.DelayFunction) // default filled
	require.Equal(t, NetworkModeBridge, g.Network.Mode)
	require.Equal(t, 9090, g.Network.Ports[1].Static)
	require.Equal(t, "http", g.Services[0].Checks[0].Port) // from the service
	task := g.Tasks[0]
	require.Equal(t, "/bin/httpd", task.Command)
	require.Equal(t, []string{"-f", "-p", "8080", "-h", "/www"}, task.Args)
	require.Equal(t, "hello", task.Env["GREETING"])
	require.Equal(t, &Resources{CPU: 100, Memory: 64}, task.Resources)
	require.Equal(t, Duration(5*time.Second), task.KillTimeout)
}

func TestParseJob_Examples(t *testing.T) {
	for _, f := range []string{"../examples/web.yaml", "../examples/batch.yaml"} {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		_, err = ParseJob(data)
		require.NoError(t, err, f)
	}
}

func TestParseJob_DefaultsAndJSONRoundTrip(t *testing.T) {
	job, err := ParseJob([]byte("id: a\ngroups:\n  - name: g\n    tasks:\n      - name: t\n        image: x\n  - name: h\n    count: 0\n    tasks:\n      - name: t\n        image: x\n"))
	require.NoError(t, err)
	require.Equal(t, DefaultNamespace, job.Namespace)
	require.Equal(t, JobTypeService, job.Type)
	require.Equal(t, 50, job.Priority)
	require.Equal(t, 1, job.Groups[0].Count, "count defaults to 1 when absent")
	require.Equal(t, 0, job.Groups[1].Count, "an explicit 0 stays")
	require.Equal(t, NetworkModeHost, job.Groups[0].Network.Mode)
	require.Equal(t, DefaultKillTimeout, job.Groups[0].Tasks[0].KillTimeout)

	// The API's JSON of a job decodes to the same job.
	job.Version, job.SubmitTime, job.Status = 3, 12345, JobStatusRunning
	raw, err := json.Marshal(job)
	require.NoError(t, err)
	again, err := ParseJob(raw)
	require.NoError(t, err)
	require.Equal(t, job, again)

	// Canonicalize is idempotent.
	c := again.Copy()
	c.Canonicalize()
	require.Equal(t, again, c)
}

func TestParseJob_BadInput(t *testing.T) {
	cases := []struct {
		name, file, field, msg string
		line, col              int
	}{
		{"unknown field", "id: a\ngroups:\n  - name: g\n    tasks:\n      - name: t\n        image: x\n        imagee: y\n",
			"groups[0].tasks[0].imagee", `unknown field "imagee"`, 7, 9},
		{"unknown top-level field", "id: a\ncolor: red\ngroups: []\n", "color", "unknown field", 2, 1},
		{"wrong type", "id: a\ngroups:\n  - name: g\n    count: three\n    tasks:\n      - name: t\n        image: x\n",
			"groups[0].count", "expected an integer", 4, 12},
		{"args not a list", "id: a\ngroups:\n  - name: g\n    tasks:\n      - name: t\n        image: x\n        args: notalist\n",
			"groups[0].tasks[0].args", "expected a list", 7, 15},
		{"nested env", "id: a\ngroups:\n  - name: g\n    tasks:\n      - name: t\n        image: x\n        env: {A: {b: c}}\n",
			"groups[0].tasks[0].env.A", "expected a string value", 7, 18},
		{"bad duration", "id: a\ngroups:\n  - name: g\n    tasks:\n      - name: t\n        image: x\n        kill_timeout: soon\n",
			"groups[0].tasks[0].kill_timeout", "invalid duration", 7, 23},
		{"negative count", "id: a\ngroups:\n  - name: g\n    count: -1\n    tasks:\n      - name: t\n        image: x\n",
			"groups[0].count", "must be >= 0", 4, 12},
		{"missing image", "id: a\ngroups:\n  - name: g\n    tasks:\n      - name: t\n",
			"groups[0].tasks[0].image", "required", 5, 9},
		{"duplicate task names", "id: a\ngroups:\n  - name: g\n    tasks:\n      - name: t\n        image: x\n      - name: t\n        image: y\n",
			"groups[0].tasks[1].name", "duplicate task name", 7, 15},
		{"duplicate port labels", "id: a\ngroups:\n  - name: g\n    network:\n      ports: [{label: http}, {label: http}]\n    tasks:\n      - name: t\n        image: x\n",
			"groups[0].network.ports[1].label", "duplicate port label", 5, 38},
		{"port to out of range", "id: a\ngroups:\n  - name: g\n    network:\n      ports: [{label: http, to: 70000}]\n    tasks:\n      - name: t\n        image: x\n",
			"groups[0].network.ports[0].to", "between 1 and 65535", 5, 33},
		{"unknown network mode", "id: a\ngroups:\n  - name: g\n    network: {mode: overlay}\n    tasks:\n      - name: t\n        image: x\n",
			"groups[0].network.mode", "must be bridge, host, none", 4, 21},
		{"check without interval", "id: a\ngroups:\n  - name: g\n    network:\n      ports: [{label: http, to: 80}]\n    services:\n      - name: web\n        port: http\n        checks: [{type: http}]\n    tasks:\n      - name: t\n        image: x\n",
			"groups[0].services[0].checks[0].interval", "required", 9, 18},
		{"priority too low", "id: a\npriority: -5\ngroups: []\n", "priority", "between 1 and 100", 2, 11},
		{"priority too high", "id: a\npriority: 101\ngroups:\n  - name: g\n    tasks:\n      - name: t\n        image: x\n", "priority", "between 1 and 100", 2, 11},
		{"uppercase id", "id: Web\ngroups:\n  - name: g\n    tasks:\n      - name: t\n        image: x\n", "id", "lowercase", 1, 5},
		{"duplicate key", "id: a\nid: b\ngroups: []\n", "id", "duplicate key", 2, 1},
		{"huge count", "id: a\ngroups:\n  - name: g\n    count: 10000000000\n    tasks:\n      - name: t\n        image: x\n", "groups[0].count", "out of range", 4, 12},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseJob([]byte(tc.file))
			var v *ValidationError
			require.True(t, errors.As(err, &v), "got %v", err)
			var found *FieldError
			for _, fe := range v.Errors {
				if fe.Field == tc.field {
					found = fe
				}
			}
			require.NotNil(t, found, "no problem for %s in %v", tc.field, err)
			require.Contains(t, found.Message, tc.msg)
			require.Equal(t, tc.line, found.Line, "line of %v", found)
			require.Equal(t, tc.col, found.Column, "column of %v", found)
		})
	}
}

func TestParseJob_EmptyAndMultiDocument(t *testing.T) {
	_, err := ParseJob([]byte("  \n"))
	require.ErrorContains(t, err, "empty job file")
	_, err = ParseJob([]byte("id: a\n---\nid: b\n"))
	require.ErrorContains(t, err, "one document")
	_, err = ParseJob([]byte("id: [unclosed\n"))
	require.ErrorContains(t, err, "syntax error")
}

func TestParseJob_EveryProblemInDocumentOrder(t *testing.T) {
	file := `id: Bad_ID
priority: 500
groups:
  - name: g
    count: -1
    tasks:
      - name: t
      - name: t
        image: x
        resources: {cpu: -5}
`
	_, err := ParseJob([]byte(file))
	var v *ValidationError
	require.True(t, errors.As(err, &v))
	var fields []string
	for _, fe := range v.Errors {
		fields = append(fields, fe.Field)
		require.NotZero(t, fe.Line)
	}
	require.Equal(t, []string{"id", "priority", "groups[0].count", "groups[0].tasks[0].image",
		"groups[0].tasks[1].name", "groups[0].tasks[1].resources.cpu"}, fields, strings.Join(fields, ", "))
}

func FuzzParseJob(f *testing.F) {
	f.Add([]byte(designExample))
	f.Add([]byte("id: a\ngroups: [{name: g, tasks: [{name: t, image: x}]}]\n"))
	f.Add([]byte(`{"id": "a", "groups": []}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		job, err := ParseJob(data)
		if err == nil && job == nil {
			t.Fatal("nil job without error")
		}
	})
}
