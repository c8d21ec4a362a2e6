//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
)

// checkInterval of the services below: the registry must drop a failing
// instance within two of them.
const checkInterval = 2 * time.Second

// serviceJob serves the allocation's ID over HTTP on port 8080 inside
// its network (bridge) or on a static host port (host), as service name
// with an http check.
func serviceJob(id, image, name, mode string, port int) string {
	network := "mode: bridge\n      ports: [{label: http, to: 8080}]"
	listen := 8080
	if mode == "host" {
		network = fmt.Sprintf("mode: host\n      ports: [{label: http, static: %d}]", port)
		listen = port
	}
	return fmt.Sprintf(`id: %s
type: service
datacenters: [dc1]
groups:
  - name: web
    count: 1
    network:
      %s
    services:
      - name: %s
        port: http
        tags: [e2e]
        checks: [{type: http, path: /index.html, interval: %s, timeout: 1s}]
    tasks:
      - name: httpd
        image: %s
        command: /bin/sh
        args: ["-c", "mkdir -p /tmp/www && echo $DROVER_ALLOC_ID > /tmp/www/index.html && exec httpd -f -p %d -h /tmp/www"]
        resources: {cpu: 50, memory: 32}
        kill_timeout: 1s
`, id, network, name, checkInterval, image, listen)
}

// toolboxJob is a long sleeper in its own bridge network, to resolve and
// fetch from.
func toolboxJob(image string) string {
	return fmt.Sprintf(`id: toolbox
type: service
datacenters: [dc1]
groups:
  - name: box
    network: {mode: bridge}
    tasks:
      - name: sh
        image: %s
        command: /bin/sleep
        args: ["3600"]
        resources: {cpu: 50, memory: 32}
        kill_timeout: 1s
`, image)
}

// instances reads a service's healthy instances (none: an empty list).
func instances(t *testing.T, c *Cluster, name string) []*structs.ServiceRegistration {
	regs, _, err := c.Agents[0].Client().Services().Get(context.Background(), name, nil)
	if structs.IsNotFound(err) || err != nil && strings.Contains(err.Error(), "not found") {
		return nil
	}
	require.NoError(t, err)
	return regs
}

func waitInstances(t *testing.T, c *Cluster, name string, n int, within time.Duration) []*structs.ServiceRegistration {
	t.Helper()
	var regs []*structs.ServiceRegistration
	require.Eventually(t, func() bool {
		regs = instances(t, c, name)
		return len(regs) == n
	}, within, 50*time.Millisecond, "service %s: want %d instances, have %d", name, n, len(regs))
	return regs
}

func execIn(t *testing.T, c *Cluster, allocID string, cmd ...string) (string, int) {
	t.Helper()
	out, errOut, code := c.CLI(testCtx(t, 30*time.Second), c.Agents[0], append([]string{"alloc", "exec", allocID, "--"}, cmd...)...)
	return out + errOut, code
}

// A service with an http check is registered while it passes, found by
// `service info`, resolved by the client's DNS (from a bridge task through
// its resolv.conf, and on the node's DNS address from the host) and
// fetched from; breaking the check removes it within two intervals.
func TestServices_RegistryDNSAndFailingCheck(t *testing.T) {
	c, reg, clients := startNetClients(t, 1)
	ctx := testCtx(t, 5*time.Minute)
	node := clients[0]

	hostPort := 34000 + rand.IntN(1000)
	runJob(t, c, serviceJob("web", reg.Image, "web", "bridge", 0))
	runJob(t, c, serviceJob("webhost", reg.Image, "webhost", "host", hostPort))
	runJob(t, c, toolboxJob(reg.Image))
	running := func(a *structs.Allocation) bool { return a.ClientStatus == structs.AllocClientRunning }
	web := waitAllocs(t, c, "web", 1, running, 90*time.Second)[0]
	webhost := waitAllocs(t, c, "webhost", 1, running, 90*time.Second)[0]
	box := waitAllocs(t, c, "toolbox", 1, running, 90*time.Second)[0]

	// Registered once the check passes: bridge at the allocation's IP
	// and port 8080, host mode at the node's address and host port.
	regs := waitInstances(t, c, "web", 1, 30*time.Second)
	ip := allocEnv(t, c, web.ID, "DROVER_ALLOC_IP")
	require.Equal(t, ip, regs[0].Address)
	require.Equal(t, 8080, regs[0].Port)
	require.Equal(t, web.Resources.Ports[0].Value, regs[0].HostPort)
	hostRegs := waitInstances(t, c, "webhost", 1, 30*time.Second)
	require.Equal(t, node.IP, hostRegs[0].Address)
	require.Equal(t, hostPort, hostRegs[0].Port)

	out, errOut, code := c.CLI(ctx, c.Agents[0], "service", "info", "web")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, structs.ShortID(web.ID))
	require.Contains(t, out, ip+":8080")
	require.Contains(t, out, "[e2e]")
	out, _, code = c.CLI(ctx, c.Agents[0], "service", "list")
	require.Equal(t, 0, code)
	require.Contains(t, out, "webhost")

	// From a task in another job: the name resolves through the bridge
	// gateway (its resolv.conf) and the instance answers.
	var got string
	require.Eventually(t, func() bool {
		got, code = execIn(t, c, box.ID, "nslookup", "web.service.drover")
		return code == 0 && strings.Contains(got, ip)
	}, 20*time.Second, 200*time.Millisecond, "nslookup in the toolbox: %s", got)
	got, code = execIn(t, c, box.ID, "wget", "-q", "-O", "-", "http://web.service.drover:8080/")
	require.Equal(t, 0, code, got)
	require.Contains(t, got, web.ID)

	// On the node: its DNS address answers A and SRV.
	m := new(dns.Msg)
	m.SetQuestion("webhost.service.drover.", dns.TypeSRV)
	resp, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, DNSAddr(node.IP))
	require.NoError(t, err)
	require.Equal(t, dns.RcodeSuccess, resp.Rcode)
	require.Len(t, resp.Answer, 1)
	require.Equal(t, uint16(hostPort), resp.Answer[0].(*dns.SRV).Port)
	require.Equal(t, node.IP, resp.Extra[0].(*dns.A).A.String())
	require.Equal(t, webhost.ID, httpBody(t, fmt.Sprintf("http://%s:%d/", node.IP, hostPort)))

	// Break the check: the served file goes, the instance leaves the
	// registry within two check intervals.
	got, code = execIn(t, c, web.ID, "rm", "/tmp/www/index.html")
	require.Equal(t, 0, code, got)
	broken := time.Now()
	waitInstances(t, c, "web", 0, 2*checkInterval)
	t.Logf("deregistered %s after the check broke (interval %s)", time.Since(broken).Round(time.Millisecond), checkInterval)
	require.Eventually(t, func() bool {
		got, code = execIn(t, c, box.ID, "nslookup", "web.service.drover")
		return code != 0 || !strings.Contains(got, ip)
	}, 10*time.Second, 200*time.Millisecond, "web still resolves: %s", got)

	// Stopping the jobs removes what is left.
	for _, job := range []string{"web", "webhost", "toolbox"} {
		out, errOut, code = c.CLI(ctx, c.Agents[0], "job", "stop", job)
		require.Equal(t, 0, code, "%s %s", out, errOut)
	}
	waitInstances(t, c, "webhost", 0, 30*time.Second)
	_, errOut, code = c.CLI(ctx, c.Agents[0], "service", "info", "webhost")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "not found")
}
