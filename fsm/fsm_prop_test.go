package fsm

import (
	"fmt"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/drover-sh/drover/structs"
)

// A small space of names, so generated operations collide: the same job
// registered, stopped and purged, the same evaluation written and deleted.
var (
	propNamespaces = []string{"default", "other"}
	propJobIDs     = []string{"web", "web-2", "batch"}
	propStatuses   = []string{
		structs.EvalStatusPending, structs.EvalStatusBlocked, structs.EvalStatusComplete,
		structs.EvalStatusFailed, structs.EvalStatusCanceled,
	}
)

func drawEval(t *rapid.T, label string) *structs.Evaluation {
	ns := rapid.SampledFrom(propNamespaces).Draw(t, label+"_ns")
	job := mockJob(ns, rapid.SampledFrom(propJobIDs).Draw(t, label+"_job"))
	e := mockEval(job, evalID(rapid.IntRange(0, 9).Draw(t, label+"_id")))
	e.Status = rapid.SampledFrom(propStatuses).Draw(t, label+"_status")
	return e
}

func drawMaybeEval(t *rapid.T, label string) *structs.Evaluation {
	if rapid.Bool().Draw(t, label+"_present") {
		return drawEval(t, label)
	}
	return nil
}

// drawEntry draws one Raft entry at index: a job register (sometimes
// conditional), a stop or purge, an eval update or an eval delete.
func drawEntry(t *rapid.T, index uint64) *raft.Log {
	ns := rapid.SampledFrom(propNamespaces).Draw(t, "ns")
	id := rapid.SampledFrom(propJobIDs).Draw(t, "job")
	var mt structs.MessageType
	var msg any
	switch rapid.IntRange(0, 4).Draw(t, "kind") {
	case 0:
		job := mockJob(ns, id)
		if id == "batch" {
			job.Type = structs.JobTypeBatch
		}
		job.Groups[0].Count = rapid.IntRange(1, 3).Draw(t, "count")
		job.Stop = rapid.IntRange(0, 5).Draw(t, "stop") == 0
		req := &structs.JobRegisterRequest{Job: job, Eval: drawMaybeEval(t, "eval"), SubmitTime: int64(index) * 10}
		if rapid.IntRange(0, 3).Draw(t, "enforce") == 0 {
			req.EnforceIndex = true
			req.JobModifyIndex = uint64(rapid.IntRange(0, int(index)).Draw(t, "job_modify_index"))
		}
		mt, msg = structs.JobRegisterRequestType, req
	case 1, 2:
		req := &structs.JobDeregisterRequest{
			JobID: id, Purge: rapid.Bool().Draw(t, "purge"), Eval: drawMaybeEval(t, "eval"), SubmitTime: int64(index) * 10,
		}
		req.Namespace = ns
		mt, msg = structs.JobDeregisterRequestType, req
	case 3:
		n := rapid.IntRange(1, 3).Draw(t, "evals")
		req := &structs.EvalUpdateRequest{}
		for i := 0; i < n; i++ {
			req.Evals = append(req.Evals, drawEval(t, fmt.Sprintf("eval%d", i)))
		}
		mt, msg = structs.EvalUpdateRequestType, req
	default:
		ids := rapid.SliceOfN(rapid.IntRange(0, 9), 1, 3).Draw(t, "delete")
		req := &structs.EvalDeleteRequest{}
		for _, n := range ids {
			req.EvalIDs = append(req.EvalIDs, evalID(n))
		}
		mt, msg = structs.EvalDeleteRequestType, req
	}
	return entry(t, index, mt, msg)
}

// applyAll applies entries and records each response, so two replicas can
// be compared on what they answered as well as on what they hold.
func applyAll(f *FSM, entries []*raft.Log) []string {
	out := make([]string, len(entries))
	for i, l := range entries {
		out[i] = fmt.Sprint(f.Apply(l))
	}
	return out
}

// TestFSM_SnapshotMidwayConverges: a replica restored from a snapshot taken
// at any point and then fed the rest of the log ends identical to one that
// applied the whole log, answering every entry the same way.
func TestFSM_SnapshotMidwayConverges(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 40).Draw(t, "entries")
		entries := make([]*raft.Log, n)
		for i := range entries {
			entries[i] = drawEntry(t, uint64(i+1))
		}
		cut := rapid.IntRange(0, n).Draw(t, "snapshot_at")

		direct := newTestFSM(t)
		want := applyAll(direct, entries)

		before := newTestFSM(t)
		got := applyAll(before, entries[:cut])
		restored := newTestFSM(t)
		restoreInto(t, restored, persist(t, before))
		got = append(got, applyAll(restored, entries[cut:])...)

		require.Equal(t, want, got)
		require.Equal(t, dump(t, direct.State()), dump(t, restored.State()))
		checkJobInvariants(t, direct.State())
	})
}

// checkJobInvariants holds for any store the log can produce.
func checkJobInvariants(t *rapid.T, s *StateStore) {
	jobs, err := s.JobsByPrefix(nil, "*", "")
	require.NoError(t, err)
	for _, job := range jobs {
		versions, err := s.JobVersionsByID(nil, job.Namespace, job.ID)
		require.NoError(t, err)
		require.NotEmpty(t, versions)
		require.LessOrEqual(t, len(versions), structs.JobTrackedVersions)
		require.Equal(t, job.Version, versions[0].Version, "the newest kept version is the job's")
		require.False(t, job.SpecChanged(versions[0]))
		for i := 1; i < len(versions); i++ {
			require.Less(t, versions[i].Version, versions[i-1].Version)
		}
		require.Contains(t, []string{structs.JobStatusPending, structs.JobStatusRunning, structs.JobStatusDead}, job.Status)
		if job.Stop {
			require.Equal(t, structs.JobStatusDead, job.Status, "no allocations: a stopped job is dead")
		}
	}
}
