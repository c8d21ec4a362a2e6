package fsm

import (
	"fmt"
	"slices"

	"github.com/hashicorp/go-memdb"

	"github.com/drover-sh/drover/structs"
)

// The services table is the service registry: one
// structs.ServiceRegistration per healthy instance, written by the
// clients that run the checks. The registry must never point at an
// instance that is gone, so it is also cut back by the store itself: an
// allocation that becomes terminal or is removed, and a node that goes
// down or is removed, take their registrations with them in the same
// transaction (allocServicesTxn and nodeServicesTxn, called from the
// allocation and node write paths). An upsert for an allocation that is
// not live on that node (a report that raced with the stop) is skipped
// for the same reason.

const tableServices = "services"

func servicesTableSchema() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: tableServices,
		Indexes: map[string]*memdb.IndexSchema{
			"id":      idIndex(),
			"service": {Name: "service", Indexer: nsField("ServiceName")},
			"node":    {Name: "node", Indexer: &memdb.StringFieldIndex{Field: "NodeID"}},
			"alloc":   {Name: "alloc", Indexer: &memdb.StringFieldIndex{Field: "AllocID"}},
		},
	}
}

func (f *FSM) applyServiceUpsert(index uint64, body []byte) interface{} {
	var req structs.ServiceRegistrationUpsertRequest
	if err := decode("service registration upsert", index, body, &req); err != nil {
		return err
	}
	return f.State().upsertServices(index, req.Services)
}

func (f *FSM) applyServiceDelete(index uint64, body []byte) interface{} {
	var req structs.ServiceRegistrationDeleteRequest
	if err := decode("service registration delete", index, body, &req); err != nil {
		return err
	}
	return f.State().DeleteServices(index, req.NodeID, req.IDs)
}

// UpsertServices registers or refreshes instances; the store keeps
// copies. See upsertServices.
func (s *StateStore) UpsertServices(index uint64, regs []*structs.ServiceRegistration) error {
	copies := make([]*structs.ServiceRegistration, len(regs))
	for i, r := range regs {
		copies[i] = r.Copy()
	}
	return s.upsertServices(index, copies)
}

// upsertServices takes ownership of regs. An instance whose allocation is
// missing, terminal, or on another node, or whose node is down, is
// skipped: the registry holds live instances only, and a client's report
// may be committed after the stop that makes it stale. An instance that
// did not change is not written again, so a client re-syncing everything
// it runs does not wake every watcher of the registry.
func (s *StateStore) upsertServices(index uint64, regs []*structs.ServiceRegistration) error {
	txn := s.writeTxn()
	defer txn.Abort()
	changed := false
	for _, r := range regs {
		if r == nil || r.ID == "" {
			return structs.NewError(structs.ErrInvalid, "upserting a service registration without an id")
		}
		ok, err := liveOnNodeTxn(txn.Txn, r.AllocID, r.NodeID)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		raw, err := txn.First(tableServices, "id", r.ID)
		if err != nil {
			return fmt.Errorf("reading service registration %q: %w", r.ID, err)
		}
		r.CreateIndex = index
		if raw != nil {
			existing := raw.(*structs.ServiceRegistration)
			if sameRegistration(existing, r) {
				continue
			}
			r.CreateIndex = existing.CreateIndex
		}
		r.ModifyIndex = index
		if err := txn.Insert(tableServices, r); err != nil {
			return fmt.Errorf("writing service registration %q: %w", r.ID, err)
		}
		changed = true
	}
	if changed {
		if err := setIndex(txn.Txn, index, tableServices); err != nil {
			return err
		}
	}
	txn.Commit()
	return nil
}

// liveOnNodeTxn reports whether the allocation exists, is not terminal,
// runs on nodeID, and that node is not down.
func liveOnNodeTxn(txn *memdb.Txn, allocID, nodeID string) (bool, error) {
	raw, err := txn.First(tableAllocs, "id", allocID)
	if err != nil {
		return false, fmt.Errorf("reading allocation %q: %w", allocID, err)
	}
	if raw == nil {
		return false, nil
	}
	a := raw.(*structs.Allocation)
	if a.TerminalStatus() || a.NodeID != nodeID {
		return false, nil
	}
	raw, err = txn.First(tableNodes, "id", nodeID)
	if err != nil {
		return false, fmt.Errorf("reading node %q: %w", nodeID, err)
	}
	return raw != nil && !raw.(*structs.Node).TerminalStatus(), nil
}

// sameRegistration compares what a client reports, ignoring the indexes.
func sameRegistration(a, b *structs.ServiceRegistration) bool {
	return a.ID == b.ID && a.ServiceName == b.ServiceName && a.Namespace == b.Namespace &&
		a.NodeID == b.NodeID && a.Datacenter == b.Datacenter && a.JobID == b.JobID &&
		a.AllocID == b.AllocID && a.Address == b.Address && a.Port == b.Port &&
		a.HostAddress == b.HostAddress && a.HostPort == b.HostPort && slices.Equal(a.Tags, b.Tags)
}

