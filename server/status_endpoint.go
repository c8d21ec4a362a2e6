package server

import (
	"github.com/drover-sh/drover/server/pool"
	"github.com/drover-sh/drover/structs"
)

// Status is the RPC endpoint for cluster status; it answers locally.
type Status struct{ srv *Server }

// Ping answers; agents use it to check a server is reachable.
func (st *Status) Ping(args *structs.GenericRequest, reply *struct{}) error { return nil }

// Leader returns the leader's RPC address as this server knows it.
func (st *Status) Leader(args *structs.GenericRequest, reply *structs.LeaderResponse) error {
	reply.Leader = st.srv.Leader()
	st.srv.setQueryMeta(&reply.QueryMeta)
	return nil
}

// Peers returns the addresses of the Raft configuration's servers.
func (st *Status) Peers(args *structs.GenericRequest, reply *structs.PeersResponse) error {
	future := st.srv.raft.GetConfiguration()
	if err := future.Error(); err != nil {
		return pool.EncodeError(err)
	}
	for _, srv := range future.Configuration().Servers {
		reply.Peers = append(reply.Peers, string(srv.Address))
	}
	st.srv.setQueryMeta(&reply.QueryMeta)
	return nil
}
