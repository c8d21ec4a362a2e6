package structs

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// designExample is the job file of DESIGN.md, the contract for field names.
const designExample = `id: web                      # required: lowercase letters, digits, '-', at most 63
namespace: default
type: service                # service | batch | system
priority: 50                 # 1..100
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
      mode: bridge           # bridge | host | none
      ports:
        - {label: http, to: 8080}            # dynamic host port
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
        resources: {cpu: 100, memory: 64}   # MHz, MiB
        kill_timeout: 5s
`

// designExampleJSON is the same job in JSON, as an API client would send it.
const designExampleJSON = `{
	"id": "web", "namespace": "default", "type": "service", "priority": 50,
	"datacenters": ["dc1"],
	"constraints": [{"attribute": "${node.class}", "operator": "=", "value": "edge"}],
	"update": {"max_parallel": 1, "min_healthy_time": "5s", "healthy_deadline": "1m", "auto_revert": true},
	"groups": [{
		"name": "frontend", "count": 3,
		"restart": {"attempts": 2, "interval": "30m", "delay": "5s", "mode": "fail"},
		"reschedule": {"attempts": 3, "interval": "1h", "delay": "10s"},
		"network": {"mode": "bridge", "ports": [{"label": "http", "to": 8080}, {"label": "admin", "static": 9090, "to": 9090}]},
		"services": [{"name": "web", "port": "http", "checks": [{"type": "http", "path": "/", "interval": "5s", "timeout": "1s"}]}],
		"tasks": [{
			"name": "server", "image": "127.0.0.1:5000/drover/busybox:latest",
			"command": "/bin/httpd", "args": ["-f", "-p", "8080", "-h", "/www"],
			"env": {"GREETING": "hello"}, "resources": {"cpu": 100, "memory": 64}, "kill_timeout": "5s"
		}]
	}]
}`

func designExampleJob() *Job {
	sec := func(n int) Duration { return Duration(time.Duration(n) * time.Second) }
	return &Job{
		ID: "web", Namespace: "default", Type: JobTypeService, Priority: 50,
		Datacenters: []string{"dc1"},
		Constraints: []*Constraint{{Attribute: "${node.class}", Operator: "=", Value: "edge"}},
		Update: &UpdateStrategy{
			MaxParallel: 1, MinHealthyTime: sec(5), HealthyDeadline: sec(60),
			ProgressDeadline: sec(600), AutoRevert: true,
		},
		Groups: []*TaskGroup{{
			Name: "frontend", Count: 3,
			Restart: &RestartPolicy{Attempts: 2, Interval: sec(1800), Delay: sec(5), Mode: RestartModeFail},
			// Attempts and an interval ask for a limit, so the service
			// default "unlimited" does not apply.
			Reschedule: &ReschedulePolicy{Attempts: 3, Interval: sec(3600), Delay: sec(10), DelayFunction: DelayExponential, MaxDelay: sec(3600)},
			Network: &NetworkSpec{Mode: NetworkModeBridge, Ports: []*Port{
				{Label: "http", To: 8080},
				{Label: "admin", Static: 9090, To: 9090},
			}},
			Services: []*Service{{Name: "web", Port: "http", Checks: []*Check{
				{Type: CheckHTTP, Path: "/", Port: "http", Interval: sec(5), Timeout: sec(1)},
			}}},
			Tasks: []*Task{{
				Name: "server", Image: "127.0.0.1:5000/drover/busybox:latest",
				Command: "/bin/httpd", Args: []string{"-f", "-p", "8080", "-h", "/www"},
				Env:       map[string]string{"GREETING": "hello"},
				Resources: &Resources{CPU: 100, Memory: 64}, KillTimeout: sec(5),
			}},
		}},
	}
}

func TestParseJob_DesignExample(t *testing.T) {
	job, err := ParseJob([]byte(designExample))
	require.NoError(t, err)
	require.Equal(t, designExampleJob(), job)
}

