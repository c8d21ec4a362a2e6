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
		// A client registering again (after a restart) reports its
		// fingerprint; what operators decided about the node stays.
		existing := raw.(*structs.Node)
		node.CreateIndex = existing.CreateIndex
		node.Drain = existing.Drain
		node.SchedulingEligibility = existing.SchedulingEligibility
	}
	if node.SchedulingEligibility == "" {
		node.SchedulingEligibility = structs.NodeEligible
	}
	node.ModifyIndex = index
	if err := txn.Insert(tableNodes, node); err != nil {
		return fmt.Errorf("writing node %q: %w", node.ID, err)
	}
	if err := nodeRegisteredTxn(txn.Txn, node.ID); err != nil {
		return err
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
		if err := nodeDeletedTxn(txn.Txn, id); err != nil {
			return err
		}
		if err := nodeServicesTxn(txn.Txn, index, id, nil); err != nil {
			return err
		}
	}
	if err := setIndex(txn.Txn, index, tableNodes); err != nil {
		return err
	}
	txn.Commit()
	return nil
}

// updateNodeFn changes a copy of one node inside a node update.
type updateNodeFn func(n *structs.Node) error

// updateNodes applies fn to copies of the named nodes and writes them with
// evals, all in one transaction: a node that changes status and the
// evaluations that react to it appear together or not at all. A missing
// node is ErrNotFound and nothing is written.
func (s *StateStore) updateNodes(index uint64, ids []string, evals []*structs.Evaluation, fn updateNodeFn) error {
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
		n := raw.(*structs.Node).Copy()
		if err := fn(n); err != nil {
			return err
		}
		n.ModifyIndex = index
		if err := txn.Insert(tableNodes, n); err != nil {
			return fmt.Errorf("writing node %q: %w", id, err)
		}
		if err := nodeServicesTxn(txn.Txn, index, id, n); err != nil {
			return err
		}
	}
	if err := setIndex(txn.Txn, index, tableNodes); err != nil {
		return err
	}
	if len(evals) > 0 {
		touched, err := upsertEvalsTxn(txn.Txn, index, evals)
		if err != nil {
			return err
		}
		if err := setJobStatuses(txn.Txn, index, touched); err != nil {
			return err
		}
	}
	txn.Commit()
	return nil
}

// UpdateNodeStatus moves nodes to status at updatedAt and writes evals.
func (s *StateStore) UpdateNodeStatus(index uint64, ids []string, status string, updatedAt int64, evals []*structs.Evaluation) error {
	return s.updateNodes(index, ids, copyEvals(evals), func(n *structs.Node) error {
		n.Status = status
		n.StatusUpdatedAt = updatedAt
		return nil
	})
}

// UpdateNodeDrain starts a drain (strategy set: the node becomes
// ineligible) or ends it (nil; markEligible makes it eligible again).
func (s *StateStore) UpdateNodeDrain(index uint64, id string, strategy *structs.DrainStrategy, markEligible bool, updatedAt int64, evals []*structs.Evaluation) error {
	return s.updateNodes(index, []string{id}, copyEvals(evals), func(n *structs.Node) error {
		if strategy != nil {
			d := *strategy
			n.Drain = &d
			n.SchedulingEligibility = structs.NodeIneligible
		} else {
			n.Drain = nil
			if markEligible {
				n.SchedulingEligibility = structs.NodeEligible
			}
		}
		n.StatusUpdatedAt = updatedAt
		return nil
	})
}

// UpdateNodeEligibility sets a node's scheduling eligibility. A draining
// node cannot be made eligible: the drain would keep moving allocations
// off it while the schedulers place new ones there.
func (s *StateStore) UpdateNodeEligibility(index uint64, id, eligibility string, updatedAt int64, evals []*structs.Evaluation) error {
	switch eligibility {
	case structs.NodeEligible, structs.NodeIneligible:
	default:
		return structs.NewError(structs.ErrInvalid, "eligibility must be %q or %q, got %q", structs.NodeEligible, structs.NodeIneligible, eligibility)
	}
	return s.updateNodes(index, []string{id}, copyEvals(evals), func(n *structs.Node) error {
		if n.Drain != nil && eligibility == structs.NodeEligible {
			return conflict("node %q is draining; cancel the drain to make it eligible", id)
		}
		n.SchedulingEligibility = eligibility
		n.StatusUpdatedAt = updatedAt
		return nil
	})
}

func copyEvals(evals []*structs.Evaluation) []*structs.Evaluation {
	if evals == nil {
		return nil
	}
	out := make([]*structs.Evaluation, len(evals))
	for i, e := range evals {
		out[i] = e.Copy()
	}
	return out
}
