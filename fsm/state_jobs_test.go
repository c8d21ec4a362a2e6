package fsm

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
)

func TestUpsertJob_New(t *testing.T) {
	s := newTestStore(t)
	job := mockJob("default", "web")
	eval := mockEval(job, evalID(1))
	require.NoError(t, s.UpsertJob(10, 111, job, eval))

	got, err := s.JobByID(nil, "default", "web")
	require.NoError(t, err)
	require.NotNil(t, got)
	require.Equal(t, uint64(10), got.CreateIndex)
	require.Equal(t, uint64(10), got.ModifyIndex)
	require.Equal(t, uint64(10), got.JobModifyIndex)
	require.Equal(t, uint64(0), got.Version)
	require.Equal(t, int64(111), got.SubmitTime)
	require.Equal(t, structs.JobStatusPending, got.Status)

	gotEval, err := s.EvalByID(nil, evalID(1))
	require.NoError(t, err)
	require.Equal(t, uint64(10), gotEval.CreateIndex)
	require.Equal(t, uint64(10), gotEval.ModifyIndex)

	require.Equal(t, uint64(10), s.Index(tableJobs))
	require.Equal(t, uint64(10), s.Index(tableJobVersions))
	require.Equal(t, uint64(10), s.Index(tableEvals))
	require.Equal(t, uint64(10), s.LatestIndex())

	versions, err := s.JobVersionsByID(nil, "default", "web")
	require.NoError(t, err)
	require.Len(t, versions, 1)
}

func TestUpsertJob_StoresCopies(t *testing.T) {
	s := newTestStore(t)
	job := mockJob("default", "web")
	eval := mockEval(job, evalID(1))
	require.NoError(t, s.UpsertJob(10, 111, job, eval))

	// The caller's objects are neither adopted nor stamped by the store.
	require.Zero(t, job.CreateIndex)
	require.Zero(t, eval.CreateIndex)
	job.Groups[0].Count = 99
	eval.Status = structs.EvalStatusFailed

	got, err := s.JobByID(nil, "default", "web")
	require.NoError(t, err)
	require.Equal(t, 1, got.Groups[0].Count)
	gotEval, err := s.EvalByID(nil, evalID(1))
	require.NoError(t, err)
	require.Equal(t, structs.EvalStatusPending, gotEval.Status)
}

func TestUpsertJob_VersionOnlyOnSpecChange(t *testing.T) {
	s := newTestStore(t)
	require.NoError(t, s.UpsertJob(10, 100, mockJob("default", "web"), nil))

	// Same spec, different server-set fields: no new version.
	same := mockJob("default", "web")
	same.Version, same.Status, same.JobModifyIndex = 42, structs.JobStatusDead, 7
	require.NoError(t, s.UpsertJob(11, 200, same, nil))
	got, err := s.JobByID(nil, "default", "web")
	require.NoError(t, err)
	require.Equal(t, uint64(0), got.Version)
	require.Equal(t, uint64(10), got.CreateIndex)
	require.Equal(t, uint64(11), got.ModifyIndex)
	require.Equal(t, uint64(10), got.JobModifyIndex)
	require.Equal(t, int64(100), got.SubmitTime)
	require.Equal(t, structs.JobStatusPending, got.Status)
	require.Equal(t, uint64(10), s.Index(tableJobVersions), "no version was written")

	changed := mockJob("default", "web")
	changed.Groups[0].Count = 3
	require.NoError(t, s.UpsertJob(12, 300, changed, nil))
	got, err = s.JobByID(nil, "default", "web")
	require.NoError(t, err)
	require.Equal(t, uint64(1), got.Version)
	require.Equal(t, uint64(10), got.CreateIndex)
	require.Equal(t, uint64(12), got.JobModifyIndex)
	require.Equal(t, int64(300), got.SubmitTime)

	versions, err := s.JobVersionsByID(nil, "default", "web")
	require.NoError(t, err)
	require.Len(t, versions, 2)
	require.Equal(t, uint64(1), versions[0].Version)
	require.Equal(t, 3, versions[0].Groups[0].Count)
	require.Equal(t, uint64(0), versions[1].Version)
	require.Equal(t, 1, versions[1].Groups[0].Count)
}

