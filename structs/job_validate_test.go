package structs

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// validJob is a canonical service job that passes Validate; each case
// below breaks one thing in it.
func validJob() *Job {
	j := &Job{
		ID:          "web",
		Constraints: []*Constraint{{Attribute: "${node.class}", Operator: "=", Value: "edge"}},
		Groups: []*TaskGroup{{
			Name: "frontend", Count: 2,
			Network: &NetworkSpec{Ports: []*Port{{Label: "http", To: 8080}, {Label: "admin", Static: 9090}}},
			Services: []*Service{{Name: "web", Port: "http", Checks: []*Check{
				{Type: CheckHTTP, Interval: Duration(5 * time.Second)},
			}}},
			Tasks: []*Task{{Name: "server", Image: "busybox"}, {Name: "sidecar", Image: "busybox"}},
		}},
	}
	j.Canonicalize()
	return j
}

func TestValidate_ValidJobs(t *testing.T) {
	require.NoError(t, validJob().Validate())

	for _, typ := range []string{JobTypeBatch, JobTypeSystem} {
		j := validJob()
		j.Type, j.Update = typ, nil
		for _, g := range j.Groups {
			g.Count, g.Restart, g.Reschedule = 1, nil, nil
		}
		j.Canonicalize()
		require.NoError(t, j.Validate(), typ)
	}

	j := validJob()
	j.Constraints = []*Constraint{
		{Operator: "distinct_hosts"},
		{Attribute: "${attr.kernel.version}", Operator: "version", Value: ">= 4.19, < 7"},
		{Attribute: "${attr.drover.version}", Operator: "semver", Value: "~> 1.2.0-beta"},
		{Attribute: "${node.class}", Operator: "regexp", Value: "^edge-[0-9]+$"},
		{Attribute: "${meta.rack}", Operator: "distinct_property", Value: "2"},
		{Attribute: "${meta.gpu}", Operator: "is_set"},
		{Attribute: "${meta.tags}", Operator: "set_contains_any", Value: "a,b"},
	}
	j.Affinities = []*Affinity{{Attribute: "${node.datacenter}", Operator: "=", Value: "dc1", Weight: -100}}
	j.Spreads = []*Spread{{Attribute: "${node.datacenter}", Weight: 100, Targets: []*SpreadTarget{{Value: "dc1", Percent: 70}, {Value: "dc2", Percent: 30}}}}
	g := j.Groups[0]
	g.Network.Mode = "cni/mynet"
	g.Services = append(g.Services, &Service{Name: "admin-ui", Port: "9091", Checks: []*Check{
		{Type: CheckTCP, Interval: Duration(time.Second), Timeout: Duration(time.Second)},
		{Type: CheckScript, Command: "/bin/true", Task: "server", Interval: Duration(time.Second)},
	}})
	j.Canonicalize()
	require.NoError(t, j.Validate())
}

