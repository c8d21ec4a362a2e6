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

// Few allocations and nodes, so generated writes hit the same ones again:
// placed, updated in place, reported on, stopped, collected, placed anew.
var (
	usageAllocIDs = []string{"a0", "a1", "a2", "a3", "a4", "a5"}
	usageNodeIDs  = []string{"n0", "n1", "n2"}
	usageStatuses = []string{
		structs.AllocClientPending, structs.AllocClientRunning, structs.AllocClientComplete,
		structs.AllocClientFailed, structs.AllocClientLost,
	}
)

// drawUsageAlloc draws a placement or in-place update of one allocation:
// random resources, sometimes ports, sometimes stopped already.
func drawUsageAlloc(t *rapid.T, job *structs.Job, label string) *structs.Allocation {
	id := rapid.SampledFrom(usageAllocIDs).Draw(t, label+"_id")
	a := mockAlloc(job, id, rapid.SampledFrom(usageNodeIDs).Draw(t, label+"_node"), "eval-1")
	a.Job = nil
	a.Resources = &structs.AllocatedResources{Tasks: map[string]*structs.Resources{
		"server": {CPU: rapid.IntRange(0, 500).Draw(t, label+"_cpu"), Memory: rapid.IntRange(0, 512).Draw(t, label+"_mem")},
	}}
	if rapid.Bool().Draw(t, label+"_sidecar") {
		a.Resources.Tasks["sidecar"] = &structs.Resources{CPU: 10, Memory: 16}
	}
	for i := range rapid.IntRange(0, 2).Draw(t, label+"_ports") {
		a.Resources.Ports = append(a.Resources.Ports, &structs.AllocatedPort{
			Label: fmt.Sprintf("p%d", i), Value: rapid.IntRange(20000, 20003).Draw(t, fmt.Sprintf("%s_port%d", label, i)),
		})
	}
	if rapid.IntRange(0, 5).Draw(t, label+"_stopped") == 0 {
		a.DesiredStatus = structs.AllocDesiredStop
	}
	a.ClientStatus = rapid.SampledFrom(usageStatuses).Draw(t, label+"_client")
	return a
}

// drawUsageEntry draws one entry that writes allocations: a plan
// (placements, updates, stops), client reports, desired transitions or a
// garbage collection.
func drawUsageEntry(t *rapid.T, job *structs.Job, index uint64) *raft.Log {
	pick := func(label string) []string {
		return rapid.SliceOfNDistinct(rapid.SampledFrom(usageAllocIDs), 1, 3, rapid.ID[string]).Draw(t, label)
	}
	switch rapid.IntRange(0, 4).Draw(t, "kind") {
	case 0, 1:
		req := &structs.ApplyPlanResultsRequest{Job: job, EvalID: "eval-1", UpdatedAt: int64(index)}
		seen := map[string]bool{}
		for i := range rapid.IntRange(0, 3).Draw(t, "placements") {
			a := drawUsageAlloc(t, job, fmt.Sprintf("place%d", i))
			if !seen[a.ID] {
				seen[a.ID] = true
				req.Allocs = append(req.Allocs, a)
			}
		}
		for _, id := range pick("stops") {
			if !seen[id] && rapid.Bool().Draw(t, "stop_"+id) {
				req.AllocsStopped = append(req.AllocsStopped, &structs.Allocation{
					ID: id, DesiredStatus: structs.AllocDesiredStop, ModifyTime: int64(index),
				})
			}
		}
		return entry(t, index, structs.ApplyPlanResultsRequestType, req)
	case 2:
		req := &structs.AllocUpdateRequest{UpdatedAt: int64(index)}
		for _, id := range pick("reports") {
			req.Alloc = append(req.Alloc, &structs.Allocation{ID: id, ClientStatus: rapid.SampledFrom(usageStatuses).Draw(t, "report_"+id)})
		}
		return entry(t, index, structs.AllocClientUpdateRequestType, req)
	case 3:
		req := &structs.AllocUpdateDesiredTransitionRequest{Allocs: map[string]*structs.DesiredTransition{}}
		for _, id := range pick("migrate") {
			req.Allocs[id] = &structs.DesiredTransition{Migrate: true}
		}
		return entry(t, index, structs.AllocUpdateDesiredTransitionRequestType, req)
	default:
		return entry(t, index, structs.AllocGCRequestType, &structs.AllocGCRequest{AllocIDs: pick("collect")})
	}
}

