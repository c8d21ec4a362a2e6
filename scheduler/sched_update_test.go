package scheduler

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
	"github.com/drover-sh/drover/structs/mock"
)

func TestServiceSched_InPlaceUpdate(t *testing.T) {
	h := newTestHarness(t)
	addNodes(h, 5)
	job, _ := register(t, h, mock.Job())
	before := liveAllocs(t, h, job)

	changed := job.Copy()
	changed.Groups[0].Meta = map[string]string{"owner": "ops"}
	changed.Groups[0].Tasks[0].KillTimeout = structs.Duration(30 * time.Second)
	job = h.State.UpsertJob(changed)
	require.Equal(t, uint64(1), job.Version)
	evaluate(t, h, job, structs.EvalTriggerJobRegister)

	u := h.LastPlan().Annotations.DesiredTGUpdates["web"]
	require.Equal(t, 10, u.InPlaceUpdate)
	require.Zero(t, u.DestructiveUpdate)
	require.Empty(t, h.LastPlan().NodeUpdate)
	after := liveAllocs(t, h, job)
	require.Len(t, after, 10)
	ids := make(map[string]bool)
	for _, a := range before {
		ids[a.ID] = true
	}
	for _, a := range after {
		require.True(t, ids[a.ID], "same allocations, updated in place")
		require.Equal(t, uint64(1), a.Job.Version)
	}
}

func TestServiceSched_RollingUpdateMaxParallel(t *testing.T) {
	h := newTestHarness(t)
	addNodes(h, 5)
	job := mock.Job()
	job.Groups[0].Count = 3
	job.Update = &structs.UpdateStrategy{MaxParallel: 1, MinHealthyTime: structs.Duration(10 * time.Second)}
	job, _ = register(t, h, job)
	setClient(h, liveAllocs(t, h, job), structs.AllocClientRunning, time.Time{})

	changed := job.Copy()
	changed.Groups[0].Tasks[0].Image = "127.0.0.1:5000/drover/busybox:2"
	job = h.State.UpsertJob(changed)

	eval := evaluate(t, h, job, structs.EvalTriggerJobRegister)
	requireVersions := func(old, cur int) {
		t.Helper()
		var o, c int
		for _, a := range liveAllocs(t, h, job) {
			if a.Job.Version == job.Version {
				c++
			} else {
				o++
			}
		}
		require.Equal(t, old, o, "allocations of the old version")
		require.Equal(t, cur, c, "allocations of the new version")
	}
	requireVersions(2, 1)
	u := h.LastPlan().Annotations.DesiredTGUpdates["web"]
	require.Equal(t, 1, u.DestructiveUpdate)
	require.Equal(t, 2, u.Ignore)
	require.NotNil(t, h.LastPlan().Deployment, "a rollout creates a deployment")

	// The next step is a rolling-update evaluation after min_healthy_time.
	require.Len(t, h.CreateEvals, 1)
	next := h.CreateEvals[0]
	require.Equal(t, structs.EvalTriggerRollingUpdate, next.TriggeredBy)
	require.Equal(t, eval.ID, next.PreviousEval)
	require.Equal(t, testNow.Add(10*time.Second).UnixNano(), next.WaitUntil)

	// While the new allocation is not running it is in flight: nothing
	// more is replaced.
	plans := len(h.Plans)
	require.NoError(t, h.Process(next))
	requireVersions(2, 1)
	require.Len(t, h.Plans, plans)

	// Running is not enough either: its client has not yet said it is
	// healthy (its checks may not pass).
	setClient(h, liveAllocs(t, h, job), structs.AllocClientRunning, time.Time{})
	evaluate(t, h, job, structs.EvalTriggerNodeUpdate)
	requireVersions(2, 1)
	require.Len(t, h.Plans, plans)

	// Once its client reports it healthy, each evaluation replaces one
	// more.
	for step := 2; step <= 3; step++ {
		setHealthy(h, liveAllocs(t, h, job)...)
		f := h.CreateEvals[len(h.CreateEvals)-1]
		require.Equal(t, structs.EvalTriggerRollingUpdate, f.TriggeredBy)
		require.NoError(t, h.Process(f))
		requireVersions(3-step, step)
		require.Equal(t, 1, h.LastPlan().Annotations.DesiredTGUpdates["web"].DestructiveUpdate)
	}
	stopped := 0
	all, err := h.State.AllocsByJob(job.Namespace, job.ID)
	require.NoError(t, err)
	for _, a := range all {
		if a.DesiredStatus == structs.AllocDesiredStop {
			require.Equal(t, descUpdating, a.DesiredDescription)
			require.NotEmpty(t, a.NextAllocation)
			stopped++
		}
	}
	require.Equal(t, 3, stopped)

	// All replaced and healthy: the deployment completes.
	setHealthy(h, liveAllocs(t, h, job)...)
	require.NoError(t, h.Process(h.CreateEvals[len(h.CreateEvals)-1]))
	d := latestDeployment(t, h, job)
	require.Equal(t, structs.DeploymentStatusSuccessful, d.Status)
	require.Equal(t, 3, d.TaskGroups["web"].PlacedAllocs)
}

