package fsm

import (
	"fmt"

	"github.com/hashicorp/go-memdb"

	"github.com/drover-sh/drover/structs"
)

// NodeByID returns the node, or nil when it does not exist.
func (r *stateReader) NodeByID(ws memdb.WatchSet, id string) (*structs.Node, error) {
	ch, raw, err := r.readTxn().FirstWatch(tableNodes, "id", id)
	if err != nil {
		return nil, fmt.Errorf("reading node %q: %w", id, err)
	}
	watch(ws, ch)
	if raw == nil {
		return nil, nil
	}
	return raw.(*structs.Node), nil
}

// NodesByPrefix returns the nodes whose ID starts with prefix, sorted by ID.
func (r *stateReader) NodesByPrefix(ws memdb.WatchSet, prefix string) ([]*structs.Node, error) {
	it, err := r.readTxn().Get(tableNodes, "id_prefix", prefix)
	if err != nil {
		return nil, fmt.Errorf("listing nodes by prefix %q: %w", prefix, err)
	}
	watch(ws, it.WatchCh())
	var out []*structs.Node
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*structs.Node))
	}
	return out, nil
}

// UpsertNode registers or updates a node, keeping the CreateIndex of an
// existing one. The store keeps a copy.
func (s *StateStore) UpsertNode(index uint64, node *structs.Node) error {
	if node == nil {
		return structs.NewError(structs.ErrInvalid, "upserting a nil node")
	}
	return s.upsertNode(index, node.Copy())
}

// upsertNode takes ownership of node.
func (s *StateStore) upsertNode(index uint64, node *structs.Node) error {
	txn := s.writeTxn()
	defer txn.Abort()
	raw, err := txn.First(tableNodes, "id", node.ID)
	if err != nil {
		return fmt.Errorf("reading node %q: %w", node.ID, err)
	}
	node.CreateIndex = index
	if raw != nil {
		node.CreateIndex = raw.(*structs.Node).CreateIndex
	}
	node.ModifyIndex = index
	if err := txn.Insert(tableNodes, node); err != nil {
		return fmt.Errorf("writing node %q: %w", node.ID, err)
	}
	if err := setIndex(txn.Txn, index, tableNodes); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

// DeleteNode removes nodes. A missing ID is ErrNotFound and nothing is
// deleted: deregistering a node that is not there is a caller's mistake
// worth surfacing.
func (s *StateStore) DeleteNode(index uint64, ids []string) error {
	txn := s.writeTxn()
	defer txn.Abort()
	for _, id := range ids {
		raw, err := txn.First(tableNodes, "id", id)
		if err != nil {
			return fmt.Errorf("reading node %q: %w", id, err)
		}
		if raw == nil {
			return notFound("node %q not found", id)
		}
		if err := txn.Delete(tableNodes, raw); err != nil {
			return fmt.Errorf("deleting node %q: %w", id, err)
		}
	}
	if err := setIndex(txn.Txn, index, tableNodes); err != nil {
		return err
	}
	txn.Commit()
	return nil
}
