package structs

import "time"

// Defaults a job may leave out.
const (
	DefaultPriority       = 50
	DefaultKillTimeout    = Duration(5 * time.Second)
	DefaultTaskCPU        = 100 // MHz
	DefaultTaskMemory     = 128 // MiB
	DefaultCheckTimeout   = Duration(2 * time.Second)
	DefaultAffinityWeight = 50
	// AnyDatacenter is the datacenters entry of a job that names none.
	AnyDatacenter = "*"
)

// Reschedule delay functions.
const (
	DelayConstant    = "constant"
	DelayExponential = "exponential"
	DelayFibonacci   = "fibonacci"
)

// Check types.
const (
	CheckHTTP   = "http"
	CheckTCP    = "tcp"
	CheckScript = "script"
)

// DefaultUpdateStrategy is the rollout of a service job that names none.
func DefaultUpdateStrategy() *UpdateStrategy {
	return &UpdateStrategy{
		MaxParallel:      1,
		MinHealthyTime:   Duration(10 * time.Second),
		HealthyDeadline:  Duration(5 * time.Minute),
		ProgressDeadline: Duration(10 * time.Minute),
	}
}

// DefaultRestartPolicy is the restart policy of a group of a job of
// jobType that names none.
func DefaultRestartPolicy(jobType string) *RestartPolicy {
	if jobType == JobTypeBatch {
		return &RestartPolicy{Attempts: 3, Interval: Duration(24 * time.Hour), Delay: Duration(15 * time.Second), Mode: RestartModeFail}
	}
	return &RestartPolicy{Attempts: 2, Interval: Duration(30 * time.Minute), Delay: Duration(15 * time.Second), Mode: RestartModeFail}
}

// DefaultReschedulePolicy is the reschedule policy of a group of a job of
// jobType that names none: nil for system jobs, which run on every node and
// are never moved.
func DefaultReschedulePolicy(jobType string) *ReschedulePolicy {
	switch jobType {
	case JobTypeSystem:
		return nil
	case JobTypeBatch:
		return &ReschedulePolicy{Attempts: 1, Interval: Duration(24 * time.Hour), Delay: Duration(5 * time.Second), DelayFunction: DelayConstant}
	}
	return &ReschedulePolicy{Unlimited: true, Delay: Duration(30 * time.Second), DelayFunction: DelayExponential, MaxDelay: Duration(time.Hour)}
}

// Canonicalize fills, in place, the defaults of everything the job leaves
// unset; it is idempotent, and the servers run it on every job they accept.
// Missing blocks get the defaults of the job's type, and present blocks get
// their unset fields filled. Where zero is a meaningful value (count: 0,
// attempts: 0, max_parallel: 0...) a present block keeps it: only a job file
// can say a field was left out, and ParseJob fills those from the file.
func (j *Job) Canonicalize() {
	if j != nil {
		j.canonicalize(nil)
	}
}

// defaulter holds the field paths a job file gave a value, or is nil when
// the job did not come from a file.
type defaulter map[string]struct{}

// unset is for fields whose zero is invalid (priority, cpu): from a file,
// the field takes its default when left out, so an explicit 0 is reported
// rather than silently replaced; otherwise when it is zero.
func (f defaulter) unset(path string, zero bool) bool {
	if f == nil {
		return zero
	}
	_, given := f[path]
	return !given
}

// absent is for fields whose zero means something (count, attempts): only
// a file can tell they were left out.
func (f defaulter) absent(path string) bool {
	if f == nil {
		return false
	}
	_, given := f[path]
	return !given
}

func (j *Job) canonicalize(given defaulter) {
	if j.Namespace == "" {
		j.Namespace = DefaultNamespace
	}
	if j.Type == "" {
		j.Type = JobTypeService
	}
	if given.unset("priority", j.Priority == 0) {
		j.Priority = DefaultPriority
	}
	if len(j.Datacenters) == 0 {
		j.Datacenters = []string{AnyDatacenter}
	}
	canonicalizeConstraints(j.Constraints)
	canonicalizeAffinities(given, "affinities", j.Affinities)
	switch {
	case j.Update != nil:
		j.Update.fill(given, "update", DefaultUpdateStrategy())
	case j.Type == JobTypeService:
		j.Update = DefaultUpdateStrategy()
	}
	for i, g := range j.Groups {
		if g != nil {
			g.canonicalize(given, indexPath("groups", i), j)
		}
	}
}

// fill sets u's unset fields from base.
func (u *UpdateStrategy) fill(given defaulter, path string, base *UpdateStrategy) {
	if given.absent(path + ".max_parallel") {
		u.MaxParallel = base.MaxParallel
	}
	if given.absent(path + ".min_healthy_time") {
		u.MinHealthyTime = base.MinHealthyTime
	}
	if u.HealthyDeadline == 0 {
		u.HealthyDeadline = base.HealthyDeadline
	}
	if u.ProgressDeadline == 0 {
		u.ProgressDeadline = base.ProgressDeadline
	}
	if given.absent(path + ".canary") {
		u.Canary = base.Canary
	}
	if given.absent(path + ".auto_revert") {
		u.AutoRevert = base.AutoRevert
	}
	if given.absent(path + ".auto_promote") {
		u.AutoPromote = base.AutoPromote
	}
}

