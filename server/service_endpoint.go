package server

import (
	"fmt"

	"github.com/hashicorp/go-memdb"

	"github.com/drover-sh/drover/fsm"
	"github.com/drover-sh/drover/server/pool"
	"github.com/drover-sh/drover/structs"
)

// servicesTable is the store table (and index row) of the registry.
const servicesTable = "services"

// Service is the RPC endpoint of the service registry: clients upsert and
// delete the instances whose checks they run; users and the clients' DNS
// servers read it.
type Service struct{ srv *Server }

// Upsert registers or refreshes instances reported by one client. Each
// must belong to an allocation placed on the node it names; the servers
// take the namespace and job from that allocation rather than from the
// report. An allocation that has just stopped is not an error: the store
// skips its instance (the client's report raced with the stop).
func (s *Service) Upsert(args *structs.ServiceRegistrationUpsertRequest, reply *structs.GenericResponse) error {
	if done, err := s.srv.forwardWrite("Service.Upsert", args, reply); done {
		return pool.EncodeError(err)
	}
	if len(args.Services) == 0 {
		return pool.EncodeError(structs.NewError(structs.ErrInvalid, "services: no registrations to upsert"))
	}
	var v structs.ValidationError
	for i, reg := range args.Services {
		reg.Validate(&v, fmt.Sprintf("services[%d]", i))
	}
	if err := v.ErrOrNil(); err != nil {
		return pool.EncodeError(err)
	}
	snap := s.srv.fsm.State().Snapshot()
	req := &structs.ServiceRegistrationUpsertRequest{WriteRequest: args.WriteRequest}
	for i, reg := range args.Services {
		alloc, err := snap.AllocByID(nil, reg.AllocID)
		if err != nil {
			return pool.EncodeError(err)
		}
		if alloc == nil || alloc.NodeID != reg.NodeID {
			return pool.EncodeError(structs.NewError(structs.ErrInvalid,
				"services[%d].alloc_id: allocation %q is not placed on node %q", i, reg.AllocID, reg.NodeID))
		}
		c := reg.Copy()
		c.Namespace = alloc.Namespace
		c.JobID = alloc.JobID
		req.Services = append(req.Services, c)
	}
	_, index, err := s.srv.raftApply(structs.ServiceRegistrationUpsertRequestType, req)
	if err != nil {
		return pool.EncodeError(err)
	}
	reply.Index = index
	return nil
}

// Delete removes instances by ID. A client names its node, and only that
// node's instances are removed; IDs already gone are not an error.
func (s *Service) Delete(args *structs.ServiceRegistrationDeleteRequest, reply *structs.GenericResponse) error {
	if done, err := s.srv.forwardWrite("Service.Delete", args, reply); done {
		return pool.EncodeError(err)
	}
	if len(args.IDs) == 0 {
		return pool.EncodeError(structs.NewError(structs.ErrInvalid, "ids: no registrations to delete"))
	}
	if args.NodeID == "" {
		return pool.EncodeError(structs.NewError(structs.ErrInvalid, "node_id: required: a client deletes its own registrations"))
	}
	_, index, err := s.srv.raftApply(structs.ServiceRegistrationDeleteRequestType, args)
	if err != nil {
		return pool.EncodeError(err)
	}
	reply.Index = index
	return nil
}

// List lists the services of a namespace ("*" for all) with their
// instance counts.
func (s *Service) List(args *structs.ServiceListRequest, reply *structs.ServiceListResponse) error {
	if done, err := s.srv.forwardRead("Service.List", &args.QueryOptions, args, reply); done {
		return pool.EncodeError(err)
	}
	ns := namespaceOf(args.Namespace)
	return pool.EncodeError(s.srv.blockingRPC(&args.QueryOptions, &reply.QueryMeta,
		func(ws memdb.WatchSet, snap *fsm.StateSnapshot) (uint64, error) {
			stubs, err := snap.ServiceStubs(ws, ns)
			if err != nil {
				return 0, err
			}
			reply.Services = stubs
			return maxIndex(snap.Index(servicesTable)), nil
		}))
}

// Get reads the healthy instances of one service. An unknown service is
// an empty list, not an error, so a watcher can block until it appears.
func (s *Service) Get(args *structs.ServiceGetRequest, reply *structs.ServiceGetResponse) error {
	if done, err := s.srv.forwardRead("Service.Get", &args.QueryOptions, args, reply); done {
		return pool.EncodeError(err)
	}
	if args.ServiceName == "" {
		return pool.EncodeError(structs.NewError(structs.ErrInvalid, "service_name: required"))
	}
	ns := namespaceOf(args.Namespace)
	return pool.EncodeError(s.srv.blockingRPC(&args.QueryOptions, &reply.QueryMeta,
		func(ws memdb.WatchSet, snap *fsm.StateSnapshot) (uint64, error) {
			regs, err := snap.ServicesByName(ws, ns, args.ServiceName)
			if err != nil {
				return 0, err
			}
			reply.Services = regs
			return maxIndex(snap.Index(servicesTable)), nil
		}))
}

// NodeServices reads every instance of every service in every namespace:
// what each client's DNS server caches. It wakes on any registry change.
func (s *Service) NodeServices(args *structs.NodeServicesRequest, reply *structs.ServiceGetResponse) error {
	if done, err := s.srv.forwardRead("Service.NodeServices", &args.QueryOptions, args, reply); done {
		return pool.EncodeError(err)
	}
	var last *fsm.StateSnapshot
	err := s.srv.blockingRPC(&args.QueryOptions, &reply.QueryMeta,
		func(ws memdb.WatchSet, snap *fsm.StateSnapshot) (uint64, error) {
			last = snap
			return maxIndex(snap.IndexWatch(ws, servicesTable)), nil
		})
	if err != nil {
		return pool.EncodeError(err)
	}
	// Read once, from the snapshot of the answer, not on every wake.
	regs, err := last.Services(nil)
	if err != nil {
		return pool.EncodeError(err)
	}
	reply.Services = regs
	return nil
}
