package fsm

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/hashicorp/go-memdb"

	"github.com/drover-sh/drover/structs"
)

// The node_usage table holds one structs.NodeUsage per node with
// allocations: what its live allocations take, how many it has, and the
// index of the servers' last change to them. It is derived: every write
// of the allocations table goes through insertAllocTxn or deleteAllocTxn,
// which adjust the node's row in the same transaction, and a restore
// rebuilds the table from the allocations.
//
// The scheduler reads it for every candidate node and the plan applier
// for every node of a plan; without it both walked all allocations of the
// node, which dominated the leader's CPU at thousands of nodes. A client's
// watch on its allocations (Node.GetClientAllocs) blocks on the node's
// row, which changes only when that node's allocations do.
//
// Every registered node has a row, so its client's watch has a row of
// its own to block on from the start (memdb's watch on a missing key is
// the closest tree node's, which every new row under it fires); a row
// outlives its last allocation while the node is registered, so the
// index of the removal stays for the node's watch; it goes with the node.
// A restore does not know about removals before the snapshot: its rows
// start from the allocations' own indexes (the restore wakes every watch
// anyway).

// NodeUsage returns the node's row, or nil when it has none.
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
// allocation), and adjusts its node's row.
func insertAllocTxn(txn *memdb.Txn, prev, a *structs.Allocation) error {
	if err := txn.Insert(tableAllocs, a); err != nil {
		return fmt.Errorf("writing allocation %q: %w", a.ID, err)
	}
	if err := allocServicesTxn(txn, a); err != nil {
		return err
	}
	if prev == nil {
		return addToRowTxn(txn, a)
	}
	if prev.NodeID != a.NodeID {
		// Allocations never move between nodes; if one did, both rows
		// stay right.
		if err := removeFromRowTxn(txn, prev, a.AllocModifyIndex); err != nil {
			return err
		}
		return addToRowTxn(txn, a)
	}
	usage := live(prev) != live(a) || (live(a) && !structs.SameUsage(prev, a))
	moved := prev.AllocModifyIndex != a.AllocModifyIndex
	if !usage && !moved {
		// Most writes (client status reports) end here.
		return nil
	}
	return updateNodeRowTxn(txn, a.NodeID, true, func(u *structs.NodeUsage) {
		if live(prev) {
			u.Remove(prev)
		}
		if live(a) {
			u.Add(a)
		}
		if moved {
			u.Index = max(u.Index, a.AllocModifyIndex)
		}
	})
}

func addToRowTxn(txn *memdb.Txn, a *structs.Allocation) error {
	return updateNodeRowTxn(txn, a.NodeID, true, func(u *structs.NodeUsage) {
		u.Stored++
		if live(a) {
			u.Add(a)
		}
		u.Index = max(u.Index, a.AllocModifyIndex)
	})
}

// deleteAllocTxn removes a at index and takes it out of its node's row.
func deleteAllocTxn(txn *memdb.Txn, index uint64, a *structs.Allocation) error {
	if err := txn.Delete(tableAllocs, a); err != nil {
		return fmt.Errorf("deleting allocation %q: %w", a.ID, err)
	}
	if err := allocDeletedServicesTxn(txn, index, a.ID); err != nil {
		return err
	}
	return removeFromRowTxn(txn, a, index)
}

func removeFromRowTxn(txn *memdb.Txn, a *structs.Allocation, index uint64) error {
	return updateNodeRowTxn(txn, a.NodeID, false, func(u *structs.NodeUsage) {
		u.Stored--
		if live(a) {
			u.Remove(a)
		}
		u.Index = max(u.Index, index)
	})
}

func live(a *structs.Allocation) bool {
	return a != nil && !a.TerminalStatus()
}

// updateNodeRowTxn changes a copy of nodeID's row with fn (a new row if
// create allows) and writes it back. A row left with no allocations is
// kept while the node is registered and deleted otherwise.
func updateNodeRowTxn(txn *memdb.Txn, nodeID string, create bool, fn func(*structs.NodeUsage)) error {
	if nodeID == "" {
		return nil
	}
	raw, err := txn.First(tableNodeUsage, "id", nodeID)
	if err != nil {
		return fmt.Errorf("reading usage of node %q: %w", nodeID, err)
	}
	var u *structs.NodeUsage
	switch {
	case raw != nil:
		u = raw.(*structs.NodeUsage).Copy()
	case create:
		u = &structs.NodeUsage{NodeID: nodeID}
	default:
		return nil
	}
	fn(u)
	if u.Stored <= 0 {
		node, err := txn.First(tableNodes, "id", nodeID)
		if err != nil {
			return fmt.Errorf("reading node %q: %w", nodeID, err)
		}
		if node == nil {
			return deleteNodeRowTxn(txn, raw)
		}
	}
	if err := txn.Insert(tableNodeUsage, u); err != nil {
		return fmt.Errorf("writing usage of node %q: %w", nodeID, err)
	}
	return nil
}

// deleteNodeRowTxn deletes a row read in txn (nil: nothing to delete).
func deleteNodeRowTxn(txn *memdb.Txn, raw any) error {
	if raw == nil {
		return nil
	}
	if err := txn.Delete(tableNodeUsage, raw); err != nil {
		return fmt.Errorf("deleting usage of node %q: %w", raw.(*structs.NodeUsage).NodeID, err)
	}
	return nil
}

// nodeRegisteredTxn gives a registered node its (empty) row.
func nodeRegisteredTxn(txn *memdb.Txn, nodeID string) error {
	raw, err := txn.First(tableNodeUsage, "id", nodeID)
	if err != nil {
		return fmt.Errorf("reading usage of node %q: %w", nodeID, err)
	}
	if raw != nil {
		return nil
	}
	if err := txn.Insert(tableNodeUsage, &structs.NodeUsage{NodeID: nodeID}); err != nil {
		return fmt.Errorf("writing usage of node %q: %w", nodeID, err)
	}
	return nil
}

// nodeDeletedTxn drops the row of a node removed from the store, unless
// allocations are still recorded on it.
func nodeDeletedTxn(txn *memdb.Txn, nodeID string) error {
	raw, err := txn.First(tableNodeUsage, "id", nodeID)
	if err != nil {
		return fmt.Errorf("reading usage of node %q: %w", nodeID, err)
	}
	if raw != nil && raw.(*structs.NodeUsage).Stored <= 0 {
		return deleteNodeRowTxn(txn, raw)
	}
	return nil
}

// computeNodeUsage derives every row from the nodes and allocations the
// transaction sees, sorted by node ID: what a restore loads, and what
// tests compare the table with. Index is the newest AllocModifyIndex: the
// allocations do not record their removals.
func computeNodeUsage(txn *memdb.Txn) ([]*structs.NodeUsage, error) {
	byNode := make(map[string]*structs.NodeUsage)
	nodes, err := txn.Get(tableNodes, "id")
	if err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	for raw := nodes.Next(); raw != nil; raw = nodes.Next() {
		id := raw.(*structs.Node).ID
		byNode[id] = &structs.NodeUsage{NodeID: id}
	}
	it, err := txn.Get(tableAllocs, "id")
	if err != nil {
		return nil, fmt.Errorf("listing allocations: %w", err)
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		a := raw.(*structs.Allocation)
		if a.NodeID == "" {
			continue
		}
		u := byNode[a.NodeID]
		if u == nil {
			u = &structs.NodeUsage{NodeID: a.NodeID}
			byNode[a.NodeID] = u
		}
		u.Stored++
		if live(a) {
			u.Add(a)
		}
		u.Index = max(u.Index, a.AllocModifyIndex)
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
