package client

import (
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/server"
	"github.com/drover-sh/drover/structs"
)

// healthServer is an HTTP server whose /health the test turns on and off.
type healthServer struct {
	port    int
	healthy atomic.Bool
}

func newHealthServer(t *testing.T) *healthServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	h := &healthServer{port: ln.Addr().(*net.TCPAddr).Port}
	h.healthy.Store(true)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" || !h.healthy.Load() {
			http.Error(w, "unhealthy", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok"))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return h
}

// serviceJob runs one long-lived task in the host network with a static
// port, declaring service "web" on it with the given checks.
func serviceJob(port int, checks ...*structs.Check) *structs.Job {
	j := testJob(structs.JobTypeService, 1, nil, nil)
	g := j.Groups[0]
	g.Network = &structs.NetworkSpec{Mode: structs.NetworkModeHost, Ports: []*structs.Port{{Label: "http", Static: port}}}
	g.Services = []*structs.Service{{Name: "web", Port: "http", Tags: []string{"v1"}, Checks: checks}}
	return j
}

func httpCheck(interval time.Duration) *structs.Check {
	return &structs.Check{Type: structs.CheckHTTP, Path: "/health", Port: "http",
		Interval: structs.Duration(interval), Timeout: structs.Duration(interval / 3)}
}

// getService reads the instances of a service, blocking past index when
// it is not zero.
func getService(t *testing.T, srv *server.Server, name string, index uint64) *structs.ServiceGetResponse {
	t.Helper()
	var resp structs.ServiceGetResponse
	require.NoError(t, srv.RPC("Service.Get", &structs.ServiceGetRequest{ServiceName: name,
		QueryOptions: structs.QueryOptions{MinQueryIndex: index, MaxQueryTime: 10 * time.Second}}, &resp))
	return &resp
}

func waitInstances(t *testing.T, srv *server.Server, name string, n int, within time.Duration) *structs.ServiceGetResponse {
	t.Helper()
	var resp *structs.ServiceGetResponse
	require.Eventually(t, func() bool {
		resp = getService(t, srv, name, 0)
		return len(resp.Services) == n
	}, within, 5*time.Millisecond, "service %s did not reach %d instances", name, n)
	return resp
}

// The Done-when loop: registered while the http check passes, gone within
// two intervals of it failing (a blocking Service.Get wakes for it), back
// when it passes again, gone when the job stops.
func TestClient_ServiceFollowsItsHTTPCheck(t *testing.T) {
	srv := testServer(t)
	n := newTestNode(t, srv)
	n.start()
	hs := newHealthServer(t)
	const interval = 300 * time.Millisecond
	job := serviceJob(hs.port, httpCheck(interval))
	registerJob(t, srv, job)
	a := waitAlloc(t, srv, job)

	resp := waitInstances(t, srv, "web", 1, 10*time.Second)
	reg := resp.Services[0]
	require.Equal(t, structs.ServiceRegistrationID(a.ID, "web", "http"), reg.ID)
	require.Equal(t, n.nodeID, reg.NodeID)
	require.Equal(t, job.ID, reg.JobID)
	require.Equal(t, "127.0.0.1", reg.Address, "host mode: the node's address")
	require.Equal(t, hs.port, reg.Port)
	require.Equal(t, hs.port, reg.HostPort)
	require.Equal(t, []string{"v1"}, reg.Tags)

	// The check fails: a blocking read wakes with the instance gone,
	// within two check intervals.
	woke := make(chan *structs.ServiceGetResponse, 1)
	go func() {
		var r structs.ServiceGetResponse
		err := srv.RPC("Service.Get", &structs.ServiceGetRequest{ServiceName: "web",
			QueryOptions: structs.QueryOptions{MinQueryIndex: resp.Index, MaxQueryTime: 10 * time.Second}}, &r)
		if err != nil {
			t.Log(err)
		}
		woke <- &r
	}()
	failedAt := time.Now()
	hs.healthy.Store(false)
	select {
	case r := <-woke:
		require.Empty(t, r.Services)
		require.Less(t, time.Since(failedAt), 2*interval, "deregistered within two intervals")
	case <-time.After(5 * time.Second):
		t.Fatal("the failing instance was not deregistered")
	}

	hs.healthy.Store(true)
	waitInstances(t, srv, "web", 1, 5*time.Second)

	stopJob(t, srv, job)
	waitInstances(t, srv, "web", 0, 5*time.Second)
}

// A service without checks is registered while its task runs; a script
// check runs in the task and follows its exit code.
func TestClient_ServiceWithoutChecksAndScriptCheck(t *testing.T) {
	srv := testServer(t)
	n := newTestNode(t, srv)
	n.start()
	job := serviceJob(23001)
	registerJob(t, srv, job)
	waitAlloc(t, srv, job)
	waitInstances(t, srv, "web", 1, 10*time.Second)

	scripted := serviceJob(23002, &structs.Check{Type: structs.CheckScript, Command: "/bin/check", Args: []string{"-q"},
		Interval: structs.Duration(100 * time.Millisecond), Timeout: structs.Duration(50 * time.Millisecond)})
	scripted.ID = "scripted"
	scripted.Groups[0].Services[0].Name = "db"
	scripted.Groups[0].Tasks[0].Env = map[string]string{"exec_exit_code": "1"}
	registerJob(t, srv, scripted)
	a := waitAlloc(t, srv, scripted)
	waitServerStatus(t, srv, a.ID, structs.AllocClientRunning, 10*time.Second)
	require.Eventually(t, func() bool { return n.store.CallCount("ExecTask", taskID(a)) >= 2 }, 5*time.Second, 10*time.Millisecond)
	require.Empty(t, getService(t, srv, "db", 0).Services, "a failing script keeps the instance out")

	// The same job with a passing script: the new allocation registers.
	scripted.Groups[0].Tasks[0].Env = map[string]string{"exec_exit_code": "0"}
	registerJob(t, srv, scripted)
	resp := waitInstances(t, srv, "db", 1, 10*time.Second)
	require.NotEqual(t, a.ID, resp.Services[0].AllocID)
	require.Equal(t, 23002, resp.Services[0].Port)
}

