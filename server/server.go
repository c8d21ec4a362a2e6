package server

import (
	"context"
	"fmt"
	"net"
	"net/rpc"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/drover-sh/drover/fsm"
	"github.com/drover-sh/drover/scheduler"
	"github.com/drover-sh/drover/server/pool"
	"github.com/drover-sh/drover/structs"
)

// Membership is the gossip pool as the server sees it. The agent owns the
// pool and feeds the server its events through HandleMemberEvent.
type Membership interface {
	Members() []structs.Member
	Join(addrs []string) (int, error)
}

// Server is one control-plane server.
type Server struct {
	config *Config
	logger hclog.Logger

	fsm           *fsm.FSM
	raft          *raft.Raft
	raftLayer     *raftLayer
	raftTransport *raft.NetworkTransport
	raftStore     *raftboltdb.BoltStore
	raftNotifyCh  chan bool

	listener  net.Listener
	rpcServer *rpc.Server
	pool      *pool.Pool

	// heartbeats holds the node TTL timers while this server leads.
	heartbeats *heartbeater
	// allocUpdates coalesces clients' allocation updates into entries.
	allocUpdates *allocUpdateBatcher

	membership Membership
	memberCh   chan structs.MemberEvent

	// The eval pipeline: enabled on the leader only (runEvalPipeline).
	evalBroker   *EvalBroker
	blockedEvals *BlockedEvals
	planQueue    *planQueue
	schedulers   map[string]scheduler.Factory

	// bootstrapped is set once this server has Raft state or wrote the
	// first configuration itself.
	bootstrapped atomic.Bool

	// leaderReady is set while this server is leader and has applied every
	// entry of earlier terms (after the barrier in establishLeadership).
	leaderReady atomic.Bool

	shutdownCtx    context.Context
	shutdownCancel context.CancelFunc
	shutdownOnce   sync.Once
	wg             sync.WaitGroup
}

// New starts a server: the store, the RPC listener and Raft. It does not
// join anyone: bootstrap happens when gossip shows enough servers.
func New(config *Config, membership Membership) (*Server, error) {
	def := DefaultConfig()
	if config.Logger == nil {
		config.Logger = hclog.NewNullLogger()
	}
	if config.RaftMultiplier <= 0 {
		config.RaftMultiplier = 1
	}
	fillDuration(&config.HeartbeatTimeout, def.HeartbeatTimeout)
	fillDuration(&config.ElectionTimeout, def.ElectionTimeout)
	fillDuration(&config.LeaderLeaseTimeout, def.LeaderLeaseTimeout)
	fillDuration(&config.CommitTimeout, def.CommitTimeout)
	fillDuration(&config.ReconcileInterval, def.ReconcileInterval)
	fillDuration(&config.MinHeartbeatTTL, def.MinHeartbeatTTL)
	fillDuration(&config.HeartbeatGrace, def.HeartbeatGrace)
	fillDuration(&config.FailoverHeartbeatTTL, def.FailoverHeartbeatTTL)
	fillDuration(&config.GossipDeadGrace, def.GossipDeadGrace)
	fillDuration(&config.GCInterval, def.GCInterval)
	fillDuration(&config.EvalGCThreshold, def.EvalGCThreshold)
	fillDuration(&config.JobGCThreshold, def.JobGCThreshold)
	fillDuration(&config.NodeGCThreshold, def.NodeGCThreshold)
	if config.MaxHeartbeatsPerSecond <= 0 {
		config.MaxHeartbeatsPerSecond = def.MaxHeartbeatsPerSecond
	}
	if config.SnapshotThreshold == 0 {
		config.SnapshotThreshold = def.SnapshotThreshold
	}
	if config.TrailingLogs == 0 {
		config.TrailingLogs = def.TrailingLogs
	}
	if config.RPCAdvertise == nil {
		config.RPCAdvertise = config.RPCAddr
	}
	if config.NodeID == "" {
		return nil, fmt.Errorf("server: node id required")
	}
	fillDuration(&config.EvalNackTimeout, def.EvalNackTimeout)
	if config.EvalDeliveryLimit <= 0 {
		config.EvalDeliveryLimit = def.EvalDeliveryLimit
	}
	schedulers := config.Schedulers
	if schedulers == nil {
		schedulers = builtinSchedulers()
	}

	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		config:         config,
		logger:         config.Logger.Named("server"),
		rpcServer:      rpc.NewServer(),
		pool:           pool.New(5 * time.Second),
		membership:     membership,
		memberCh:       make(chan structs.MemberEvent, 1024),
		shutdownCtx:    ctx,
		shutdownCancel: cancel,
		evalBroker:     NewEvalBroker(config.EvalNackTimeout, config.EvalDeliveryLimit),
		blockedEvals:   NewBlockedEvals(),
		planQueue:      newPlanQueue(),
		schedulers:     schedulers,
	}

	s.heartbeats = newHeartbeater(s)
	s.allocUpdates = &allocUpdateBatcher{srv: s}

	var err error
	s.fsm, err = fsm.New(config.Logger)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("creating state store: %w", err)
	}
	if err := s.registerEndpoints(); err != nil {
		cancel()
		return nil, err
	}
	if err := s.setupRPC(); err != nil {
		cancel()
		return nil, err
	}
	if err := s.setupRaft(); err != nil {
		s.listener.Close()
		cancel()
		return nil, err
	}

	s.goFunc(s.listen)
	s.goFunc(s.monitorLeadership)
	s.goFunc(s.memberLoop)
	return s, nil
}

