package structs

import (
	"regexp"
	"strconv"
	"strings"
)

var (
	idPattern          = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	taskNamePattern    = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
	envKeyPattern      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	portLabelPattern   = regexp.MustCompile(`^[a-zA-Z0-9_]+$`)
	serviceNamePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	cniNamePattern     = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
)

// maxIDLength keeps ids usable as DNS labels and in container names.
const maxIDLength = 63

// Constraint operators, in the order messages list them.
var constraintOperators = []string{
	"=", "==", "!=", "<", "<=", ">", ">=", "regexp", "version", "semver",
	"set_contains", "set_contains_any", "distinct_hosts", "distinct_property",
	"is_set", "is_not_set",
}

// Validate returns a *ValidationError listing every problem of the job,
// each with its field path ("groups[0].tasks[1].image"), or nil. Run
// Canonicalize first: Validate does not fill defaults, so a missing
// default reads as a problem.
func (j *Job) Validate() error {
	v := &ValidationError{}
	if j == nil {
		v.Add("", "missing job")
		return v
	}
	checkID(v, "id", j.ID)
	checkID(v, "namespace", j.Namespace)
	switch j.Type {
	case JobTypeService, JobTypeBatch, JobTypeSystem:
	default:
		v.Add("type", "must be service, batch or system, got %q", j.Type)
	}
	if j.Priority < 1 || j.Priority > 100 {
		v.Add("priority", "must be between 1 and 100, got %d", j.Priority)
	}
	if len(j.Datacenters) == 0 {
		v.Add("datacenters", "at least one datacenter is required (%q means any)", AnyDatacenter)
	}
	for i, dc := range j.Datacenters {
		if strings.TrimSpace(dc) == "" {
			v.Add(indexPath("datacenters", i), "must not be empty")
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
		path := indexPath("groups", i)
		if g == nil {
			v.Add(path, "must not be null")
			continue
		}
		if first, dup := names[g.Name]; dup && g.Name != "" {
			v.Add(path+".name", "duplicate group name %q (first at groups[%d])", g.Name, first)
		} else {
			names[g.Name] = i
			checkID(v, path+".name", g.Name)
		}
		g.validate(v, path, j)
	}
	return v.ErrOrNil()
}

// checkID checks a name that ends up in URLs, DNS names and keys.
func checkID(v *ValidationError, field, id string) {
	switch {
	case id == "":
		v.Add(field, "required")
	case len(id) > maxIDLength:
		v.Add(field, "must be at most %d characters, got %d", maxIDLength, len(id))
	case !idPattern.MatchString(id):
		v.Add(field, "must be lowercase letters, digits and '-', starting with a letter or digit, got %q", id)
	}
}

func (g *TaskGroup) validate(v *ValidationError, path string, j *Job) {
	if g.Count < 0 {
		v.Add(path+".count", "must be >= 0, got %d", g.Count)
	}
	if j.Type == JobTypeSystem && g.Count > 1 {
		v.Add(path+".count", "must be 0 or 1 in a system job (it runs once on every node), got %d", g.Count)
	}
	validateConstraints(v, path+".constraints", g.Constraints)
	validateAffinities(v, path+".affinities", g.Affinities)
	validateSpreads(v, path+".spreads", g.Spreads)
	if g.Update != nil {
		validateUpdate(v, path+".update", g.Update, j.Type)
	}
	// Each canary takes the name of an allocation it may replace, so a
	// group has at most count of them (count of them is blue/green).
	if u, upath := g.Update, path+".update"; g.Count >= 0 {
		if u == nil {
			u, upath = j.Update, "update"
		}
		if u != nil && u.Canary > g.Count {
			v.Add(upath+".canary", "group %q has count %d, so at most %d canaries, got %d", g.Name, g.Count, g.Count, u.Canary)
		}
	}
	if g.Restart != nil {
		validateRestart(v, path+".restart", g.Restart)
	}
	if g.Reschedule != nil {
		if j.Type == JobTypeSystem {
			v.Add(path+".reschedule", "system jobs are not rescheduled: remove the block")
		} else {
			validateReschedule(v, path+".reschedule", g.Reschedule)
		}
	}
	labels := g.validateNetwork(v, path)
	tasks := make(map[string]bool, len(g.Tasks))
	for _, t := range g.Tasks {
		if t != nil {
			tasks[t.Name] = true
		}
	}
	g.validateServices(v, path, labels, tasks)
	if len(g.Tasks) == 0 {
		v.Add(path+".tasks", "at least one task is required")
	}
	names := map[string]int{}
	for i, t := range g.Tasks {
		tpath := indexPath(path+".tasks", i)
		if t == nil {
			v.Add(tpath, "must not be null")
			continue
		}
		switch first, dup := names[t.Name]; {
		case t.Name == "":
			v.Add(tpath+".name", "required")
		case dup:
			v.Add(tpath+".name", "duplicate task name %q (first at tasks[%d])", t.Name, first)
		case !taskNamePattern.MatchString(t.Name):
			v.Add(tpath+".name", "must be letters, digits, '_', '.' and '-', starting with a letter or digit, got %q", t.Name)
		default:
			names[t.Name] = i
		}
		t.validate(v, tpath)
	}
}

func validateRestart(v *ValidationError, path string, r *RestartPolicy) {
	if r.Attempts < 0 {
		v.Add(path+".attempts", "must be >= 0, got %d", r.Attempts)
	}
	if r.Interval < 0 {
		v.Add(path+".interval", "must be >= 0, got %s", r.Interval)
	}
	if r.Delay < 0 {
		v.Add(path+".delay", "must be >= 0, got %s", r.Delay)
	}
	if r.Mode != RestartModeFail && r.Mode != RestartModeDelay {
		v.Add(path+".mode", "must be fail or delay, got %q", r.Mode)
	}
}

func validateReschedule(v *ValidationError, path string, r *ReschedulePolicy) {
	if r.Attempts < 0 {
		v.Add(path+".attempts", "must be >= 0, got %d", r.Attempts)
	}
	if r.Interval < 0 {
		v.Add(path+".interval", "must be >= 0, got %s", r.Interval)
	}
	if r.Delay < 0 {
		v.Add(path+".delay", "must be >= 0, got %s", r.Delay)
	}
	switch r.DelayFunction {
	case DelayConstant:
	case DelayExponential, DelayFibonacci:
		// A growing delay needs a ceiling to grow to.
		if r.MaxDelay < r.Delay {
			v.Add(path+".max_delay", "must be >= delay (%s), got %s", r.Delay, r.MaxDelay)
		}
	default:
		v.Add(path+".delay_function", "must be constant, exponential or fibonacci, got %q", r.DelayFunction)
	}
}

func (t *Task) validate(v *ValidationError, path string) {
	if strings.TrimSpace(t.Image) == "" {
		v.Add(path+".image", "required")
	}
	for k := range t.Env {
		if !envKeyPattern.MatchString(k) {
			v.Add(joinPath(path+".env", k), "invalid variable name %q: use letters, digits and '_', not starting with a digit", k)
		}
	}
	if r := t.Resources; r != nil {
		if r.CPU < 1 {
			v.Add(path+".resources.cpu", "must be >= 1 (MHz), got %d", r.CPU)
		}
		if r.Memory < 4 {
			v.Add(path+".resources.memory", "must be >= 4 (MiB), got %d", r.Memory)
		}
	}
	if t.KillTimeout < 0 {
		v.Add(path+".kill_timeout", "must be >= 0, got %s", t.KillTimeout)
	}
}

// validateNetwork checks the network block and returns its port labels.
func (g *TaskGroup) validateNetwork(v *ValidationError, path string) map[string]bool {
	labels := map[string]bool{}
	n := g.Network
	if n == nil {
		return labels
	}
	path += ".network"
	switch cni, isCNI := strings.CutPrefix(n.Mode, "cni/"); {
	case n.Mode == NetworkModeBridge, n.Mode == NetworkModeHost, n.Mode == NetworkModeNone:
	case isCNI && cniNamePattern.MatchString(cni):
	default:
		v.Add(path+".mode", "must be bridge, host, none or cni/<network name>, got %q", n.Mode)
	}
	if n.Mode == NetworkModeNone && len(n.Ports) > 0 {
		v.Add(path+".ports", "a group with network mode none has no ports")
	}
	first := map[string]int{}
	statics := map[int]int{}
	for i, p := range n.Ports {
		ppath := indexPath(path+".ports", i)
		if p == nil {
			v.Add(ppath, "must not be null")
			continue
		}
		switch at, dup := first[p.Label]; {
		case p.Label == "":
			v.Add(ppath+".label", "required")
		case dup:
			v.Add(ppath+".label", "duplicate port label %q (first at ports[%d])", p.Label, at)
		case !portLabelPattern.MatchString(p.Label):
			v.Add(ppath+".label", "must be letters, digits and '_', got %q", p.Label)
		default:
			first[p.Label] = i
			labels[p.Label] = true
		}
		// Zero means unset for both: a dynamic host port, the same port inside.
		if p.To < 0 || p.To > 65535 {
			v.Add(ppath+".to", "must be between 1 and 65535, got %d", p.To)
		}
		switch at, dup := statics[p.Static]; {
		case p.Static < 0 || p.Static > 65535:
			v.Add(ppath+".static", "must be between 1 and 65535, got %d", p.Static)
		case p.Static == 0:
		case dup:
			v.Add(ppath+".static", "static port %d is already taken by ports[%d]", p.Static, at)
		default:
			statics[p.Static] = i
		}
	}
	return labels
}

func (g *TaskGroup) validateServices(v *ValidationError, path string, labels, tasks map[string]bool) {
	names := map[string]int{}
	for i, s := range g.Services {
		spath := indexPath(path+".services", i)
		if s == nil {
			v.Add(spath, "must not be null")
			continue
		}
		switch first, dup := names[s.Name]; {
		case s.Name == "":
			v.Add(spath+".name", "required")
		case dup:
			v.Add(spath+".name", "duplicate service name %q (first at services[%d])", s.Name, first)
		case len(s.Name) > maxIDLength || !serviceNamePattern.MatchString(s.Name):
			v.Add(spath+".name", "must be a DNS label: at most %d lowercase letters, digits and '-', not starting or ending with '-', got %q", maxIDLength, s.Name)
		default:
			names[s.Name] = i
		}
		checkPortRef(v, spath+".port", s.Port, labels)
		for k, c := range s.Checks {
			cpath := indexPath(spath+".checks", k)
			if c == nil {
				v.Add(cpath, "must not be null")
				continue
			}
			validateCheck(v, cpath, c, s, labels, tasks)
		}
	}
}

func validateCheck(v *ValidationError, path string, c *Check, s *Service, labels, tasks map[string]bool) {
	switch c.Type {
	case CheckHTTP, CheckTCP:
		switch {
		case c.Port == "":
			v.Add(path+".port", "required for %s checks: name a port label here or on the service", c.Type)
		case c.Port != s.Port: // the service's own port is checked once, there
			checkPortRef(v, path+".port", c.Port, labels)
		}
		if c.Type == CheckHTTP && c.Path != "" && !strings.HasPrefix(c.Path, "/") {
			v.Add(path+".path", "must start with '/', got %q", c.Path)
		}
	case CheckScript:
		if c.Command == "" {
			v.Add(path+".command", "required for script checks")
		}
		if c.Task == "" && len(tasks) > 1 {
			v.Add(path+".task", "required for script checks in a group of more than one task")
		}
	case "":
		v.Add(path+".type", "required: http, tcp or script")
	default:
		v.Add(path+".type", "must be http, tcp or script, got %q", c.Type)
	}
	if c.Task != "" && !tasks[c.Task] {
		v.Add(path+".task", "no task named %q in the group", c.Task)
	}
	switch {
	case c.Interval == 0:
		v.Add(path+".interval", "required: how often the check runs, e.g. 10s")
	case c.Interval < 0:
		v.Add(path+".interval", "must be > 0, got %s", c.Interval)
	}
	switch {
	case c.Timeout <= 0:
		v.Add(path+".timeout", "must be > 0, got %s", c.Timeout)
	case c.Interval > 0 && c.Timeout > c.Interval:
		v.Add(path+".timeout", "must not exceed the interval (%s), got %s", c.Interval, c.Timeout)
	}
}

// checkPortRef checks a reference to a port: a label of the group's
// network, or a port number.
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
	switch {
	case u.Canary < 0:
		v.Add(path+".canary", "must be >= 0, got %d", u.Canary)
	case u.Canary > 0 && jobType != JobTypeService:
		v.Add(path+".canary", "canaries are for service jobs, not %s jobs", jobType)
	}
	for _, d := range []struct {
		name string
		val  Duration
	}{{"min_healthy_time", u.MinHealthyTime}, {"healthy_deadline", u.HealthyDeadline}, {"progress_deadline", u.ProgressDeadline}} {
		if d.val < 0 {
			v.Add(path+"."+d.name, "must be >= 0, got %s", d.val)
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
		cpath := indexPath(path, i)
		if c == nil {
			v.Add(cpath, "must not be null")
			continue
		}
		validateMatch(v, cpath, c.Attribute, c.Operator, c.Value, false)
	}
}

func validateAffinities(v *ValidationError, path string, as []*Affinity) {
	for i, a := range as {
		apath := indexPath(path, i)
		if a == nil {
			v.Add(apath, "must not be null")
			continue
		}
		validateMatch(v, apath, a.Attribute, a.Operator, a.Value, true)
		if a.Weight == 0 || a.Weight < -100 || a.Weight > 100 {
			v.Add(apath+".weight", "must be between -100 and 100 and not 0, got %d", a.Weight)
		}
	}
}

// validateMatch checks the attribute/operator/value triple shared by
// constraints and affinities.
func validateMatch(v *ValidationError, path, attr, op, value string, affinity bool) {
	known := false
	for _, o := range constraintOperators {
		known = known || o == op
	}
	if !known {
		v.Add(path+".operator", "unknown operator %q (one of %s)", op, strings.Join(constraintOperators, ", "))
		return
	}
	if affinity && (op == "distinct_hosts" || op == "distinct_property") {
		v.Add(path+".operator", "%s is for constraints, not affinities", op)
		return
	}
	if attr == "" && op != "distinct_hosts" {
		v.Add(path+".attribute", "required")
	}
	switch op {
	case "distinct_hosts", "is_set", "is_not_set":
	case "distinct_property":
		// The value, if any, is how many allocations may share a value.
		if n, err := strconv.Atoi(value); value != "" && (err != nil || n < 1) {
			v.Add(path+".value", "must be a count >= 1 for distinct_property, got %q", value)
		}
	case "regexp":
		if value == "" {
			v.Add(path+".value", "required for operator %q", op)
		} else if _, err := regexp.Compile(value); err != nil {
			v.Add(path+".value", "invalid regular expression: %v", err)
		}
	case "version", "semver":
		if value == "" {
			v.Add(path+".value", "required for operator %q", op)
		} else if _, err := ParseVersionConstraint(value); err != nil {
			v.Add(path+".value", "%v", err)
		}
	default:
		if value == "" {
			v.Add(path+".value", "required for operator %q", op)
		}
	}
}

func validateSpreads(v *ValidationError, path string, ss []*Spread) {
	for i, s := range ss {
		spath := indexPath(path, i)
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
		first := map[string]int{}
		for k, t := range s.Targets {
			tpath := indexPath(spath+".targets", k)
			if t == nil {
				v.Add(tpath, "must not be null")
				continue
			}
			switch at, dup := first[t.Value]; {
			case t.Value == "":
				v.Add(tpath+".value", "required")
			case dup:
				v.Add(tpath+".value", "duplicate target value %q (first at targets[%d])", t.Value, at)
			default:
				first[t.Value] = k
			}
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
