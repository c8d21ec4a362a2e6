package scheduler

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
	"github.com/drover-sh/drover/structs/mock"
)

// testNow is the clock of every harness test, so reschedule times are
// exact.
var testNow = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

func newTestHarness(t *testing.T) *Harness {
	t.Helper()
	h := NewHarness()
	h.Now = func() time.Time { return testNow }
	return h
}

// addNodes registers n mock nodes and returns them.
func addNodes(h *Harness, n int, mutate ...func(*structs.Node)) []*structs.Node {
	out := make([]*structs.Node, n)
	for i := range out {
		node := mock.Node()
		node.Name = fmt.Sprintf("node-%03d", i)
		for _, m := range mutate {
			m(node)
		}
		h.State.UpsertNode(node)
		out[i] = node
	}
	return out
}

// register stores the job and processes an evaluation of it, which must
// succeed.
func register(t *testing.T, h *Harness, job *structs.Job) (*structs.Job, *structs.Evaluation) {
	t.Helper()
	stored := h.State.UpsertJob(job)
	eval := mock.EvalFor(stored)
	h.State.UpsertEvals(eval)
	require.NoError(t, h.Process(eval))
	return stored, eval
}

// evaluate processes a fresh evaluation of an already stored job.
func evaluate(t *testing.T, h *Harness, job *structs.Job, trigger string) *structs.Evaluation {
	t.Helper()
	eval := mock.EvalFor(job)
	eval.TriggeredBy = trigger
	h.State.UpsertEvals(eval)
	require.NoError(t, h.Process(eval))
	return eval
}

// liveAllocs are the job's allocations not stopped or finished.
func liveAllocs(t *testing.T, h *Harness, job *structs.Job) []*structs.Allocation {
	t.Helper()
	all, err := h.State.AllocsByJob(job.Namespace, job.ID)
	require.NoError(t, err)
	var out []*structs.Allocation
	for _, a := range all {
		if !a.TerminalStatus() {
			out = append(out, a)
		}
	}
	return out
}

// perNode counts allocations by node.
func perNode(allocs []*structs.Allocation) map[string]int {
	out := make(map[string]int)
	for _, a := range allocs {
		out[a.NodeID]++
	}
	return out
}

// indexes are the allocations' name indexes, sorted.
func indexes(allocs []*structs.Allocation) []int {
	out := make([]int, 0, len(allocs))
	for _, a := range allocs {
		out = append(out, allocIndex(a.Name))
	}
	slices.Sort(out)
	return out
}

func seq(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// setClient updates the client side of stored allocations, as a node's
// status update would.
func setClient(h *Harness, allocs []*structs.Allocation, status string, finished time.Time) {
	var upd []*structs.Allocation
	for _, a := range allocs {
		c := a.Copy()
		c.ClientStatus = status
		if !finished.IsZero() {
			c.TaskStates = map[string]*structs.TaskState{"server": {State: structs.TaskStateDead, Failed: status == structs.AllocClientFailed, FinishedAt: finished.UnixNano()}}
		}
		upd = append(upd, c)
	}
	h.State.UpsertAllocs(upd...)
}

// requireComplete checks the last evaluation status written.
func requireComplete(t *testing.T, h *Harness) *structs.Evaluation {
	t.Helper()
	e := h.LastEval()
	require.NotNil(t, e)
	require.Equal(t, structs.EvalStatusComplete, e.Status)
	return e
}
