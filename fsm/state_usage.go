package fsm

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/hashicorp/go-memdb"

	"github.com/drover-sh/drover/structs"
)

// The node_usage table holds, per node with live allocations, what they
// take (structs.NodeUsage). It is derived: every write of the allocations
// table goes through insertAllocTxn or deleteAllocTxn, which adjust the
// node's row in the same transaction, and a restore rebuilds the table
// from the allocations. The scheduler reads it for every candidate node
// and the plan applier for every node of a plan; without it both walked
// all allocations of the node, which dominated the leader's CPU at
// thousands of nodes.

// NodeUsage returns what the live allocations on a node take, or nil when
// it runs none.
func (r *stateReader) NodeUsage(ws memdb.WatchSet, nodeID string) (*structs.NodeUsage, error) {
	ch, raw, err := r.readTxn().FirstWatch(tableNodeUsage, "id", nodeID)
	if err != nil {
		return nil, fmt.Errorf("reading usage of node %q: %w", nodeID, err)
	}
	watch(ws, ch)
	if raw == nil {
		return nil, nil
	}
	return raw.(*structs.NodeUsage), nil
}

// insertAllocTxn writes a, the new version of prev (nil for a new
// allocation), and adjusts the usage of its node.
func insertAllocTxn(txn *memdb.Txn, prev, a *structs.Allocation) error {
	if err := txn.Insert(tableAllocs, a); err != nil {
		return fmt.Errorf("writing allocation %q: %w", a.ID, err)
	}
	return adjustUsageTxn(txn, prev, a)
}

// deleteAllocTxn removes a and what it took from its node's usage.
func deleteAllocTxn(txn *memdb.Txn, a *structs.Allocation) error {
	if err := txn.Delete(tableAllocs, a); err != nil {
		return fmt.Errorf("deleting allocation %q: %w", a.ID, err)
	}
	return adjustUsageTxn(txn, a, nil)
}

func live(a *structs.Allocation) bool {
	return a != nil && a.NodeID != "" && !a.TerminalStatus()
}

// adjustUsageTxn moves node usage from prev to next (either may be nil or
// terminal). Most writes (client status reports) change neither liveness
// nor resources and write nothing here.
func adjustUsageTxn(txn *memdb.Txn, prev, next *structs.Allocation) error {
	was, is := live(prev), live(next)
	switch {
	case !was && !is:
		return nil
	case was && is && prev.NodeID == next.NodeID:
		if structs.SameUsage(prev, next) {
			return nil
		}
		return updateUsageTxn(txn, prev.NodeID, prev, next)
	}
	if was {
		if err := updateUsageTxn(txn, prev.NodeID, prev, nil); err != nil {
			return err
		}
	}
	if is {
		return updateUsageTxn(txn, next.NodeID, nil, next)
	}
	return nil
}

// updateUsageTxn takes remove out of and puts add into the usage row of
// nodeID; a row left with no allocations is deleted, so nodes that are
// gone leave nothing behind.
func updateUsageTxn(txn *memdb.Txn, nodeID string, remove, add *structs.Allocation) error {
	raw, err := txn.First(tableNodeUsage, "id", nodeID)
	if err != nil {
		return fmt.Errorf("reading usage of node %q: %w", nodeID, err)
	}
	u := &structs.NodeUsage{NodeID: nodeID}
	if raw != nil {
		u = raw.(*structs.NodeUsage).Copy()
	}
	if remove != nil {
		u.Remove(remove)
	}
	if add != nil {
		u.Add(add)
	}
	if u.Allocs > 0 {
		if err := txn.Insert(tableNodeUsage, u); err != nil {
			return fmt.Errorf("writing usage of node %q: %w", nodeID, err)
		}
		return nil
	}
	if raw != nil {
		if err := txn.Delete(tableNodeUsage, raw); err != nil {
			return fmt.Errorf("deleting usage of node %q: %w", nodeID, err)
		}
	}
	return nil
}

// computeNodeUsage derives every node's usage from the allocations the
// transaction sees, sorted by node ID: what a restore loads, and what
// tests compare the table with.
func computeNodeUsage(txn *memdb.Txn) ([]*structs.NodeUsage, error) {
	it, err := txn.Get(tableAllocs, "id")
	if err != nil {
		return nil, fmt.Errorf("listing allocations: %w", err)
	}
	byNode := make(map[string]*structs.NodeUsage)
	for raw := it.Next(); raw != nil; raw = it.Next() {
		a := raw.(*structs.Allocation)
		if !live(a) {
			continue
		}
		u := byNode[a.NodeID]
		if u == nil {
			u = &structs.NodeUsage{NodeID: a.NodeID}
			byNode[a.NodeID] = u
		}
		u.Add(a)
	}
	out := make([]*structs.NodeUsage, 0, len(byNode))
	for _, u := range byNode {
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b *structs.NodeUsage) int { return cmp.Compare(a.NodeID, b.NodeID) })
	return out, nil
}

// rebuildNodeUsageTxn fills the (empty) usage table from the allocations.
func rebuildNodeUsageTxn(txn *memdb.Txn) error {
	usage, err := computeNodeUsage(txn)
	if err != nil {
		return err
	}
	for _, u := range usage {
		if err := txn.Insert(tableNodeUsage, u); err != nil {
			return fmt.Errorf("writing usage of node %q: %w", u.NodeID, err)
		}
	}
	return nil
}