// requireUsageConsistent checks the node_usage table against a
// recomputation from the nodes and allocations: the same rows, usage and
// counts, and an index at least as new as every allocation's.
func requireUsageConsistent(t require.TestingT, s *StateStore) {
	helper(t)
	txn := s.db.Txn(false)
	want, err := computeNodeUsage(txn)
	require.NoError(t, err)
	got := usageRows(t, s)
	for _, w := range want {
		g, ok := got[w.NodeID]
		require.True(t, ok, "no row for node %s", w.NodeID)
		require.GreaterOrEqual(t, g.Index, w.Index, "node %s", w.NodeID)
		g.Index = w.Index
		require.Equal(t, w, g)
		delete(got, w.NodeID)
	}
	require.Empty(t, got, "rows of nodes that are neither registered nor hold allocations")
}

// usageRows returns copies of the table's rows by node.
func usageRows(t require.TestingT, s *StateStore) map[string]*structs.NodeUsage {
	it, err := s.db.Txn(false).Get(tableNodeUsage, "id")
	require.NoError(t, err)
	out := map[string]*structs.NodeUsage{}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out[raw.(*structs.NodeUsage).NodeID] = raw.(*structs.NodeUsage).Copy()
	}
	return out
}

// TestNodeUsage_EqualsRecomputation: after any sequence of allocation
// writes, applied one by one or in batches of any split, every node's row
// equals what its live allocations add up to, and a replica restored from
// a snapshot taken anywhere ends with the same rows.
func TestNodeUsage_EqualsRecomputation(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		job := mockJob("default", "web")
		entries := []*raft.Log{entry(t, 1, structs.JobRegisterRequestType, &structs.JobRegisterRequest{Job: job})}
		// n2 is never registered: its row goes with its last allocation.
		for i, id := range usageNodeIDs[:2] {
			entries = append(entries, entry(t, uint64(i+2), structs.NodeRegisterRequestType, &structs.NodeRegisterRequest{Node: mockNode(id)}))
		}
		first := uint64(len(entries) + 1)
		for i := range rapid.IntRange(1, 40).Draw(t, "entries") {
			entries = append(entries, drawUsageEntry(t, job, first+uint64(i)))
		}

		direct := newTestFSM(t)
		want := applyAll(direct, entries)
		requireUsageConsistent(t, direct.State())

		batched := newTestFSM(t)
		batched.batchBytes = rapid.IntRange(1, 4096).Draw(t, "batch_bytes")
		sizes := rapid.SliceOfN(rapid.IntRange(1, 20), 0, 10).Draw(t, "batch_sizes")
		require.Equal(t, want, applyBatches(batched, entries, sizes))
		require.Equal(t, dump(t, direct.State()), dump(t, batched.State()))

		// A restore cannot know the removals before the snapshot: the
		// rows it rebuilds may differ in index and in rows of nodes left
		// without allocations, and stay consistent.
		cut := rapid.IntRange(1, len(entries)).Draw(t, "snapshot_at")
		before := newTestFSM(t)
		applyAll(before, entries[:cut])
		restored := newTestFSM(t)
		restoreInto(t, restored, persist(t, before))
		requireUsageConsistent(t, restored.State())
		require.Equal(t, want[cut:], applyAll(restored, entries[cut:]))
		requireUsageConsistent(t, restored.State())
		withoutUsage := func(d map[string][]any) map[string][]any {
			delete(d, tableNodeUsage)
			return d
		}
		require.Equal(t, withoutUsage(dump(t, direct.State())), withoutUsage(dump(t, restored.State())))
	})
}

