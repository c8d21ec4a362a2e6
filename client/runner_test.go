package client

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/client/driver"
	"github.com/drover-sh/drover/client/driver/mock"
	"github.com/drover-sh/drover/server"
	"github.com/drover-sh/drover/structs"
)

func TestClient_FailedTaskStopsItsSiblings(t *testing.T) {
	srv := testServer(t)
	n := newTestNode(t, srv)
	n.start()

	job := testJob(structs.JobTypeService, 1, nil, nil) // no restarts allowed
	g := job.Groups[0]
	crasher := g.Tasks[0].Copy()
	crasher.Name = "crasher"
	crasher.Env = map[string]string{"run_for": "300ms", "exit_code": "2"}
	g.Tasks = append(g.Tasks, crasher)
	registerJob(t, srv, job)
	a := waitAlloc(t, srv, job)
	waitServerStatus(t, srv, a.ID, structs.AllocClientFailed, 5*time.Second)
	// The allocation fails at once; the sibling is killed right after.
	require.Eventually(t, func() bool {
		cur, err := srv.State().Snapshot().AllocByID(nil, a.ID)
		require.NoError(t, err)
		a = cur
		return cur.TaskStates["work"].State == structs.TaskStateDead
	}, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, structs.AllocClientFailed, a.ClientStatus)
	require.True(t, a.TaskStates["crasher"].Failed)
	work := a.TaskStates["work"]
	require.False(t, work.Failed, "the sibling was stopped, it did not fail")
	types := eventTypes(work)
	require.Equal(t, structs.TaskEventKilled, types[len(types)-1])
	require.Contains(t, work.Events[len(work.Events)-2].Message, "sibling task crasher failed")
	require.False(t, n.store.Exists(driver.TaskID(a.ID, "work")))
}

// fakeNetwork records setups and teardowns.
type fakeNetwork struct {
	mu        sync.Mutex
	setups    map[string]int
	teardowns map[string]int
	fail      bool
	sweeps    []func(string) bool // the live funcs Sweep was given
}

func (f *fakeNetwork) Sweep(ctx context.Context, live func(string) bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sweeps = append(f.sweeps, live)
	return nil
}

func (f *fakeNetwork) Setup(ctx context.Context, a *structs.Allocation) (*NetworkStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setups[a.ID]++
	if f.fail {
		return nil, context.DeadlineExceeded
	}
	return &NetworkStatus{NetNSPath: "/var/run/netns/" + a.ID[:8],
		Data: map[string]string{"ip": "10.88.0.2", "gateway": "10.88.0.1", "cni": "bridge"}}, nil
}

func (f *fakeNetwork) Teardown(ctx context.Context, a *structs.Allocation, st *NetworkStatus) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if st.NetNSPath != "/var/run/netns/"+a.ID[:8] {
		panic("teardown got another allocation's network")
	}
	f.teardowns[a.ID]++
	return nil
}

func (f *fakeNetwork) counts(id string) (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.setups[id], f.teardowns[id]
}

func gcAllocs(t *testing.T, srv *server.Server, ids ...string) {
	t.Helper()
	b, err := structs.Encode(structs.AllocGCRequestType, &structs.AllocGCRequest{AllocIDs: ids})
	require.NoError(t, err)
	f := srv.Raft().Apply(b, 5*time.Second)
	require.NoError(t, f.Error())
	if err, ok := f.Response().(error); ok {
		require.NoError(t, err)
	}
}

