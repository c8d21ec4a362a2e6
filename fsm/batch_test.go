package fsm

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/drover-sh/drover/structs"
)

// applyBatches feeds entries to ApplyBatch in the given batch sizes (the
// last batch takes the rest) and records each response.
func applyBatches(f *FSM, entries []*raft.Log, sizes []int) []string {
	out := make([]string, 0, len(entries))
	for len(entries) > 0 {
		n := len(entries)
		if len(sizes) > 0 {
			n = min(sizes[0], n)
			sizes = sizes[1:]
		}
		for _, r := range f.ApplyBatch(entries[:n]) {
			out = append(out, fmt.Sprint(r))
		}
		entries = entries[n:]
	}
	return out
}

// TestApplyBatch_SameAsApply: whatever the batch boundaries, and whatever
// entries fail inside a batch (conditional registers that lose, deletes of
// missing jobs), batched application answers every entry as Apply does
// and leaves the same store.
func TestApplyBatch_SameAsApply(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 60).Draw(t, "entries")
		entries := make([]*raft.Log, n)
		for i := range entries {
			entries[i] = drawEntry(t, uint64(i+1))
		}
		sizes := rapid.SliceOfN(rapid.IntRange(1, 20), 0, 10).Draw(t, "batch_sizes")

		direct := newTestFSM(t)
		want := applyAll(direct, entries)
		batched := newTestFSM(t)
		// Small limits split batches into several transactions.
		batched.batchBytes = rapid.IntRange(1, 4*maxBatchBytes).Draw(t, "batch_bytes")
		got := applyBatches(batched, entries, sizes)

		require.Equal(t, want, got)
		require.Equal(t, dump(t, direct.State()), dump(t, batched.State()))
		checkJobInvariants(t, batched.State())
	})
}

// A failing entry in the middle of a batch leaves no trace, and the
// entries around it still apply.
func TestApplyBatch_FailedEntryLeavesNoPartialWrite(t *testing.T) {
	f := newTestFSM(t)
	ok1 := entry(t, 1, structs.JobRegisterRequestType, &structs.JobRegisterRequest{Job: mockJob("default", "a")})
	lose := entry(t, 2, structs.JobRegisterRequestType, &structs.JobRegisterRequest{
		Job: mockJob("default", "b"), EnforceIndex: true, JobModifyIndex: 7,
		Eval: mockEval(mockJob("default", "b"), evalID(1)),
	})
	// Writes its first evaluation, then fails on the nil second one.
	partial := entry(t, 3, structs.EvalUpdateRequestType, &structs.EvalUpdateRequest{
		Evals: []*structs.Evaluation{mockEval(mockJob("default", "a"), evalID(2)), nil},
	})
	ok3 := entry(t, 4, structs.JobRegisterRequestType, &structs.JobRegisterRequest{Job: mockJob("default", "c")})
	resp := f.ApplyBatch([]*raft.Log{ok1, lose, partial, ok3})
	require.Nil(t, resp[0])
	require.ErrorIs(t, resp[1].(error), ErrConflict)
	require.Error(t, resp[2].(error))
	require.Nil(t, resp[3])

	s := f.State()
	for id, want := range map[string]bool{"a": true, "b": false, "c": true} {
		job, err := s.JobByID(nil, "default", id)
		require.NoError(t, err)
		require.Equal(t, want, job != nil, "job %s", id)
	}
	eval, err := s.EvalByID(nil, evalID(1))
	require.NoError(t, err)
	require.Nil(t, eval, "the losing entry's evaluation must not be written")
	eval, err = s.EvalByID(nil, evalID(2))
	require.NoError(t, err)
	require.Nil(t, eval, "the failed entry's first evaluation must not be written")
	require.Equal(t, uint64(4), s.Index(tableJobs))
}

// Entries share a transaction up to the byte bound; an entry bigger than
// the bound gets one of its own.
func TestTxnBounds(t *testing.T) {
	logs := func(sizes ...int) []*raft.Log {
		out := make([]*raft.Log, len(sizes))
		for i, n := range sizes {
			out[i] = &raft.Log{Data: make([]byte, n)}
		}
		return out
	}
	require.Empty(t, txnBounds(nil, 10))
	require.Equal(t, []int{1}, txnBounds(logs(50), 10))
	require.Equal(t, []int{3}, txnBounds(logs(3, 3, 4), 10))
	require.Equal(t, []int{2, 3, 5}, txnBounds(logs(3, 3, 50, 5, 5), 10))
	require.Equal(t, []int{1, 2, 4}, txnBounds(logs(10, 1, 10, 0), 10))
}

// Raft passes configuration entries to ApplyBatch; they are not the
// store's business.
func TestApplyBatch_SkipsConfigurationEntries(t *testing.T) {
	f := newTestFSM(t)
	cfg := &raft.Log{Index: 1, Type: raft.LogConfiguration, Data: []byte{0xff, 0x01}}
	job := entry(t, 2, structs.JobRegisterRequestType, &structs.JobRegisterRequest{Job: mockJob("default", "a")})
	resp := f.ApplyBatch([]*raft.Log{cfg, job})
	require.Equal(t, []interface{}{nil, nil}, resp)
	require.Equal(t, uint64(2), f.State().Index(tableJobs))
}

// A write that opened its own memdb write transaction inside a batch would
// wait forever for the batch's lock: every write goes through writeTxn.
func TestWritesUseWriteTxn(t *testing.T) {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	direct := regexp.MustCompile(`\.Txn\(true\)`)
	allowed := map[string]bool{"batch.go": true, "snapshot.go": true}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || allowed[name] {
			continue
		}
		src, err := os.ReadFile(name)
		require.NoError(t, err)
		require.False(t, direct.Match(src), "%s opens a memdb write transaction directly; use s.writeTxn()", name)
	}
}
