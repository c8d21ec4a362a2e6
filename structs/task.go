package structs

import "slices"

// Task is one container of a group.
type Task struct {
	Name        string            `json:"name"`
	Image       string            `json:"image"`
	Command     string            `json:"command,omitempty"`
	Args        []string          `json:"args,omitempty"`
	Env         map[string]string `json:"env,omitempty"`
	User        string            `json:"user,omitempty"`
	WorkDir     string            `json:"work_dir,omitempty"`
	Resources   *Resources        `json:"resources"`
	KillTimeout Duration          `json:"kill_timeout"`
	Meta        map[string]string `json:"meta,omitempty"`
}

// Resources a task asks for: CPU in MHz, memory in MiB.
type Resources struct {
	CPU    int `json:"cpu"`
	Memory int `json:"memory"`
}

// Copy returns a deep copy of the task.
func (t *Task) Copy() *Task {
	if t == nil {
		return nil
	}
	c := *t
	c.Args = slices.Clone(t.Args)
	c.Env = copyMap(t.Env)
	c.Meta = copyMap(t.Meta)
	if t.Resources != nil {
		r := *t.Resources
		c.Resources = &r
	}
	return &c
}

// Add adds other's resources to r.
func (r *Resources) Add(other *Resources) {
	if other == nil {
		return
	}
	r.CPU += other.CPU
	r.Memory += other.Memory
}
