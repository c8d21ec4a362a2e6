package fsm

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
)

func TestEvals(t *testing.T) {
	s := newTestStore(t)
	web, api := mockJob("default", "web"), mockJob("other", "api")
	e1, e2, e3 := mockEval(web, "aa-1"), mockEval(web, "ab-2"), mockEval(api, "aa-3")
	require.NoError(t, s.UpsertEvals(10, []*structs.Evaluation{e1, e2, e3}))

	e1b := e1.Copy()
	e1b.Status = structs.EvalStatusComplete
	require.NoError(t, s.UpsertEvals(11, []*structs.Evaluation{e1b}))
	got, err := s.EvalByID(nil, "aa-1")
	require.NoError(t, err)
	require.Equal(t, structs.EvalStatusComplete, got.Status)
	require.Equal(t, uint64(10), got.CreateIndex)
	require.Equal(t, uint64(11), got.ModifyIndex)

	byPrefix, err := s.EvalsByPrefix(nil, "*", "aa")
	require.NoError(t, err)
	require.Equal(t, []string{"aa-1", "aa-3"}, evalIDs(byPrefix))
	byPrefix, err = s.EvalsByPrefix(nil, "default", "a")
	require.NoError(t, err)
	require.Equal(t, []string{"aa-1", "ab-2"}, evalIDs(byPrefix))

	byJob, err := s.EvalsByJob(nil, "default", "web")
	require.NoError(t, err)
	require.Equal(t, []string{"aa-1", "ab-2"}, evalIDs(byJob))
	byJob, err = s.EvalsByJob(nil, "default", "api")
	require.NoError(t, err)
	require.Empty(t, byJob, "the namespace is part of the job key")

	require.NoError(t, s.DeleteEvals(12, []string{"aa-1", "missing"}))
	got, err = s.EvalByID(nil, "aa-1")
	require.NoError(t, err)
	require.Nil(t, got)
	require.Equal(t, uint64(12), s.Index(tableEvals))
}

func TestUpsertEvals_RejectsEvalWithoutJob(t *testing.T) {
	s := newTestStore(t)
	e := mockEval(mockJob("default", "web"), "e-1")
	e.JobID = ""
	require.Error(t, s.UpsertEvals(10, []*structs.Evaluation{e}))
	require.Zero(t, s.LatestIndex())
}

func TestNodes(t *testing.T) {
	s := newTestStore(t)
	require.NoError(t, s.UpsertNode(10, mockNode("n-1")))
	require.NoError(t, s.UpsertNode(11, mockNode("n-2")))
	require.NoError(t, s.UpsertNode(12, mockNode("m-3")))

	update := mockNode("n-1")
	update.Status = structs.NodeStatusDown
	require.NoError(t, s.UpsertNode(13, update))
	got, err := s.NodeByID(nil, "n-1")
	require.NoError(t, err)
	require.Equal(t, structs.NodeStatusDown, got.Status)
	require.Equal(t, uint64(10), got.CreateIndex)
	require.Equal(t, uint64(13), got.ModifyIndex)

	nodes, err := s.NodesByPrefix(nil, "n-")
	require.NoError(t, err)
	require.Len(t, nodes, 2)

	err = s.DeleteNode(14, []string{"n-2", "ghost"})
	require.True(t, errors.Is(err, ErrNotFound))
	got, err = s.NodeByID(nil, "n-2")
	require.NoError(t, err)
	require.NotNil(t, got, "a failed delete deletes nothing")

	require.NoError(t, s.DeleteNode(15, []string{"n-2"}))
	got, err = s.NodeByID(nil, "n-2")
	require.NoError(t, err)
	require.Nil(t, got)
	require.Equal(t, uint64(15), s.Index(tableNodes))
}

