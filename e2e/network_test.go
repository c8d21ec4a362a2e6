//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
)

// startNetClients starts 3 servers, a registry and n clients. Each client
// has its own bridge and subnet (NewClient) and its own dynamic port
// range: the clients share this machine, so their bridges, leases and
// host ports must not meet.
func startNetClients(t *testing.T, n int) (*Cluster, *Registry, []*Agent) {
	t.Helper()
	requireRoot(t)
	for _, p := range []string{"bridge", "host-local", "portmap", "loopback"} {
		if _, err := os.Stat(filepath.Join("/usr/lib/cni", p)); err != nil {
			t.Fatalf("CNI plugin %s missing: install containernetworking-plugins", p)
		}
	}
	dir := t.TempDir()
	reg, err := StartRegistry(repoFile(), dir)
	require.NoError(t, err)
	t.Cleanup(reg.Stop)
	c := startServers(t, 3)
	ctx := testCtx(t, 2*time.Minute)
	_, err = c.WaitLeader(ctx)
	require.NoError(t, err)

	var clients []*Agent
	for i := 1; i <= n; i++ {
		min := 20000 + (i-1)*5000
		conf := filepath.Join(dir, fmt.Sprintf("c%d.yaml", i))
		require.NoError(t, writeFile(conf, fmt.Sprintf(`client:
  network:
    min_dynamic_port: %d
    max_dynamic_port: %d
`, min, min+4999)))
		a, err := c.NewClient(fmt.Sprintf("c%d", i), "-config", conf)
		require.NoError(t, err)
		// Cleaned up here too, not only by the cluster's Stop, so that
		// a failed cleanup fails the test.
		t.Cleanup(func() {
			a.Kill()
			if err := CleanupClient(a); err != nil {
				t.Errorf("cleaning up client %s: %v", a.Name, err)
			}
		})
		require.NoError(t, a.Start())
		require.NoError(t, WaitHTTP(ctx, a))
		clients = append(clients, a)
	}
	waitNodesReady(t, c, n)
	return c, reg, clients
}

func webJob(id, image string, count int, port string) string {
	return fmt.Sprintf(`id: %s
type: service
datacenters: [dc1]
groups:
  - name: web
    count: %d
    network:
      mode: bridge
      ports:
        - %s
    tasks:
      - name: httpd
        image: %s
        command: /bin/sh
        args: ["-c", "mkdir -p /tmp/www && echo $DROVER_ALLOC_ID > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"]
        resources: {cpu: 50, memory: 32}
        kill_timeout: 1s
`, id, count, port, image)
}

