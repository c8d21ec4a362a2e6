package server

import (
	"github.com/hashicorp/go-memdb"

	"github.com/drover-sh/drover/fsm"
	"github.com/drover-sh/drover/server/pool"
	"github.com/drover-sh/drover/structs"
)

// Alloc is the RPC endpoint for reading allocations.
type Alloc struct{ srv *Server }

// GetAlloc reads one allocation; Alloc is nil when it does not exist.
func (a *Alloc) GetAlloc(args *structs.AllocSpecificRequest, reply *structs.SingleAllocResponse) error {
	if done, err := a.srv.forwardRead("Alloc.GetAlloc", &args.QueryOptions, args, reply); done {
		return pool.EncodeError(err)
	}
	return pool.EncodeError(a.srv.blockingRPC(&args.QueryOptions, &reply.QueryMeta,
		func(ws memdb.WatchSet, snap *fsm.StateSnapshot) (uint64, error) {
			alloc, err := snap.AllocByID(ws, args.AllocID)
			if err != nil {
				return 0, err
			}
			reply.Alloc = alloc
			if alloc != nil {
				return maxIndex(alloc.ModifyIndex), nil
			}
			return maxIndex(snap.Index("allocs")), nil
		}))
}

// List lists the allocations of a namespace ("*" for all) by ID prefix.
func (a *Alloc) List(args *structs.AllocListRequest, reply *structs.AllocListResponse) error {
	if done, err := a.srv.forwardRead("Alloc.List", &args.QueryOptions, args, reply); done {
		return pool.EncodeError(err)
	}
	ns := namespaceOf(args.Namespace)
	return pool.EncodeError(a.srv.blockingRPC(&args.QueryOptions, &reply.QueryMeta,
		func(ws memdb.WatchSet, snap *fsm.StateSnapshot) (uint64, error) {
			allocs, err := snap.AllocsByPrefix(ws, ns, args.Prefix)
			if err != nil {
				return 0, err
			}
			reply.Allocations = make([]*structs.AllocListStub, len(allocs))
			for i, alloc := range allocs {
				reply.Allocations[i] = alloc.Stub()
			}
			return maxIndex(snap.Index("allocs")), nil
		}))
}

// GetAllocs reads allocations by ID: what a client fetches after its
// watch (Node.GetClientAllocs) said they changed. MinQueryIndex makes it
// wait until the store has caught up with what the watch saw, so a stale
// read on a follower never returns an older copy.
func (a *Alloc) GetAllocs(args *structs.AllocsGetRequest, reply *structs.AllocsGetResponse) error {
	if done, err := a.srv.forwardRead("Alloc.GetAllocs", &args.QueryOptions, args, reply); done {
		return pool.EncodeError(err)
	}
	min := args.MinQueryIndex
	if min > 0 {
		// Wait for the index itself, not for something newer than it.
		args.MinQueryIndex = min - 1
	}
	return pool.EncodeError(a.srv.blockingRPC(&args.QueryOptions, &reply.QueryMeta,
		func(ws memdb.WatchSet, snap *fsm.StateSnapshot) (uint64, error) {
			reply.Allocs = reply.Allocs[:0]
			for _, id := range args.AllocIDs {
				alloc, err := snap.AllocByID(nil, id)
				if err != nil {
					return 0, err
				}
				if alloc != nil {
					reply.Allocs = append(reply.Allocs, alloc)
				}
			}
			idx := snap.LatestIndex()
			if idx < min {
				// Not caught up yet: watch the table and try again.
				snap.IndexWatch(ws, "allocs")
			}
			return maxIndex(idx), nil
		}))
}