func TestParseJob_JSONFormIsTheSameJob(t *testing.T) {
	job, err := ParseJob([]byte(designExampleJSON))
	require.NoError(t, err)
	require.Equal(t, designExampleJob(), job)
}

func TestParseJob_Examples(t *testing.T) {
	files, err := filepath.Glob("../examples/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	ids := map[string]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		job, err := ParseJob(data)
		require.NoError(t, err, f)
		ids[filepath.Base(f)] = job.ID + "/" + job.Type
	}
	require.Equal(t, "web/service", ids["web.yaml"])
	require.Equal(t, "hello/batch", ids["batch.yaml"])
}

func TestParseJob_JSONRoundTrip(t *testing.T) {
	inputs := map[string]string{"design": designExample}
	files, _ := filepath.Glob("../examples/*.yaml")
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		inputs[f] = string(data)
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			job, err := ParseJob([]byte(in))
			require.NoError(t, err)

			// As the API serves it: with the fields the servers set.
			served := job.Copy()
			served.Version, served.SubmitTime, served.Status = 3, 12345, JobStatusRunning
			served.CreateIndex, served.ModifyIndex, served.JobModifyIndex = 7, 9, 9
			served.Stop = true
			raw, err := json.Marshal(served)
			require.NoError(t, err)
			require.Contains(t, string(raw), `"kill_timeout":"5s"`)

			again, err := ParseJob(raw)
			require.NoError(t, err, string(raw))
			require.Equal(t, job, again, "server-set fields are read and dropped")
		})
	}
}