func TestAllocs(t *testing.T) {
	s := newTestStore(t)
	job := mockJob("default", "web")
	require.NoError(t, s.UpsertJob(10, 0, job, nil))
	stored, _ := s.JobByID(nil, "default", "web")

	a1 := mockAlloc(stored, "a-1", "n-1", "e-1")
	a1.DeploymentID = "d-1"
	a2 := mockAlloc(stored, "a-2", "n-2", "e-1")
	a2.Job = nil // new allocations without a job get the current one
	a3 := mockAlloc(mockJob("other", "web"), "b-3", "n-1", "e-2")
	require.NoError(t, s.UpsertAllocs(11, []*structs.Allocation{a1, a2, a3}))

	got, err := s.AllocByID(nil, "a-2")
	require.NoError(t, err)
	require.Same(t, stored, got.Job)
	require.Equal(t, uint64(11), got.CreateIndex)

	upd := a2.Copy()
	upd.ClientStatus = structs.AllocClientRunning
	require.NoError(t, s.UpsertAllocs(12, []*structs.Allocation{upd}))
	got, err = s.AllocByID(nil, "a-2")
	require.NoError(t, err)
	require.Equal(t, uint64(11), got.CreateIndex)
	require.Equal(t, uint64(12), got.ModifyIndex)
	require.Equal(t, uint64(12), got.AllocModifyIndex)
	require.Same(t, stored, got.Job, "an update without a job keeps the one it had")

	check := func(allocs []*structs.Allocation, err error, want ...string) {
		t.Helper()
		require.NoError(t, err)
		var ids []string
		for _, a := range allocs {
			ids = append(ids, a.ID)
		}
		require.Equal(t, want, ids)
	}
	allocs, err := s.AllocsByPrefix(nil, "*", "")
	check(allocs, err, "a-1", "a-2", "b-3")
	allocs, err = s.AllocsByPrefix(nil, "default", "")
	check(allocs, err, "a-1", "a-2")
	allocs, err = s.AllocsByJob(nil, "default", "web", false)
	check(allocs, err, "a-1", "a-2")
	allocs, err = s.AllocsByNode(nil, "n-1")
	check(allocs, err, "a-1", "b-3")
}

func TestDeployments(t *testing.T) {
	s := newTestStore(t)
	job := mockJob("default", "web")
	require.NoError(t, s.UpsertDeployment(10, mockDeployment(job, "d-2")))
	require.NoError(t, s.UpsertDeployment(11, mockDeployment(job, "d-1")))
	require.NoError(t, s.UpsertDeployment(12, mockDeployment(mockJob("other", "web"), "d-3")))

	upd := mockDeployment(job, "d-2")
	upd.Status = structs.DeploymentStatusSuccessful
	require.NoError(t, s.UpsertDeployment(13, upd))
	got, err := s.DeploymentByID(nil, "d-2")
	require.NoError(t, err)
	require.Equal(t, structs.DeploymentStatusSuccessful, got.Status)
	require.Equal(t, uint64(10), got.CreateIndex)

	latest, err := s.LatestDeploymentByJob(nil, "default", "web")
	require.NoError(t, err)
	require.Equal(t, "d-1", latest.ID, "latest by creation, not by update")

	byJob, err := s.DeploymentsByJob(nil, "default", "web")
	require.NoError(t, err)
	require.Len(t, byJob, 2)
	byPrefix, err := s.DeploymentsByPrefix(nil, "other", "d-")
	require.NoError(t, err)
	require.Len(t, byPrefix, 1)
	none, err := s.LatestDeploymentByJob(nil, "default", "api")
	require.NoError(t, err)
	require.Nil(t, none)
}

func TestSnapshotIsolation(t *testing.T) {
	s := newTestStore(t)
	require.NoError(t, s.UpsertJob(10, 0, mockJob("default", "web"), nil))
	snap := s.Snapshot()
	require.NoError(t, s.UpsertJob(11, 0, mockJob("default", "api"), nil))
	require.NoError(t, s.DeregisterJob(12, 0, "default", "web", true, nil))

	got, err := snap.JobByID(nil, "default", "web")
	require.NoError(t, err)
	require.NotNil(t, got, "a snapshot does not see later writes")
	got, err = snap.JobByID(nil, "default", "api")
	require.NoError(t, err)
	require.Nil(t, got)
	require.Equal(t, uint64(10), snap.LatestIndex())
	require.Equal(t, uint64(12), s.LatestIndex())
}

func evalIDs(evals []*structs.Evaluation) []string {
	var out []string
	for _, e := range evals {
		out = append(out, e.ID)
	}
	return out
}
