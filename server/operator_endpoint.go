package server

import (
	"github.com/hashicorp/raft"

	"github.com/drover-sh/drover/server/pool"
	"github.com/drover-sh/drover/structs"
)

// Operator is the RPC endpoint for cluster operations.
type Operator struct{ srv *Server }

// RaftGetConfiguration returns the Raft configuration, with the leader marked.
func (o *Operator) RaftGetConfiguration(args *structs.GenericRequest, reply *structs.RaftConfigurationResponse) error {
	if done, err := o.srv.forwardRead("Operator.RaftGetConfiguration", &args.QueryOptions, args, reply); done {
		return pool.EncodeError(err)
	}
	future := o.srv.raft.GetConfiguration()
	if err := future.Error(); err != nil {
		return pool.EncodeError(err)
	}
	// Name each server after its gossip member when gossip knows it.
	names := make(map[string]string)
	for _, m := range o.srv.membership.Members() {
		if m.RaftID != "" {
			names[m.RaftID] = m.Name
		}
	}
	_, leaderID := o.srv.raft.LeaderWithID()
	reply.Servers = reply.Servers[:0]
	for _, srv := range future.Configuration().Servers {
		reply.Servers = append(reply.Servers, &structs.RaftServer{
			ID:      string(srv.ID),
			Node:    names[string(srv.ID)],
			Address: string(srv.Address),
			Leader:  srv.ID == leaderID,
			Voter:   srv.Suffrage == raft.Voter,
		})
	}
	reply.Index = future.Index()
	return nil
}

// RaftRemovePeer removes a server from Raft by ID or address.
func (o *Operator) RaftRemovePeer(args *structs.RaftPeerRequest, reply *structs.GenericResponse) error {
	if done, err := o.srv.forwardWrite("Operator.RaftRemovePeer", args, reply); done {
		return pool.EncodeError(err)
	}
	if args.ID == "" && args.Address == "" {
		return pool.EncodeError(structs.NewError(structs.ErrInvalid, "either id or address is required"))
	}
	return pool.EncodeError(o.srv.removeRaftPeer(args.ID, args.Address))
}

// ForceLeave removes a failed server from Raft.
func (o *Operator) ForceLeave(args *structs.ForceLeaveRequest, reply *structs.GenericResponse) error {
	if done, err := o.srv.forwardWrite("Operator.ForceLeave", args, reply); done {
		return pool.EncodeError(err)
	}
	return pool.EncodeError(o.srv.forceLeave(args.Node))
}
