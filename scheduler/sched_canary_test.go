package scheduler

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
	"github.com/drover-sh/drover/structs/mock"
)

// canaryJob registers a count-3 job whose updates start with one canary,
// runs its first version and stores a destructive change.
func canaryJob(t *testing.T, h *Harness) (v1, v2 *structs.Job) {
	t.Helper()
	addNodes(h, 3)
	job := mock.Job()
	job.Groups[0].Count = 3
	job.Update = &structs.UpdateStrategy{MaxParallel: 1, Canary: 1}
	v1, _ = register(t, h, job)
	setClient(h, liveAllocs(t, h, v1), structs.AllocClientRunning, testNow)
	changed := v1.Copy()
	changed.Groups[0].Tasks[0].Image = "127.0.0.1:5000/drover/busybox:2"
	return v1, h.State.UpsertJob(changed)
}

// byVersion splits the job's live allocations into old and current.
func byVersion(t *testing.T, h *Harness, job *structs.Job) (old, cur []*structs.Allocation) {
	t.Helper()
	for _, a := range liveAllocs(t, h, job) {
		if a.Job.Version == job.Version {
			cur = append(cur, a)
		} else {
			old = append(old, a)
		}
	}
	return old, cur
}

func setHealthy(h *Harness, allocs ...*structs.Allocation) {
	healthy := true
	var upd []*structs.Allocation
	for _, a := range allocs {
		c := a.Copy()
		c.ClientStatus = structs.AllocClientRunning
		c.DeploymentStatus = &structs.AllocDeploymentStatus{Healthy: &healthy, Canary: a.IsCanary()}
		upd = append(upd, c)
	}
	h.State.UpsertAllocs(upd...)
}

func latestDeployment(t *testing.T, h *Harness, job *structs.Job) *structs.Deployment {
	t.Helper()
	d, err := h.State.LatestDeploymentByJob(job.Namespace, job.ID)
	require.NoError(t, err)
	require.NotNil(t, d)
	return d
}

func TestServiceSched_CanaryWaitsForPromotion(t *testing.T) {
	h := newTestHarness(t)
	v1, v2 := canaryJob(t, h)
	evaluate(t, h, v2, structs.EvalTriggerJobRegister)

	// The canary runs beside the three old allocations, under the name of
	// one of them; nothing old is stopped.
	old, cur := byVersion(t, h, v2)
	require.Len(t, old, 3)
	require.Len(t, cur, 1)
	canary := cur[0]
	require.True(t, canary.IsCanary())
	require.Contains(t, []string{old[0].Name, old[1].Name, old[2].Name}, canary.Name)
	u := h.LastPlan().Annotations.DesiredTGUpdates["web"]
	require.Equal(t, 1, u.Canary)
	require.Equal(t, 3, u.Ignore)
	require.Zero(t, u.DestructiveUpdate)
	require.Empty(t, h.LastPlan().NodeUpdate, "no allocation of v1 stops before promotion")
	d := latestDeployment(t, h, v2)
	require.Equal(t, 1, d.TaskGroups["web"].DesiredCanaries)
	require.False(t, d.TaskGroups["web"].Promoted)
	require.Equal(t, canary.DeploymentID, d.ID)
	require.Empty(t, h.CreateEvals, "a deployment waiting for promotion is not polled")

	// Later evaluations, healthy canary or not, place nothing more: the
	// rest waits for the promotion.
	setHealthy(h, canary)
	plans := len(h.Plans)
	evaluate(t, h, v2, structs.EvalTriggerNodeUpdate)
	require.Len(t, h.Plans, plans)
	old, cur = byVersion(t, h, v2)
	require.Len(t, old, 3)
	require.Len(t, cur, 1)

	// Promoted: the old allocation of the canary's name stops, and the
	// rollout goes on max_parallel at a time.
	d = d.Copy()
	d.TaskGroups["web"].Promoted = true
	h.State.UpsertDeployment(d)
	evaluate(t, h, v2, structs.EvalTriggerDeploymentWatcher)
	old, cur = byVersion(t, h, v2)
	require.Len(t, old, 1)
	require.Len(t, cur, 2)
	require.Equal(t, 3, len(old)+len(cur), "count again once promoted")
	all, err := h.State.AllocsByJob(v1.Namespace, v1.ID)
	require.NoError(t, err)
	replacedByCanary := 0
	for _, a := range all {
		if a.Name == canary.Name && a.ID != canary.ID {
			require.Equal(t, structs.AllocDesiredStop, a.DesiredStatus)
			require.Equal(t, descNotNeeded, a.DesiredDescription)
			replacedByCanary++
		}
	}
	require.Equal(t, 1, replacedByCanary)
	u = h.LastPlan().Annotations.DesiredTGUpdates["web"]
	require.Equal(t, 1, u.DestructiveUpdate)
	require.Zero(t, u.Canary)
}

