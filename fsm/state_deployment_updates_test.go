package fsm

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
)

func TestUpdateDeployment_SuccessMarksVersionStable(t *testing.T) {
	s := newTestStore(t)
	job := mockJob("default", "web")
	require.NoError(t, s.UpsertJob(10, 1, job, nil))
	d := mockDeployment(job, "dep-1")
	require.NoError(t, s.UpsertDeployment(11, d))

	nd := d.Copy()
	nd.Status = structs.DeploymentStatusSuccessful
	eval := mockEval(job, evalID(1))
	require.NoError(t, s.UpdateDeployment(12, &structs.DeploymentUpdateRequest{Deployment: nd, Eval: eval}))

	got, err := s.DeploymentByID(nil, "dep-1")
	require.NoError(t, err)
	require.Equal(t, structs.DeploymentStatusSuccessful, got.Status)
	require.Equal(t, uint64(11), got.CreateIndex)
	require.Equal(t, uint64(12), got.ModifyIndex)
	cur, err := s.JobByID(nil, "default", "web")
	require.NoError(t, err)
	require.True(t, cur.Stable)
	v, err := s.JobByIDAndVersion(nil, "default", "web", 0)
	require.NoError(t, err)
	require.True(t, v.Stable)
	e, err := s.EvalByID(nil, evalID(1))
	require.NoError(t, err)
	require.NotNil(t, e)

	// Registering the same spec again keeps the version and its mark; a
	// new spec is a new version, not stable.
	require.NoError(t, s.UpsertJob(13, 2, job, nil))
	cur, _ = s.JobByID(nil, "default", "web")
	require.True(t, cur.Stable)
	require.Equal(t, uint64(0), cur.Version)
	changed := job.Copy()
	changed.Priority++
	changed.Stable = true // a job read back and edited
	require.NoError(t, s.UpsertJob(14, 3, changed, nil))
	cur, _ = s.JobByID(nil, "default", "web")
	require.False(t, cur.Stable)
	require.Equal(t, uint64(1), cur.Version)
}

func TestUpdateDeployment_EndedDeploymentIsKept(t *testing.T) {
	s := newTestStore(t)
	job := mockJob("default", "web")
	require.NoError(t, s.UpsertJob(10, 1, job, nil))
	d := mockDeployment(job, "dep-1")
	d.Status = structs.DeploymentStatusCancelled
	require.NoError(t, s.UpsertDeployment(11, d))

	nd := d.Copy()
	nd.Status = structs.DeploymentStatusFailed
	revert := job.Copy()
	revert.Priority++
	require.NoError(t, s.UpdateDeployment(12, &structs.DeploymentUpdateRequest{Deployment: nd, RevertJob: revert, Eval: mockEval(job, evalID(1))}))
	got, _ := s.DeploymentByID(nil, "dep-1")
	require.Equal(t, structs.DeploymentStatusCancelled, got.Status)
	cur, _ := s.JobByID(nil, "default", "web")
	require.Equal(t, uint64(0), cur.Version, "no revert of an ended deployment")

	// A plan's stale copy does not bring it back to running either.
	stale := d.Copy()
	stale.Status = structs.DeploymentStatusRunning
	require.NoError(t, s.UpsertPlanResults(13, &structs.ApplyPlanResultsRequest{Deployment: stale}))
	got, _ = s.DeploymentByID(nil, "dep-1")
	require.Equal(t, structs.DeploymentStatusCancelled, got.Status)

	require.Error(t, s.UpdateDeployment(14, &structs.DeploymentUpdateRequest{Deployment: mockDeployment(job, "missing")}))
}

func TestUpdateDeployment_RevertRegistersANewVersion(t *testing.T) {
	s := newTestStore(t)
	v0 := mockJob("default", "web")
	require.NoError(t, s.UpsertJob(10, 1, v0, nil))
	v1 := v0.Copy()
	v1.Priority++
	require.NoError(t, s.UpsertJob(11, 2, v1, nil))
	cur, _ := s.JobByID(nil, "default", "web")
	d := mockDeployment(cur, "dep-1")
	require.NoError(t, s.UpsertDeployment(12, d))

	nd := d.Copy()
	nd.Status = structs.DeploymentStatusFailed
	old, _ := s.JobByIDAndVersion(nil, "default", "web", 0)
	eval := mockEval(v0, evalID(1))
	require.NoError(t, s.UpdateDeployment(13, &structs.DeploymentUpdateRequest{Deployment: nd, RevertJob: old, Eval: eval, SubmitTime: 5}))
	cur, _ = s.JobByID(nil, "default", "web")
	require.Equal(t, uint64(2), cur.Version)
	require.False(t, cur.SpecChanged(old))
	require.Equal(t, int64(5), cur.SubmitTime)
	got, _ := s.DeploymentByID(nil, "dep-1")
	require.Equal(t, structs.DeploymentStatusFailed, got.Status)
	e, _ := s.EvalByID(nil, evalID(1))
	require.NotNil(t, e)
}

