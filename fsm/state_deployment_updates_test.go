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
