package structs

// Desired statuses, set by the servers.
const (
	AllocDesiredRun   = "run"
	AllocDesiredStop  = "stop"
	AllocDesiredEvict = "evict"
)

// Client statuses, reported by the node.
const (
	AllocClientPending  = "pending"
	AllocClientRunning  = "running"
	AllocClientComplete = "complete"
	AllocClientFailed   = "failed"
	AllocClientLost     = "lost"
)

// Task states.
const (
	TaskStatePending = "pending"
	TaskStateRunning = "running"
	TaskStateDead    = "dead"
)

// Allocation is one instance of a task group placed on a node.
type Allocation struct {
	ID                 string                 `json:"id"`
	Namespace          string                 `json:"namespace"`
	EvalID             string                 `json:"eval_id"`
	Name               string                 `json:"name"`
	NodeID             string                 `json:"node_id"`
	NodeName           string                 `json:"node_name,omitempty"`
	JobID              string                 `json:"job_id"`
	Job                *Job                   `json:"job,omitempty"`
	TaskGroup          string                 `json:"task_group"`
	Resources          *AllocatedResources    `json:"resources,omitempty"`
	DesiredStatus      string                 `json:"desired_status"`
	DesiredDescription string                 `json:"desired_description,omitempty"`
	DesiredTransition  DesiredTransition      `json:"desired_transition"`
	ClientStatus       string                 `json:"client_status"`
	ClientDescription  string                 `json:"client_description,omitempty"`
	TaskStates         map[string]*TaskState  `json:"task_states,omitempty"`
	DeploymentID       string                 `json:"deployment_id,omitempty"`
	DeploymentStatus   *AllocDeploymentStatus `json:"deployment_status,omitempty"`
	PreviousAllocation string                 `json:"previous_allocation,omitempty"`
	NextAllocation     string                 `json:"next_allocation,omitempty"`
	RescheduleTracker  *RescheduleTracker     `json:"reschedule_tracker,omitempty"`
	FollowupEvalID     string                 `json:"followup_eval_id,omitempty"`
	CreateIndex        uint64                 `json:"create_index"`
	ModifyIndex        uint64                 `json:"modify_index"`
	AllocModifyIndex   uint64                 `json:"alloc_modify_index"`
	CreateTime         int64                  `json:"create_time"`
	ModifyTime         int64                  `json:"modify_time"`
}

// DesiredTransition is what a server controller asks the scheduler to do
// with a running allocation; the scheduler acts on it at the next
// evaluation of the job.
type DesiredTransition struct {
	// Migrate moves the allocation off its node: the drainer sets it on
	// max_parallel allocations of a group at a time.
	Migrate bool `json:"migrate,omitempty"`
}

// AllocatedResources are what the scheduler set aside for an allocation.
type AllocatedResources struct {
	Tasks map[string]*Resources `json:"tasks,omitempty"`
	Ports []*AllocatedPort      `json:"ports,omitempty"`
}

// AllocatedPort is a host port given to an allocation.
type AllocatedPort struct {
	Label string `json:"label"`
	Value int    `json:"value"`
	To    int    `json:"to,omitempty"`
}

// Task event types, in the order a task usually meets them.
const (
	TaskEventReceived      = "received"       // the client saw the allocation
	TaskEventSetup         = "setup"          // alloc dir, network
	TaskEventPulling       = "pulling"        // image pull or import started
	TaskEventPulled        = "pulled"         // image ready (message says how long)
	TaskEventDriverFailure = "driver_failure" // pull, create or start failed
	TaskEventStarted       = "started"
	TaskEventTerminated    = "terminated" // the process ended (exit code, signal, OOM)
	TaskEventRestarting    = "restarting" // the restart policy will start it again
	TaskEventNotRestarting = "not_restarting"
	TaskEventKilling       = "killing" // stop requested (signal, kill_timeout)
	TaskEventKilled        = "killed"
	TaskEventRestartSignal = "restart_signaled" // `alloc restart`
)

// TaskState is the client's view of one task.
type TaskState struct {
	State       string       `json:"state"`
	Failed      bool         `json:"failed"`
	Restarts    int          `json:"restarts"`
	LastRestart int64        `json:"last_restart,omitempty"`
	StartedAt   int64        `json:"started_at,omitempty"`
	FinishedAt  int64        `json:"finished_at,omitempty"`
	Events      []*TaskEvent `json:"events,omitempty"`
}

// TaskEvent is one step in a task's life, shown by `alloc status`.
type TaskEvent struct {
	Type      string `json:"type"`
	Time      int64  `json:"time"`
	Message   string `json:"message,omitempty"`
	ExitCode  int    `json:"exit_code,omitempty"`
	Signal    int    `json:"signal,omitempty"`
	OOMKilled bool   `json:"oom_killed,omitempty"`
}

// AllocDeploymentStatus is an allocation's health within a deployment.
type AllocDeploymentStatus struct {
	Healthy   *bool `json:"healthy,omitempty"`
	Timestamp int64 `json:"timestamp,omitempty"`
	Canary    bool  `json:"canary,omitempty"`
}

// RescheduleTracker records the reschedule attempts behind an allocation.
type RescheduleTracker struct {
	Events []*RescheduleEvent `json:"events,omitempty"`
}