// A plan carries a copy of the deployment read when it was made; what
// others wrote since (a promotion, the watcher's counts) survives it, and
// what the plan changes, the placed allocations and canaries, is counted
// from the allocations table. The client's health update keeps the
// scheduler's canary mark, and an ending deployment's final counts are
// the allocations' own.
func TestDeployment_CountsAndPromotionSurviveStaleWrites(t *testing.T) {
	s := newTestStore(t)
	job := mockJob("default", "web")
	require.NoError(t, s.UpsertJob(10, 1, job, nil))
	require.NoError(t, s.UpsertNode(11, mockNode("n1")))
	d := mockDeployment(job, "dep-1")
	d.TaskGroups["web"] = &structs.DeploymentState{DesiredTotal: 2, DesiredCanaries: 1}
	canary := mockAlloc(job, "a1", "n1", evalID(1))
	canary.DeploymentID = d.ID
	canary.DeploymentStatus = &structs.AllocDeploymentStatus{Canary: true}
	require.NoError(t, s.UpsertPlanResults(12, &structs.ApplyPlanResultsRequest{Job: job, Allocs: []*structs.Allocation{canary}, Deployment: d.Copy()}))
	got, err := s.DeploymentByID(nil, d.ID)
	require.NoError(t, err)
	require.Equal(t, 1, got.TaskGroups["web"].PlacedAllocs)
	require.Equal(t, []string{"a1"}, got.TaskGroups["web"].PlacedCanaries)

	// The client reports it healthy; the canary mark stays.
	yes := true
	upd := canary.Copy()
	upd.ClientStatus = structs.AllocClientRunning
	upd.DeploymentStatus = &structs.AllocDeploymentStatus{Healthy: &yes}
	require.NoError(t, s.UpdateAllocsFromClient(13, []*structs.Allocation{upd}, nil))
	a, err := s.AllocByID(nil, "a1")
	require.NoError(t, err)
	require.True(t, a.DeploymentStatus.Canary)
	require.True(t, *a.DeploymentStatus.Healthy)

	// Promoted; then the watcher's write from an older read and a plan's
	// stale copy arrive. Neither undoes the promotion.
	promoted := got.Copy()
	promoted.TaskGroups["web"].Promoted = true
	promoted.TaskGroups["web"].HealthyAllocs = 1
	require.NoError(t, s.UpdateDeployment(14, &structs.DeploymentUpdateRequest{Deployment: promoted}))
	require.NoError(t, s.UpdateDeployment(15, &structs.DeploymentUpdateRequest{Deployment: got.Copy()}))
	second := mockAlloc(job, "a2", "n1", evalID(2))
	second.Name = job.ID + ".web[1]"
	second.DeploymentID = d.ID
	stale := got.Copy()
	stale.TaskGroups["web"].PlacedAllocs = 7
	require.NoError(t, s.UpsertPlanResults(16, &structs.ApplyPlanResultsRequest{Job: job, Allocs: []*structs.Allocation{second}, Deployment: stale}))
	got, err = s.DeploymentByID(nil, d.ID)
	require.NoError(t, err)
	st := got.TaskGroups["web"]
	require.True(t, st.Promoted, "a promotion is never undone")
	require.Equal(t, 2, st.PlacedAllocs, "counted from the allocations")
	require.Equal(t, []string{"a1"}, st.PlacedCanaries)

	// Ended by the scheduler with the watcher's counts behind: the final
	// counts are the allocations'.
	upd2 := second.Copy()
	upd2.ClientStatus = structs.AllocClientRunning
	upd2.DeploymentStatus = &structs.AllocDeploymentStatus{Healthy: &yes}
	require.NoError(t, s.UpdateAllocsFromClient(17, []*structs.Allocation{upd2}, nil))
	require.NoError(t, s.UpsertPlanResults(18, &structs.ApplyPlanResultsRequest{Job: job, DeploymentUpdates: []*structs.DeploymentStatusUpdate{{
		DeploymentID: d.ID, Status: structs.DeploymentStatusSuccessful, StatusDescription: "deployment completed successfully",
	}}}))
	got, err = s.DeploymentByID(nil, d.ID)
	require.NoError(t, err)
	require.Equal(t, structs.DeploymentStatusSuccessful, got.Status)
	require.Equal(t, 2, got.TaskGroups["web"].HealthyAllocs)
	require.Zero(t, got.TaskGroups["web"].UnhealthyAllocs)
}