func TestParseJob_Defaults(t *testing.T) {
	const head = "id: a\n"
	const task = "    tasks: [{name: t, image: x}]\n"
	hour := Duration(time.Hour)
	cases := []struct {
		name  string
		file  string
		check func(t *testing.T, j *Job)
	}{
		{"job and task defaults", head + "groups:\n  - name: g\n" + task, func(t *testing.T, j *Job) {
			require.Equal(t, DefaultNamespace, j.Namespace)
			require.Equal(t, JobTypeService, j.Type)
			require.Equal(t, DefaultPriority, j.Priority)
			require.Equal(t, []string{AnyDatacenter}, j.Datacenters)
			require.Equal(t, DefaultUpdateStrategy(), j.Update)
			g := j.Groups[0]
			require.Equal(t, 1, g.Count)
			require.Nil(t, g.Update, "a group without its own block follows the job's")
			require.Equal(t, DefaultRestartPolicy(JobTypeService), g.Restart)
			require.Equal(t, DefaultReschedulePolicy(JobTypeService), g.Reschedule)
			require.Equal(t, &NetworkSpec{Mode: NetworkModeHost}, g.Network)
			require.Equal(t, &Resources{CPU: DefaultTaskCPU, Memory: DefaultTaskMemory}, g.Tasks[0].Resources)
			require.Equal(t, DefaultKillTimeout, g.Tasks[0].KillTimeout)
		}},
		{"explicit zeros stay", head + "groups:\n  - name: g\n    count: 0\n    restart: {attempts: 0, delay: 0}\n    reschedule: {attempts: 0}\n" + task,
			func(t *testing.T, j *Job) {
				g := j.Groups[0]
				require.Equal(t, 0, g.Count)
				require.Equal(t, &RestartPolicy{Attempts: 0, Interval: Duration(30 * time.Minute), Delay: 0, Mode: RestartModeFail}, g.Restart)
				require.Equal(t, &ReschedulePolicy{Attempts: 0, Interval: hour, Delay: Duration(30 * time.Second), DelayFunction: DelayExponential, MaxDelay: hour}, g.Reschedule)
			}},
		{"partial blocks are completed", head + "groups:\n  - name: g\n    restart: {mode: delay}\n    reschedule: {delay: 1m}\n" + task,
			func(t *testing.T, j *Job) {
				g := j.Groups[0]
				require.Equal(t, &RestartPolicy{Attempts: 2, Interval: Duration(30 * time.Minute), Delay: Duration(15 * time.Second), Mode: RestartModeDelay}, g.Restart)
				require.Equal(t, &ReschedulePolicy{Unlimited: true, Delay: Duration(time.Minute), DelayFunction: DelayExponential, MaxDelay: hour}, g.Reschedule)
			}},
		{"batch", head + "type: batch\ngroups:\n  - name: g\n" + task, func(t *testing.T, j *Job) {
			require.Nil(t, j.Update)
			require.Equal(t, &RestartPolicy{Attempts: 3, Interval: Duration(24 * time.Hour), Delay: Duration(15 * time.Second), Mode: RestartModeFail}, j.Groups[0].Restart)
			require.Equal(t, &ReschedulePolicy{Attempts: 1, Interval: Duration(24 * time.Hour), Delay: Duration(5 * time.Second), DelayFunction: DelayConstant}, j.Groups[0].Reschedule)
		}},
		{"system", head + "type: system\ngroups:\n  - name: g\n" + task, func(t *testing.T, j *Job) {
			require.Equal(t, DefaultRestartPolicy(JobTypeService), j.Groups[0].Restart)
			require.Nil(t, j.Groups[0].Reschedule)
		}},
		{"group update inherits the job's", head + "update: {max_parallel: 3, healthy_deadline: 2m, auto_revert: true}\ngroups:\n  - name: g\n    update: {canary: 1, max_parallel: 0}\n" + task,
			func(t *testing.T, j *Job) {
				require.Equal(t, &UpdateStrategy{MaxParallel: 0, MinHealthyTime: Duration(10 * time.Second), HealthyDeadline: Duration(2 * time.Minute),
					ProgressDeadline: Duration(10 * time.Minute), AutoRevert: true, Canary: 1}, j.Groups[0].Update)
			}},
		{"bridge when there are ports", head + "groups:\n  - name: g\n    network: {ports: [{label: http}]}\n" + task, func(t *testing.T, j *Job) {
			require.Equal(t, NetworkModeBridge, j.Groups[0].Network.Mode)
		}},
		{"host without ports", head + "groups:\n  - name: g\n    network: {}\n" + task, func(t *testing.T, j *Job) {
			require.Equal(t, NetworkModeHost, j.Groups[0].Network.Mode)
		}},
		{"partial resources", head + "groups:\n  - name: g\n    tasks: [{name: t, image: x, resources: {memory: 32}}]\n", func(t *testing.T, j *Job) {
			require.Equal(t, &Resources{CPU: DefaultTaskCPU, Memory: 32}, j.Groups[0].Tasks[0].Resources)
		}},
		{"checks", head + "groups:\n  - name: g\n    network: {ports: [{label: http}]}\n    services:\n      - {name: web, port: http, checks: [{type: http, interval: 10s}, {type: tcp, interval: 1s}, {type: tcp, port: 22, interval: 5s}]}\n" + task,
			func(t *testing.T, j *Job) {
				cs := j.Groups[0].Services[0].Checks
				require.Equal(t, &Check{Type: CheckHTTP, Path: "/", Port: "http", Interval: Duration(10 * time.Second), Timeout: DefaultCheckTimeout}, cs[0])
				require.Equal(t, &Check{Type: CheckTCP, Port: "http", Interval: Duration(time.Second), Timeout: Duration(time.Second)}, cs[1], "the timeout fits the interval")
				require.Equal(t, "22", cs[2].Port)
			}},
		{"constraint and affinity defaults", head + "constraints: [{attribute: a, value: b}]\naffinities: [{attribute: a, value: b}]\ngroups:\n  - name: g\n" + task,
			func(t *testing.T, j *Job) {
				require.Equal(t, "=", j.Constraints[0].Operator)
				require.Equal(t, &Affinity{Attribute: "a", Operator: "=", Value: "b", Weight: DefaultAffinityWeight}, j.Affinities[0])
			}},
		{"scalars of any kind in string maps", head + "meta: {a: 1, b: true, c: 1.50, d: ~}\ngroups:\n  - name: g\n    tasks: [{name: t, image: x, env: {PORT: 8080}}]\n",
			func(t *testing.T, j *Job) {
				require.Equal(t, map[string]string{"a": "1", "b": "true", "c": "1.50", "d": ""}, j.Meta)
				require.Equal(t, "8080", j.Groups[0].Tasks[0].Env["PORT"])
			}},
		{"null is the same as absent", head + "priority: ~\ngroups:\n  - name: g\n    count:\n    tasks: [{name: t, image: x, args: null}]\n", func(t *testing.T, j *Job) {
			require.Equal(t, DefaultPriority, j.Priority)
			require.Equal(t, 1, j.Groups[0].Count)
			require.Nil(t, j.Groups[0].Tasks[0].Args)
		}},
		{"anchors and merge keys", head +
			"meta: &m {team: web}\ngroups:\n  - name: g\n    meta: *m\n    tasks:\n      - &t {name: t, image: x, kill_timeout: 1s}\n      - {<<: *t, name: u}\n",
			func(t *testing.T, j *Job) {
				g := j.Groups[0]
				require.Equal(t, map[string]string{"team": "web"}, g.Meta)
				require.Equal(t, "u", g.Tasks[1].Name)
				require.Equal(t, "x", g.Tasks[1].Image)
				require.Equal(t, Duration(time.Second), g.Tasks[1].KillTimeout)
			}},
		{"durations", head + "groups:\n  - name: g\n    restart: {delay: 0, interval: 1m30s}\n" + task, func(t *testing.T, j *Job) {
			require.Equal(t, Duration(0), j.Groups[0].Restart.Delay)
			require.Equal(t, Duration(90*time.Second), j.Groups[0].Restart.Interval)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			job, err := ParseJob([]byte(tc.file))
			require.NoError(t, err)
			tc.check(t, job)

			again := job.Copy()
			again.Canonicalize()
			require.Equal(t, job, again, "Canonicalize after ParseJob changes nothing")
		})
	}
}