// RescheduleEvent is one replacement of a failed allocation.
type RescheduleEvent struct {
	RescheduleTime int64    `json:"reschedule_time"`
	PrevAllocID    string   `json:"prev_alloc_id"`
	PrevNodeID     string   `json:"prev_node_id"`
	Delay          Duration `json:"delay"`
}

// AllocListStub is the short form of an allocation in list responses.
type AllocListStub struct {
	ID                 string                 `json:"id"`
	Namespace          string                 `json:"namespace"`
	EvalID             string                 `json:"eval_id"`
	Name               string                 `json:"name"`
	NodeID             string                 `json:"node_id"`
	NodeName           string                 `json:"node_name,omitempty"`
	JobID              string                 `json:"job_id"`
	JobVersion         uint64                 `json:"job_version"`
	TaskGroup          string                 `json:"task_group"`
	DesiredStatus      string                 `json:"desired_status"`
	DesiredDescription string                 `json:"desired_description,omitempty"`
	ClientStatus       string                 `json:"client_status"`
	ClientDescription  string                 `json:"client_description,omitempty"`
	TaskStates         map[string]*TaskState  `json:"task_states,omitempty"`
	DeploymentStatus   *AllocDeploymentStatus `json:"deployment_status,omitempty"`
	CreateIndex        uint64                 `json:"create_index"`
	ModifyIndex        uint64                 `json:"modify_index"`
	CreateTime         int64                  `json:"create_time"`
	ModifyTime         int64                  `json:"modify_time"`
}

// Stub returns the list form of the allocation.
func (a *Allocation) Stub() *AllocListStub {
	s := &AllocListStub{
		ID: a.ID, Namespace: a.Namespace, EvalID: a.EvalID, Name: a.Name,
		NodeID: a.NodeID, NodeName: a.NodeName, JobID: a.JobID,
		TaskGroup: a.TaskGroup, DesiredStatus: a.DesiredStatus,
		DesiredDescription: a.DesiredDescription, ClientStatus: a.ClientStatus,
		ClientDescription: a.ClientDescription, TaskStates: a.TaskStates,
		DeploymentStatus: a.DeploymentStatus, CreateIndex: a.CreateIndex,
		ModifyIndex: a.ModifyIndex, CreateTime: a.CreateTime, ModifyTime: a.ModifyTime,
	}
	if a.Job != nil {
		s.JobVersion = a.Job.Version
	}
	return s
}

// IsCanary reports whether the scheduler placed the allocation as a
// canary of its deployment.
func (a *Allocation) IsCanary() bool {
	return a.DeploymentStatus != nil && a.DeploymentStatus.Canary
}

// TerminalStatus reports whether the allocation is stopped or finished,
// whichever side decided it.
func (a *Allocation) TerminalStatus() bool {
	switch a.DesiredStatus {
	case AllocDesiredStop, AllocDesiredEvict:
		return true
	}
	return a.ClientTerminalStatus()
}

// ClientTerminalStatus reports whether the client says the allocation ended.
func (a *Allocation) ClientTerminalStatus() bool {
	switch a.ClientStatus {
	case AllocClientComplete, AllocClientFailed, AllocClientLost:
		return true
	}
	return false
}

// Copy returns a deep copy of the allocation; the Job pointer is shared,
// since jobs in the store are never modified in place.
func (a *Allocation) Copy() *Allocation {
	if a == nil {
		return nil
	}
	c := *a
	if a.Resources != nil {
		r := AllocatedResources{}
		if a.Resources.Tasks != nil {
			r.Tasks = make(map[string]*Resources, len(a.Resources.Tasks))
			for k, v := range a.Resources.Tasks {
				vc := *v
				r.Tasks[k] = &vc
			}
		}
		if a.Resources.Ports != nil {
			r.Ports = make([]*AllocatedPort, len(a.Resources.Ports))
			for i, p := range a.Resources.Ports {
				pc := *p
				r.Ports[i] = &pc
			}
		}
		c.Resources = &r
	}
	if a.TaskStates != nil {
		c.TaskStates = make(map[string]*TaskState, len(a.TaskStates))
		for k, v := range a.TaskStates {
			c.TaskStates[k] = v.Copy()
		}
	}
	if a.DeploymentStatus != nil {
		d := *a.DeploymentStatus
		if d.Healthy != nil {
			h := *d.Healthy
			d.Healthy = &h
		}
		c.DeploymentStatus = &d
	}
	if a.RescheduleTracker != nil {
		t := RescheduleTracker{Events: make([]*RescheduleEvent, len(a.RescheduleTracker.Events))}
		for i, e := range a.RescheduleTracker.Events {
			ec := *e
			t.Events[i] = &ec
		}
		c.RescheduleTracker = &t
	}
	return &c
}

// Copy returns a deep copy of the task state.
func (s *TaskState) Copy() *TaskState {
	if s == nil {
		return nil
	}
	c := *s
	if s.Events != nil {
		c.Events = make([]*TaskEvent, len(s.Events))
		for i, e := range s.Events {
			ec := *e
			c.Events[i] = &ec
		}
	}
	return &c
}
