package server

import (
	"net"
	"runtime"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/drover-sh/drover/scheduler"
)

// Config configures a server. The agent fills it from its own config.
type Config struct {
	NodeName   string
	NodeID     string // also the Raft server ID; stable across restarts
	Region     string
	Datacenter string

	// DataDir holds raft/ (log, stable store, snapshots).
	DataDir string

	// RPCAddr is the address the RPC+Raft port listens on; RPCAdvertise is
	// the address other servers dial (defaults to RPCAddr).
	RPCAddr      *net.TCPAddr
	RPCAdvertise *net.TCPAddr

	// BootstrapExpect is how many servers must see each other over gossip
	// before the first Raft configuration is written; 1 bootstraps alone.
	BootstrapExpect int

	// RaftMultiplier scales the Raft timeouts below (1 = tuned for a LAN).
	RaftMultiplier int

	// Raft tuning. Zero values take the LAN defaults from DefaultConfig.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	SnapshotThreshold  uint64
	TrailingLogs       uint64

	// ReconcileInterval is how often the leader compares gossip membership
	// with the Raft configuration, besides reacting to member events.
	ReconcileInterval time.Duration

	// Node liveness. A node's heartbeat TTL is MinHeartbeatTTL, or longer
	// once the cluster is big enough that the leader would otherwise get
	// more than MaxHeartbeatsPerSecond; the leader marks a node down
	// HeartbeatGrace after its TTL ran out. A new leader first gives every
	// node FailoverHeartbeatTTL, so clients have time to find it.
	MinHeartbeatTTL        time.Duration
	MaxHeartbeatsPerSecond float64
	HeartbeatGrace         time.Duration
	FailoverHeartbeatTTL   time.Duration
	// GossipDeadGrace: when gossip reports a client failed, its timer is
	// cut to this, so a dead node goes down in seconds rather than after
	// its TTL. A heartbeat arriving meanwhile restores the full TTL: the
	// heartbeat stays the authority, gossip only hurries it.
	GossipDeadGrace time.Duration

	// Garbage collection: every GCInterval the leader removes evaluations
	// (with their allocations) finished more than EvalGCThreshold ago,
	// stopped jobs finished more than JobGCThreshold ago, and nodes down
	// for more than NodeGCThreshold.
	GCInterval      time.Duration
	EvalGCThreshold time.Duration
	JobGCThreshold  time.Duration
	NodeGCThreshold time.Duration

	// NumSchedulers is how many scheduler workers the leader runs;
	// DefaultConfig has two per CPU, 0 runs none (evaluations wait in
	// the broker, Job.Plan still works). A worker spends most of an
	// evaluation waiting for its plan to commit (Raft replication and the
	// apply), so one per CPU left the plan applier's pipeline half empty;
	// workers prefer different nodes (scheduler.NodePartitioner), so more
	// of them do not refuse each other's plans. In the e2e scheduler bench
	// (2 CPUs) 4 workers committed 100,000 placements in 13 s, 2 in 17-21 s.
	NumSchedulers int
	// EvalNackTimeout is how long a worker may hold an evaluation without
	// a sign of life before the broker hands it to another;
	// EvalDeliveryLimit how many deliveries fail it.
	EvalNackTimeout   time.Duration
	EvalDeliveryLimit int
	// Schedulers by evaluation type; nil means the built-in ones. Tests
	// put fakes here.
	Schedulers map[string]scheduler.Factory

	Logger hclog.Logger
}

// DefaultConfig returns a config with LAN-tuned Raft timeouts.
//
// hashicorp/raft's defaults (1 s heartbeat and election timeouts, 500 ms
// leader lease) are sized for WANs. On a LAN round trips are well under a
// millisecond, so 500 ms still leaves a wide margin against spurious
// elections under GC or fsync stalls while letting a follower notice a dead
// leader within 0.5-1 s (the randomised timeout). The other follower
// refuses its vote until its own timeout fires, so the election ends
// 1.0-1.6 s after the leader died (measured by `make bench`, which also
// times the first write: 1.0-2.2 s, median 1.4-1.7 s). RaftMultiplier scales
// them up for slower networks, as Consul and Nomad do.
func DefaultConfig() *Config {
	return &Config{
		Region:             "global",
		Datacenter:         "dc1",
		RaftMultiplier:     1,
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond,
		CommitTimeout:      20 * time.Millisecond,
		SnapshotThreshold:  8192,
		TrailingLogs:       10240,
		ReconcileInterval:  30 * time.Second,

		MinHeartbeatTTL:        10 * time.Second,
		MaxHeartbeatsPerSecond: 50,
		HeartbeatGrace:         10 * time.Second,
		FailoverHeartbeatTTL:   30 * time.Second,
		GossipDeadGrace:        3 * time.Second,

		GCInterval:      5 * time.Minute,
		EvalGCThreshold: time.Hour,
		JobGCThreshold:  4 * time.Hour,
		NodeGCThreshold: 24 * time.Hour,

		NumSchedulers:     2 * runtime.NumCPU(),
		EvalNackTimeout:   defaultEvalNackTimeout,
		EvalDeliveryLimit: defaultEvalDeliveryLimit,
	}
}
