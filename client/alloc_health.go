package client

import (
	"fmt"
	"time"

	"github.com/drover-sh/drover/structs"
)

// defaultHealthyDeadline bounds the wait for health when neither the
// group nor the job names a healthy_deadline.
const defaultHealthyDeadline = 5 * time.Minute

// deploymentHealth is the allocation's health within its deployment as
// this client decided it, or nil while undecided.
func (ar *allocRunner) deploymentHealth() *structs.AllocDeploymentStatus {
	ar.mu.RLock()
	defer ar.mu.RUnlock()
	if ar.health == nil {
		return nil
	}
	c := *ar.health
	return &c
}

// kickHealth wakes the health watcher; it never blocks, so task runners
// and the check Set's callback may call it with their locks held.
func (ar *allocRunner) kickHealth() {
	select {
	case ar.healthCh <- struct{}{}:
	default:
	}
}

// watchHealth decides, once, whether an allocation placed by a
// deployment is healthy: every task running (and every check of the
// group's services passing) without a break for min_healthy_time. A task
// that fails, exits or restarts, or a healthy_deadline that passes
// first, makes it unhealthy. The decision goes to the servers with the
// next batched status update; the deployment watcher and the scheduler
// take the rollout's next step from it. Allocations outside a
// deployment, or already decided (a restarted client), are not watched.
func (ar *allocRunner) watchHealth() {
	a := ar.allocation()
	if a.DeploymentID == "" || ar.jobType() != structs.JobTypeService {
		return
	}
	if ds := a.DeploymentStatus; ds != nil && ds.Healthy != nil {
		return
	}
	var minHealthy, deadline time.Duration
	if s := groupUpdate(a.Job, ar.group()); s != nil {
		minHealthy, deadline = s.MinHealthyTime.D(), s.HealthyDeadline.D()
	}
	if deadline <= 0 {
		deadline = defaultHealthyDeadline
	}
	deadlineAt := time.Now().Add(deadline)
	timer := time.NewTimer(deadline)
	defer timer.Stop()
	var since time.Time // when the allocation was last seen becoming healthy
	for {
		if ar.allocation().DesiredStatus != structs.AllocDesiredRun {
			return // stopped by the servers: its health no longer matters
		}
		now := time.Now()
		ok, bad := ar.healthNow()
		switch {
		case bad != "":
			ar.setHealth(false, bad)
			return
		case ok:
			if since.IsZero() {
				since = now
			}
			if now.Sub(since) >= minHealthy {
				ar.setHealth(true, "")
				return
			}
		default:
			since = time.Time{}
		}
		if !now.Before(deadlineAt) {
			ar.setHealth(false, fmt.Sprintf("not healthy within the healthy deadline of %s", deadline))
			return
		}
		next := deadlineAt
		if !since.IsZero() && since.Add(minHealthy).Before(next) {
			next = since.Add(minHealthy)
		}
		timer.Reset(next.Sub(now))
		select {
		case <-ar.c.ctx.Done():
			return
		case <-ar.healthCh:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		case <-timer.C:
		}
	}
}

// healthNow says whether the allocation is healthy at this moment, or
// why it can no longer become healthy.
func (ar *allocRunner) healthNow() (healthy bool, bad string) {
	ar.mu.RLock()
	setupErr := ar.setupErr
	ar.mu.RUnlock()
	if setupErr != nil {
		return false, "allocation setup failed"
	}
	healthy = true
	for name, tr := range ar.tasks {
		s := tr.taskState()
		switch {
		case s.Restarts > 0:
			return false, fmt.Sprintf("task %s restarted", name)
		case s.State == structs.TaskStateDead && s.Failed:
			return false, fmt.Sprintf("task %s failed", name)
		case s.State == structs.TaskStateDead:
			return false, fmt.Sprintf("task %s exited", name)
		case s.State != structs.TaskStateRunning:
			healthy = false
		}
	}
	if healthy && groupHasChecks(ar.group()) {
		healthy = ar.c.services.allocHealthy(ar.id, len(ar.group().Services))
	}
	return healthy, ""
}

// setHealth records the decision and queues it for the servers.
func (ar *allocRunner) setHealth(healthy bool, reason string) {
	ar.mu.Lock()
	ar.health = &structs.AllocDeploymentStatus{Healthy: &healthy, Timestamp: time.Now().UnixNano()}
	ar.mu.Unlock()
	if healthy {
		ar.logger.Info("allocation is healthy")
	} else {
		ar.logger.Warn("allocation is unhealthy", "reason", reason)
	}
	ar.c.updater.mark(ar)
}

// groupUpdate is the group's update strategy, else the job's.
func groupUpdate(job *structs.Job, g *structs.TaskGroup) *structs.UpdateStrategy {
	if g != nil && g.Update != nil {
		return g.Update
	}
	if job != nil {
		return job.Update
	}
	return nil
}

func groupHasChecks(g *structs.TaskGroup) bool {
	if g == nil {
		return false
	}
	for _, s := range g.Services {
		if len(s.Checks) > 0 {
			return true
		}
	}
	return false
}