func (g *TaskGroup) canonicalize(given defaulter, path string, j *Job) {
	if given.absent(path + ".count") {
		g.Count = 1
	}
	canonicalizeConstraints(g.Constraints)
	canonicalizeAffinities(given, path+".affinities", g.Affinities)
	if g.Update != nil {
		// A group's update block overrides the job's field by field.
		base := j.Update
		if base == nil {
			base = DefaultUpdateStrategy()
		}
		g.Update.fill(given, path+".update", base)
	}
	g.canonicalizeRestart(given, path+".restart", j.Type)
	g.canonicalizeReschedule(given, path+".reschedule", j.Type)

	if g.Network == nil {
		g.Network = &NetworkSpec{}
	}
	if g.Network.Mode == "" {
		// Ports need a namespace to map into; without any, the host's
		// network is the cheapest that works.
		g.Network.Mode = NetworkModeHost
		if len(g.Network.Ports) > 0 {
			g.Network.Mode = NetworkModeBridge
		}
	}
	for _, s := range g.Services {
		if s == nil {
			continue
		}
		for _, c := range s.Checks {
			if c != nil {
				c.canonicalize(s)
			}
		}
	}
	for i, t := range g.Tasks {
		if t != nil {
			t.canonicalize(given, indexPath(path+".tasks", i))
		}
	}
}

func (g *TaskGroup) canonicalizeRestart(given defaulter, path, jobType string) {
	def := DefaultRestartPolicy(jobType)
	r := g.Restart
	if r == nil {
		g.Restart = def
		return
	}
	if given.absent(path + ".attempts") {
		r.Attempts = def.Attempts
	}
	if r.Interval == 0 {
		r.Interval = def.Interval
	}
	if given.absent(path + ".delay") {
		r.Delay = def.Delay
	}
	if r.Mode == "" {
		r.Mode = def.Mode
	}
}

func (g *TaskGroup) canonicalizeReschedule(given defaulter, path, jobType string) {
	def := DefaultReschedulePolicy(jobType)
	r := g.Reschedule
	if def == nil || r == nil {
		// A system job's reschedule block is left for Validate to reject.
		if r == nil {
			g.Reschedule = def
		}
		return
	}
	if given.absent(path + ".unlimited") {
		// Writing attempts or an interval asks for a limit: honour it
		// instead of letting a service job's unlimited default win.
		r.Unlimited = def.Unlimited && given.absent(path+".attempts") && given.absent(path+".interval")
	}
	if given.absent(path + ".attempts") {
		r.Attempts = def.Attempts
	}
	if given.absent(path + ".delay") {
		r.Delay = def.Delay
	}
	if r.DelayFunction == "" {
		r.DelayFunction = def.DelayFunction
	}
	if r.Interval == 0 && !r.Unlimited {
		r.Interval = def.Interval
		if r.Interval == 0 {
			r.Interval = Duration(time.Hour)
		}
	}
	if r.MaxDelay == 0 && r.DelayFunction != DelayConstant {
		r.MaxDelay = Duration(time.Hour)
	}
}

func (c *Check) canonicalize(s *Service) {
	if c.Timeout == 0 {
		c.Timeout = DefaultCheckTimeout
		if c.Interval > 0 && c.Interval < c.Timeout {
			c.Timeout = c.Interval
		}
	}
	if c.Type == CheckHTTP && c.Path == "" {
		c.Path = "/"
	}
	if (c.Type == CheckHTTP || c.Type == CheckTCP) && c.Port == "" {
		c.Port = s.Port
	}
}

func (t *Task) canonicalize(given defaulter, path string) {
	if t.Resources == nil {
		t.Resources = &Resources{CPU: DefaultTaskCPU, Memory: DefaultTaskMemory}
	} else {
		if given.unset(path+".resources.cpu", t.Resources.CPU == 0) {
			t.Resources.CPU = DefaultTaskCPU
		}
		if given.unset(path+".resources.memory", t.Resources.Memory == 0) {
			t.Resources.Memory = DefaultTaskMemory
		}
	}
	if t.KillTimeout == 0 {
		t.KillTimeout = DefaultKillTimeout
	}
}

func canonicalizeConstraints(cs []*Constraint) {
	for _, c := range cs {
		if c != nil && c.Operator == "" {
			c.Operator = "="
		}
	}
}

func canonicalizeAffinities(given defaulter, path string, as []*Affinity) {
	for i, a := range as {
		if a == nil {
			continue
		}
		if a.Operator == "" {
			a.Operator = "="
		}
		if given.unset(indexPath(path, i)+".weight", a.Weight == 0) {
			a.Weight = DefaultAffinityWeight
		}
	}
}
