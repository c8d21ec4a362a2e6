package server

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/internal/testlog"
	"github.com/drover-sh/drover/structs"
)

// staticMembers is a gossip pool the test controls: every server of a test
// cluster shares one, so bootstrap sees the others without memberlist.
type staticMembers struct {
	mu      sync.Mutex
	members []structs.Member
}

func (m *staticMembers) Members() []structs.Member {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]structs.Member(nil), m.members...)
}

func (m *staticMembers) Join(addrs []string) (int, error) { return 0, nil }

func (m *staticMembers) add(mem structs.Member) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.members = append(m.members, mem)
}

// setStatus marks the member with the given Raft ID alive or dead.
func (m *staticMembers) setStatus(raftID, status string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.members {
		if m.members[i].RaftID == raftID {
			m.members[i].Status = status
		}
	}
}

// withSchedulers is a config callback that runs the built-in schedulers,
// as a real server does, with two workers.
func withSchedulers(c *Config) {
	c.NumSchedulers = 2
}

// testServer starts one server that bootstraps alone on a free loopback
// port and waits until it leads. cb may change the config first.
func testServer(t testing.TB, cb func(*Config)) *Server {
	t.Helper()
	return testCluster(t, 1, cb)[0]
}

// testCluster starts n servers that bootstrap together and waits until one
// of them leads. Every server is shut down at the end of the test.
func testCluster(t testing.TB, n int, cb func(*Config)) []*Server {
	t.Helper()
	pool := &staticMembers{}
	servers := make([]*Server, n)
	for i := range servers {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().(*net.TCPAddr)
		require.NoError(t, ln.Close())

		cfg := DefaultConfig()
		cfg.NodeName = "s" + string(rune('1'+i))
		cfg.NodeID = structs.GenerateUUID()
		cfg.DataDir = t.TempDir()
		cfg.RPCAddr = addr
		cfg.BootstrapExpect = n
		cfg.Logger = testlog.New(t, cfg.NodeName, hclog.Warn)
		// No scheduler workers unless the test asks (withSchedulers):
		// most tests write allocations themselves and must not race one.
		cfg.NumSchedulers = 0
		if cb != nil {
			cb(cfg)
		}
		srv, err := New(cfg, pool)
		require.NoError(t, err)
		t.Cleanup(func() { srv.Shutdown() })
		servers[i] = srv
		mem := structs.Member{
			Name: cfg.NodeName, Addr: addr.IP.String(), Status: structs.MemberAlive,
			Role: structs.RoleServer, Region: cfg.Region, Datacenter: cfg.Datacenter,
			RPCAddr: addr.String(), RaftID: cfg.NodeID, BootstrapExpect: n,
		}
		pool.add(mem)
	}
	for _, srv := range servers {
		for _, m := range pool.Members() {
			srv.HandleMemberEvent(structs.MemberEvent{Type: structs.MemberEventJoin, Member: m})
		}
	}
	waitForLeader(t, servers...)
	return servers
}

// waitForLeader waits until one of the running servers leads and has passed
// its barrier, and returns it.
func waitForLeader(t testing.TB, servers ...*Server) *Server {
	t.Helper()
	var leader *Server
	require.Eventually(t, func() bool {
		for _, s := range servers {
			if !s.isShutdown() && s.IsLeader() && s.leaderReady.Load() {
				leader = s
				return true
			}
		}
		return false
	}, 15*time.Second, 10*time.Millisecond, "no leader elected")
	return leader
}
