package structs

// Evaluation statuses.
const (
	EvalStatusPending  = "pending"
	EvalStatusBlocked  = "blocked"
	EvalStatusComplete = "complete"
	EvalStatusFailed   = "failed"
	EvalStatusCanceled = "canceled"
)

// What triggered an evaluation.
const (
	EvalTriggerJobRegister       = "job-register"
	EvalTriggerJobDeregister     = "job-deregister"
	EvalTriggerNodeUpdate        = "node-update"
	EvalTriggerNodeDrain         = "node-drain"
	EvalTriggerAllocStop         = "alloc-stop"
	EvalTriggerRetryFailed       = "alloc-failure"
	EvalTriggerQueuedAllocs      = "queued-allocs"
	EvalTriggerRollingUpdate     = "rolling-update"
	EvalTriggerDeploymentWatcher = "deployment-watcher"
	EvalTriggerMaxPlans          = "max-plan-attempts"
	EvalTriggerReschedule        = "alloc-reschedule"
	EvalTriggerFailedFollowUp    = "failed-eval-follow-up"
)

// Evaluation asks the scheduler to reconcile one job with the cluster.
type Evaluation struct {
	ID                string                  `json:"id"`
	Namespace         string                  `json:"namespace"`
	Priority          int                     `json:"priority"`
	Type              string                  `json:"type"`
	TriggeredBy       string                  `json:"triggered_by"`
	JobID             string                  `json:"job_id"`
	JobModifyIndex    uint64                  `json:"job_modify_index,omitempty"`
	NodeID            string                  `json:"node_id,omitempty"`
	NodeModifyIndex   uint64                  `json:"node_modify_index,omitempty"`
	DeploymentID      string                  `json:"deployment_id,omitempty"`
	Status            string                  `json:"status"`
	StatusDescription string                  `json:"status_description,omitempty"`
	WaitUntil         int64                   `json:"wait_until,omitempty"`
	NextEval          string                  `json:"next_eval,omitempty"`
	PreviousEval      string                  `json:"previous_eval,omitempty"`
	BlockedEval       string                  `json:"blocked_eval,omitempty"`
	FailedTGAllocs    map[string]*AllocMetric `json:"failed_tg_allocs,omitempty"`
	QueuedAllocations map[string]int          `json:"queued_allocations,omitempty"`
	SnapshotIndex     uint64                  `json:"snapshot_index,omitempty"`
	// AnnotatePlan asks the scheduler to submit its plan even when it
	// changes nothing, so a dry run (`job plan`) always gets the plan's
	// per-group annotations.
	AnnotatePlan bool   `json:"annotate_plan,omitempty"`
	CreateIndex  uint64 `json:"create_index"`
	ModifyIndex  uint64 `json:"modify_index"`
	CreateTime   int64  `json:"create_time"`
	ModifyTime   int64  `json:"modify_time"`
}

// AllocMetric explains why a group could not be fully placed.
type AllocMetric struct {
	NodesEvaluated     int            `json:"nodes_evaluated"`
	NodesFiltered      int            `json:"nodes_filtered"`
	NodesAvailable     map[string]int `json:"nodes_available,omitempty"`
	ClassFiltered      map[string]int `json:"class_filtered,omitempty"`
	ConstraintFiltered map[string]int `json:"constraint_filtered,omitempty"`
	NodesExhausted     int            `json:"nodes_exhausted"`
	DimensionExhausted map[string]int `json:"dimension_exhausted,omitempty"`
	CoalescedFailures  int            `json:"coalesced_failures"`
}

// TerminalStatus reports whether the evaluation is finished.
func (e *Evaluation) TerminalStatus() bool {
	switch e.Status {
	case EvalStatusComplete, EvalStatusFailed, EvalStatusCanceled:
		return true
	}
	return false
}

// Copy returns a deep copy of the evaluation.
func (e *Evaluation) Copy() *Evaluation {
	if e == nil {
		return nil
	}
	c := *e
	if e.FailedTGAllocs != nil {
		c.FailedTGAllocs = make(map[string]*AllocMetric, len(e.FailedTGAllocs))
		for k, m := range e.FailedTGAllocs {
			c.FailedTGAllocs[k] = m.Copy()
		}
	}
	if e.QueuedAllocations != nil {
		c.QueuedAllocations = make(map[string]int, len(e.QueuedAllocations))
		for k, v := range e.QueuedAllocations {
			c.QueuedAllocations[k] = v
		}
	}
	return &c
}

// Copy returns a deep copy of the metric.
func (m *AllocMetric) Copy() *AllocMetric {
	if m == nil {
		return nil
	}
	c := *m
	c.NodesAvailable = copyIntMap(m.NodesAvailable)
	c.ClassFiltered = copyIntMap(m.ClassFiltered)
	c.ConstraintFiltered = copyIntMap(m.ConstraintFiltered)
	c.DimensionExhausted = copyIntMap(m.DimensionExhausted)
	return &c
}

func copyIntMap(in map[string]int) map[string]int {
	if in == nil {
		return nil
	}
	out := make(map[string]int, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}