func TestServiceSched_CanaryOfFailedDeploymentStops(t *testing.T) {
	h := newTestHarness(t)
	_, v2 := canaryJob(t, h)
	evaluate(t, h, v2, structs.EvalTriggerJobRegister)
	_, cur := byVersion(t, h, v2)
	require.Len(t, cur, 1)

	d := latestDeployment(t, h, v2).Copy()
	d.Status = structs.DeploymentStatusFailed
	h.State.UpsertDeployment(d)
	evaluate(t, h, v2, structs.EvalTriggerDeploymentWatcher)
	old, cur := byVersion(t, h, v2)
	require.Len(t, old, 3, "the old version keeps running")
	require.Empty(t, cur)
	stopped, err := h.State.AllocByID(latestCanary(t, h, v2).ID)
	require.NoError(t, err)
	require.Equal(t, descCanaryEnded, stopped.DesiredDescription)

	// The failed version is not tried again by the next evaluation.
	evaluate(t, h, v2, structs.EvalTriggerNodeUpdate)
	_, cur = byVersion(t, h, v2)
	require.Empty(t, cur)
}

func TestServiceSched_NewVersionDropsWaitingCanaries(t *testing.T) {
	h := newTestHarness(t)
	_, v2 := canaryJob(t, h)
	evaluate(t, h, v2, structs.EvalTriggerJobRegister)
	first := latestCanary(t, h, v2)

	v3 := v2.Copy()
	v3.Groups[0].Tasks[0].Image = "127.0.0.1:5000/drover/busybox:3"
	v3 = h.State.UpsertJob(v3)
	evaluate(t, h, v3, structs.EvalTriggerJobRegister)

	a, err := h.State.AllocByID(first.ID)
	require.NoError(t, err)
	require.Equal(t, structs.AllocDesiredStop, a.DesiredStatus)
	require.Equal(t, descCanaryEnded, a.DesiredDescription)
	old, cur := byVersion(t, h, v3)
	require.Len(t, old, 3, "v1 keeps running")
	require.Len(t, cur, 1, "one canary of v3")
	require.True(t, cur[0].IsCanary())
	d := latestDeployment(t, h, v3)
	require.Equal(t, v3.Version, d.JobVersion)
	require.Equal(t, 1, d.TaskGroups["web"].DesiredCanaries)
}

func TestServiceSched_BlueGreen(t *testing.T) {
	h := newTestHarness(t)
	addNodes(h, 3)
	job := mock.Job()
	job.Groups[0].Count = 2
	job.Update = &structs.UpdateStrategy{MaxParallel: 1, Canary: 2}
	v1, _ := register(t, h, job)
	setClient(h, liveAllocs(t, h, v1), structs.AllocClientRunning, testNow)
	changed := v1.Copy()
	changed.Groups[0].Tasks[0].Env = map[string]string{"COLOR": "green"}
	v2 := h.State.UpsertJob(changed)
	evaluate(t, h, v2, structs.EvalTriggerJobRegister)
	old, cur := byVersion(t, h, v2)
	require.Len(t, old, 2)
	require.Len(t, cur, 2, "a full second set")
	require.ElementsMatch(t, indexes(old), indexes(cur))

	setHealthy(h, cur...)
	d := latestDeployment(t, h, v2).Copy()
	d.TaskGroups["web"].Promoted = true
	h.State.UpsertDeployment(d)
	evaluate(t, h, v2, structs.EvalTriggerDeploymentWatcher)
	old, cur = byVersion(t, h, v2)
	require.Empty(t, old, "promotion switches over at once")
	require.Len(t, cur, 2)
}

// latestCanary is the newest canary allocation of job, live or not.
func latestCanary(t *testing.T, h *Harness, job *structs.Job) *structs.Allocation {
	t.Helper()
	all, err := h.State.AllocsByJob(job.Namespace, job.ID)
	require.NoError(t, err)
	var out *structs.Allocation
	for _, a := range all {
		if a.IsCanary() && (out == nil || a.CreateIndex > out.CreateIndex) {
			out = a
		}
	}
	require.NotNil(t, out)
	return out
}