// A registered node has a row from the start; its index moves only when
// the servers change its allocations (a placement, a stop, a removal),
// not on the client's reports, and it outlives the last allocation while
// the node is registered.
func TestNodeUsage_Index(t *testing.T) {
	s := newTestStore(t)
	job := mockJob("default", "web")
	require.NoError(t, s.UpsertJob(1, 1, job, nil))
	require.NoError(t, s.UpsertNode(2, mockNode("n1")))
	u, err := s.NodeUsage(nil, "n1")
	require.NoError(t, err)
	require.Equal(t, &structs.NodeUsage{NodeID: "n1"}, u, "a registered node has its row from the start")
	a := mockAlloc(job, "a", "n1", "eval-1")
	require.NoError(t, s.UpsertPlanResults(3, &structs.ApplyPlanResultsRequest{Job: job, Allocs: []*structs.Allocation{a}}))
	index := func() uint64 {
		u, err := s.NodeUsage(nil, "n1")
		require.NoError(t, err)
		require.NotNil(t, u)
		return u.Index
	}
	require.Equal(t, uint64(3), index())

	require.NoError(t, s.UpdateAllocsFromClient(4, []*structs.Allocation{{ID: "a", ClientStatus: structs.AllocClientRunning}}, nil))
	require.Equal(t, uint64(3), index(), "a client report")
	require.NoError(t, s.UpdateAllocsFromClient(5, []*structs.Allocation{{ID: "a", ClientStatus: structs.AllocClientComplete}}, nil))
	require.Equal(t, uint64(3), index(), "a client report that ends the allocation")
	require.NoError(t, s.DeleteAllocs(6, []string{"a"}))
	require.Equal(t, uint64(6), index(), "a removal")
	u, err = s.NodeUsage(nil, "n1")
	require.NoError(t, err)
	require.Zero(t, u.Stored)

	require.NoError(t, s.DeleteNode(7, []string{"n1"}))
	u, err = s.NodeUsage(nil, "n1")
	require.NoError(t, err)
	require.Nil(t, u, "the row goes with the node")
	requireUsageConsistent(t, s)
}

// A node's row counts its live allocations' usage, follows them through
// stops and client reports, and disappears with the last allocation of a
// node that is not registered.
func TestNodeUsage_Lifecycle(t *testing.T) {
	s := newTestStore(t)
	job := mockJob("default", "web")
	require.NoError(t, s.UpsertJob(1, 1, job, nil))
	a := mockAlloc(job, "a", "n1", "eval-1")
	a.Resources.Ports = []*structs.AllocatedPort{{Label: "http", Value: 20001}}
	b := mockAlloc(job, "b", "n1", "eval-1")
	require.NoError(t, s.UpsertAllocs(2, []*structs.Allocation{a, b}))

	u, err := s.NodeUsage(nil, "n1")
	require.NoError(t, err)
	require.Equal(t, &structs.NodeUsage{NodeID: "n1", Allocs: 2, CPU: 200, Memory: 128, Ports: []int{20001}, Stored: 2, Index: 2}, u)

	// Reports that keep an allocation live change nothing.
	require.NoError(t, s.UpdateAllocsFromClient(3, []*structs.Allocation{{ID: "a", ClientStatus: structs.AllocClientRunning}}, nil))
	u2, err := s.NodeUsage(nil, "n1")
	require.NoError(t, err)
	require.Same(t, u, u2, "no new row for a report that changes no usage")

	require.NoError(t, s.UpsertPlanResults(4, &structs.ApplyPlanResultsRequest{
		AllocsStopped: []*structs.Allocation{{ID: "a", DesiredStatus: structs.AllocDesiredStop}},
	}))
	u, err = s.NodeUsage(nil, "n1")
	require.NoError(t, err)
	require.Equal(t, &structs.NodeUsage{NodeID: "n1", Allocs: 1, CPU: 100, Memory: 64, Stored: 2, Index: 4}, u)

	require.NoError(t, s.UpdateAllocsFromClient(5, []*structs.Allocation{{ID: "b", ClientStatus: structs.AllocClientFailed}}, nil))
	u, err = s.NodeUsage(nil, "n1")
	require.NoError(t, err)
	require.Equal(t, &structs.NodeUsage{NodeID: "n1", Stored: 2, Index: 4}, u, "nothing live left")

	// n1 is not a registered node: its row goes with its last allocation.
	require.NoError(t, s.DeleteAllocs(6, []string{"a", "b"}))
	u, err = s.NodeUsage(nil, "n1")
	require.NoError(t, err)
	require.Nil(t, u)
	requireUsageConsistent(t, s)
}

// Every write of the allocations table goes through insertAllocTxn or
// deleteAllocTxn, or the usage table would drift from it.
func TestAllocWritesKeepUsage(t *testing.T) {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	direct := regexp.MustCompile(`\.(Insert|Delete|DeleteAll|DeletePrefix)\(tableAllocs`)
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || name == "state_usage.go" {
			continue
		}
		src, err := os.ReadFile(name)
		require.NoError(t, err)
		require.False(t, direct.Match(src), "%s writes allocations directly; use insertAllocTxn or deleteAllocTxn", name)
	}
}
