package structs

// Deployment statuses.
const (
	DeploymentStatusRunning    = "running"
	DeploymentStatusPaused     = "paused"
	DeploymentStatusFailed     = "failed"
	DeploymentStatusSuccessful = "successful"
	DeploymentStatusCancelled  = "cancelled"
)

// Descriptions of a running deployment.
const (
	DeploymentDescRunning           = "deployment is running"
	DeploymentDescAwaitingPromotion = "deployment is running but requires manual promotion"
)

// Deployment tracks the rollout of one version of a service job.
type Deployment struct {
	ID                string                      `json:"id"`
	Namespace         string                      `json:"namespace"`
	JobID             string                      `json:"job_id"`
	JobVersion        uint64                      `json:"job_version"`
	JobModifyIndex    uint64                      `json:"job_modify_index"`
	JobCreateIndex    uint64                      `json:"job_create_index"`
	TaskGroups        map[string]*DeploymentState `json:"task_groups"`
	Status            string                      `json:"status"`
	StatusDescription string                      `json:"status_description,omitempty"`
	CreateIndex       uint64                      `json:"create_index"`
	ModifyIndex       uint64                      `json:"modify_index"`
	CreateTime        int64                       `json:"create_time"`
	ModifyTime        int64                       `json:"modify_time"`
}

// DeploymentState is the progress of one group within a deployment.
type DeploymentState struct {
	AutoRevert        bool     `json:"auto_revert"`
	AutoPromote       bool     `json:"auto_promote"`
	Promoted          bool     `json:"promoted"`
	ProgressDeadline  Duration `json:"progress_deadline"`
	RequireProgressBy int64    `json:"require_progress_by,omitempty"`
	PlacedCanaries    []string `json:"placed_canaries,omitempty"`
	DesiredCanaries   int      `json:"desired_canaries"`
	DesiredTotal      int      `json:"desired_total"`
	PlacedAllocs      int      `json:"placed_allocs"`
	HealthyAllocs     int      `json:"healthy_allocs"`
	UnhealthyAllocs   int      `json:"unhealthy_allocs"`
}

// Active reports whether the deployment is still in progress.
func (d *Deployment) Active() bool {
	return d.Status == DeploymentStatusRunning || d.Status == DeploymentStatusPaused
}

// ClearCounts zeroes each group's placed allocations and canaries, and
// with health also its healthy and unhealthy counts, before they are
// counted again with CountAlloc. d must be the caller's own copy.
func (d *Deployment) ClearCounts(health bool) {
	for _, s := range d.TaskGroups {
		s.PlacedAllocs, s.PlacedCanaries = 0, nil
		if health {
			s.HealthyAllocs, s.UnhealthyAllocs = 0, 0
		}
	}
}

// CountAlloc adds one of d's allocations to its group's counts (health
// too, with health) and reports whether the allocation is unhealthy.
func (d *Deployment) CountAlloc(a *Allocation, health bool) (unhealthy bool) {
	s := d.TaskGroups[a.TaskGroup]
	if s == nil {
		return false
	}
	s.PlacedAllocs++
	if a.IsCanary() {
		s.PlacedCanaries = append(s.PlacedCanaries, a.ID)
	}
	ds := a.DeploymentStatus
	if !health || ds == nil || ds.Healthy == nil {
		return false
	}
	if *ds.Healthy {
		s.HealthyAllocs++
		return false
	}
	s.UnhealthyAllocs++
	return true
}

// Copy returns a deep copy of the deployment.
func (d *Deployment) Copy() *Deployment {
	if d == nil {
		return nil
	}
	c := *d
	if d.TaskGroups != nil {
		c.TaskGroups = make(map[string]*DeploymentState, len(d.TaskGroups))
		for k, s := range d.TaskGroups {
			sc := *s
			sc.PlacedCanaries = append([]string(nil), s.PlacedCanaries...)
			c.TaskGroups[k] = &sc
		}
	}
	return &c
}

// DeploymentUpdateRequest is the deployment watcher's (and the
// Deployment.Fail endpoint's) write: the deployment's new counts and
// status, the evaluation that lets the scheduler act on them at once,
// and, for an auto_revert, the stable version to register again as a new
// version. A deployment that has ended meanwhile is left as it is. When
// the status becomes successful the deployment's job version is marked
// stable in the same transaction.
type DeploymentUpdateRequest struct {
	Deployment *Deployment
	Eval       *Evaluation
	RevertJob  *Job
	SubmitTime int64
	WriteRequest
}

// DeploymentSpecificRequest reads one deployment.
type DeploymentSpecificRequest struct {
	DeploymentID string
	QueryOptions
}

// SingleDeploymentResponse carries one deployment, nil when it does not
// exist.
type SingleDeploymentResponse struct {
	Deployment *Deployment
	QueryMeta
}

// DeploymentListRequest lists deployments by ID prefix, optionally of one
// job.
type DeploymentListRequest struct {
	JobID string
	QueryOptions
}

// DeploymentListResponse carries deployments.
type DeploymentListResponse struct {
	Deployments []*Deployment
	QueryMeta
}

// DeploymentFailRequest fails an active deployment; its groups'
// auto_revert applies as when the watcher fails it.
type DeploymentFailRequest struct {
	DeploymentID string
	WriteRequest
}

// DeploymentPromoteRequest promotes the canaries of an active deployment.
type DeploymentPromoteRequest struct {
	DeploymentID string
	WriteRequest
}

// DeploymentUpdateResponse answers a fail or promote: the evaluation that
// acts on it.
type DeploymentUpdateResponse struct {
	EvalID                string `json:"eval_id"`
	DeploymentModifyIndex uint64 `json:"deployment_modify_index"`
	RevertedJobVersion    uint64 `json:"reverted_job_version,omitempty"`
	Reverted              bool   `json:"reverted"`
	WriteMeta
}

// JobRevertRequest registers a kept version's spec of a job again, as a
// new version.
type JobRevertRequest struct {
	JobID      string
	JobVersion uint64
	WriteRequest
}
