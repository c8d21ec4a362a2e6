package client

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/client/driver"
	"github.com/drover-sh/drover/client/driver/mock"
	"github.com/drover-sh/drover/internal/testlog"
	"github.com/drover-sh/drover/server"
	"github.com/drover-sh/drover/structs"
	smock "github.com/drover-sh/drover/structs/mock"
)

// staticMembers is the gossip view of a one-server test cluster.
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

func testLogger(t testing.TB, name string) hclog.Logger {
	return testlog.New(t, name, hclog.Info)
}

// testServer starts a real server that bootstraps alone on a free
// loopback port, with scheduler workers, and waits until it leads.
func testServer(t testing.TB, cbs ...func(*server.Config)) *server.Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().(*net.TCPAddr)
	require.NoError(t, ln.Close())

	cfg := server.DefaultConfig()
	cfg.NodeName = "s1"
	cfg.NodeID = structs.GenerateUUID()
	cfg.DataDir = t.TempDir()
	cfg.RPCAddr = addr
	cfg.BootstrapExpect = 1
	cfg.NumSchedulers = 2
	cfg.Logger = testlog.New(t, "server", hclog.Warn)
	for _, cb := range cbs {
		cb(cfg)
	}
	members := &staticMembers{}
	srv, err := server.New(cfg, members)
	require.NoError(t, err)
	t.Cleanup(func() { srv.Shutdown() })
	m := structs.Member{
		Name: cfg.NodeName, Addr: addr.IP.String(), Status: structs.MemberAlive,
		Role: structs.RoleServer, Region: cfg.Region, Datacenter: cfg.Datacenter,
		RPCAddr: addr.String(), RaftID: cfg.NodeID, BootstrapExpect: 1,
	}
	members.mu.Lock()
	members.members = append(members.members, m)
	members.mu.Unlock()
	srv.HandleMemberEvent(structs.MemberEvent{Type: structs.MemberEventJoin, Member: m})
	// Leading and able to write: a node list through the leader works.
	require.Eventually(t, func() bool {
		if !srv.IsLeader() {
			return false
		}
		var resp structs.NodeListResponse
		return srv.RPC("Node.List", &structs.NodeListRequest{}, &resp) == nil
	}, 15*time.Second, 10*time.Millisecond, "server did not become leader")
	return srv
}

// testNode is one client's fixed identity across restarts.
type testNode struct {
	t       *testing.T
	srv     *server.Server
	store   *mock.Store
	nodeID  string
	dataDir string
	cb      func(*Config)
}

func newTestNode(t *testing.T, srv *server.Server) *testNode {
	return &testNode{t: t, srv: srv, store: mock.NewStore(), nodeID: structs.GenerateUUID(), dataDir: t.TempDir()}
}

// start starts a client for the node and waits until it registered. The
// client is shut down at the end of the test if the test did not.
func (n *testNode) start() *Client {
	n.t.Helper()
	addr := n.srv.RPCAddr().String()
	cfg := Config{
		NodeID:              n.nodeID,
		Name:                "node-" + n.nodeID[:8],
		DataDir:             n.dataDir,
		HTTPAddr:            "127.0.0.1:4750",
		Servers:             func() []string { return []string{addr} },
		Driver:              mock.New(n.store, "containerd"),
		Logger:              testLogger(n.t, "client"),
		Meta:                map[string]string{"rack": "r1"},
		Reserved:            &structs.NodeResources{CPU: 100, Memory: 256},
		FingerprintInterval: 100 * time.Millisecond,
		LogRotateInterval:   50 * time.Millisecond,
	}
	if n.cb != nil {
		n.cb(&cfg)
	}
	c, err := New(cfg)
	require.NoError(n.t, err)
	n.t.Cleanup(func() { c.Shutdown() })
	select {
	case <-c.Registered():
	case <-time.After(10 * time.Second):
		n.t.Fatal("client did not register")
	}
	return c
}

// testJob is a job of one group of count allocations, each with one task
// "work" running the mock script env, in the host network.
func testJob(typ string, count int, env map[string]string, restart *structs.RestartPolicy) *structs.Job {
	j := smock.Job()
	j.Type = typ
	if typ == structs.JobTypeBatch {
		j.Update = nil
		j.Groups[0].Update = nil
		j.Groups[0].Reschedule = structs.DefaultReschedulePolicy(structs.JobTypeBatch)
	}
	g := j.Groups[0]
	g.Count = count
	g.Network = nil
	g.Restart = restart
	if g.Restart == nil {
		g.Restart = &structs.RestartPolicy{Attempts: 0, Interval: structs.Duration(time.Hour), Delay: structs.Duration(100 * time.Millisecond), Mode: structs.RestartModeFail}
	}
	// Replacements of failed allocations would muddy what a test
	// counts: they are not rescheduled.
	g.Reschedule = &structs.ReschedulePolicy{Attempts: 0, Interval: structs.Duration(time.Hour), Delay: structs.Duration(time.Hour), DelayFunction: "constant"}
	t := g.Tasks[0]
	t.Name = "work"
	t.Image = "127.0.0.1:5000/drover/busybox:latest"
	t.Command = ""
	t.Args = nil
	t.Env = env
	t.Resources = &structs.Resources{CPU: 100, Memory: 64}
	t.KillTimeout = structs.Duration(time.Second)
	return j
}

func registerJob(t *testing.T, srv *server.Server, job *structs.Job) {
	t.Helper()
	var resp structs.JobRegisterResponse
	require.NoError(t, srv.RPC("Job.Register", &structs.JobRegisterRequest{Job: job}, &resp))
}

func stopJob(t *testing.T, srv *server.Server, job *structs.Job) {
	t.Helper()
	var resp structs.JobDeregisterResponse
	req := &structs.JobDeregisterRequest{JobID: job.ID}
	req.Namespace = job.Namespace
	require.NoError(t, srv.RPC("Job.Deregister", req, &resp))
}

// serverAllocs returns the servers' allocations of a job.
func serverAllocs(t *testing.T, srv *server.Server, job *structs.Job) []*structs.Allocation {
	t.Helper()
	allocs, err := srv.State().Snapshot().AllocsByJob(nil, job.Namespace, job.ID, true)
	require.NoError(t, err)
	return allocs
}

// waitAlloc waits until the job has exactly one allocation on the
// servers and returns it.
func waitAlloc(t *testing.T, srv *server.Server, job *structs.Job) *structs.Allocation {
	t.Helper()
	var a *structs.Allocation
	require.Eventually(t, func() bool {
		allocs := serverAllocs(t, srv, job)
		if len(allocs) == 1 {
			a = allocs[0]
		}
		return a != nil
	}, 10*time.Second, 10*time.Millisecond, "job %s was not placed", job.ID)
	return a
}

// waitServerStatus waits until the servers see the allocation in status
// and returns it.
func waitServerStatus(t *testing.T, srv *server.Server, allocID, status string, within time.Duration) *structs.Allocation {
	t.Helper()
	var a *structs.Allocation
	require.Eventually(t, func() bool {
		var err error
		a, err = srv.State().Snapshot().AllocByID(nil, allocID)
		require.NoError(t, err)
		return a != nil && a.ClientStatus == status
	}, within, 5*time.Millisecond, "allocation %s did not reach %s on the servers", allocID, status)
	return a
}

// eventTypes lists a task's event types in order.
func eventTypes(s *structs.TaskState) []string {
	if s == nil {
		return nil
	}
	out := make([]string, len(s.Events))
	for i, e := range s.Events {
		out[i] = e.Type
	}
	return out
}

func taskID(a *structs.Allocation) string { return driver.TaskID(a.ID, "work") }
