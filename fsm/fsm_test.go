package fsm

import (
	"bytes"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
)

func newTestFSM(t require.TestingT) *FSM {
	helper(t)
	f, err := New(nil)
	require.NoError(t, err)
	return f
}

// entry encodes a Raft log entry the way the server proposes one.
func entry(t require.TestingT, index uint64, mt structs.MessageType, msg any) *raft.Log {
	helper(t)
	data, err := structs.Encode(mt, msg)
	require.NoError(t, err)
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data}
}

// applyOK applies an entry and requires it to succeed.
func applyOK(t require.TestingT, f *FSM, l *raft.Log) {
	helper(t)
	require.Nil(t, f.Apply(l), "apply at index %d", l.Index)
}

// memSink is an in-memory raft.SnapshotSink.
type memSink struct {
	bytes.Buffer
	closed, cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Close() error  { s.closed = true; return nil }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }

// persist snapshots f into memory.
func persist(t require.TestingT, f *FSM) *memSink {
	helper(t)
	snap, err := f.Snapshot()
	require.NoError(t, err)
	defer snap.Release()
	sink := &memSink{}
	require.NoError(t, snap.Persist(sink))
	require.True(t, sink.closed)
	return sink
}

// restoreInto restores the bytes of sink into f.
func restoreInto(t require.TestingT, f *FSM, sink *memSink) {
	helper(t)
	require.NoError(t, f.Restore(nopCloser{bytes.NewReader(sink.Bytes())}))
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

func TestApply_JobRegister(t *testing.T) {
	f := newTestFSM(t)
	job := mockJob("default", "web")
	eval := mockEval(job, evalID(1))
	applyOK(t, f, entry(t, 5, structs.JobRegisterRequestType, &structs.JobRegisterRequest{
		Job: job, Eval: eval, SubmitTime: 1234,
	}))

	got, err := f.State().JobByID(nil, "default", "web")
	require.NoError(t, err)
	require.NotNil(t, got)
	require.Equal(t, uint64(5), got.CreateIndex)
	require.Equal(t, int64(1234), got.SubmitTime)
	require.Equal(t, job.Groups[0].Tasks[0].Image, got.Groups[0].Tasks[0].Image)
	gotEval, err := f.State().EvalByID(nil, evalID(1))
	require.NoError(t, err)
	require.Equal(t, uint64(5), gotEval.CreateIndex)
	require.Equal(t, uint64(5), f.State().LatestIndex())
}

func TestApply_JobRegisterEnforceIndex(t *testing.T) {
	f := newTestFSM(t)
	job := mockJob("default", "web")
	register := func(index, jobModifyIndex uint64, count int) any {
		j := job.Copy()
		j.Groups[0].Count = count
		return f.Apply(entry(t, index, structs.JobRegisterRequestType, &structs.JobRegisterRequest{
			Job: j, Eval: mockEval(j, evalID(int(index))), EnforceIndex: true, JobModifyIndex: jobModifyIndex,
		}))
	}
	requireConflict := func(resp any) {
		helper(t)
		err, ok := resp.(error)
		require.True(t, ok, "want an error, got %#v", resp)
		var coded *structs.Error
		require.ErrorAs(t, err, &coded)
		require.Equal(t, structs.ErrConflict, coded.Code)
		require.ErrorIs(t, err, ErrConflict)
		require.Contains(t, err.Error(), `"web"`)
	}

	requireConflict(register(5, 3, 1)) // must exist at 3, but does not
	require.Nil(t, register(6, 0, 1))  // must not exist: created

	before := dump(t, f.State())
	requireConflict(register(7, 0, 2)) // must not exist, but does
	requireConflict(register(8, 5, 2)) // exists at 6, not 5
	require.Equal(t, before, dump(t, f.State()), "a conflict writes nothing, not even the eval")

	require.Nil(t, register(9, 6, 2))
	got, err := f.State().JobByID(nil, "default", "web")
	require.NoError(t, err)
	require.Equal(t, uint64(9), got.JobModifyIndex)
	require.Equal(t, uint64(1), got.Version)
}

func TestApply_JobDeregister(t *testing.T) {
	f := newTestFSM(t)
	job := mockJob("other", "web")
	applyOK(t, f, entry(t, 5, structs.JobRegisterRequestType, &structs.JobRegisterRequest{Job: job}))

	stop := &structs.JobDeregisterRequest{JobID: "web", Eval: mockEval(job, evalID(1)), SubmitTime: 99}
	stop.Namespace = "other"
	applyOK(t, f, entry(t, 6, structs.JobDeregisterRequestType, stop))
	got, err := f.State().JobByID(nil, "other", "web")
	require.NoError(t, err)
	require.True(t, got.Stop)
	require.Equal(t, int64(99), got.SubmitTime)
	e, err := f.State().EvalByID(nil, evalID(1))
	require.NoError(t, err)
	require.NotNil(t, e)

	purge := &structs.JobDeregisterRequest{JobID: "web", Purge: true}
	purge.Namespace = "other"
	applyOK(t, f, entry(t, 7, structs.JobDeregisterRequestType, purge))
	got, err = f.State().JobByID(nil, "other", "web")
	require.NoError(t, err)
	require.Nil(t, got)

	// A request without a namespace means the default one.
	resp := f.Apply(entry(t, 8, structs.JobDeregisterRequestType, &structs.JobDeregisterRequest{JobID: "web"}))
	err, _ = resp.(error)
	require.ErrorIs(t, err, ErrNotFound)
	require.Contains(t, err.Error(), `"default"`)
}

func TestApply_Evals(t *testing.T) {
	f := newTestFSM(t)
	job := mockJob("default", "web")
	applyOK(t, f, entry(t, 5, structs.EvalUpdateRequestType, &structs.EvalUpdateRequest{
		Evals: []*structs.Evaluation{mockEval(job, evalID(1)), mockEval(job, evalID(2))},
	}))
	evals, err := f.State().EvalsByJob(nil, "default", "web")
	require.NoError(t, err)
	require.Len(t, evals, 2)

	applyOK(t, f, entry(t, 6, structs.EvalDeleteRequestType, &structs.EvalDeleteRequest{EvalIDs: []string{evalID(1)}}))
	evals, err = f.State().EvalsByJob(nil, "default", "web")
	require.NoError(t, err)
	require.Equal(t, []string{evalID(2)}, evalIDs(evals))
	require.Equal(t, uint64(6), f.State().Index(tableEvals))
}

func TestApply_UnknownType(t *testing.T) {
	f := newTestFSM(t)
	const unknown = structs.MessageType(120)
	l := entry(t, 5, unknown, &structs.EvalDeleteRequest{})
	require.PanicsWithValue(t,
		"fsm: unknown message type 120 at raft index 5: this server is older than the entry; upgrade it",
		func() { f.Apply(l) })

	l = entry(t, 6, unknown|structs.IgnoreUnknownTypeFlag, &structs.EvalDeleteRequest{})
	require.Nil(t, f.Apply(l))
	require.Zero(t, f.State().LatestIndex())

	// The flag on a known type still applies it.
	job := mockJob("default", "web")
	applyOK(t, f, entry(t, 7, structs.EvalUpdateRequestType|structs.IgnoreUnknownTypeFlag,
		&structs.EvalUpdateRequest{Evals: []*structs.Evaluation{mockEval(job, evalID(1))}}))
	require.Equal(t, uint64(7), f.State().LatestIndex())
}

func TestApply_BadEntries(t *testing.T) {
	f := newTestFSM(t)
	resp := f.Apply(&raft.Log{Index: 1, Data: nil})
	require.Error(t, resp.(error))

	resp = f.Apply(&raft.Log{Index: 2, Data: []byte{byte(structs.JobRegisterRequestType), 0xc1}})
	require.ErrorContains(t, resp.(error), "decoding job register request")

	resp = f.Apply(entry(t, 3, structs.JobRegisterRequestType, &structs.JobRegisterRequest{}))
	require.Equal(t, structs.ErrInvalid, structs.CodeOf(resp.(error)))
	require.Zero(t, f.State().LatestIndex())
}

func TestRegisterRejectsDuplicates(t *testing.T) {
	require.Panics(t, func() { register(structs.JobRegisterRequestType, (*FSM).applyJobRegister) })
	require.Panics(t, func() { register(structs.IgnoreUnknownTypeFlag|1, (*FSM).applyJobRegister) })
}