func TestServiceSched_UnhealthyHoldsRollingUpdate(t *testing.T) {
	h := newTestHarness(t)
	addNodes(h, 3)
	job := mock.Job()
	job.Groups[0].Count = 3
	job.Update = &structs.UpdateStrategy{MaxParallel: 1}
	job, _ = register(t, h, job)
	setClient(h, liveAllocs(t, h, job), structs.AllocClientRunning, time.Time{})
	changed := job.Copy()
	changed.Groups[0].Tasks[0].Env = map[string]string{"GREETING": "bye"}
	job = h.State.UpsertJob(changed)
	evaluate(t, h, job, structs.EvalTriggerJobRegister)
	require.Len(t, h.CreateEvals, 1)

	var fresh *structs.Allocation
	for _, a := range liveAllocs(t, h, job) {
		if a.Job.Version == job.Version {
			fresh = a.Copy()
		}
	}
	unhealthy := false
	fresh.DeploymentStatus = &structs.AllocDeploymentStatus{Healthy: &unhealthy}
	h.State.UpsertAllocs(fresh)
	plans := len(h.Plans)
	require.NoError(t, h.Process(h.CreateEvals[0]))
	require.Len(t, h.Plans, plans, "nothing replaced while the new version is unhealthy")
	require.Len(t, h.CreateEvals, 1, "and no further step is scheduled")
}

func TestServiceSched_RescheduleWithBackoff(t *testing.T) {
	h := newTestHarness(t)
	addNodes(h, 4)
	job := mock.Job()
	job.Groups[0].Count = 1
	job.Groups[0].Reschedule = &structs.ReschedulePolicy{
		Attempts: 3, Interval: structs.Duration(time.Hour), Delay: structs.Duration(10 * time.Second),
		DelayFunction: structs.DelayExponential, MaxDelay: structs.Duration(time.Minute),
	}
	job, _ = register(t, h, job)

	var delays []time.Duration
	failAt := testNow
	for attempt := 1; attempt <= 4; attempt++ {
		live := liveAllocs(t, h, job)
		require.Len(t, live, 1)
		cur := live[0]
		setClient(h, live, structs.AllocClientFailed, failAt)

		// Right after the failure it is too early: a follow-up waits.
		creates := len(h.CreateEvals)
		evaluate(t, h, job, structs.EvalTriggerRetryFailed)
		if attempt == 4 {
			require.Len(t, h.CreateEvals, creates, "attempts exhausted: no follow-up")
			require.Empty(t, liveAllocs(t, h, job))
			got, err := h.State.AllocByID(cur.ID)
			require.NoError(t, err)
			require.Empty(t, got.NextAllocation)
			require.Empty(t, got.FollowupEvalID)
			break
		}
		require.Len(t, h.CreateEvals, creates+1)
		f := h.CreateEvals[creates]
		require.Equal(t, structs.EvalTriggerReschedule, f.TriggeredBy)
		delay := time.Unix(0, f.WaitUntil).Sub(failAt)
		delays = append(delays, delay)
		got, err := h.State.AllocByID(cur.ID)
		require.NoError(t, err)
		require.Equal(t, f.ID, got.FollowupEvalID)
		require.Equal(t, 1, h.LastPlan().Annotations.DesiredTGUpdates["web"].RescheduleLater)

		// The follow-up replaces it, away from the failed node.
		require.NoError(t, h.Process(f))
		live = liveAllocs(t, h, job)
		require.Len(t, live, 1)
		repl := live[0]
		require.Equal(t, cur.ID, repl.PreviousAllocation)
		require.Equal(t, cur.Name, repl.Name)
		require.NotEqual(t, cur.NodeID, repl.NodeID)
		require.Len(t, repl.RescheduleTracker.Events, attempt)
		got, err = h.State.AllocByID(cur.ID)
		require.NoError(t, err)
		require.Equal(t, structs.AllocDesiredStop, got.DesiredStatus)
		require.Equal(t, repl.ID, got.NextAllocation)
		failAt = failAt.Add(time.Minute)
	}
	require.Equal(t, []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second}, delays)
}