func TestClient_NetworkSetupAndTeardown(t *testing.T) {
	srv := testServer(t)
	n := newTestNode(t, srv)
	netw := &fakeNetwork{setups: map[string]int{}, teardowns: map[string]int{}}
	n.cb = func(cfg *Config) { cfg.Network = netw }
	c := n.start()

	job := testJob(structs.JobTypeService, 1, nil, nil)
	job.Groups[0].Network = &structs.NetworkSpec{Mode: structs.NetworkModeBridge, Ports: []*structs.Port{{Label: "http", To: 8080}}}
	registerJob(t, srv, job)
	a := waitAlloc(t, srv, job)
	waitServerStatus(t, srv, a.ID, structs.AllocClientRunning, 5*time.Second)
	cfg, ok := n.store.Config(taskID(a))
	require.True(t, ok)
	require.Equal(t, "/var/run/netns/"+a.ID[:8], cfg.NetNSPath)
	require.Equal(t, "8080", cfg.Env["DROVER_PORT_http"])
	require.NotEmpty(t, cfg.Env["DROVER_HOST_PORT_http"])
	require.Equal(t, "10.88.0.2", cfg.Env["DROVER_ALLOC_IP"])
	require.Equal(t, "10.88.0.2:8080", cfg.Env["DROVER_ADDR_http"])
	require.Equal(t, filepath.Join(n.dataDir, "client", "allocs", a.ID, "resolv.conf"), cfg.ResolvConfPath)
	resolv, err := os.ReadFile(cfg.ResolvConfPath)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(resolv), "nameserver 10.88.0.1\n"), string(resolv))
	require.Contains(t, string(resolv), "search service.drover")
	require.NotContains(t, string(resolv), "nameserver 127.", "a loopback resolver is unreachable from the namespace")
	netw.mu.Lock()
	require.Len(t, netw.sweeps, 1, "the client swept once at start")
	require.True(t, netw.sweeps[0](a.ID), "a held allocation is live")
	require.False(t, netw.sweeps[0](structs.GenerateUUID()))
	netw.mu.Unlock()

	// A restarted client keeps the namespace it had.
	require.NoError(t, c.Shutdown())
	c = n.start()
	require.Eventually(t, func() bool { return c.NumRunningAllocs() == 1 }, 5*time.Second, 10*time.Millisecond)
	setups, teardowns := netw.counts(a.ID)
	require.Equal(t, 1, setups)
	require.Equal(t, 0, teardowns)

	// Stopped: the network is released as soon as the tasks are dead,
	// not only at garbage collection (ports and address are free again).
	stopJob(t, srv, job)
	waitServerStatus(t, srv, a.ID, structs.AllocClientComplete, 5*time.Second)
	require.Eventually(t, func() bool {
		_, teardowns := netw.counts(a.ID)
		return teardowns == 1
	}, 5*time.Second, 10*time.Millisecond)
	// A client restarted after that has nothing to prepare for the
	// finished allocation: no setup, no resolv.conf (nor DNS on a
	// gateway whose bridge may be gone); its teardown runs again.
	resolvPath := cfg.ResolvConfPath
	require.NoError(t, os.Remove(resolvPath))
	require.NoError(t, c.Shutdown())
	c = n.start()
	require.Eventually(t, func() bool {
		_, teardowns := netw.counts(a.ID)
		return teardowns == 2
	}, 5*time.Second, 10*time.Millisecond)
	setups, _ = netw.counts(a.ID)
	require.Equal(t, 1, setups)
	require.NoFileExists(t, resolvPath)
	// Garbage collected: torn down again, which an idempotent
	// Teardown takes as a no-op.
	gcAllocs(t, srv, a.ID)
	require.Eventually(t, func() bool {
		_, teardowns := netw.counts(a.ID)
		return teardowns == 3 && c.NumAllocs() == 0
	}, 5*time.Second, 10*time.Millisecond)

	// A failing setup fails the allocation without starting anything.
	netw.mu.Lock()
	netw.fail = true
	netw.mu.Unlock()
	job2 := testJob(structs.JobTypeService, 1, nil, nil)
	job2.Groups[0].Network = &structs.NetworkSpec{Mode: structs.NetworkModeBridge}
	registerJob(t, srv, job2)
	b := waitAlloc(t, srv, job2)
	b = waitServerStatus(t, srv, b.ID, structs.AllocClientFailed, 5*time.Second)
	require.Contains(t, b.ClientDescription, "setting up network")
	require.Equal(t, []string{structs.TaskEventSetup}, eventTypes(b.TaskStates["work"]))
	require.Zero(t, n.store.CallCount("StartTask", taskID(b)))
}

func TestClient_HostModePortEnv(t *testing.T) {
	srv := testServer(t)
	n := newTestNode(t, srv)
	n.start()
	job := testJob(structs.JobTypeService, 1, nil, nil)
	job.Groups[0].Network = &structs.NetworkSpec{Mode: structs.NetworkModeHost, Ports: []*structs.Port{{Label: "http", To: 8080}}}
	registerJob(t, srv, job)
	a := waitAlloc(t, srv, job)
	waitServerStatus(t, srv, a.ID, structs.AllocClientRunning, 5*time.Second)
	cfg, ok := n.store.Config(taskID(a))
	require.True(t, ok)
	host := cfg.Env["DROVER_HOST_PORT_http"]
	require.NotEmpty(t, host)
	require.Equal(t, host, cfg.Env["DROVER_PORT_http"], "on the host's network the host port is the port")
	require.Equal(t, "127.0.0.1:"+host, cfg.Env["DROVER_ADDR_http"])
	require.NotContains(t, cfg.Env, "DROVER_ALLOC_IP")
	require.Empty(t, cfg.ResolvConfPath)
}

