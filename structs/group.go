package structs

import "slices"

// Restart policy modes.
const (
	RestartModeFail  = "fail"
	RestartModeDelay = "delay"
)

// Network modes.
const (
	NetworkModeBridge = "bridge"
	NetworkModeHost   = "host"
	NetworkModeNone   = "none"
)

// TaskGroup is a set of tasks placed together on one node, count times.
type TaskGroup struct {
	Name        string            `json:"name"`
	Count       int               `json:"count"`
	Constraints []*Constraint     `json:"constraints,omitempty"`
	Affinities  []*Affinity       `json:"affinities,omitempty"`
	Spreads     []*Spread         `json:"spreads,omitempty"`
	Update      *UpdateStrategy   `json:"update,omitempty"`
	Restart     *RestartPolicy    `json:"restart,omitempty"`
	Reschedule  *ReschedulePolicy `json:"reschedule,omitempty"`
	Network     *NetworkSpec      `json:"network,omitempty"`
	Services    []*Service        `json:"services,omitempty"`
	Tasks       []*Task           `json:"tasks"`
	Meta        map[string]string `json:"meta,omitempty"`
}

// RestartPolicy says how a client restarts a failed task in place.
type RestartPolicy struct {
	Attempts int      `json:"attempts"`
	Interval Duration `json:"interval"`
	Delay    Duration `json:"delay"`
	Mode     string   `json:"mode"`
}

// ReschedulePolicy says how the servers replace a failed allocation on
// another node.
type ReschedulePolicy struct {
	Attempts      int      `json:"attempts"`
	Interval      Duration `json:"interval"`
	Delay         Duration `json:"delay"`
	DelayFunction string   `json:"delay_function"`
	MaxDelay      Duration `json:"max_delay"`
	Unlimited     bool     `json:"unlimited"`
}

// NetworkSpec is a group's network: its mode and the ports it needs.
type NetworkSpec struct {
	Mode  string  `json:"mode"`
	Ports []*Port `json:"ports,omitempty"`
}

// Port asks for a host port: Static fixes it, otherwise one is picked from
// the node's dynamic range. To is the port inside the allocation's network.
type Port struct {
	Label  string `json:"label"`
	Static int    `json:"static,omitempty"`
	To     int    `json:"to,omitempty"`
}

// Service registers a group's port under a name, with health checks.
type Service struct {
	Name   string   `json:"name"`
	Port   string   `json:"port,omitempty"`
	Tags   []string `json:"tags,omitempty"`
	Checks []*Check `json:"checks,omitempty"`
}

// Check is a health check run by the client.
type Check struct {
	Name     string   `json:"name,omitempty"`
	Type     string   `json:"type"`
	Path     string   `json:"path,omitempty"`
	Port     string   `json:"port,omitempty"`
	Command  string   `json:"command,omitempty"`
	Args     []string `json:"args,omitempty"`
	Task     string   `json:"task,omitempty"`
	Interval Duration `json:"interval"`
	Timeout  Duration `json:"timeout"`
}

// LookupTask returns the named task, or nil.
func (g *TaskGroup) LookupTask(name string) *Task {
	for _, t := range g.Tasks {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Copy returns a deep copy of the group.
func (g *TaskGroup) Copy() *TaskGroup {
	if g == nil {
		return nil
	}
	c := *g
	c.Constraints = copyConstraints(g.Constraints)
	c.Affinities = copyAffinities(g.Affinities)
	c.Spreads = copySpreads(g.Spreads)
	c.Update = g.Update.Copy()
	if g.Restart != nil {
		r := *g.Restart
		c.Restart = &r
	}
	if g.Reschedule != nil {
		r := *g.Reschedule
		c.Reschedule = &r
	}
	if g.Network != nil {
		n := *g.Network
		if g.Network.Ports != nil {
			n.Ports = make([]*Port, len(g.Network.Ports))
			for i, p := range g.Network.Ports {
				pc := *p
				n.Ports[i] = &pc
			}
		}
		c.Network = &n
	}
	if g.Services != nil {
		c.Services = make([]*Service, len(g.Services))
		for i, s := range g.Services {
			c.Services[i] = s.Copy()
		}
	}
	if g.Tasks != nil {
		c.Tasks = make([]*Task, len(g.Tasks))
		for i, t := range g.Tasks {
			c.Tasks[i] = t.Copy()
		}
	}
	c.Meta = copyMap(g.Meta)
	return &c
}

// Copy returns a deep copy of the service.
func (s *Service) Copy() *Service {
	if s == nil {
		return nil
	}
	c := *s
	c.Tags = slices.Clone(s.Tags)
	if s.Checks != nil {
		c.Checks = make([]*Check, len(s.Checks))
		for i, ch := range s.Checks {
			cc := *ch
			cc.Args = slices.Clone(ch.Args)
			c.Checks[i] = &cc
		}
	}
	return &c
}