// httpBody GETs url until it answers 200 and returns the body.
func httpBody(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	var body, last string
	require.Eventually(t, func() bool {
		resp, err := c.Get(url)
		if err != nil {
			last = err.Error()
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body, last = strings.TrimSpace(string(b)), resp.Status
		return resp.StatusCode == 200
	}, 20*time.Second, 50*time.Millisecond, "GET %s: %s", url, last)
	return body
}

// allocEnv reads a variable of the allocation's task environment.
func allocEnv(t *testing.T, c *Cluster, allocID, name string) string {
	t.Helper()
	out, errOut, code := c.CLI(testCtx(t, 30*time.Second), c.Agents[0], "alloc", "exec", allocID, "--", "sh", "-c", "echo $"+name)
	require.Equal(t, 0, code, "exec echo $%s: %s %s", name, out, errOut)
	return strings.TrimSpace(out)
}

func clientByNode(clients []*Agent, node string) *Agent {
	for _, cl := range clients {
		if cl.Name == node {
			return cl
		}
	}
	return nil
}

// networkLeftovers lists what the client's network still holds of the
// allocations: namespaces and records, veths on its bridge, leases,
// iptables rules.
func networkLeftovers(t *testing.T, cl *Agent, allocs []*structs.Allocation) []string {
	var left []string
	netDir := filepath.Join(cl.DataDir, "client", "network")
	entries, _ := os.ReadDir(filepath.Join(netDir, "netns"))
	ipt, err := exec.Command("iptables-save").CombinedOutput()
	require.NoError(t, err, string(ipt))
	leases, _ := os.ReadDir(filepath.Join(netDir, "ipam", cl.Bridge))
	for _, a := range allocs {
		for _, e := range entries {
			if e.Name() == a.ID {
				left = append(left, "netns:"+a.ID)
			}
		}
		if strings.Contains(string(ipt), a.ID) {
			left = append(left, "iptables:"+a.ID)
		}
		for _, l := range leases {
			b, _ := os.ReadFile(filepath.Join(netDir, "ipam", cl.Bridge, l.Name()))
			if strings.Contains(string(b), a.ID) {
				left = append(left, "lease:"+l.Name())
			}
		}
	}
	out, err := exec.Command("ip", "-o", "link", "show", "master", cl.Bridge).CombinedOutput()
	if err == nil && strings.TrimSpace(string(out)) != "" {
		left = append(left, "veths:"+strings.TrimSpace(string(out)))
	}
	return left
}

func requireNothingLeft(t *testing.T, clients []*Agent, allocs []*structs.Allocation) {
	t.Helper()
	for _, cl := range clients {
		require.Eventually(t, func() bool {
			return len(networkLeftovers(t, cl, allocs))+len(leftovers(t, cl, allocs)) == 0
		}, 30*time.Second, 200*time.Millisecond, "left on %s: %v %v",
			cl.Name, networkLeftovers(t, cl, allocs), leftovers(t, cl, allocs))
	}
}

// Bridge networking with the real plugins: a service of 4 over 2 clients
// answers on its dynamic host port (node address and 127.0.0.1) and on
// its own address; a static port is placed only where it is free; job
// stop, and a kill -9 of a client followed by a restart and a stop,
// leave no namespace, veth, lease, rule or container.
func TestNetwork_BridgePortsAndCleanup(t *testing.T) {
	c, reg, clients := startNetClients(t, 2)
	ctx := testCtx(t, 5*time.Minute)

	runJob(t, c, webJob("web", reg.Image, 4, "{label: http, to: 8080}"))
	running := waitAllocs(t, c, "web", 4, func(a *structs.Allocation) bool {
		return a.ClientStatus == structs.AllocClientRunning
	}, 90*time.Second)
	nodes := map[string]bool{}
	for _, a := range running {
		nodes[a.NodeID] = true
		cl := clientByNode(clients, a.NodeName)
		require.NotNil(t, cl, "client of node %s", a.NodeName)
		require.Len(t, a.Resources.Ports, 1)
		hostPort := a.Resources.Ports[0].Value
		require.Equal(t, 8080, a.Resources.Ports[0].To)
		require.Equal(t, a.ID, httpBody(t, fmt.Sprintf("http://%s:%d/", cl.IP, hostPort)), "via the node's address")
		require.Equal(t, a.ID, httpBody(t, fmt.Sprintf("http://127.0.0.1:%d/", hostPort)), "via 127.0.0.1")
		ip := allocEnv(t, c, a.ID, "DROVER_ALLOC_IP")
		require.NotEmpty(t, ip)
		require.Equal(t, a.ID, httpBody(t, fmt.Sprintf("http://%s:8080/", ip)), "on the allocation's own address")
		require.Equal(t, ip+":8080", allocEnv(t, c, a.ID, "DROVER_ADDR_http"))
		require.Equal(t, fmt.Sprint(hostPort), allocEnv(t, c, a.ID, "DROVER_HOST_PORT_http"))
	}
	require.Len(t, nodes, 2, "spread over both clients")

	// A static port: one allocation per node at most; the third cannot
	// be placed and says why.
	static := 33000 + rand.IntN(1000)
	runJob(t, c, webJob("fixed", reg.Image, 3, fmt.Sprintf("{label: http, static: %d, to: 8080}", static)))
	fixed := waitAllocs(t, c, "fixed", 2, func(a *structs.Allocation) bool {
		return a.ClientStatus == structs.AllocClientRunning
	}, 90*time.Second)
	require.NotEqual(t, fixed[0].NodeID, fixed[1].NodeID)
	for _, a := range fixed {
		require.Equal(t, static, a.Resources.Ports[0].Value)
		ip := allocEnv(t, c, a.ID, "DROVER_ALLOC_IP")
		require.Equal(t, a.ID, httpBody(t, fmt.Sprintf("http://%s:8080/", ip)))
	}
	out, errOut, code := c.CLI(ctx, c.Agents[0], "job", "status", "fixed")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "Placement Failure")
	require.Contains(t, out, "ports")

	// job stop: nothing of the job is left on either client.
	for _, job := range []string{"web", "fixed"} {
		out, errOut, code = c.CLI(ctx, c.Agents[0], "job", "stop", job)
		require.Equal(t, 0, code, "%s %s", out, errOut)
	}
	waitAllocs(t, c, "web", 4, func(a *structs.Allocation) bool { return a.ClientTerminalStatus() }, 60*time.Second)
	requireNothingLeft(t, clients, append(running, fixed...))

	// kill -9 of a client, a restart, then a stop.
	runJob(t, c, webJob("again", reg.Image, 4, "{label: http, to: 8080}"))
	again := waitAllocs(t, c, "again", 4, func(a *structs.Allocation) bool {
		return a.ClientStatus == structs.AllocClientRunning
	}, 90*time.Second)
	victim := clientByNode(clients, again[0].NodeName)
	victim.Kill()
	require.NoError(t, victim.Start())
	require.NoError(t, WaitHTTP(ctx, victim))
	waitNodesReady(t, c, 2)
	for _, a := range again {
		if a.NodeName == victim.Name {
			require.Equal(t, a.ID, httpBody(t, fmt.Sprintf("http://%s:%d/", victim.IP, a.Resources.Ports[0].Value)),
				"still served after the agent's restart")
		}
	}
	out, errOut, code = c.CLI(ctx, c.Agents[0], "job", "stop", "again")
	require.Equal(t, 0, code, "%s %s", out, errOut)
	waitAllocs(t, c, "again", 4, func(a *structs.Allocation) bool { return a.ClientTerminalStatus() }, 60*time.Second)
	requireNothingLeft(t, clients, again)
}

