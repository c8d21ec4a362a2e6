package structs

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

var (
	idPattern          = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	taskNamePattern    = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
	envKeyPattern      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	portLabelPattern   = regexp.MustCompile(`^[a-zA-Z0-9_]+$`)
	serviceNamePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// Constraint operators.
var constraintOperators = map[string]bool{
	"=": true, "==": true, "!=": true, "<": true, "<=": true, ">": true, ">=": true,
	"regexp": true, "version": true, "semver": true, "set_contains": true,
	"set_contains_any": true, "distinct_hosts": true, "distinct_property": true,
	"is_set": true, "is_not_set": true,
}

// Validate returns a *ValidationError listing every problem of the job,
// each with its field path, or nil. Run Canonicalize first.
func (j *Job) Validate() error {
	v := &ValidationError{}
	checkID(v, "id", j.ID)
	if j.Namespace != "" {
		checkID(v, "namespace", j.Namespace)
	}
	switch j.Type {
	case JobTypeService, JobTypeBatch, JobTypeSystem:
	default:
		v.Add("type", "must be service, batch or system, got %q", j.Type)
	}
	if j.Priority < 1 || j.Priority > 100 {
		v.Add("priority", "must be between 1 and 100, got %d", j.Priority)
	}
	for i, dc := range j.Datacenters {
		if strings.TrimSpace(dc) == "" {
			v.Add(fmt.Sprintf("datacenters[%d]", i), "must not be empty")
		}
	}
	validateConstraints(v, "constraints", j.Constraints)
	validateAffinities(v, "affinities", j.Affinities)
	validateSpreads(v, "spreads", j.Spreads)
	if j.Update != nil {
		validateUpdate(v, "update", j.Update, j.Type)
	}
	if len(j.Groups) == 0 {
		v.Add("groups", "at least one group is required")
	}
	names := map[string]int{}
	for i, g := range j.Groups {
		path := fmt.Sprintf("groups[%d]", i)
		if g == nil {
			v.Add(path, "must not be empty")
			continue
		}
		if g.Name == "" {
			v.Add(path+".name", "required")
		} else if first, dup := names[g.Name]; dup {
			v.Add(path+".name", "duplicate group name %q (first at groups[%d])", g.Name, first)
		} else {
			names[g.Name] = i
			checkID(v, path+".name", g.Name)
		}
		g.validate(v, path, j)
	}
	return v.ErrOrNil()
}

func checkID(v *ValidationError, field, id string) {
	switch {
	case id == "":
		v.Add(field, "required")
	case len(id) > 63:
		v.Add(field, "must be at most 63 characters, got %d", len(id))
	case !idPattern.MatchString(id):
		v.Add(field, "must be lowercase letters, digits and '-', starting with a letter or digit, got %q", id)
	}
}

func (g *TaskGroup) validate(v *ValidationError, path string, j *Job) {
	if g.Count < 0 {
		v.Add(path+".count", "must be >= 0, got %d", g.Count)
	}
	if j.Type == JobTypeSystem && g.Count > 1 {
		v.Add(path+".count", "a system job runs one allocation per node: count must be 0 or 1, got %d", g.Count)
	}
	validateConstraints(v, path+".constraints", g.Constraints)
	validateAffinities(v, path+".affinities", g.Affinities)
	validateSpreads(v, path+".spreads", g.Spreads)
	if g.Update != nil {
		validateUpdate(v, path+".update", g.Update, j.Type)
	}
	if r := g.Restart; r != nil {
		if r.Attempts < 0 {
			v.Add(path+".restart.attempts", "must be >= 0, got %d", r.Attempts)
		}
		if r.Delay < 0 {
			v.Add(path+".restart.delay", "must be >= 0")
		}
		if r.Interval < 0 {
			v.Add(path+".restart.interval", "must be >= 0")
		}
		if r.Mode != RestartModeFail && r.Mode != RestartModeDelay {
			v.Add(path+".restart.mode", "must be fail or delay, got %q", r.Mode)
		}
	}
	if r := g.Reschedule; r != nil {
		switch r.DelayFunction {
		case "constant", "exponential", "fibonacci":
		default:
			v.Add(path+".reschedule.delay_function", "must be constant, exponential or fibonacci, got %q", r.DelayFunction)
		}
		if r.Attempts < 0 {
			v.Add(path+".reschedule.attempts", "must be >= 0, got %d", r.Attempts)
		}
		if r.Delay < 0 {
			v.Add(path+".reschedule.delay", "must be >= 0")
		}
		if r.MaxDelay != 0 && r.MaxDelay < r.Delay {
			v.Add(path+".reschedule.max_delay", "must be >= delay (%s), got %s", r.Delay, r.MaxDelay)
		}
	}
	labels := g.validateNetwork(v, path)
	g.validateServices(v, path, labels)
	if len(g.Tasks) == 0 {
		v.Add(path+".tasks", "at least one task is required")
	}
	names := map[string]int{}
	for i, t := range g.Tasks {
		tpath := fmt.Sprintf("%s.tasks[%d]", path, i)
		if t == nil {
			v.Add(tpath, "must not be empty")
			continue
		}
		switch {
		case t.Name == "":
			v.Add(tpath+".name", "required")
		case !taskNamePattern.MatchString(t.Name):
			v.Add(tpath+".name", "must be letters, digits, '_', '.' and '-', got %q", t.Name)
		default:
			if first, dup := names[t.Name]; dup {
				v.Add(tpath+".name", "duplicate task name %q (first at tasks[%d])", t.Name, first)
			} else {
				names[t.Name] = i
			}
		}
		t.validate(v, tpath)
	}
}

func (t *Task) validate(v *ValidationError, path string) {
	if strings.TrimSpace(t.Image) == "" {
		v.Add(path+".image", "required")
	}
	for k := range t.Env {
		if !envKeyPattern.MatchString(k) {
			v.Add(path+".env."+k, "environment variable names are letters, digits and '_', not starting with a digit")
		}
	}
	if r := t.Resources; r != nil {
		if r.CPU < 1 {
			v.Add(path+".resources.cpu", "must be >= 1 MHz, got %d", r.CPU)
		}
		if r.Memory < 4 {
			v.Add(path+".resources.memory", "must be >= 4 MiB, got %d", r.Memory)
		}
	}
	if t.KillTimeout < 0 {
		v.Add(path+".kill_timeout", "must be >= 0")
	}
}

// validateNetwork checks the network block and returns its port labels.
func (g *TaskGroup) validateNetwork(v *ValidationError, path string) map[string]bool {
	labels := map[string]bool{}
	n := g.Network
	if n == nil {
		return labels
	}
	switch {
	case n.Mode == NetworkModeBridge, n.Mode == NetworkModeHost, n.Mode == NetworkModeNone:
	case strings.HasPrefix(n.Mode, "cni/") && len(n.Mode) > 4:
	default:
		v.Add(path+".network.mode", "must be bridge, host, none or cni/<name>, got %q", n.Mode)
	}
	if n.Mode == NetworkModeNone && len(n.Ports) > 0 {
		v.Add(path+".network.ports", "a group with network mode none cannot have ports")
	}
	statics := map[int]int{}
	for i, p := range n.Ports {
		ppath := fmt.Sprintf("%s.network.ports[%d]", path, i)
		if p == nil {
			v.Add(ppath, "must not be null")
			continue
		}
		switch {
		case p.Label == "":
			v.Add(ppath+".label", "required")
		case !portLabelPattern.MatchString(p.Label):
			v.Add(ppath+".label", "must be letters, digits and '_', got %q", p.Label)
		case labels[p.Label]:
			v.Add(ppath+".label", "duplicate port label %q", p.Label)
		default:
			labels[p.Label] = true
		}
		if p.To < 0 || p.To > 65535 {
			v.Add(ppath+".to", "must be between 1 and 65535, got %d", p.To)
		}
		if p.Static < 0 || p.Static > 65535 {
			v.Add(ppath+".static", "must be between 1 and 65535, got %d", p.Static)
		} else if p.Static > 0 {
			if first, dup := statics[p.Static]; dup {
				v.Add(ppath+".static", "static port %d already used by ports[%d]", p.Static, first)
			} else {
				statics[p.Static] = i
			}
		}
	}
	return labels
}

func (g *TaskGroup) validateServices(v *ValidationError, path string, labels map[string]bool) {
	names := map[string]bool{}
	for i, s := range g.Services {
		spath := fmt.Sprintf("%s.services[%d]", path, i)
		if s == nil {
			v.Add(spath, "must not be null")
			continue
		}
		switch {
		case s.Name == "":
			v.Add(spath+".name", "required")
		case !serviceNamePattern.MatchString(s.Name):
			v.Add(spath+".name", "must be a DNS label (lowercase letters, digits, '-'), got %q", s.Name)
		case names[s.Name]:
			v.Add(spath+".name", "duplicate service name %q", s.Name)
		default:
			names[s.Name] = true
		}
		checkPortRef(v, spath+".port", s.Port, labels)
		for k, c := range s.Checks {
			cpath := fmt.Sprintf("%s.checks[%d]", spath, k)
			if c == nil {
				v.Add(cpath, "must not be null")
				continue
			}
			switch c.Type {
			case "http", "tcp":
				if c.Port == "" {
					v.Add(cpath+".port", "required for %s checks (or set the service's port)", c.Type)
				} else if c.Port != s.Port {
					checkPortRef(v, cpath+".port", c.Port, labels)
				}
			case "script":
				if c.Command == "" {
					v.Add(cpath+".command", "required for script checks")
				}
			default:
				v.Add(cpath+".type", "must be http, tcp or script, got %q", c.Type)
			}
			if c.Interval <= 0 {
				v.Add(cpath+".interval", "required: how often the check runs, e.g. 10s")
			}
			if c.Timeout <= 0 {
				v.Add(cpath+".timeout", "must be > 0")
			} else if c.Interval > 0 && c.Timeout > c.Interval {
				v.Add(cpath+".timeout", "must not exceed the interval (%s), got %s", c.Interval, c.Timeout)
			}
		}
	}
}

func checkPortRef(v *ValidationError, field, ref string, labels map[string]bool) {
	if ref == "" || labels[ref] {
		return
	}
	if n, err := strconv.Atoi(ref); err == nil {
		if n < 1 || n > 65535 {
			v.Add(field, "must be between 1 and 65535, got %d", n)
		}
		return
	}
	v.Add(field, "no port labelled %q in the group's network", ref)
}

func validateUpdate(v *ValidationError, path string, u *UpdateStrategy, jobType string) {
	if u.MaxParallel < 0 {
		v.Add(path+".max_parallel", "must be >= 0, got %d", u.MaxParallel)
	}
	if u.Canary < 0 {
		v.Add(path+".canary", "must be >= 0, got %d", u.Canary)
	} else if u.Canary > 0 && jobType != JobTypeService {
		v.Add(path+".canary", "canaries are for service jobs only")
	}
	for name, d := range map[string]Duration{"min_healthy_time": u.MinHealthyTime, "healthy_deadline": u.HealthyDeadline, "progress_deadline": u.ProgressDeadline} {
		if d < 0 {
			v.Add(path+"."+name, "must be >= 0")
		}
	}
	if u.HealthyDeadline > 0 && u.ProgressDeadline > 0 && u.HealthyDeadline >= u.ProgressDeadline {
		v.Add(path+".healthy_deadline", "must be shorter than progress_deadline (%s), got %s", u.ProgressDeadline, u.HealthyDeadline)
	}
	if u.MinHealthyTime > 0 && u.HealthyDeadline > 0 && u.MinHealthyTime >= u.HealthyDeadline {
		v.Add(path+".min_healthy_time", "must be shorter than healthy_deadline (%s), got %s", u.HealthyDeadline, u.MinHealthyTime)
	}
}

func validateConstraints(v *ValidationError, path string, cs []*Constraint) {
	for i, c := range cs {
		cpath := fmt.Sprintf("%s[%d]", path, i)
		if c == nil {
			v.Add(cpath, "must not be null")
			continue
		}
		op := c.Operator
		if op == "" {
			op = "="
		}
		if !constraintOperators[op] {
			v.Add(cpath+".operator", "unknown operator %q", c.Operator)
			continue
		}
		if c.Attribute == "" && op != "distinct_hosts" {
			v.Add(cpath+".attribute", "required")
		}
		switch op {
		case "distinct_hosts", "distinct_property", "is_set", "is_not_set":
		default:
			if c.Value == "" {
				v.Add(cpath+".value", "required for operator %q", op)
			}
		}
		switch op {
		case "regexp":
			if _, err := regexp.Compile(c.Value); err != nil {
				v.Add(cpath+".value", "invalid regular expression: %v", err)
			}
		case "version", "semver":
			if _, err := ParseVersionConstraint(c.Value); err != nil {
				v.Add(cpath+".value", "%v", err)
			}
		}
	}
}

func validateAffinities(v *ValidationError, path string, as []*Affinity) {
	for i, a := range as {
		apath := fmt.Sprintf("%s[%d]", path, i)
		if a == nil {
			v.Add(apath, "must not be null")
			continue
		}
		if a.Attribute == "" {
			v.Add(apath+".attribute", "required")
		}
		op := a.Operator
		if op == "" {
			op = "="
		}
		if !constraintOperators[op] || op == "distinct_hosts" || op == "distinct_property" {
			v.Add(apath+".operator", "unknown operator %q", a.Operator)
		}
		if a.Weight == 0 || a.Weight < -100 || a.Weight > 100 {
			v.Add(apath+".weight", "must be between -100 and 100 and not 0, got %d", a.Weight)
		}
	}
}

func validateSpreads(v *ValidationError, path string, ss []*Spread) {
	for i, s := range ss {
		spath := fmt.Sprintf("%s[%d]", path, i)
		if s == nil {
			v.Add(spath, "must not be null")
			continue
		}
		if s.Attribute == "" {
			v.Add(spath+".attribute", "required")
		}
		if s.Weight < 0 || s.Weight > 100 {
			v.Add(spath+".weight", "must be between 0 and 100, got %d", s.Weight)
		}
		sum := 0
		seen := map[string]bool{}
		for k, t := range s.Targets {
			tpath := fmt.Sprintf("%s.targets[%d]", spath, k)
			if t == nil {
				v.Add(tpath, "must not be null")
				continue
			}
			if seen[t.Value] {
				v.Add(tpath+".value", "duplicate target value %q", t.Value)
			}
			seen[t.Value] = true
			if t.Percent < 0 || t.Percent > 100 {
				v.Add(tpath+".percent", "must be between 0 and 100, got %d", t.Percent)
			}
			sum += t.Percent
		}
		if sum > 100 {
			v.Add(spath+".targets", "percentages add up to %d, more than 100", sum)
		}
	}
}
