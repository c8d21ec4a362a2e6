package server

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-memdb"

	"github.com/drover-sh/drover/fsm"
	"github.com/drover-sh/drover/structs"
)

// deploymentWatcher is the leader's controller of rolling deployments. It
// follows every active deployment and its allocations in the store and,
// from the health the clients report, keeps each group's placed, healthy
// and unhealthy counts current; it ends the deployment as successful once
// every group has desired_total healthy allocations, and as failed on the
// first unhealthy allocation or a missed progress_deadline. A failed
// deployment whose groups ask for auto_revert registers the job's newest
// stable version again as a new version. Groups with canaries wait for
// the deployment's promotion (by a person, or by the watcher itself once
// every canary is healthy when all of them ask for auto_promote); while a
// person is awaited, no progress deadline runs. Every change goes with an
// evaluation of the job, so the scheduler takes the rollout's next
// max_parallel step at once instead of at its next timer.
//
// It is level-triggered: each pass derives what the deployments should
// say from the store alone, so a new leader (or a pass after a failed
// write) simply continues.
type deploymentWatcher struct {
	srv    *Server
	logger hclog.Logger
	now    func() time.Time
}

func newDeploymentWatcher(s *Server) *deploymentWatcher {
	return &deploymentWatcher{srv: s, logger: s.logger.Named("deployment_watcher"), now: time.Now}
}

// deploymentRetry is the wait after a failed pass.
const deploymentRetry = 500 * time.Millisecond

func (w *deploymentWatcher) run(ctx context.Context) {
	for ctx.Err() == nil {
		store := w.srv.fsm.State()
		ws := memdb.NewWatchSet()
		ws.Add(store.AbandonCh())
		wake, err := w.pass(store.Snapshot(), ws)
		if err != nil {
			w.logger.Error("failed to update deployments; retrying", "retry_in", deploymentRetry, "error", err)
			wake = w.now().Add(deploymentRetry)
		}
		wctx, cancel := ctx, context.CancelFunc(func() {})
		if !wake.IsZero() {
			wctx, cancel = context.WithDeadline(ctx, wake)
		}
		_ = ws.WatchCtx(wctx) // a deadline is the progress check's timer
		cancel()
	}
}

// pass brings every active deployment up to date and returns when the
// next progress deadline falls (zero if none).
func (w *deploymentWatcher) pass(snap *fsm.StateSnapshot, ws memdb.WatchSet) (time.Time, error) {
	all, err := snap.DeploymentsByPrefix(ws, "*", "")
	if err != nil {
		return time.Time{}, err
	}
	var wake time.Time
	for _, d := range all {
		if !d.Active() {
			continue
		}
		next, err := w.watch(snap, ws, d)
		if err != nil {
			return time.Time{}, fmt.Errorf("deployment %s: %w", d.ID, err)
		}
		if !next.IsZero() && (wake.IsZero() || next.Before(wake)) {
			wake = next
		}
	}
	return wake, nil
}

// watch brings one deployment up to date.
func (w *deploymentWatcher) watch(snap *fsm.StateSnapshot, ws memdb.WatchSet, d *structs.Deployment) (time.Time, error) {
	job, err := snap.JobByID(ws, d.Namespace, d.JobID)
	if err != nil {
		return time.Time{}, err
	}
	if job == nil || job.Version != d.JobVersion || job.CreateIndex != d.JobCreateIndex {
		// Replaced or stopped: the scheduler cancels it with the
		// evaluation that came with the change.
		return time.Time{}, nil
	}
	allocs, err := snap.AllocsByDeployment(ws, d)
	if err != nil {
		return time.Time{}, err
	}
	now := w.now()
	nd, progressed, wake := deploymentProgress(d, allocs, now)
	if nd == nil {
		return wake, nil
	}
	req := &structs.DeploymentUpdateRequest{Deployment: nd, SubmitTime: now.UnixNano()}
	if progressed || !nd.Active() {
		req.Eval = &structs.Evaluation{
			ID: structs.GenerateUUID(), Namespace: job.Namespace, Priority: job.Priority, Type: job.Type,
			TriggeredBy: structs.EvalTriggerDeploymentWatcher, JobID: job.ID, JobModifyIndex: job.JobModifyIndex,
			DeploymentID: d.ID, Status: structs.EvalStatusPending, CreateTime: now.UnixNano(), ModifyTime: now.UnixNano(),
		}
	}
	if nd.Status == structs.DeploymentStatusFailed {
		if err := addRevert(snap, job, req); err != nil {
			return time.Time{}, err
		}
	}
	logger := w.logger.With("deployment_id", d.ID, "job_id", d.JobID, "job_version", d.JobVersion)
	if nd.Status != d.Status {
		logger.Info("deployment ended", "status", nd.Status, "description", nd.StatusDescription)
	}
	if _, _, err := w.srv.raftApply(structs.DeploymentStatusUpdateRequestType, req); err != nil {
		return time.Time{}, err
	}
	return wake, nil
}