func fillDuration(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

func (s *Server) goFunc(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

func (s *Server) setupRPC() error {
	ln, err := net.ListenTCP("tcp", s.config.RPCAddr)
	if err != nil {
		return fmt.Errorf("listening for rpc on %s: %w", s.config.RPCAddr, err)
	}
	s.listener = ln
	// A port of 0 asks the OS for one; advertise what we got.
	if s.config.RPCAddr.Port == 0 {
		s.config.RPCAddr = ln.Addr().(*net.TCPAddr)
		if s.config.RPCAdvertise.Port == 0 {
			adv := *s.config.RPCAdvertise
			adv.Port = s.config.RPCAddr.Port
			s.config.RPCAdvertise = &adv
		}
	}
	// Connections to other servers leave from the bind address: on a host
	// with several addresses that is the one peers know this server by.
	s.raftLayer = newRaftLayer(s.config.RPCAdvertise, s.config.RPCAddr.IP)
	s.pool.SetLocalIP(s.config.RPCAddr.IP)
	return nil
}

func (s *Server) setupRaft() error {
	c := raft.DefaultConfig()
	m := time.Duration(s.config.RaftMultiplier)
	c.LocalID = raft.ServerID(s.config.NodeID)
	c.HeartbeatTimeout = s.config.HeartbeatTimeout * m
	c.ElectionTimeout = s.config.ElectionTimeout * m
	c.LeaderLeaseTimeout = s.config.LeaderLeaseTimeout * m
	c.CommitTimeout = s.config.CommitTimeout
	c.SnapshotThreshold = s.config.SnapshotThreshold
	c.TrailingLogs = s.config.TrailingLogs
	// Batch concurrent applies into one append and one fsync.
	c.MaxAppendEntries = 512
	c.BatchApplyCh = true
	c.Logger = s.config.Logger.Named("raft")
	s.raftNotifyCh = make(chan bool, 8)
	c.NotifyCh = s.raftNotifyCh

	s.raftTransport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  s.raftLayer,
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  s.config.Logger.Named("raft-net"),
	})

	dir := filepath.Join(s.config.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating raft dir: %w", err)
	}
	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
	if err != nil {
		return fmt.Errorf("opening raft store: %w", err)
	}
	s.raftStore = store
	logs, err := raft.NewLogCache(1024, store)
	if err != nil {
		store.Close()
		return err
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, s.config.Logger.Named("snapshot"))
	if err != nil {
		store.Close()
		return fmt.Errorf("opening snapshot store: %w", err)
	}

	existing, err := raft.HasExistingState(logs, store, snaps)
	if err != nil {
		store.Close()
		return fmt.Errorf("reading raft state: %w", err)
	}
	s.bootstrapped.Store(existing)

	s.raft, err = raft.NewRaft(c, s.fsm, logs, store, snaps, s.raftTransport)
	if err != nil {
		store.Close()
		return fmt.Errorf("starting raft: %w", err)
	}
	if !existing && s.config.BootstrapExpect == 1 {
		s.bootstrapWith([]raft.Server{{ID: c.LocalID, Address: raft.ServerAddress(s.config.RPCAdvertise.String())}})
	}
	return nil
}

// Shutdown stops Raft and the RPC listener. The data dir keeps all state:
// a server started again on it rejoins the same cluster. Leaving the gossip
// pool is the agent's job; it does not remove this server from Raft (only
// force-leave and remove-peer do), so a restart needs no re-join.
func (s *Server) Shutdown() error {
	var err error
	s.shutdownOnce.Do(func() {
		s.logger.Info("shutting down server")
		s.shutdownCancel()
		if s.raft != nil {
			s.raftTransport.Close()
			s.raftLayer.Close()
			if ferr := s.raft.Shutdown().Error(); ferr != nil {
				err = ferr
			}
			if s.raftStore != nil {
				s.raftStore.Close()
			}
		}
		s.listener.Close()
		s.pool.Close()
		s.wg.Wait()
	})
	return err
}

func (s *Server) isShutdown() bool { return s.shutdownCtx.Err() != nil }

// State returns the local store.
func (s *Server) State() *fsm.StateStore { return s.fsm.State() }

// IsLeader reports whether this server is the Raft leader.
func (s *Server) IsLeader() bool { return s.raft.State() == raft.Leader }

// Leader returns the leader's RPC address, or "" while there is none.
func (s *Server) Leader() string {
	addr, _ := s.raft.LeaderWithID()
	return string(addr)
}

// RPCAddr is the address other agents dial.
func (s *Server) RPCAddr() *net.TCPAddr { return s.config.RPCAdvertise }

// NodeID is the server's Raft ID.
func (s *Server) NodeID() string { return s.config.NodeID }

// Raft exposes the Raft instance to the agent's status output and tests.
func (s *Server) Raft() *raft.Raft { return s.raft }

// Stats returns Raft's counters for `agent self`.
func (s *Server) Stats() map[string]string { return s.raft.Stats() }

// serverAddrs returns the RPC addresses of the Raft servers, the leader
// first, for clients to fail over to.
func (s *Server) serverAddrs() []string {
	leader := s.Leader()
	out := []string{}
	if leader != "" {
		out = append(out, leader)
	}
	future := s.raft.GetConfiguration()
	if err := future.Error(); err != nil {
		return out
	}
	for _, srv := range future.Configuration().Servers {
		if string(srv.Address) != leader {
			out = append(out, string(srv.Address))
		}
	}
	return out
}