func TestServiceSched_RescheduleNowWhenDue(t *testing.T) {
	h := newTestHarness(t)
	addNodes(h, 3)
	job := mock.Job()
	job.Groups[0].Count = 2
	job, _ = register(t, h, job)
	live := liveAllocs(t, h, job)
	// Failed long enough ago that the delay has passed.
	setClient(h, live[:1], structs.AllocClientFailed, testNow.Add(-time.Hour))
	evaluate(t, h, job, structs.EvalTriggerRetryFailed)
	require.Empty(t, h.CreateEvals)
	require.Equal(t, 1, h.LastPlan().Annotations.DesiredTGUpdates["web"].Reschedule)
	after := liveAllocs(t, h, job)
	require.Len(t, after, 2)
	require.Equal(t, []int{0, 1}, indexes(after))
}

func TestBatchSched_CompleteNotReplaced(t *testing.T) {
	h := newTestHarness(t)
	addNodes(h, 3)
	job, _ := register(t, h, mock.BatchJob())
	live := liveAllocs(t, h, job)
	require.Len(t, live, 10)
	setClient(h, live[:4], structs.AllocClientComplete, testNow)
	plans := len(h.Plans)
	evaluate(t, h, job, structs.EvalTriggerRetryFailed)
	require.Len(t, h.Plans, plans, "finished batch work is not run again")
	require.Len(t, liveAllocs(t, h, job), 6)

	// A service job's completed allocations are replaced.
	svc, _ := register(t, h, mock.Job())
	sl := liveAllocs(t, h, svc)
	setClient(h, sl[:2], structs.AllocClientComplete, testNow)
	evaluate(t, h, svc, structs.EvalTriggerRetryFailed)
	require.Len(t, liveAllocs(t, h, svc), 10)
}

func TestServiceSched_PartialCommitRetries(t *testing.T) {
	h := newTestHarness(t)
	nodes := addNodes(h, 2)
	job := mock.Job()
	job.Groups[0].Count = 2
	job.Groups[0].Tasks[0].Resources.CPU = 2000
	// Another plan takes most of node 0 first: the applier refuses our
	// part there and we refresh and place on node 1.
	taken := false
	h.Reject = func(id string) bool {
		if id != nodes[0].ID || taken {
			return false
		}
		taken = true
		other := mock.AllocFor(mock.Job(), id, 0)
		other.Resources.Tasks["server"].CPU = 3000
		other.Resources.Ports = nil
		h.State.UpsertAllocs(other)
		return true
	}
	job, _ = register(t, h, job)
	require.True(t, taken)
	require.Len(t, h.Results[0].RejectedNodes, 1)
	require.Equal(t, nodes[0].ID, h.Results[0].RejectedNodes[0].NodeID)
	live := liveAllocs(t, h, job)
	require.Len(t, live, 1, "node 1 fits one; node 0 is full")
	require.Equal(t, nodes[1].ID, live[0].NodeID)
	e := requireComplete(t, h)
	require.NotNil(t, e.FailedTGAllocs["web"])
	require.Len(t, h.CreateEvals, 1)
}