// problem is one expected entry of a ParseJob error.
type problem struct {
	field     string
	line, col int
	msg       string
}

func problemsOf(t *testing.T, err error) []*FieldError {
	t.Helper()
	var v *ValidationError
	require.True(t, errors.As(err, &v), "want a *ValidationError, got %v", err)
	require.NotEmpty(t, v.Errors)
	return v.Errors
}

func requireProblem(t *testing.T, err error, want problem) {
	t.Helper()
	for _, fe := range problemsOf(t, err) {
		if fe.Field == want.field && strings.Contains(fe.Message, want.msg) {
			require.Equal(t, want.line, fe.Line, "line of %v", fe)
			require.Equal(t, want.col, fe.Column, "column of %v", fe)
			return
		}
	}
	require.Failf(t, "problem not reported", "want %s: %q, got: %v", want.field, want.msg, err)
}

func TestParseJob_Problems(t *testing.T) {
	const g = "id: a\ngroups:\n  - name: g\n"     // groups[0] is at line 3, column 5
	const tasks = "    tasks:\n      - name: t\n" // tasks[0] is at line N, column 9
	cases := []struct {
		name string
		file string
		want problem
	}{
		{"unknown top-level field", "id: a\ncolor: red\n", problem{"color", 2, 1, `unknown field "color"`}},
		{"unknown field in a task", g + tasks + "        image: x\n        imagee: y\n",
			problem{"groups[0].tasks[0].imagee", 7, 9, `unknown field "imagee" (did you mean "image"?)`}},
		{"other spelling", g + tasks + "        image: x\n        killTimeout: 1s\n",
			problem{"groups[0].tasks[0].killTimeout", 7, 9, `(did you mean "kill_timeout"?)`}},
		{"count is not a number", g + "    count: three\n" + tasks + "        image: x\n",
			problem{"groups[0].count", 4, 12, `expected an integer, got "three"`}},
		{"count is a float", g + "    count: 1e10\n" + tasks + "        image: x\n",
			problem{"groups[0].count", 4, 12, "expected an integer, got 1e10"}},
		{"count is out of range", g + "    count: 10000000000\n" + tasks + "        image: x\n",
			problem{"groups[0].count", 4, 12, "out of range"}},
		{"args is not a list", g + tasks + "        image: x\n        args: notalist\n",
			problem{"groups[0].tasks[0].args", 7, 15, `expected a list, got "notalist"`}},
		{"env value is a mapping", g + tasks + "        image: x\n        env: {A: {b: c}}\n",
			problem{"groups[0].tasks[0].env.A", 7, 18, "expected a string, got a mapping"}},
		{"group is a list", "id: a\ngroups:\n  - [a]\n", problem{"groups[0]", 3, 5, "expected a mapping, got a list"}},
		{"null list element", "id: a\ngroups:\n  -\n", problem{"groups[0]", 3, 4, "expected a mapping, got null"}},
		{"boolean is yes", "id: a\nupdate: {auto_revert: yes}\n", problem{"update.auto_revert", 2, 23, `expected true or false, got "yes"`}},
		{"bad duration", g + tasks + "        image: x\n        kill_timeout: soon\n",
			problem{"groups[0].tasks[0].kill_timeout", 7, 23, `invalid duration "soon"`}},
		{"duration without unit", g + "    restart: {delay: 5}\n" + tasks + "        image: x\n",
			problem{"groups[0].restart.delay", 4, 22, "needs a unit"}},
		{"negative count", g + "    count: -1\n" + tasks + "        image: x\n",
			problem{"groups[0].count", 4, 12, "must be >= 0, got -1"}},
		{"missing image", g + tasks, problem{"groups[0].tasks[0].image", 5, 9, "required"}},
		{"missing image, flow style", g + "    tasks: [{name: t}]\n", problem{"groups[0].tasks[0].image", 4, 13, "required"}},
		{"missing groups", "id: a\n", problem{"groups", 1, 1, "at least one group"}},
		{"duplicate task names", g + tasks + "        image: x\n      - name: t\n        image: y\n",
			problem{"groups[0].tasks[1].name", 7, 15, `duplicate task name "t" (first at tasks[0])`}},
		{"duplicate port labels", g + "    network:\n      ports: [{label: http}, {label: http}]\n" + tasks + "        image: x\n",
			problem{"groups[0].network.ports[1].label", 5, 38, `duplicate port label "http"`}},
		{"to above the range", g + "    network:\n      ports: [{label: http, to: 70000}]\n" + tasks + "        image: x\n",
			problem{"groups[0].network.ports[0].to", 5, 33, "must be between 1 and 65535, got 70000"}},
		{"negative to", g + "    network:\n      ports:\n        - label: http\n          to: -1\n" + tasks + "        image: x\n",
			problem{"groups[0].network.ports[0].to", 7, 15, "must be between 1 and 65535, got -1"}},
		{"unknown network mode", g + "    network: {mode: overlay}\n" + tasks + "        image: x\n",
			problem{"groups[0].network.mode", 4, 21, `must be bridge, host, none or cni/<network name>, got "overlay"`}},
		{"check without interval", g + "    network:\n      ports: [{label: http, to: 80}]\n    services:\n      - name: web\n        port: http\n        checks: [{type: http}]\n" + tasks + "        image: x\n",
			problem{"groups[0].services[0].checks[0].interval", 9, 18, "required"}},
		{"unknown check type", g + "    network:\n      ports: [{label: http, to: 80}]\n    services:\n      - name: web\n        port: http\n        checks: [{type: grpc, interval: 5s}]\n" + tasks + "        image: x\n",
			problem{"groups[0].services[0].checks[0].type", 9, 25, `must be http, tcp or script, got "grpc"`}},
		{"service on an unknown port label", g + "    network:\n      ports: [{label: http, to: 80}]\n    services:\n      - name: web\n        port: https\n" + tasks + "        image: x\n",
			problem{"groups[0].services[0].port", 8, 15, `no port labelled "https"`}},
		{"priority 0", "id: a\npriority: 0\n", problem{"priority", 2, 11, "must be between 1 and 100, got 0"}},
		{"priority 101", "id: a\npriority: 101\n", problem{"priority", 2, 11, "must be between 1 and 100, got 101"}},
		{"uppercase id", "id: Web\n", problem{"id", 1, 5, `must be lowercase letters, digits and '-', starting with a letter or digit, got "Web"`}},
		{"missing id", "namespace: x\n", problem{"id", 1, 1, "required"}},
		{"duplicate key", "id: a\nid: b\n", problem{"id", 2, 1, `duplicate key "id" (first at line 1)`}},
		{"duplicate env key", g + tasks + "        image: x\n        env:\n          A: 1\n          A: 2\n",
			problem{"groups[0].tasks[0].env.A", 9, 11, `duplicate key "A"`}},
		{"bad env key", g + tasks + "        image: x\n        env: {1ABC: x}\n",
			problem{"groups[0].tasks[0].env.1ABC", 7, 15, `invalid variable name "1ABC"`}},
		{"explicit cpu 0", g + tasks + "        image: x\n        resources: {cpu: 0}\n",
			problem{"groups[0].tasks[0].resources.cpu", 7, 26, "must be >= 1"}},
		{"reschedule in a system job", "id: a\ntype: system\ngroups:\n  - name: g\n    reschedule: {attempts: 1}\n" + tasks + "        image: x\n",
			problem{"groups[0].reschedule", 5, 17, "system jobs are not rescheduled"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			job, err := ParseJob([]byte(tc.file))
			require.Nil(t, job)
			requireProblem(t, err, tc.want)
		})
	}
}