// deploymentProgress derives a deployment's counts and status from its
// allocations at now. It returns nil when nothing changed; progressed
// says whether an allocation's health moved (the scheduler has a next
// step to take); wake is when a progress deadline falls.
func deploymentProgress(d *structs.Deployment, allocs []*structs.Allocation, now time.Time) (nd *structs.Deployment, progressed bool, wake time.Time) {
	nd = d.Copy()
	nd.ClearCounts(true)
	healthyCanaries := canaryHealth(allocs)
	var unhealthy string
	// Allocations in a stable order, so the reason names the same one on
	// every pass.
	sort.Slice(allocs, func(i, j int) bool { return allocs[i].ID < allocs[j].ID })
	for _, a := range allocs {
		if nd.CountAlloc(a, true) && unhealthy == "" {
			unhealthy = a.ID
		}
	}
	if autoPromote(nd, healthyCanaries, now) {
		progressed = true
	}
	done, awaitingPromotion := true, false
	var missed string
	for _, name := range sortedGroupNames(nd) {
		s, old := nd.TaskGroups[name], d.TaskGroups[name]
		if s.HealthyAllocs != old.HealthyAllocs || s.UnhealthyAllocs != old.UnhealthyAllocs {
			progressed = true
		}
		unpromoted := s.DesiredCanaries > 0 && !s.Promoted
		if s.HealthyAllocs < s.DesiredTotal || unpromoted {
			done = false
		}
		if unpromoted && healthyCanaries[name] >= s.DesiredCanaries {
			// Its canaries are healthy: the rest is up to a person, and
			// the deadline starts again at the promotion.
			awaitingPromotion = true
			s.RequireProgressBy = 0
			continue
		}
		pd := s.ProgressDeadline.D()
		if pd <= 0 || (s.HealthyAllocs >= s.DesiredTotal && !unpromoted) {
			continue
		}
		switch {
		case s.RequireProgressBy == 0:
			s.RequireProgressBy = time.Unix(0, d.CreateTime).Add(pd).UnixNano()
		case s.HealthyAllocs > old.HealthyAllocs:
			s.RequireProgressBy = now.Add(pd).UnixNano()
		}
		by := time.Unix(0, s.RequireProgressBy)
		if !now.Before(by) {
			if missed == "" {
				missed = name
			}
		} else if wake.IsZero() || by.Before(wake) {
			wake = by
		}
	}
	switch {
	case unhealthy != "":
		nd.Status, nd.StatusDescription = structs.DeploymentStatusFailed, fmt.Sprintf("failed because allocation %s is unhealthy", unhealthy)
	case done:
		nd.Status, nd.StatusDescription = structs.DeploymentStatusSuccessful, "deployment completed successfully"
	case missed != "":
		nd.Status, nd.StatusDescription = structs.DeploymentStatusFailed, fmt.Sprintf("failed because group %s missed its progress deadline", missed)
	case awaitingPromotion:
		nd.StatusDescription = structs.DeploymentDescAwaitingPromotion
	default:
		nd.StatusDescription = structs.DeploymentDescRunning
	}
	if nd.Status != d.Status {
		wake = time.Time{}
	}
	if !progressed && nd.Status == d.Status && nd.StatusDescription == d.StatusDescription && sameCounts(d, nd) {
		return nil, false, wake
	}
	nd.ModifyTime = now.UnixNano()
	return nd, progressed, wake
}