func TestUpsertJob_BoundedVersions(t *testing.T) {
	s := newTestStore(t)
	for i := 0; i < 10; i++ {
		job := mockJob("default", "web")
		job.Groups[0].Count = i + 1
		require.NoError(t, s.UpsertJob(uint64(10+i), int64(i), job, nil))
	}
	versions, err := s.JobVersionsByID(nil, "default", "web")
	require.NoError(t, err)
	require.Len(t, versions, structs.JobTrackedVersions)
	for i, v := range versions {
		require.Equal(t, uint64(9-i), v.Version, "newest first")
		require.Equal(t, 10-i, v.Groups[0].Count)
	}

	old, err := s.JobByIDAndVersion(nil, "default", "web", 3)
	require.NoError(t, err)
	require.Nil(t, old, "versions beyond the tracked ones are dropped")
	kept, err := s.JobByIDAndVersion(nil, "default", "web", 4)
	require.NoError(t, err)
	require.NotNil(t, kept)
	require.Equal(t, 5, kept.Groups[0].Count)
}

func TestJobVersions_ExactIDAndNamespace(t *testing.T) {
	s := newTestStore(t)
	require.NoError(t, s.UpsertJob(10, 0, mockJob("default", "web"), nil))
	require.NoError(t, s.UpsertJob(11, 0, mockJob("default", "web-2"), nil))
	require.NoError(t, s.UpsertJob(12, 0, mockJob("other", "web"), nil))

	versions, err := s.JobVersionsByID(nil, "default", "web")
	require.NoError(t, err)
	require.Len(t, versions, 1)
	require.Equal(t, "web", versions[0].ID)
	require.Equal(t, "default", versions[0].Namespace)
}

func TestJobsByPrefix(t *testing.T) {
	s := newTestStore(t)
	for i, key := range [][2]string{{"other", "web"}, {"default", "web-2"}, {"default", "api"}, {"default", "web"}} {
		require.NoError(t, s.UpsertJob(uint64(10+i), 0, mockJob(key[0], key[1]), nil))
	}
	ids := func(jobs []*structs.Job) []string {
		var out []string
		for _, j := range jobs {
			out = append(out, j.Namespace+"/"+j.ID)
		}
		return out
	}

	jobs, err := s.JobsByPrefix(nil, "default", "web")
	require.NoError(t, err)
	require.Equal(t, []string{"default/web", "default/web-2"}, ids(jobs))

	jobs, err = s.JobsByPrefix(nil, "default", "")
	require.NoError(t, err)
	require.Equal(t, []string{"default/api", "default/web", "default/web-2"}, ids(jobs))

	jobs, err = s.JobsByPrefix(nil, "*", "web")
	require.NoError(t, err)
	require.Equal(t, []string{"default/web", "default/web-2", "other/web"}, ids(jobs))

	jobs, err = s.JobsByPrefix(nil, "nope", "")
	require.NoError(t, err)
	require.Empty(t, jobs)
}

func TestDeregisterJob_Stop(t *testing.T) {
	s := newTestStore(t)
	job := mockJob("default", "web")
	require.NoError(t, s.UpsertJob(10, 100, job, mockEval(job, evalID(1))))

	stopEval := mockEval(job, evalID(2))
	stopEval.TriggeredBy = structs.EvalTriggerJobDeregister
	require.NoError(t, s.DeregisterJob(11, 200, "default", "web", false, stopEval))

	got, err := s.JobByID(nil, "default", "web")
	require.NoError(t, err)
	require.True(t, got.Stop)
	require.Equal(t, uint64(1), got.Version, "stopping is a spec change")
	require.Equal(t, uint64(11), got.JobModifyIndex)
	require.Equal(t, int64(200), got.SubmitTime)
	require.Equal(t, structs.JobStatusDead, got.Status)

	e, err := s.EvalByID(nil, evalID(2))
	require.NoError(t, err)
	require.NotNil(t, e)
	require.Equal(t, uint64(11), e.CreateIndex)

	// Stopping again changes nothing in the spec.
	require.NoError(t, s.DeregisterJob(12, 300, "default", "web", false, nil))
	got, err = s.JobByID(nil, "default", "web")
	require.NoError(t, err)
	require.Equal(t, uint64(1), got.Version)
	require.Equal(t, uint64(11), got.JobModifyIndex)
}

