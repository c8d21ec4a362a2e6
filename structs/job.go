package structs

import (
	"reflect"
	"slices"
)

// Job types.
const (
	JobTypeService = "service"
	JobTypeBatch   = "batch"
	JobTypeSystem  = "system"
)

// Job statuses, derived by the store from the job's evaluations and allocations.
const (
	JobStatusPending = "pending"
	JobStatusRunning = "running"
	JobStatusDead    = "dead"
)

// DefaultNamespace is the namespace of objects that name none.
const DefaultNamespace = "default"

// JobTrackedVersions is how many versions of a job the store keeps.
const JobTrackedVersions = 6

// Job is the user's declaration of what should run. The fields up to Meta
// come from the job file; the rest are set by the servers and are ignored
// when a job is submitted, so a job read back can be submitted again.
type Job struct {
	ID          string            `json:"id"`
	Namespace   string            `json:"namespace"`
	Type        string            `json:"type"`
	Priority    int               `json:"priority"`
	Datacenters []string          `json:"datacenters"`
	Constraints []*Constraint     `json:"constraints,omitempty"`
	Affinities  []*Affinity       `json:"affinities,omitempty"`
	Spreads     []*Spread         `json:"spreads,omitempty"`
	Update      *UpdateStrategy   `json:"update,omitempty"`
	Groups      []*TaskGroup      `json:"groups"`
	Meta        map[string]string `json:"meta,omitempty"`

	Stop              bool   `json:"stop"`
	Status            string `json:"status"`
	StatusDescription string `json:"status_description,omitempty"`
	Version           uint64 `json:"version"`
	// Stable is set on a version once a deployment of it succeeded:
	// auto_revert goes back to the newest stable version.
	Stable         bool   `json:"stable,omitempty"`
	SubmitTime     int64  `json:"submit_time"`
	CreateIndex    uint64 `json:"create_index"`
	ModifyIndex    uint64 `json:"modify_index"`
	JobModifyIndex uint64 `json:"job_modify_index"`
}

// Constraint restricts the nodes a job or group may run on.
type Constraint struct {
	Attribute string `json:"attribute"`
	Operator  string `json:"operator"`
	Value     string `json:"value"`
}

// Affinity prefers (positive weight) or avoids (negative) matching nodes.
type Affinity struct {
	Attribute string `json:"attribute"`
	Operator  string `json:"operator"`
	Value     string `json:"value"`
	Weight    int    `json:"weight"`
}

// Spread asks the scheduler to spread allocations over the values of an
// attribute, optionally with target percentages.
type Spread struct {
	Attribute string          `json:"attribute"`
	Weight    int             `json:"weight"`
	Targets   []*SpreadTarget `json:"targets,omitempty"`
}

// SpreadTarget is the share of allocations wanted on one attribute value.
type SpreadTarget struct {
	Value   string `json:"value"`
	Percent int    `json:"percent"`
}

// UpdateStrategy says how a service job rolls out a new version.
type UpdateStrategy struct {
	MaxParallel      int      `json:"max_parallel"`
	MinHealthyTime   Duration `json:"min_healthy_time"`
	HealthyDeadline  Duration `json:"healthy_deadline"`
	ProgressDeadline Duration `json:"progress_deadline"`
	AutoRevert       bool     `json:"auto_revert"`
	AutoPromote      bool     `json:"auto_promote"`
	Canary           int      `json:"canary"`
}

// JobListStub is the short form of a job in list responses.
type JobListStub struct {
	ID                string   `json:"id"`
	Namespace         string   `json:"namespace"`
	Type              string   `json:"type"`
	Priority          int      `json:"priority"`
	Datacenters       []string `json:"datacenters"`
	Stop              bool     `json:"stop"`
	Status            string   `json:"status"`
	StatusDescription string   `json:"status_description,omitempty"`
	Version           uint64   `json:"version"`
	SubmitTime        int64    `json:"submit_time"`
	CreateIndex       uint64   `json:"create_index"`
	ModifyIndex       uint64   `json:"modify_index"`
	JobModifyIndex    uint64   `json:"job_modify_index"`
}

// Stub returns the list form of the job.
func (j *Job) Stub() *JobListStub {
	return &JobListStub{
		ID: j.ID, Namespace: j.Namespace, Type: j.Type, Priority: j.Priority,
		Datacenters: j.Datacenters, Stop: j.Stop, Status: j.Status,
		StatusDescription: j.StatusDescription, Version: j.Version,
		SubmitTime: j.SubmitTime, CreateIndex: j.CreateIndex,
		ModifyIndex: j.ModifyIndex, JobModifyIndex: j.JobModifyIndex,
	}
}

// LookupGroup returns the named group, or nil.
func (j *Job) LookupGroup(name string) *TaskGroup {
	for _, g := range j.Groups {
		if g.Name == name {
			return g
		}
	}
	return nil
}

// Copy returns a deep copy of the job.
func (j *Job) Copy() *Job {
	if j == nil {
		return nil
	}
	c := *j
	c.Datacenters = slices.Clone(j.Datacenters)
	c.Constraints = copyConstraints(j.Constraints)
	c.Affinities = copyAffinities(j.Affinities)
	c.Spreads = copySpreads(j.Spreads)
	c.Update = j.Update.Copy()
	c.Meta = copyMap(j.Meta)
	if j.Groups != nil {
		c.Groups = make([]*TaskGroup, len(j.Groups))
		for i, g := range j.Groups {
			c.Groups[i] = g.Copy()
		}
	}
	return &c
}

// SpecChanged reports whether the user-declared part of the job differs
// from other's; server-set fields (status, version, indexes) are ignored.
// It runs in every job registration's Apply, so it compares shallow copies
// instead of deep-copying both jobs.
func (j *Job) SpecChanged(other *Job) bool {
	if j == nil || other == nil {
		return j != other
	}
	a, b := *j, *other
	a.clearServerFields()
	b.clearServerFields()
	return !reflect.DeepEqual(&a, &b)
}

func (j *Job) clearServerFields() {
	j.Status, j.StatusDescription = "", ""
	j.Version, j.SubmitTime, j.Stable = 0, 0, false
	j.CreateIndex, j.ModifyIndex, j.JobModifyIndex = 0, 0, 0
}

// Copy returns a copy of the strategy.
func (u *UpdateStrategy) Copy() *UpdateStrategy {
	if u == nil {
		return nil
	}
	c := *u
	return &c
}

func copyConstraints(in []*Constraint) []*Constraint {
	if in == nil {
		return nil
	}
	out := make([]*Constraint, len(in))
	for i, c := range in {
		cc := *c
		out[i] = &cc
	}
	return out
}

func copyAffinities(in []*Affinity) []*Affinity {
	if in == nil {
		return nil
	}
	out := make([]*Affinity, len(in))
	for i, a := range in {
		ac := *a
		out[i] = &ac
	}
	return out
}

func copySpreads(in []*Spread) []*Spread {
	if in == nil {
		return nil
	}
	out := make([]*Spread, len(in))
	for i, s := range in {
		sc := *s
		if s.Targets != nil {
			sc.Targets = make([]*SpreadTarget, len(s.Targets))
			for k, t := range s.Targets {
				tc := *t
				sc.Targets[k] = &tc
			}
		}
		out[i] = &sc
	}
	return out
}

func copyMap(in map[string]string) map[string]string {
	if in == nil {
		return nil
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}