func sameCounts(a, b *structs.Deployment) bool {
	for name, s := range a.TaskGroups {
		o := b.TaskGroups[name]
		if o == nil || s.PlacedAllocs != o.PlacedAllocs || s.HealthyAllocs != o.HealthyAllocs ||
			s.UnhealthyAllocs != o.UnhealthyAllocs || s.RequireProgressBy != o.RequireProgressBy ||
			s.Promoted != o.Promoted || !slices.Equal(s.PlacedCanaries, o.PlacedCanaries) {
			return false
		}
	}
	return true
}

// canaryHealth counts the healthy live canaries of each group among a
// deployment's allocations.
func canaryHealth(allocs []*structs.Allocation) map[string]int {
	out := make(map[string]int)
	for _, a := range allocs {
		ds := a.DeploymentStatus
		if a.IsCanary() && !a.TerminalStatus() && ds.Healthy != nil && *ds.Healthy {
			out[a.TaskGroup]++
		}
	}
	return out
}

// autoPromote promotes d's canaries at now when every group that waits
// for promotion asks for auto_promote and has all its canaries healthy,
// as Nomad does; it reports whether it did.
func autoPromote(d *structs.Deployment, healthyCanaries map[string]int, now time.Time) bool {
	waiting := 0
	for name, s := range d.TaskGroups {
		if s.DesiredCanaries == 0 || s.Promoted {
			continue
		}
		if !s.AutoPromote || healthyCanaries[name] < s.DesiredCanaries {
			return false
		}
		waiting++
	}
	if waiting == 0 {
		return false
	}
	promote(d, now)
	return true
}

// promote marks every group of d with canaries promoted; their progress
// deadlines start again, since the rollout of the rest starts now.
func promote(d *structs.Deployment, now time.Time) {
	for _, s := range d.TaskGroups {
		if s.DesiredCanaries == 0 || s.Promoted {
			continue
		}
		s.Promoted = true
		if pd := s.ProgressDeadline.D(); pd > 0 {
			s.RequireProgressBy = now.Add(pd).UnixNano()
		}
	}
}

func sortedGroupNames(d *structs.Deployment) []string {
	names := make([]string, 0, len(d.TaskGroups))
	for name := range d.TaskGroups {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// addRevert adds to the failing update req the registration of the
// job's newest stable version when one of the deployment's groups asks
// for auto_revert, and says so in the deployment's description.
func addRevert(snap *fsm.StateSnapshot, job *structs.Job, req *structs.DeploymentUpdateRequest) error {
	d := req.Deployment
	if !autoRevert(d) {
		return nil
	}
	target, err := revertTarget(snap, job)
	if err != nil {
		return err
	}
	if target == nil {
		d.StatusDescription += "; no stable job version to roll back to"
		return nil
	}
	req.RevertJob = target.Copy()
	d.StatusDescription += fmt.Sprintf("; rolling back to job version %d", target.Version)
	return nil
}

func autoRevert(d *structs.Deployment) bool {
	for _, s := range d.TaskGroups {
		if s.AutoRevert {
			return true
		}
	}
	return false
}

// revertTarget is the job's newest stable version older than the current
// one whose spec differs from it (going back to the same spec would only
// fail again), or nil.
func revertTarget(snap *fsm.StateSnapshot, job *structs.Job) (*structs.Job, error) {
	versions, err := snap.JobVersionsByID(nil, job.Namespace, job.ID)
	if err != nil {
		return nil, err
	}
	for _, v := range versions { // newest first
		if v.Version < job.Version && v.Stable && v.SpecChanged(job) {
			return v, nil
		}
	}
	return nil, nil
}