func TestServiceSched_MaxPlanAttempts(t *testing.T) {
	h := newTestHarness(t)
	addNodes(h, 2)
	h.Reject = func(string) bool { return true }
	job, eval := register(t, h, mock.Job())
	require.Len(t, h.Plans, maxPlanAttempts)
	require.Empty(t, liveAllocs(t, h, job))
	last := h.LastEval()
	require.Equal(t, structs.EvalStatusFailed, last.Status)
	require.Len(t, h.CreateEvals, 1)
	require.Equal(t, structs.EvalTriggerMaxPlans, h.CreateEvals[0].TriggeredBy)
	require.Equal(t, eval.ID, h.CreateEvals[0].PreviousEval)
	require.Equal(t, h.CreateEvals[0].ID, last.NextEval)
}

func TestServiceSched_InPlaceUpdateOnInfeasibleNodeMoves(t *testing.T) {
	h := newTestHarness(t)
	r1 := addNodes(h, 2)
	r2 := addNodes(h, 2, func(n *structs.Node) { n.Meta["rack"] = "r2" })
	job := mock.Job()
	job.Groups[0].Count = 4
	job.Constraints = []*structs.Constraint{{Operator: "distinct_hosts"}}
	job, _ = register(t, h, job)
	require.Len(t, perNode(liveAllocs(t, h, job)), 4)

	// The new version only adds a constraint: in place where it holds,
	// moved where it does not.
	changed := job.Copy()
	changed.Constraints = nil
	changed.Groups[0].Constraints = []*structs.Constraint{{Attribute: "${meta.rack}", Operator: "=", Value: "r1"}}
	job = h.State.UpsertJob(changed)
	evaluate(t, h, job, structs.EvalTriggerJobRegister)
	u := h.LastPlan().Annotations.DesiredTGUpdates["web"]
	require.Equal(t, 2, u.InPlaceUpdate)
	require.Equal(t, 2, u.DestructiveUpdate)
	live := liveAllocs(t, h, job)
	require.Len(t, live, 4)
	counts := perNode(live)
	for _, n := range r2 {
		require.Zero(t, counts[n.ID])
	}
	require.Equal(t, 4, counts[r1[0].ID]+counts[r1[1].ID])
	for _, a := range live {
		require.Equal(t, job.Version, a.Job.Version)
	}
}

// With auto_revert a job's first placements start a deployment, so the
// first version can be marked stable; without it they do not.
func TestServiceSched_FirstPlacementDeploymentWithAutoRevert(t *testing.T) {
	for _, autoRevert := range []bool{false, true} {
		h := newTestHarness(t)
		addNodes(h, 3)
		job := mock.Job()
		job.Groups[0].Count = 2
		job.Update = &structs.UpdateStrategy{MaxParallel: 1, AutoRevert: autoRevert}
		job, _ = register(t, h, job)
		d := h.LastPlan().Deployment
		if !autoRevert {
			require.Nil(t, d)
			continue
		}
		require.NotNil(t, d)
		require.Equal(t, job.Version, d.JobVersion)
		require.Equal(t, 2, d.TaskGroups["web"].DesiredTotal)
		require.Equal(t, 2, d.TaskGroups["web"].PlacedAllocs)
		for _, a := range liveAllocs(t, h, job) {
			require.Equal(t, d.ID, a.DeploymentID)
		}
		// Placing more later (a replacement) does not start another.
		evaluate(t, h, job, structs.EvalTriggerJobRegister)
		require.Len(t, h.Plans, 1)
	}
}
