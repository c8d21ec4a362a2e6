package server

import (
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/drover-sh/drover/structs"
)

// HandleMemberEvent queues a gossip event. It never blocks: it is called
// from memberlist's delegate (see STYLE.md point 17). A dropped event is
// made up by the periodic bootstrap check and leader reconciliation.
func (s *Server) HandleMemberEvent(ev structs.MemberEvent) {
	select {
	case s.memberCh <- ev:
	default:
		s.logger.Warn("member event queue full, dropping event", "member", ev.Member.Name, "event", ev.Type)
	}
}

// memberLoop reacts to gossip: it bootstraps Raft once enough servers are
// seen, and on the leader it reconciles the Raft configuration.
func (s *Server) memberLoop() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-s.shutdownCtx.Done():
			return
		case ev := <-s.memberCh:
			if ev.Member.Region != s.config.Region {
				continue
			}
			if !ev.Member.IsServer() {
				switch {
				case ev.Member.NodeID == "":
				case ev.Type == structs.MemberEventFailed:
					s.heartbeats.hurry(ev.Member.NodeID, s.config.GossipDeadGrace)
				case ev.Type == structs.MemberEventJoin || ev.Type == structs.MemberEventUpdate:
					s.heartbeats.relax(ev.Member.NodeID)
				}
				continue
			}
			if !s.bootstrapped.Load() {
				s.maybeBootstrap()
			}
			if s.leaderReady.Load() {
				s.reconcileMember(ev.Member)
			}
		case <-tick.C:
			if !s.bootstrapped.Load() {
				s.maybeBootstrap()
			}
		}
	}
}

// aliveServers returns the alive server members of this region.
func (s *Server) aliveServers() []structs.Member {
	var out []structs.Member
	for _, m := range s.membership.Members() {
		if m.IsServer() && m.Region == s.config.Region && m.Status == structs.MemberAlive {
			out = append(out, m)
		}
	}
	return out
}

// maybeBootstrap writes the first Raft configuration once BootstrapExpect
// servers see each other and none of them already belongs to a cluster.
// Every one of them computes the same configuration, so it does not matter
// how many bootstrap: Raft accepts identical configurations.
func (s *Server) maybeBootstrap() {
	expect := s.config.BootstrapExpect
	if expect <= 0 {
		return
	}
	members := s.aliveServers()
	var servers []raft.Server
	for _, m := range members {
		if m.BootstrapExpect != 0 && m.BootstrapExpect != expect {
			s.logger.Error("servers disagree on bootstrap_expect, not bootstrapping",
				"member", m.Name, "theirs", m.BootstrapExpect, "ours", expect)
			return
		}
		if m.RaftID == "" || m.RPCAddr == "" {
			continue
		}
		servers = append(servers, raft.Server{ID: raft.ServerID(m.RaftID), Address: raft.ServerAddress(m.RPCAddr)})
	}
	if len(servers) < expect {
		return
	}

	// A server that already has peers means the cluster exists and this
	// one will be added by its leader; bootstrapping would split it.
	for _, srv := range servers {
		if string(srv.ID) == s.config.NodeID {
			continue
		}
		var resp structs.PeersResponse
		args := &structs.GenericRequest{QueryOptions: structs.QueryOptions{AllowStale: true, Region: s.config.Region}}
		if err := s.pool.RPC(string(srv.Address), "Status.Peers", args, &resp); err != nil {
			s.logger.Debug("cannot ask server for its peers yet", "server", srv.Address, "error", err)
			return
		}
		if len(resp.Peers) > 0 {
			s.logger.Info("a server already has raft peers, waiting to be added by the leader", "server", srv.Address)
			s.bootstrapped.Store(true)
			return
		}
	}
	s.bootstrapWith(servers)
}

func (s *Server) bootstrapWith(servers []raft.Server) {
	s.logger.Info("bootstrapping raft cluster", "servers", len(servers))
	err := s.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
	if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		s.logger.Error("failed to bootstrap raft", "error", err)
		return
	}
	s.bootstrapped.Store(true)
}

// reconcileMember makes the Raft configuration follow one gossip member:
// an alive server not in it is added as a voter. Servers that fail or leave
// gossip stay voters: a restart must not need a re-join, and quorum math
// must not shrink because a server rebooted. force-leave and remove-peer
// are the explicit ways out.
func (s *Server) reconcileMember(m structs.Member) {
	if m.Status != structs.MemberAlive || m.RaftID == "" || m.RPCAddr == "" {
		return
	}
	future := s.raft.GetConfiguration()
	if err := future.Error(); err != nil {
		s.logger.Error("failed to read raft configuration", "error", err)
		return
	}
	for _, srv := range future.Configuration().Servers {
		if string(srv.ID) == m.RaftID {
			if string(srv.Address) == m.RPCAddr {
				return
			}
			// Same server, new address: re-add it under the new one.
			s.logger.Info("server address changed, updating raft", "server", m.Name, "address", m.RPCAddr)
			break
		}
	}
	s.logger.Info("adding server to raft", "server", m.Name, "id", m.RaftID, "address", m.RPCAddr)
	if err := s.raft.AddVoter(raft.ServerID(m.RaftID), raft.ServerAddress(m.RPCAddr), 0, 0).Error(); err != nil {
		s.logger.Error("failed to add raft voter", "server", m.Name, "error", err)
	}
}

// reconcile runs reconcileMember for every alive server.
func (s *Server) reconcile() {
	for _, m := range s.aliveServers() {
		s.reconcileMember(m)
	}
}

// forceLeave removes a server that is not alive from Raft. It runs on the
// leader. Should the server come back alive, reconciliation adds it again,
// as it would any server that joins.
func (s *Server) forceLeave(name string) error {
	var target *structs.Member
	for _, m := range s.membership.Members() {
		if m.Name == name {
			m := m
			target = &m
			break
		}
	}
	if target == nil {
		return structs.NewError(structs.ErrNotFound, "no member named %q in the gossip pool", name)
	}
	if target.Status == structs.MemberAlive {
		return structs.NewError(structs.ErrInvalid, "member %q is alive; stop it before forcing it out", name)
	}
	if !target.IsServer() {
		return nil
	}
	return s.removeRaftPeer(target.RaftID, "")
}

// removeRaftPeer removes a server from Raft by ID or address.
func (s *Server) removeRaftPeer(id, addr string) error {
	future := s.raft.GetConfiguration()
	if err := future.Error(); err != nil {
		return fmt.Errorf("reading raft configuration: %w", err)
	}
	for _, srv := range future.Configuration().Servers {
		if (id != "" && string(srv.ID) == id) || (addr != "" && string(srv.Address) == addr) {
			s.logger.Info("removing server from raft", "id", srv.ID, "address", srv.Address)
			if err := s.raft.RemoveServer(srv.ID, 0, 0).Error(); err != nil {
				return fmt.Errorf("removing raft peer %s: %w", srv.ID, err)
			}
			return nil
		}
	}
	if id != "" {
		return structs.NewError(structs.ErrNotFound, "no raft peer with id %q", id)
	}
	return structs.NewError(structs.ErrNotFound, "no raft peer with address %q", addr)
}