func TestValidate_Problems(t *testing.T) {
	long := strings.Repeat("a", 64)
	g0 := "groups[0]."
	cases := []struct {
		name   string
		mutate func(j *Job)
		field  string
		msg    string
	}{
		{"missing id", func(j *Job) { j.ID = "" }, "id", "required"},
		{"long id", func(j *Job) { j.ID = long }, "id", "at most 63 characters, got 64"},
		{"id with underscore", func(j *Job) { j.ID = "web_1" }, "id", `got "web_1"`},
		{"id starting with a dash", func(j *Job) { j.ID = "-web" }, "id", "starting with a letter or digit"},
		{"namespace", func(j *Job) { j.Namespace = "Prod" }, "namespace", `got "Prod"`},
		{"type", func(j *Job) { j.Type = "cron" }, "type", `must be service, batch or system, got "cron"`},
		{"priority 0", func(j *Job) { j.Priority = 0 }, "priority", "must be between 1 and 100, got 0"},
		{"priority 101", func(j *Job) { j.Priority = 101 }, "priority", "must be between 1 and 100, got 101"},
		{"no datacenters", func(j *Job) { j.Datacenters = nil }, "datacenters", "at least one datacenter"},
		{"empty datacenter", func(j *Job) { j.Datacenters = []string{"dc1", " "} }, "datacenters[1]", "must not be empty"},

		{"unknown operator", func(j *Job) { j.Constraints[0].Operator = "~=" }, "constraints[0].operator", `unknown operator "~=" (one of =, ==`},
		{"constraint without attribute", func(j *Job) { j.Constraints[0].Attribute = "" }, "constraints[0].attribute", "required"},
		{"constraint without value", func(j *Job) { j.Constraints[0].Value = "" }, "constraints[0].value", `required for operator "="`},
		{"bad regexp", func(j *Job) { j.Constraints[0].Operator, j.Constraints[0].Value = "regexp", "(" }, "constraints[0].value", "invalid regular expression"},
		{"bad version", func(j *Job) { j.Constraints[0].Operator, j.Constraints[0].Value = "version", ">= one" }, "constraints[0].value", "invalid version constraint"},
		{"version without value", func(j *Job) { j.Constraints[0].Operator, j.Constraints[0].Value = "semver", "" }, "constraints[0].value", "required"},
		{"set op without value", func(j *Job) { j.Constraints[0].Operator, j.Constraints[0].Value = "set_contains", "" }, "constraints[0].value", "required"},
		{"distinct_property count", func(j *Job) { j.Constraints[0].Operator, j.Constraints[0].Value = "distinct_property", "0" }, "constraints[0].value", "must be a count >= 1"},
		{"null constraint", func(j *Job) { j.Constraints = append(j.Constraints, nil) }, "constraints[1]", "must not be null"},
		{"group constraint", func(j *Job) { j.Groups[0].Constraints = []*Constraint{{Operator: "is_set"}} }, g0 + "constraints[0].attribute", "required"},

		{"affinity weight 0", func(j *Job) { j.Affinities = []*Affinity{{Attribute: "a", Operator: "=", Value: "b"}} }, "affinities[0].weight", "not 0, got 0"},
		{"affinity weight 101", func(j *Job) { j.Affinities = []*Affinity{{Attribute: "a", Operator: "=", Value: "b", Weight: 101}} }, "affinities[0].weight", "between -100 and 100"},
		{"affinity weight -101", func(j *Job) { j.Affinities = []*Affinity{{Attribute: "a", Operator: "=", Value: "b", Weight: -101}} }, "affinities[0].weight", "between -100 and 100"},
		{"affinity distinct_hosts", func(j *Job) { j.Affinities = []*Affinity{{Operator: "distinct_hosts", Weight: 50}} }, "affinities[0].operator", "for constraints, not affinities"},
		{"affinity without value", func(j *Job) { j.Affinities = []*Affinity{{Attribute: "a", Operator: "=", Weight: 50}} }, "affinities[0].value", "required"},

		{"spread weight", func(j *Job) { j.Spreads = []*Spread{{Attribute: "a", Weight: 101}} }, "spreads[0].weight", "between 0 and 100, got 101"},
		{"spread without attribute", func(j *Job) { j.Spreads = []*Spread{{Weight: 10}} }, "spreads[0].attribute", "required"},
		{"spread over 100%", func(j *Job) {
			j.Spreads = []*Spread{{Attribute: "a", Targets: []*SpreadTarget{{Value: "x", Percent: 60}, {Value: "y", Percent: 60}}}}
		}, "spreads[0].targets", "add up to 120"},
		{"spread duplicate target", func(j *Job) {
			j.Spreads = []*Spread{{Attribute: "a", Targets: []*SpreadTarget{{Value: "x", Percent: 10}, {Value: "x", Percent: 10}}}}
		}, "spreads[0].targets[1].value", `duplicate target value "x" (first at targets[0])`},
		{"spread negative percent", func(j *Job) {
			j.Spreads = []*Spread{{Attribute: "a", Targets: []*SpreadTarget{{Value: "x", Percent: -1}}}}
		}, "spreads[0].targets[0].percent", "got -1"},

		{"max_parallel", func(j *Job) { j.Update.MaxParallel = -1 }, "update.max_parallel", "must be >= 0, got -1"},
		{"negative canary", func(j *Job) { j.Update.Canary = -1 }, "update.canary", "must be >= 0, got -1"},
		{"negative min_healthy_time", func(j *Job) { j.Update.MinHealthyTime = -1 }, "update.min_healthy_time", "must be >= 0"},
		{"deadlines", func(j *Job) { j.Update.HealthyDeadline = j.Update.ProgressDeadline }, "update.healthy_deadline", "shorter than progress_deadline (10m0s)"},
		{"min healthy time", func(j *Job) { j.Update.MinHealthyTime = j.Update.HealthyDeadline }, "update.min_healthy_time", "shorter than healthy_deadline"},
		{"canary in a batch job", func(j *Job) { j.Type, j.Update.Canary = JobTypeBatch, 1 }, "update.canary", "canaries are for service jobs, not batch jobs"},
		{"more canaries than count", func(j *Job) { j.Update.Canary = j.Groups[0].Count + 1 }, "update.canary", "so at most"},
		{"canary in a system group", func(j *Job) {
			j.Type, j.Groups[0].Count, j.Groups[0].Reschedule = JobTypeSystem, 1, nil
			j.Groups[0].Update = &UpdateStrategy{Canary: 2}
		}, g0 + "update.canary", "not system jobs"},

		{"no groups", func(j *Job) { j.Groups = nil }, "groups", "at least one group is required"},
		{"null group", func(j *Job) { j.Groups = append(j.Groups, nil) }, "groups[1]", "must not be null"},
		{"group without name", func(j *Job) { j.Groups[0].Name = "" }, g0 + "name", "required"},
		{"group name", func(j *Job) { j.Groups[0].Name = "Front" }, g0 + "name", `got "Front"`},
		{"duplicate group", func(j *Job) { j.Groups = append(j.Groups, j.Groups[0].Copy()) }, "groups[1].name", `duplicate group name "frontend" (first at groups[0])`},
		{"negative count", func(j *Job) { j.Groups[0].Count = -1 }, g0 + "count", "must be >= 0, got -1"},
		{"system count", func(j *Job) { j.Type, j.Groups[0].Reschedule = JobTypeSystem, nil }, g0 + "count", "must be 0 or 1 in a system job"},
		{"system reschedule", func(j *Job) { j.Type, j.Groups[0].Count = JobTypeSystem, 1 }, g0 + "reschedule", "system jobs are not rescheduled"},

		{"restart mode", func(j *Job) { j.Groups[0].Restart.Mode = "never" }, g0 + "restart.mode", `must be fail or delay, got "never"`},
		{"restart attempts", func(j *Job) { j.Groups[0].Restart.Attempts = -1 }, g0 + "restart.attempts", "got -1"},
		{"restart delay", func(j *Job) { j.Groups[0].Restart.Delay = Duration(-time.Second) }, g0 + "restart.delay", "must be >= 0, got -1s"},
		{"delay function", func(j *Job) { j.Groups[0].Reschedule.DelayFunction = "linear" }, g0 + "reschedule.delay_function", `got "linear"`},
		{"reschedule attempts", func(j *Job) { j.Groups[0].Reschedule.Attempts = -2 }, g0 + "reschedule.attempts", "got -2"},
		{"reschedule delay", func(j *Job) { j.Groups[0].Reschedule.Delay = -1 }, g0 + "reschedule.delay", "must be >= 0"},
		{"max_delay", func(j *Job) { j.Groups[0].Reschedule.MaxDelay = Duration(time.Second) }, g0 + "reschedule.max_delay", "must be >= delay (30s), got 1s"},

		{"no tasks", func(j *Job) { j.Groups[0].Tasks = nil }, g0 + "tasks", "at least one task is required"},
		{"null task", func(j *Job) { j.Groups[0].Tasks[1] = nil }, g0 + "tasks[1]", "must not be null"},
		{"task without name", func(j *Job) { j.Groups[0].Tasks[1].Name = "" }, g0 + "tasks[1].name", "required"},
		{"task name", func(j *Job) { j.Groups[0].Tasks[1].Name = "side car" }, g0 + "tasks[1].name", `got "side car"`},
		{"duplicate task", func(j *Job) { j.Groups[0].Tasks[1].Name = "server" }, g0 + "tasks[1].name", `duplicate task name "server" (first at tasks[0])`},
		{"no image", func(j *Job) { j.Groups[0].Tasks[0].Image = "" }, g0 + "tasks[0].image", "required"},
		{"env key", func(j *Job) { j.Groups[0].Tasks[0].Env = map[string]string{"MY-VAR": "x"} }, g0 + "tasks[0].env.MY-VAR", `invalid variable name "MY-VAR"`},
		{"cpu", func(j *Job) { j.Groups[0].Tasks[0].Resources.CPU = 0 }, g0 + "tasks[0].resources.cpu", "must be >= 1 (MHz), got 0"},
		{"memory", func(j *Job) { j.Groups[0].Tasks[0].Resources.Memory = 3 }, g0 + "tasks[0].resources.memory", "must be >= 4 (MiB), got 3"},
		{"kill_timeout", func(j *Job) { j.Groups[0].Tasks[0].KillTimeout = Duration(-time.Second) }, g0 + "tasks[0].kill_timeout", "must be >= 0, got -1s"},

		{"network mode", func(j *Job) { j.Groups[0].Network.Mode = "overlay" }, g0 + "network.mode", `got "overlay"`},
		{"cni without a name", func(j *Job) { j.Groups[0].Network.Mode = "cni/" }, g0 + "network.mode", "cni/<network name>"},
		{"ports without a network", func(j *Job) { j.Groups[0].Network.Mode = NetworkModeNone }, g0 + "network.ports", "network mode none has no ports"},
		{"port without label", func(j *Job) { j.Groups[0].Network.Ports[1].Label = "" }, g0 + "network.ports[1].label", "required"},
		{"port label", func(j *Job) { j.Groups[0].Network.Ports[1].Label = "ad-min" }, g0 + "network.ports[1].label", `got "ad-min"`},
		{"duplicate port label", func(j *Job) { j.Groups[0].Network.Ports[1].Label = "http" }, g0 + "network.ports[1].label", `duplicate port label "http" (first at ports[0])`},
		{"negative to", func(j *Job) { j.Groups[0].Network.Ports[0].To = -1 }, g0 + "network.ports[0].to", "must be between 1 and 65535, got -1"},
		{"static above range", func(j *Job) { j.Groups[0].Network.Ports[1].Static = 70000 }, g0 + "network.ports[1].static", "must be between 1 and 65535, got 70000"},
		{"duplicate static", func(j *Job) { j.Groups[0].Network.Ports[0].Static = 9090 }, g0 + "network.ports[1].static", "static port 9090 is already taken by ports[0]"},
		{"null port", func(j *Job) { j.Groups[0].Network.Ports[0] = nil }, g0 + "network.ports[0]", "must not be null"},

		{"service without name", func(j *Job) { j.Groups[0].Services[0].Name = "" }, g0 + "services[0].name", "required"},
		{"service name", func(j *Job) { j.Groups[0].Services[0].Name = "Web" }, g0 + "services[0].name", "must be a DNS label"},
		{"service name ending in a dash", func(j *Job) { j.Groups[0].Services[0].Name = "web-" }, g0 + "services[0].name", "must be a DNS label"},
		{"long service name", func(j *Job) { j.Groups[0].Services[0].Name = long }, g0 + "services[0].name", "must be a DNS label"},
		{"duplicate service", func(j *Job) {
			j.Groups[0].Services = append(j.Groups[0].Services, j.Groups[0].Services[0].Copy())
		}, g0 + "services[1].name", `duplicate service name "web" (first at services[0])`},
		{"service port label", func(j *Job) { j.Groups[0].Services[0].Port = "https" }, g0 + "services[0].port", `no port labelled "https"`},
		{"service port number", func(j *Job) { j.Groups[0].Services[0].Port = "0" }, g0 + "services[0].port", "must be between 1 and 65535, got 0"},

		{"check type", func(j *Job) { j.Groups[0].Services[0].Checks[0].Type = "grpc" }, g0 + "services[0].checks[0].type", `must be http, tcp or script, got "grpc"`},
		{"check without type", func(j *Job) { j.Groups[0].Services[0].Checks[0].Type = "" }, g0 + "services[0].checks[0].type", "required"},
		{"check without interval", func(j *Job) { j.Groups[0].Services[0].Checks[0].Interval = 0 }, g0 + "services[0].checks[0].interval", "required"},
		{"negative interval", func(j *Job) { j.Groups[0].Services[0].Checks[0].Interval = -1 }, g0 + "services[0].checks[0].interval", "must be > 0"},
		{"timeout above interval", func(j *Job) { j.Groups[0].Services[0].Checks[0].Timeout = Duration(6 * time.Second) }, g0 + "services[0].checks[0].timeout", "must not exceed the interval (5s), got 6s"},
		{"negative timeout", func(j *Job) { j.Groups[0].Services[0].Checks[0].Timeout = -1 }, g0 + "services[0].checks[0].timeout", "must be > 0"},
		{"check without a port", func(j *Job) {
			s := j.Groups[0].Services[0]
			s.Port, s.Checks[0].Port = "", ""
		}, g0 + "services[0].checks[0].port", "required for http checks"},
		{"check port", func(j *Job) { j.Groups[0].Services[0].Checks[0].Port = "grpc" }, g0 + "services[0].checks[0].port", `no port labelled "grpc"`},
		{"check path", func(j *Job) { j.Groups[0].Services[0].Checks[0].Path = "health" }, g0 + "services[0].checks[0].path", "must start with '/'"},
		{"script without command", func(j *Job) {
			j.Groups[0].Services[0].Checks[0] = &Check{Type: CheckScript, Task: "server", Interval: Duration(time.Second), Timeout: Duration(time.Second)}
		}, g0 + "services[0].checks[0].command", "required for script checks"},
		{"script without task", func(j *Job) {
			j.Groups[0].Services[0].Checks[0] = &Check{Type: CheckScript, Command: "x", Interval: Duration(time.Second), Timeout: Duration(time.Second)}
		}, g0 + "services[0].checks[0].task", "required for script checks in a group of more than one task"},
		{"check task", func(j *Job) { j.Groups[0].Services[0].Checks[0].Task = "db" }, g0 + "services[0].checks[0].task", `no task named "db"`},
		{"null check", func(j *Job) { j.Groups[0].Services[0].Checks[0] = nil }, g0 + "services[0].checks[0]", "must not be null"},
		{"null service", func(j *Job) { j.Groups[0].Services[0] = nil }, g0 + "services[0]", "must not be null"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j := validJob()
			tc.mutate(j)
			err := j.Validate()
			var v *ValidationError
			require.True(t, errors.As(err, &v), "want a *ValidationError, got %v", err)
			for _, fe := range v.Errors {
				require.Zero(t, fe.Line, "Validate knows no positions")
				if fe.Field == tc.field && strings.Contains(fe.Message, tc.msg) {
					return
				}
			}
			require.Failf(t, "problem not reported", "want %s: %q, got: %v", tc.field, tc.msg, err)
		})
	}
}

func TestValidate_ReportsEveryProblem(t *testing.T) {
	j := validJob()
	j.ID, j.Priority = "", 0
	j.Groups[0].Count = -1
	j.Groups[0].Tasks[0].Image = ""
	err := j.Validate()
	var v *ValidationError
	require.True(t, errors.As(err, &v))
	var fields []string
	for _, fe := range v.Errors {
		fields = append(fields, fe.Field)
	}
	require.Equal(t, []string{"id", "priority", "groups[0].count", "groups[0].tasks[0].image"}, fields)
	require.Equal(t, ErrInvalid, CodeOf(err))
}

func TestValidate_NilJob(t *testing.T) {
	var j *Job
	require.Error(t, j.Validate())
}