func TestDeregisterJob_Purge(t *testing.T) {
	s := newTestStore(t)
	for i := 0; i < 3; i++ {
		job := mockJob("default", "web")
		job.Groups[0].Count = i + 1
		require.NoError(t, s.UpsertJob(uint64(10+i), 0, job, nil))
	}
	require.NoError(t, s.UpsertJob(13, 0, mockJob("default", "web-2"), nil))

	eval := mockEval(mockJob("default", "web"), evalID(9))
	require.NoError(t, s.DeregisterJob(20, 0, "default", "web", true, eval))

	got, err := s.JobByID(nil, "default", "web")
	require.NoError(t, err)
	require.Nil(t, got)
	versions, err := s.JobVersionsByID(nil, "default", "web")
	require.NoError(t, err)
	require.Empty(t, versions)
	other, err := s.JobVersionsByID(nil, "default", "web-2")
	require.NoError(t, err)
	require.Len(t, other, 1, "a job sharing the prefix keeps its versions")

	e, err := s.EvalByID(nil, evalID(9))
	require.NoError(t, err)
	require.NotNil(t, e)
	require.Equal(t, uint64(20), s.Index(tableJobs))
	require.Equal(t, uint64(20), s.Index(tableJobVersions))
	require.Equal(t, uint64(20), s.Index(tableEvals))

	// Registering again starts a new job from version 0.
	require.NoError(t, s.UpsertJob(21, 0, mockJob("default", "web"), nil))
	got, err = s.JobByID(nil, "default", "web")
	require.NoError(t, err)
	require.Equal(t, uint64(0), got.Version)
	require.Equal(t, uint64(21), got.CreateIndex)
}

func TestDeregisterJob_Missing(t *testing.T) {
	s := newTestStore(t)
	for _, purge := range []bool{false, true} {
		err := s.DeregisterJob(10, 0, "default", "ghost", purge, mockEval(mockJob("default", "ghost"), evalID(1)))
		require.Error(t, err)
		require.True(t, errors.Is(err, ErrNotFound))
		require.Equal(t, structs.ErrNotFound, structs.CodeOf(err))
		require.Contains(t, err.Error(), `"ghost"`)
	}
	e, err := s.EvalByID(nil, evalID(1))
	require.NoError(t, err)
	require.Nil(t, e, "a failed deregister writes nothing")
	require.Zero(t, s.LatestIndex())
}

func TestJobStatus_Service(t *testing.T) {
	s := newTestStore(t)
	job := mockJob("default", "web")
	eval := mockEval(job, evalID(1))
	require.NoError(t, s.UpsertJob(10, 0, job, eval))
	requireStatus(t, s, "web", structs.JobStatusPending)

	stored, err := s.JobByID(nil, "default", "web")
	require.NoError(t, err)
	alloc := mockAlloc(stored, "alloc-1", "node-1", eval.ID)
	alloc.ClientStatus = structs.AllocClientRunning
	require.NoError(t, s.UpsertAllocs(11, []*structs.Allocation{alloc}))
	requireStatus(t, s, "web", structs.JobStatusRunning)
	got, err := s.JobByID(nil, "default", "web")
	require.NoError(t, err)
	require.Equal(t, uint64(11), got.ModifyIndex, "a status change is a write to the job")
	require.Equal(t, uint64(11), s.Index(tableJobs))

	// Stopping with a live allocation keeps it running until the
	// allocation ends.
	require.NoError(t, s.DeregisterJob(12, 0, "default", "web", false, nil))
	requireStatus(t, s, "web", structs.JobStatusRunning)

	alloc.ClientStatus = structs.AllocClientComplete
	require.NoError(t, s.UpsertAllocs(13, []*structs.Allocation{alloc}))
	requireStatus(t, s, "web", structs.JobStatusDead)
}