// DeleteServices removes instances by ID; with nodeID set only those
// registered by that node (a client cannot remove another's). IDs already
// gone are skipped: a client's delete may race with the cascade of its
// allocation stopping.
func (s *StateStore) DeleteServices(index uint64, nodeID string, ids []string) error {
	txn := s.writeTxn()
	defer txn.Abort()
	deleted := false
	for _, id := range ids {
		raw, err := txn.First(tableServices, "id", id)
		if err != nil {
			return fmt.Errorf("reading service registration %q: %w", id, err)
		}
		if raw == nil || (nodeID != "" && raw.(*structs.ServiceRegistration).NodeID != nodeID) {
			continue
		}
		if err := txn.Delete(tableServices, raw); err != nil {
			return fmt.Errorf("deleting service registration %q: %w", id, err)
		}
		deleted = true
	}
	if deleted {
		if err := setIndex(txn.Txn, index, tableServices); err != nil {
			return err
		}
	}
	txn.Commit()
	return nil
}

// allocServicesTxn removes the registrations of a, just written, once it
// is terminal. Every write of an allocation sets its ModifyIndex to the
// write's index, which is what the services index moves to. Live
// allocations, most writes, cost nothing.
func allocServicesTxn(txn *memdb.Txn, a *structs.Allocation) error {
	if live(a) {
		return nil
	}
	return deleteServicesByTxn(txn, a.ModifyIndex, "alloc", a.ID)
}

// allocDeletedServicesTxn removes the registrations of an allocation
// removed from the store at index.
func allocDeletedServicesTxn(txn *memdb.Txn, index uint64, allocID string) error {
	return deleteServicesByTxn(txn, index, "alloc", allocID)
}

// nodeServicesTxn removes the registrations of a node that is down or
// gone (n == nil): nothing it reported can be trusted to be reachable.
func nodeServicesTxn(txn *memdb.Txn, index uint64, nodeID string, n *structs.Node) error {
	if n != nil && !n.TerminalStatus() {
		return nil
	}
	return deleteServicesByTxn(txn, index, "node", nodeID)
}

func deleteServicesByTxn(txn *memdb.Txn, index uint64, by, value string) error {
	n, err := txn.DeleteAll(tableServices, by, value)
	if err != nil {
		return fmt.Errorf("deleting service registrations of %s %q: %w", by, value, err)
	}
	if n == 0 {
		return nil
	}
	return setIndex(txn, index, tableServices)
}

// ServiceByID returns one instance, or nil.
func (r *stateReader) ServiceByID(ws memdb.WatchSet, id string) (*structs.ServiceRegistration, error) {
	ch, raw, err := r.readTxn().FirstWatch(tableServices, "id", id)
	if err != nil {
		return nil, fmt.Errorf("reading service registration %q: %w", id, err)
	}
	watch(ws, ch)
	if raw == nil {
		return nil, nil
	}
	return raw.(*structs.ServiceRegistration), nil
}

// ServicesByName returns the instances of one service, sorted by ID.
func (r *stateReader) ServicesByName(ws memdb.WatchSet, namespace, name string) ([]*structs.ServiceRegistration, error) {
	return r.servicesBy(ws, "service", namespace, name)
}

// ServicesByNode returns the instances a node registered, sorted by ID.
func (r *stateReader) ServicesByNode(ws memdb.WatchSet, nodeID string) ([]*structs.ServiceRegistration, error) {
	return r.servicesBy(ws, "node", nodeID)
}

// ServicesByAlloc returns the instances of an allocation, sorted by ID.
func (r *stateReader) ServicesByAlloc(ws memdb.WatchSet, allocID string) ([]*structs.ServiceRegistration, error) {
	return r.servicesBy(ws, "alloc", allocID)
}

// Services returns every instance of every namespace, sorted by ID.
func (r *stateReader) Services(ws memdb.WatchSet) ([]*structs.ServiceRegistration, error) {
	return r.servicesBy(ws, "id")
}

func (r *stateReader) servicesBy(ws memdb.WatchSet, index string, args ...any) ([]*structs.ServiceRegistration, error) {
	it, err := r.readTxn().Get(tableServices, index, args...)
	if err != nil {
		return nil, fmt.Errorf("listing service registrations by %s %v: %w", index, args, err)
	}
	watch(ws, it.WatchCh())
	var out []*structs.ServiceRegistration
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*structs.ServiceRegistration))
	}
	return out, nil
}

// ServiceStubs lists the services of namespace ("*" for all) with their
// instance counts and the union of their tags, sorted by namespace and
// name.
func (r *stateReader) ServiceStubs(ws memdb.WatchSet, namespace string) ([]*structs.ServiceListStub, error) {
	// The "service" index is namespace then name: an empty name prefix
	// scans exactly one namespace, an empty namespace prefix all of them.
	args := []any{namespace, ""}
	if namespace == allNamespaces {
		args = []any{""}
	}
	it, err := r.readTxn().Get(tableServices, "service_prefix", args...)
	if err != nil {
		return nil, fmt.Errorf("listing services of namespace %q: %w", namespace, err)
	}
	watch(ws, it.WatchCh())
	var out []*structs.ServiceListStub
	var last *structs.ServiceListStub
	for raw := it.Next(); raw != nil; raw = it.Next() {
		reg := raw.(*structs.ServiceRegistration)
		if last == nil || last.Namespace != reg.Namespace || last.ServiceName != reg.ServiceName {
			last = &structs.ServiceListStub{ServiceName: reg.ServiceName, Namespace: reg.Namespace}
			out = append(out, last)
		}
		last.Instances++
		for _, t := range reg.Tags {
			if !slices.Contains(last.Tags, t) {
				last.Tags = append(last.Tags, t)
			}
		}
	}
	for _, s := range out {
		slices.Sort(s.Tags)
	}
	return out, nil
}
