package scheduler

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
	"github.com/drover-sh/drover/structs/mock"
)

// sharedPlanner is a harness planner of one worker among several.
type sharedPlanner struct {
	*Harness
	share, shares int
}

func (p *sharedPlanner) NodePartition() (int, int) { return p.share, p.shares }

func (p *sharedPlanner) process(t *testing.T, eval *structs.Evaluation) {
	t.Helper()
	f := Builtin(p.Options)[eval.Type]
	require.NoError(t, f(p.Logger, p.State, p, func() time.Time { return testNow }).Process(eval))
}

func placedNodes(h *Harness) []string {
	var out []string
	for _, plan := range h.Plans {
		for node, allocs := range plan.NodeAllocation {
			for range allocs {
				out = append(out, node)
			}
		}
	}
	return out
}

// A pass looks at the preferred nodes first and cycles through them
// alone while they suffice; a pass that needs more goes on with the rest,
// each node once, and no node is preferred after that.
func TestStaticIterator_PreferredThenAll(t *testing.T) {
	nodes := make([]*structs.Node, 5)
	for i := range nodes {
		nodes[i] = &structs.Node{ID: string(rune('a' + i))}
	}
	it := &staticIterator{ctx: &evalContext{}}
	it.setNodes(nodes, 2)
	ids := func(k int) string {
		it.Reset()
		var s string
		for range k {
			n := it.Next()
			if n == nil {
				break
			}
			s += n.ID
		}
		return s
	}
	require.Equal(t, "a", ids(1))
	require.Equal(t, "ba", ids(2), "passes cycle through the preferred nodes")
	require.Equal(t, "bacde", ids(10), "a pass that needs more sees every node once")
	require.Equal(t, "abcde", ids(10), "then nothing is preferred")
	require.Equal(t, "ab", ids(2))

	it.setNodes(nodes, 0)
	require.Equal(t, "abcde", ids(10), "no preference")
}

// Concurrent workers place on their own share of the nodes while it has
// room, and on the others once it has none.
func TestService_WorkersPreferTheirShareOfNodes(t *testing.T) {
	h := newTestHarness(t)
	nodes := addNodes(h, 2*minPartitionNodes)
	share := map[string]int{}
	for _, n := range nodes {
		share[n.ID] = nodeShare(n.ID, 2)
	}
	for w := range 2 {
		h.Plans = nil
		placeJob(t, h, &sharedPlanner{Harness: h, share: w, shares: 2}, 40)
		placed := placedNodes(h)
		require.Len(t, placed, 40)
		for _, id := range placed {
			require.Equal(t, w, share[id], "worker %d placed on node %s of share %d", w, id, share[id])
		}
	}

	// Share 0 full: its worker places on the other nodes, nothing fails.
	h = newTestHarness(t)
	var free int
	addNodes(h, 2*minPartitionNodes, func(n *structs.Node) {
		if nodeShare(n.ID, 2) == 0 {
			n.Resources.CPU = 100 // less than a task asks
		} else {
			free++
		}
	})
	placeJob(t, h, &sharedPlanner{Harness: h, share: 0, shares: 2}, 20)
	placed := placedNodes(h)
	require.Len(t, placed, 20)
	require.Positive(t, free)
	for _, id := range placed {
		require.Equal(t, 1, nodeShare(id, 2))
	}
}

// Small clusters and single workers get no preference.
func TestPreferPartition_OnlyForLargeClustersAndSeveralWorkers(t *testing.T) {
	nodes := make([]*structs.Node, 2*minPartitionNodes)
	for i := range nodes {
		nodes[i] = mock.Node()
	}
	h := NewHarness()
	require.Zero(t, preferPartition(h, nodes), "a planner without shares")
	require.Zero(t, preferPartition(&sharedPlanner{Harness: h, share: 0, shares: 1}, nodes))
	require.Zero(t, preferPartition(&sharedPlanner{Harness: h, share: 0, shares: 3}, nodes), "shares below the minimum size")
	require.Zero(t, preferPartition(&sharedPlanner{Harness: h, share: 2, shares: 2}, nodes), "a share out of range")

	before := map[string]bool{}
	for _, n := range nodes {
		before[n.ID] = true
	}
	mine := preferPartition(&sharedPlanner{Harness: h, share: 1, shares: 2}, nodes)
	require.Positive(t, mine)
	require.Less(t, mine, len(nodes))
	for i, n := range nodes {
		require.Equal(t, i < mine, nodeShare(n.ID, 2) == 1, "node %d", i)
		delete(before, n.ID)
	}
	require.Empty(t, before, "the same nodes, reordered")
}

// placeJob registers a job of count allocations and has p schedule it.
func placeJob(t *testing.T, h *Harness, p *sharedPlanner, count int) {
	t.Helper()
	job := mock.Job()
	job.Groups[0].Count = count
	eval := mock.EvalFor(h.State.UpsertJob(job))
	h.State.UpsertEvals(eval)
	p.process(t, eval)
}