func TestClient_DynamicPortRange(t *testing.T) {
	srv := testServer(t)
	n := newTestNode(t, srv)
	n.cb = func(cfg *Config) { cfg.MinDynamicPort, cfg.MaxDynamicPort = 31000, 31009 }
	c := n.start()
	require.Equal(t, 31000, c.Node().Resources.MinDynamicPort)
	require.Equal(t, 31009, c.Node().Resources.MaxDynamicPort)

	_, err := New(Config{DataDir: t.TempDir(), Driver: mock.New(n.store, ""), Servers: func() []string { return nil },
		MinDynamicPort: 5000, MaxDynamicPort: 4000})
	require.ErrorContains(t, err, "dynamic ports")
	require.Equal(t, structs.ErrInvalid, structs.CodeOf(err))
}

func TestClient_BridgeWithoutNetworkUsesTheHost(t *testing.T) {
	srv := testServer(t)
	n := newTestNode(t, srv)
	n.start()
	job := testJob(structs.JobTypeService, 1, nil, nil)
	job.Groups[0].Network = &structs.NetworkSpec{Mode: structs.NetworkModeBridge}
	registerJob(t, srv, job)
	a := waitAlloc(t, srv, job)
	a = waitServerStatus(t, srv, a.ID, structs.AllocClientRunning, 5*time.Second)
	require.Contains(t, eventTypes(a.TaskStates["work"]), structs.TaskEventSetup)
	cfg, _ := n.store.Config(taskID(a))
	require.Empty(t, cfg.NetNSPath)
}

func TestClient_RegistersAgainWhenForgotten(t *testing.T) {
	srv := testServer(t, func(c *server.Config) { c.MinHeartbeatTTL = 400 * time.Millisecond })
	n := newTestNode(t, srv)
	n.start()

	b, err := structs.Encode(structs.NodeDeregisterRequestType, &structs.NodeDeregisterRequest{NodeIDs: []string{n.nodeID}})
	require.NoError(t, err)
	require.NoError(t, srv.Raft().Apply(b, 5*time.Second).Error())
	node, err := srv.State().Snapshot().NodeByID(nil, n.nodeID)
	require.NoError(t, err)
	require.Nil(t, node)

	// The next heartbeat learns the node is unknown and registers it.
	require.Eventually(t, func() bool {
		node, err := srv.State().Snapshot().NodeByID(nil, n.nodeID)
		require.NoError(t, err)
		return node != nil && node.Status == structs.NodeStatusReady
	}, 5*time.Second, 20*time.Millisecond)
}

func TestClient_RPCMovesOffAnUnreachableServer(t *testing.T) {
	srv := testServer(t)
	n := newTestNode(t, srv)
	live := srv.RPCAddr().String()
	dead := "127.0.0.1:1"
	n.cb = func(cfg *Config) { cfg.Servers = func() []string { return []string{dead, live} } }
	c := n.start()

	c.servers.setPreferred(dead)
	require.Equal(t, dead, c.servers.candidates()[0])
	var reply struct{}
	require.NoError(t, c.rpc("Status.Ping", &structs.GenericRequest{}, &reply))
	require.Equal(t, live, c.servers.candidates()[0], "the server that answered is preferred next")

	// With no server known at all the call waits, and ends with the
	// client.
	n2 := newTestNode(t, srv)
	c2, err := New(Config{NodeID: n2.nodeID, DataDir: n2.dataDir, Servers: func() []string { return nil },
		Driver: mock.New(n2.store, ""), Logger: testLogger(t, "client2")})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- c2.rpc("Status.Ping", &structs.GenericRequest{}, &reply) }()
	select {
	case err := <-done:
		t.Fatalf("rpc returned without a server: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	require.NoError(t, c2.Shutdown())
	require.ErrorIs(t, <-done, errShutdown)
}