// A restarted client removes what the servers list for its node that no
// allocation there declares, and keeps its live instances.
func TestClient_ServiceResyncAfterRestart(t *testing.T) {
	srv := testServer(t)
	n := newTestNode(t, srv)
	c := n.start()
	job := serviceJob(23003)
	registerJob(t, srv, job)
	a := waitAlloc(t, srv, job)
	live := waitInstances(t, srv, "web", 1, 10*time.Second).Services[0]

	require.NoError(t, c.Shutdown())
	ghost := live.Copy()
	ghost.ID, ghost.ServiceName = structs.ServiceRegistrationID(a.ID, "ghost", "http"), "ghost"
	var wr structs.GenericResponse
	require.NoError(t, srv.RPC("Service.Upsert", &structs.ServiceRegistrationUpsertRequest{Services: []*structs.ServiceRegistration{ghost}}, &wr))
	require.Len(t, getService(t, srv, "ghost", 0).Services, 1)

	n.start()
	require.Eventually(t, func() bool { return len(getService(t, srv, "ghost", 0).Services) == 0 }, 5*time.Second, 10*time.Millisecond)
	web := getService(t, srv, "web", 0).Services
	require.Len(t, web, 1)
	require.Equal(t, live.ModifyIndex, web[0].ModifyIndex, "the live instance was never deregistered")
}

func TestResolvePort(t *testing.T) {
	a := &structs.Allocation{Resources: &structs.AllocatedResources{Ports: []*structs.AllocatedPort{
		{Label: "http", Value: 25000, To: 8080}, {Label: "admin", Value: 9090},
	}}}
	cases := []struct {
		label, ip string
		want      endpoint
		ok        bool
	}{
		{"http", "", endpoint{"10.1.1.1", 25000, "10.1.1.1", 25000}, true},
		{"http", "172.26.64.5", endpoint{"172.26.64.5", 8080, "10.1.1.1", 25000}, true},
		{"admin", "172.26.64.5", endpoint{"172.26.64.5", 9090, "10.1.1.1", 9090}, true},
		{"8500", "", endpoint{"10.1.1.1", 8500, "10.1.1.1", 8500}, true},
		{"8500", "172.26.64.5", endpoint{addr: "172.26.64.5", port: 8500}, true},
		{"grpc", "", endpoint{}, false},
		{"", "", endpoint{}, false},
		{"70000", "", endpoint{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.label+"/"+tc.ip+"/"+strconv.FormatBool(tc.ok), func(t *testing.T) {
			got, ok := resolvePort(a, tc.label, tc.ip, "10.1.1.1")
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.want, got)
		})
	}
}

// The node's DNS server answers from the registry through the real RPC:
// a registered instance resolves (A and SRV), a stopped one stops
// resolving.
func TestClient_DNSAnswersFromTheRegistry(t *testing.T) {
	srv := testServer(t)
	n := newTestNode(t, srv)
	n.cb = func(cfg *Config) { cfg.DNSAddr = "127.0.0.1:0" }
	c := n.start()
	addrs := c.DNSAddrs()
	require.Len(t, addrs, 1)
	lookup := func(qtype uint16) *mdns.Msg {
		m := new(mdns.Msg)
		m.SetQuestion("web.service.drover.", qtype)
		resp, _, err := (&mdns.Client{Timeout: time.Second}).Exchange(m, addrs[0])
		require.NoError(t, err)
		return resp
	}
	require.Equal(t, mdns.RcodeNameError, lookup(mdns.TypeA).Rcode)

	job := serviceJob(23004)
	registerJob(t, srv, job)
	a := waitAlloc(t, srv, job)
	require.Eventually(t, func() bool { return lookup(mdns.TypeA).Rcode == mdns.RcodeSuccess }, 10*time.Second, 10*time.Millisecond)
	resp := lookup(mdns.TypeA)
	require.Len(t, resp.Answer, 1)
	require.Equal(t, "127.0.0.1", resp.Answer[0].(*mdns.A).A.String())
	resp = lookup(mdns.TypeSRV)
	require.Len(t, resp.Answer, 1)
	require.Equal(t, uint16(23004), resp.Answer[0].(*mdns.SRV).Port)
	require.Equal(t, structs.ShortID(a.ID)+".alloc.drover.", resp.Answer[0].(*mdns.SRV).Target)

	stopJob(t, srv, job)
	require.Eventually(t, func() bool { return lookup(mdns.TypeA).Rcode == mdns.RcodeNameError }, 10*time.Second, 10*time.Millisecond)
}
