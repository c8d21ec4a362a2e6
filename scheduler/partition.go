package scheduler

import (
	"hash/fnv"

	"github.com/drover-sh/drover/structs"
)

// NodePartitioner is an optional part of a Planner whose schedulers run
// concurrently (the leader's workers). Each worker prefers its own share
// of the nodes: evaluations planned at the same time from the same
// snapshot otherwise pick the same best nodes (binpack favours the
// fullest), and the plan applier refuses the later plan there, which
// costs a refresh, a second pass over the job and a second plan. In the
// e2e scheduler bench (2 workers, 5,000 nodes, 100 jobs of 1,000) about
// half of the plans were partly refused before.
type NodePartitioner interface {
	// NodePartition returns this scheduler's share (index) of count
	// shares; count <= 1 means no preference.
	NodePartition() (index, count int)
}

// minPartitionNodes is the smallest share worth preferring: with fewer
// nodes each placement looks at (about log2 of the cluster), a share
// would see too few candidates for a good pick.
const minPartitionNodes = 64

// preferPartition moves the nodes of planner's share to the front of
// nodes, keeping their shuffled order, and returns how many there are (0:
// no preference). The others stay reachable (see staticIterator): a full
// share spills over, and limits that look at every node (affinities,
// spreads) see every node.
func preferPartition(planner Planner, nodes []*structs.Node) int {
	p, ok := planner.(NodePartitioner)
	if !ok {
		return 0
	}
	index, count := p.NodePartition()
	if count <= 1 || index < 0 || index >= count || len(nodes) < count*minPartitionNodes {
		return 0
	}
	rest := make([]*structs.Node, 0, len(nodes)-len(nodes)/count)
	mine := 0
	for _, n := range nodes {
		if nodeShare(n.ID, count) == index {
			nodes[mine] = n
			mine++
		} else {
			rest = append(rest, n)
		}
	}
	copy(nodes[mine:], rest)
	return mine
}

// nodeShare is the share a node belongs to: a hash of its ID, so shares
// are stable across evaluations and even in size.
func nodeShare(id string, count int) int {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % uint32(count))
}
