package structs

import "time"

// Defaults a job file may leave out.
const (
	DefaultPriority     = 50
	DefaultKillTimeout  = Duration(5 * time.Second)
	DefaultTaskCPU      = 100
	DefaultTaskMemory   = 128
	DefaultCheckTimeout = Duration(2 * time.Second)
)

// Canonicalize fills the defaults of everything the job leaves unset. It
// is idempotent, and the servers run it on every job they accept.
func (j *Job) Canonicalize() {
	if j.Namespace == "" {
		j.Namespace = DefaultNamespace
	}
	if j.Type == "" {
		j.Type = JobTypeService
	}
	if j.Priority == 0 {
		j.Priority = DefaultPriority
	}
	if len(j.Datacenters) == 0 {
		j.Datacenters = []string{"*"}
	}
	if j.Type == JobTypeService {
		if j.Update == nil {
			j.Update = &UpdateStrategy{}
		}
		j.Update.fill(defaultUpdate())
	}
	for _, g := range j.Groups {
		g.canonicalize(j)
	}
}

func defaultUpdate() *UpdateStrategy {
	return &UpdateStrategy{
		MaxParallel:      1,
		MinHealthyTime:   Duration(10 * time.Second),
		HealthyDeadline:  Duration(5 * time.Minute),
		ProgressDeadline: Duration(10 * time.Minute),
	}
}

// fill sets u's unset fields from def.
func (u *UpdateStrategy) fill(def *UpdateStrategy) {
	if u.MaxParallel == 0 {
		u.MaxParallel = def.MaxParallel
	}
	if u.MinHealthyTime == 0 {
		u.MinHealthyTime = def.MinHealthyTime
	}
	if u.HealthyDeadline == 0 {
		u.HealthyDeadline = def.HealthyDeadline
	}
	if u.ProgressDeadline == 0 {
		u.ProgressDeadline = def.ProgressDeadline
	}
}

func (g *TaskGroup) canonicalize(j *Job) {
	if g.Update != nil && j.Update != nil {
		g.Update.fill(j.Update)
	}
	defRestart := &RestartPolicy{Attempts: 2, Interval: Duration(30 * time.Minute), Delay: Duration(15 * time.Second), Mode: RestartModeFail}
	if j.Type == JobTypeBatch {
		defRestart = &RestartPolicy{Attempts: 3, Interval: Duration(24 * time.Hour), Delay: Duration(15 * time.Second), Mode: RestartModeFail}
	}
	if g.Restart == nil {
		g.Restart = defRestart
	} else {
		if g.Restart.Interval == 0 {
			g.Restart.Interval = defRestart.Interval
		}
		if g.Restart.Mode == "" {
			g.Restart.Mode = defRestart.Mode
		}
	}
	switch j.Type {
	case JobTypeService:
		if g.Reschedule == nil {
			g.Reschedule = &ReschedulePolicy{Unlimited: true, Delay: Duration(30 * time.Second), DelayFunction: "exponential", MaxDelay: Duration(time.Hour)}
		}
		if g.Reschedule.DelayFunction == "" {
			g.Reschedule.DelayFunction = "exponential"
		}
		if g.Reschedule.MaxDelay == 0 {
			g.Reschedule.MaxDelay = Duration(time.Hour)
		}
	case JobTypeBatch:
		if g.Reschedule == nil {
			g.Reschedule = &ReschedulePolicy{Attempts: 1, Interval: Duration(24 * time.Hour), Delay: Duration(5 * time.Second), DelayFunction: "constant"}
		}
		if g.Reschedule.DelayFunction == "" {
			g.Reschedule.DelayFunction = "constant"
		}
	}
	if g.Network == nil {
		g.Network = &NetworkSpec{}
	}
	if g.Network.Mode == "" {
		if len(g.Network.Ports) > 0 {
			g.Network.Mode = NetworkModeBridge
		} else {
			g.Network.Mode = NetworkModeHost
		}
	}
	for _, s := range g.Services {
		for _, c := range s.Checks {
			if c.Timeout == 0 {
				c.Timeout = DefaultCheckTimeout
			}
			if c.Type == "http" && c.Path == "" {
				c.Path = "/"
			}
			if c.Port == "" && c.Type != "script" {
				c.Port = s.Port
			}
		}
	}
	for _, t := range g.Tasks {
		if t.Resources == nil {
			t.Resources = &Resources{}
		}
		if t.Resources.CPU == 0 {
			t.Resources.CPU = DefaultTaskCPU
		}
		if t.Resources.Memory == 0 {
			t.Resources.Memory = DefaultTaskMemory
		}
		if t.KillTimeout == 0 {
			t.KillTimeout = DefaultKillTimeout
		}
	}
}