func TestJobStatus_ServiceAllocsTerminal(t *testing.T) {
	s := newTestStore(t)
	job := mockJob("default", "web")
	require.NoError(t, s.UpsertJob(10, 0, job, nil))
	stored, _ := s.JobByID(nil, "default", "web")
	alloc := mockAlloc(stored, "alloc-1", "node-1", "")
	alloc.ClientStatus = structs.AllocClientFailed
	require.NoError(t, s.UpsertAllocs(11, []*structs.Allocation{alloc}))
	requireStatus(t, s, "web", structs.JobStatusPending)
}

func TestJobStatus_Batch(t *testing.T) {
	s := newTestStore(t)
	job := mockBatchJob("default", "batch")
	require.NoError(t, s.UpsertJob(10, 0, job, nil))
	requireStatus(t, s, "batch", structs.JobStatusPending) // nothing has happened yet

	eval := mockEval(job, evalID(1))
	require.NoError(t, s.UpsertEvals(11, []*structs.Evaluation{eval}))
	requireStatus(t, s, "batch", structs.JobStatusPending)

	stored, _ := s.JobByID(nil, "default", "batch")
	alloc := mockAlloc(stored, "alloc-1", "node-1", eval.ID)
	alloc.ClientStatus = structs.AllocClientRunning
	require.NoError(t, s.UpsertAllocs(12, []*structs.Allocation{alloc}))
	requireStatus(t, s, "batch", structs.JobStatusRunning)

	alloc.ClientStatus = structs.AllocClientComplete
	require.NoError(t, s.UpsertAllocs(13, []*structs.Allocation{alloc}))
	requireStatus(t, s, "batch", structs.JobStatusPending) // the eval is still pending

	blocked := mockEval(job, evalID(2))
	blocked.Status = structs.EvalStatusBlocked
	done := eval.Copy()
	done.Status = structs.EvalStatusComplete
	require.NoError(t, s.UpsertEvals(14, []*structs.Evaluation{done, blocked}))
	requireStatus(t, s, "batch", structs.JobStatusPending) // blocked still has work

	require.NoError(t, s.DeleteEvals(15, []string{blocked.ID}))
	requireStatus(t, s, "batch", structs.JobStatusDead)
}

func TestJobStatus_IgnoresAllocsOfEarlierJob(t *testing.T) {
	s := newTestStore(t)
	job := mockJob("default", "web")
	require.NoError(t, s.UpsertJob(10, 0, job, nil))
	stored, _ := s.JobByID(nil, "default", "web")
	alloc := mockAlloc(stored, "alloc-old", "node-1", "")
	alloc.ClientStatus = structs.AllocClientRunning
	require.NoError(t, s.UpsertAllocs(11, []*structs.Allocation{alloc}))
	require.NoError(t, s.DeregisterJob(12, 0, "default", "web", true, nil))

	require.NoError(t, s.UpsertJob(13, 0, mockJob("default", "web"), nil))
	requireStatus(t, s, "web", structs.JobStatusPending)

	current, err := s.AllocsByJob(nil, "default", "web", false)
	require.NoError(t, err)
	require.Empty(t, current)
	all, err := s.AllocsByJob(nil, "default", "web", true)
	require.NoError(t, err)
	require.Len(t, all, 1)
}

func requireStatus(t *testing.T, s *StateStore, id, want string) {
	t.Helper()
	got, err := s.JobByID(nil, "default", id)
	require.NoError(t, err)
	require.NotNil(t, got)
	require.Equal(t, want, got.Status)
}