func TestParseJob_DocumentProblems(t *testing.T) {
	cases := []struct {
		name string
		file string
		want problem
	}{
		{"empty", "", problem{"", 1, 1, "empty job file"}},
		{"blank", "  \n\n", problem{"", 1, 1, "empty job file"}},
		{"only comments", "# nothing\n", problem{"", 1, 1, "empty job file"}},
		{"only a document marker", "---\n", problem{"", 1, 1, "empty job file"}},
		{"two documents", "id: a\n---\nid: b\n", problem{"", 3, 1, "found a second one"}},
		{"unclosed list", "id: a\ngroups: [unclosed\n", problem{"", 2, 1, "syntax error: did not find expected ',' or ']'"}},
		{"bad indentation", "id: a\ngroups:\n  - name: g\n tasks: []\n", problem{"", 4, 1, "syntax error: did not find expected key"}},
		{"mapping in a value", "id: a\ntype: a: b\n", problem{"", 2, 1, "syntax error: mapping values are not allowed"}},
		{"unknown alias", "id: a\nmeta: {a: 1}\ngroups: *nope\n", problem{"", 3, 9, "syntax error: unknown anchor 'nope' referenced"}},
		{"tab indentation", "id: a\ngroups:\n\t- name: g\n", problem{"", 3, 1, "syntax error"}},
		{"a list, not a job", "- id: a\n", problem{"", 1, 1, "a job file is a mapping of fields, got a list"}},
		{"a scalar, not a job", "web\n", problem{"", 1, 1, `a job file is a mapping of fields, got "web"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseJob([]byte(tc.file))
			requireProblem(t, err, tc.want)
		})
	}

	// A trailing document marker holds no second job.
	_, err := ParseJob([]byte("id: a\ngroups: [{name: g, tasks: [{name: t, image: x}]}]\n---\n"))
	require.NoError(t, err)
}

func TestParseJob_EveryProblemInDocumentOrder(t *testing.T) {
	file := `id: Bad_ID
priority: 500
colour: blue
groups:
  - name: g
    count: -1
    network:
      ports: [{label: http, to: 70000}]
    tasks:
      - name: t
      - name: t
        image: x
        resources: {cpu: -5}
        env: {A: {b: c}}
`
	_, err := ParseJob([]byte(file))
	var got []problem
	for _, fe := range problemsOf(t, err) {
		got = append(got, problem{fe.Field, fe.Line, fe.Column, fe.Message})
	}
	require.Equal(t, []problem{
		{"id", 1, 5, `must be lowercase letters, digits and '-', starting with a letter or digit, got "Bad_ID"`},
		{"priority", 2, 11, "must be between 1 and 100, got 500"},
		{"colour", 3, 1, `unknown field "colour"`},
		{"groups[0].count", 6, 12, "must be >= 0, got -1"},
		{"groups[0].network.ports[0].to", 8, 33, "must be between 1 and 65535, got 70000"},
		{"groups[0].tasks[0].image", 10, 9, "required"},
		{"groups[0].tasks[1].name", 11, 15, `duplicate task name "t" (first at tasks[0])`},
		{"groups[0].tasks[1].resources.cpu", 13, 26, "must be >= 1 (MHz), got -5"},
		{"groups[0].tasks[1].env.A", 14, 18, "expected a string, got a mapping"},
	}, got)
}

func TestParseJob_DecodeErrorHidesItsValidationError(t *testing.T) {
	// "imagee" is reported; "image: required" would say the same again.
	file := "id: a\ngroups:\n  - name: g\n    tasks: [{name: t, imagee: x, kill_timeout: soon}]\n"
	_, err := ParseJob([]byte(file))
	var fields []string
	for _, fe := range problemsOf(t, err) {
		fields = append(fields, fe.Field)
	}
	require.Equal(t, []string{"groups[0].tasks[0].imagee", "groups[0].tasks[0].kill_timeout"}, fields)
}

func TestParseJob_AliasBombStops(t *testing.T) {
	// Every level refers to the one below a hundred times: 10^8 values if
	// expanded, from a file of a few kilobytes.
	refs := func(name string) string { return strings.Repeat("*"+name+", ", 99) }
	file := "id: a\ngroups: [&g {name: g, tasks: [{name: t, image: x}], services: [" +
		"&s {name: s, checks: [&c {type: script, command: x, interval: 1s, args: [" + strings.Repeat("x, ", 100) + "]}, " +
		refs("c") + "]}, " + refs("s") + "]}, " + refs("g") + "]\n"
	start := time.Now()
	_, err := ParseJob([]byte(file))
	require.Less(t, time.Since(start), 10*time.Second)
	require.ErrorContains(t, err, "expands to more than 250000 values through aliases")
}

func FuzzParseJob(f *testing.F) {
	f.Add([]byte(designExample))
	f.Add([]byte(designExampleJSON))
	files, _ := filepath.Glob("../examples/*.yaml")
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("id: a\ngroups: [{name: g, tasks: [{name: t, image: x}]}]\n"))
	f.Add([]byte("a: &a {<<: *a}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		job, err := ParseJob(data)
		if err != nil {
			var v *ValidationError
			if !errors.As(err, &v) || len(v.Errors) == 0 {
				t.Fatalf("want a *ValidationError with problems, got %#v", err)
			}
			for _, fe := range v.Errors {
				if fe.Line < 1 || fe.Column < 1 {
					t.Fatalf("problem without a position: %v", fe)
				}
			}
			return
		}
		if verr := job.Validate(); verr != nil {
			t.Fatalf("ParseJob accepted an invalid job: %v", verr)
		}
		// reflect.DeepEqual, not require.Equal: a diff of a large job takes
		// the fuzzer minutes to print.
		again := job.Copy()
		again.Canonicalize()
		if !reflect.DeepEqual(job, again) {
			t.Fatalf("Canonicalize is not idempotent:\n%s\n%s", mustJSON(job), mustJSON(again))
		}
		raw := mustJSON(job)
		back, err := ParseJob(raw)
		if err != nil {
			t.Fatalf("its own JSON does not parse: %v\n%s", err, raw)
		}
		if !reflect.DeepEqual(job, back) {
			t.Fatalf("its own JSON parses to another job:\n%s\n%s", raw, mustJSON(back))
		}
	})
}

func mustJSON(v any) []byte {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return raw
}