// A client killed with -9 while it ran bridge allocations, whose job is
// stopped and collected while it is down, removes their networks when it
// starts again (the sweep).
func TestNetwork_SweepAfterClientCrash(t *testing.T) {
	c, reg, clients := startNetClients(t, 1)
	ctx := testCtx(t, 3*time.Minute)
	runJob(t, c, webJob("crash", reg.Image, 2, "{label: http, to: 8080}"))
	running := waitAllocs(t, c, "crash", 2, func(a *structs.Allocation) bool {
		return a.ClientStatus == structs.AllocClientRunning
	}, 90*time.Second)
	cl := clients[0]
	cl.Kill()
	require.NotEmpty(t, networkLeftovers(t, cl, running), "the networks outlive the agent")
	out, errOut, code := c.CLI(ctx, c.Agents[0], "job", "stop", "-purge", "crash")
	require.Equal(t, 0, code, "%s %s", out, errOut)
	// The allocations are removed from the servers while the client is
	// down (purge + gc), so the restarted client does not know them.
	out, errOut, code = c.CLI(ctx, c.Agents[0], "system", "gc")
	if code != 0 {
		t.Logf("system gc: %s %s (the client's state still knows the allocations)", out, errOut)
	}
	require.NoError(t, cl.Start())
	require.NoError(t, WaitHTTP(ctx, cl))
	requireNothingLeft(t, clients, running)
}
