//go:build e2e

package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/pkg/netns"
	gocni "github.com/containerd/go-cni"

	"github.com/drover-sh/drover/client/cni"
	"github.com/drover-sh/drover/e2e"
	"github.com/drover-sh/drover/structs"
)

// httpdScript serves a page on 8080; both the drover job and the bare run
// use it.
const httpdScript = "mkdir -p /tmp/www && echo ok > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"

// networkBench measures bridge networking: CNI setup and teardown per
// allocation (bare go-cni with the same plugins, and drover's client/cni
// around it), then job accepted -> first HTTP 200 through the host port
// against bare `ctr run` + the same CNI setup, then many allocations on
// one node: no host port twice, every one answering, nothing left after
// the stop.
func networkBench(bin, repo string, runs, many int) error {
	dir, err := os.MkdirTemp("", "drover-bench-net-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	tag := fmt.Sprintf("%04x", rand.IntN(1<<16))
	third := 64 + rand.IntN(64)

	// 1. CNI alone.
	bareBridge, bareSubnet := "drb"+tag+"b", fmt.Sprintf("172.30.%d.0/24", third)
	defer exec.Command("ip", "link", "del", bareBridge).Run()
	bare, err := newBareCNI(bareBridge, bareSubnet, filepath.Join(dir, "bare"))
	if err != nil {
		return err
	}
	var bareUp, bareDown []time.Duration
	for i := 0; i < runs; i++ {
		up, down, err := bare.cycle(fmt.Sprintf("bench-%s-%02d", tag, i), 30000+i)
		if err != nil {
			return err
		}
		bareUp, bareDown = append(bareUp, up), append(bareDown, down)
	}
	drvBridge := "drb" + tag + "d"
	defer exec.Command("ip", "link", "del", drvBridge).Run()
	netw, err := cni.New(cni.Config{BridgeName: drvBridge, Subnet: fmt.Sprintf("172.30.%d.0/24", third+64),
		StateDir: filepath.Join(dir, "drover-net")})
	if err != nil {
		return err
	}
	var drvUp, drvDown []time.Duration
	ctx := context.Background()
	for i := 0; i < runs; i++ {
		a := &structs.Allocation{ID: structs.GenerateUUID(), TaskGroup: "g",
			Job:       &structs.Job{Groups: []*structs.TaskGroup{{Name: "g", Network: &structs.NetworkSpec{Mode: "bridge"}}}},
			Resources: &structs.AllocatedResources{Ports: []*structs.AllocatedPort{{Label: "http", Value: 31000 + i, To: 8080}}}}
		start := time.Now()
		st, err := netw.Setup(ctx, a)
		if err != nil {
			return err
		}
		mid := time.Now()
		if err := netw.Teardown(ctx, a, st); err != nil {
			return err
		}
		drvUp, drvDown = append(drvUp, mid.Sub(start)), append(drvDown, time.Since(mid))
	}
	printDurations(fmt.Sprintf("CNI per allocation (lo + bridge + host-local + portmap, tcp+udp mapping of one port), %d runs", runs), "step",
		durations{"bare go-cni: netns + Setup", bareUp},
		durations{"bare go-cni: Remove + netns delete", bareDown},
		durations{"drover client/cni: Setup", drvUp},
		durations{"drover client/cni: Teardown", drvDown})

	// 2. and 3. Through a cluster.
	reg, err := e2e.StartRegistry(repo, dir)
	if err != nil {
		return err
	}
	defer reg.Stop()
	c, err := e2e.NewServers(bin, dir, 1)
	if err != nil {
		return err
	}
	if err := c.Start(); err != nil {
		return err
	}
	defer c.Stop()
	cctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	if _, err := c.WaitLeader(cctx); err != nil {
		return err
	}
	// The node gets a bridge and subnet of its own (NewClient).
	node, err := c.NewClient("bench", "-log-level", "warn")
	if err != nil {
		return err
	}
	if err := node.Start(); err != nil {
		return err
	}
	// Whatever the bench left running (it failed midway): the agent,
	// its containers and its network go.
	defer func() {
		node.Kill()
		if err := e2e.CleanupClient(node); err != nil {
			fmt.Fprintln(os.Stderr, "bench: cleaning up the node:", err)
		}
	}()
	if err := e2e.WaitHTTP(cctx, node); err != nil {
		return err
	}
	server := c.Agents[0].HTTPAddr()
	hc := &http.Client{Timeout: 30 * time.Second}
	if err := waitReadyNode(cctx, hc, server); err != nil {
		return err
	}
	if _, err := webUntil200(cctx, hc, c, "warm", reg.Image, 1); err != nil {
		return fmt.Errorf("warm-up job: %w", err)
	}
	if err := stopJob(cctx, c, "warm"); err != nil {
		return err
	}
	var drover []time.Duration
	for i := 0; i < runs; i++ {
		d, err := webUntil200(cctx, hc, c, fmt.Sprintf("web-%02d", i), reg.Image, 1)
		if err != nil {
			return err
		}
		drover = append(drover, d)
		if err := stopJob(cctx, c, fmt.Sprintf("web-%02d", i)); err != nil {
			return err
		}
	}
	sock := node.ContainerdSocket()
	if out, err := exec.Command("ctr", "-a", sock, "-n", "bench-ctr", "images", "pull", "--plain-http", reg.Image).CombinedOutput(); err != nil {
		return fmt.Errorf("ctr pull: %v: %s", err, out)
	}
	var bareRun []time.Duration
	for i := 0; i < runs; i++ {
		d, err := bare.ctrRun(cctx, sock, reg.Image, fmt.Sprintf("bench-ctr-net-%02d", i), 30500+i)
		if err != nil {
			return err
		}
		bareRun = append(bareRun, d)
	}
	removeCtrBenchNamespace(sock, reg.Image)
	printDurations(fmt.Sprintf("Bridge mode: start -> first HTTP 200 on 127.0.0.1:<host port>, %d runs, cached image", runs), "path",
		durations{"drover: PUT /v1/jobs accepted -> HTTP 200", drover},
		durations{"bare: netns + go-cni + ctr run -d -> HTTP 200", bareRun})
	fmt.Printf("drover's overhead over the bare path (median): %.1f ms (target < 100 ms)\n", ms(median(drover)-median(bareRun)))

	// Many allocations on one node.
	start := time.Now()
	allocs, err := webAll(cctx, hc, c, "many", reg.Image, many)
	if err != nil {
		return fmt.Errorf("%w\nserver log:\n%s\nclient log:\n%s", err, c.Agents[0].LogTail(30), node.LogTail(30))
	}
	took := time.Since(start)
	ports := map[int]string{}
	for _, a := range allocs {
		p := a.Resources.Ports[0].Value
		if other, dup := ports[p]; dup {
			return fmt.Errorf("host port %d given to %s and %s", p, other, a.ID)
		}
		ports[p] = a.ID
	}
	if err := stopJob(cctx, c, "many"); err != nil {
		return err
	}
	left, err := leftRules(cctx, allocs)
	if err != nil {
		return err
	}
	fmt.Printf("%d allocations on one node: all answering HTTP through their host port after %.1f s; %d distinct host ports; "+
		"after job stop: %d iptables rules, %d namespaces left\n", many, took.Seconds(), len(ports), left, countNamespaces(node))
	return nil
}

// bareCNI is go-cni driven directly with the same plugins and conflist
// shape as drover's bridge network.
type bareCNI struct {
	cni gocni.CNI
	dir string
}

func newBareCNI(bridge, subnet, dir string) (*bareCNI, error) {
	conf := fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "%s", "plugins": [
		{"type": "bridge", "bridge": "%s", "isGateway": true, "ipMasq": true, "hairpinMode": true,
		 "ipam": {"type": "host-local", "dataDir": "%s", "ranges": [[{"subnet": "%s"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
		{"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}]}`, bridge, bridge, filepath.Join(dir, "ipam"), subnet)
	c, err := gocni.New(gocni.WithPluginDir([]string{"/usr/lib/cni"}), gocni.WithInterfacePrefix("eth"), gocni.WithMinNetworkCount(2))
	if err != nil {
		return nil, err
	}
	if err := c.Load(gocni.WithConfListBytes([]byte(conf)), gocni.WithLoNetwork); err != nil {
		return nil, err
	}
	return &bareCNI{cni: c, dir: dir}, nil
}

func (b *bareCNI) up(id string, hostPort int) (*netns.NetNS, []gocni.NamespaceOpts, error) {
	ns, err := netns.NewNetNS(filepath.Join(b.dir, "netns"))
	if err != nil {
		return nil, nil, err
	}
	opts := []gocni.NamespaceOpts{gocni.WithCapabilityPortMap([]gocni.PortMapping{
		{HostPort: int32(hostPort), ContainerPort: 8080, Protocol: "tcp"},
		{HostPort: int32(hostPort), ContainerPort: 8080, Protocol: "udp"}})}
	if _, err := b.cni.Setup(context.Background(), id, ns.GetPath(), opts...); err != nil {
		ns.Remove()
		return nil, nil, fmt.Errorf("bare CNI setup: %w", err)
	}
	return ns, opts, nil
}

func (b *bareCNI) down(id string, ns *netns.NetNS, opts []gocni.NamespaceOpts) error {
	if err := b.cni.Remove(context.Background(), id, ns.GetPath(), opts...); err != nil {
		return fmt.Errorf("bare CNI remove: %w", err)
	}
	return ns.Remove()
}

func (b *bareCNI) cycle(id string, hostPort int) (up, down time.Duration, err error) {
	start := time.Now()
	ns, opts, err := b.up(id, hostPort)
	if err != nil {
		return 0, 0, err
	}
	mid := time.Now()
	if err := b.down(id, ns, opts); err != nil {
		return 0, 0, err
	}
	return mid.Sub(start), time.Since(mid), nil
}

// ctrRun times netns + CNI + `ctr run -d` of busybox httpd until the
// host port answers, then removes it all.
func (b *bareCNI) ctrRun(ctx context.Context, sock, image, id string, hostPort int) (time.Duration, error) {
	start := time.Now()
	ns, opts, err := b.up(id, hostPort)
	if err != nil {
		return 0, err
	}
	defer b.down(id, ns, opts)
	ctr := func(args ...string) ([]byte, error) {
		return exec.Command("ctr", append([]string{"-a", sock, "-n", "bench-ctr"}, args...)...).CombinedOutput()
	}
	if out, err := ctr("run", "-d", "--with-ns", "network:"+ns.GetPath(), image, id, "/bin/sh", "-c", httpdScript); err != nil {
		return 0, fmt.Errorf("ctr run: %v: %s", err, out)
	}
	defer func() {
		ctr("task", "kill", "-s", "SIGKILL", id)
		for i := 0; i < 100; i++ {
			if _, err := ctr("task", "rm", id); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		ctr("containers", "rm", id)
	}()
	if err := until200(ctx, fmt.Sprintf("http://127.0.0.1:%d/", hostPort)); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func until200(ctx context.Context, url string) error {
	hc := &http.Client{Timeout: time.Second}
	for {
		resp, err := hc.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s never answered 200: %w", url, ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
}

func webJobYAML(id, image string, count int) string {
	return fmt.Sprintf(`id: %s
type: service
datacenters: [dc1]
groups:
  - name: g
    count: %d
    network:
      mode: bridge
      ports: [{label: http, to: 8080}]
    tasks:
      - name: httpd
        image: %s
        command: /bin/sh
        args: ["-c", %q]
        resources: {cpu: 10, memory: 8}
        kill_timeout: 1s
`, id, count, image, httpdScript)
}

// webUntil200 registers a bridge-mode httpd job and returns the time from
// the registration's answer to the first 200 through the host port.
func webUntil200(ctx context.Context, hc *http.Client, c *e2e.Cluster, id, image string, count int) (time.Duration, error) {
	if err := put(hc, c.Agents[0].HTTPAddr()+"/v1/jobs", "application/yaml", []byte(webJobYAML(id, image, count))); err != nil {
		return 0, fmt.Errorf("registering %s: %w\nserver log:\n%s", id, err, c.Agents[0].LogTail(30))
	}
	accepted := time.Now()
	allocs, err := waitPorts(ctx, c, id, count)
	if err != nil {
		return 0, err
	}
	if err := until200(ctx, fmt.Sprintf("http://127.0.0.1:%d/", allocs[0].Resources.Ports[0].Value)); err != nil {
		return 0, err
	}
	return time.Since(accepted), nil
}

// webAll registers a job of count allocations and waits until every one
// answers through its host port.
func webAll(ctx context.Context, hc *http.Client, c *e2e.Cluster, id, image string, count int) ([]*structs.Allocation, error) {
	if err := put(hc, c.Agents[0].HTTPAddr()+"/v1/jobs", "application/yaml", []byte(webJobYAML(id, image, count))); err != nil {
		return nil, fmt.Errorf("registering %s: %w", id, err)
	}
	allocs, err := waitPorts(ctx, c, id, count)
	if err != nil {
		return nil, err
	}
	for _, a := range allocs {
		if err := until200(ctx, fmt.Sprintf("http://127.0.0.1:%d/", a.Resources.Ports[0].Value)); err != nil {
			return nil, err
		}
	}
	return allocs, nil
}

// waitPorts waits until the job has count placed allocations and returns
// them with their ports.
func waitPorts(ctx context.Context, c *e2e.Cluster, job string, count int) ([]*structs.Allocation, error) {
	cl := c.Agents[0].Client()
	for {
		stubs, _, err := cl.Jobs().Allocations(ctx, job, nil)
		if err == nil && len(stubs) >= count {
			var out []*structs.Allocation
			for _, s := range stubs {
				a, _, err := cl.Allocations().Info(ctx, s.ID, nil)
				if err != nil || a.Resources == nil || len(a.Resources.Ports) == 0 {
					break
				}
				out = append(out, a)
			}
			if len(out) == len(stubs) {
				return out, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("job %s: allocations not placed: %w", job, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// stopJob stops a job and waits until its allocations are terminal on
// the client.
func stopJob(ctx context.Context, c *e2e.Cluster, job string) error {
	cl := c.Agents[0].Client()
	if _, stderr, code := c.CLI(ctx, c.Agents[0], "job", "stop", job); code != 0 {
		return fmt.Errorf("job stop %s: %s", job, stderr)
	}
	for {
		stubs, _, err := cl.Jobs().Allocations(ctx, job, nil)
		done := err == nil
		for _, s := range stubs {
			if s.ClientStatus == structs.AllocClientRunning || s.ClientStatus == structs.AllocClientPending {
				done = false
			}
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("job %s did not stop: %w", job, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// leftRules counts iptables rules still naming one of the allocations,
// once the client had a moment to tear the last ones down.
func leftRules(ctx context.Context, allocs []*structs.Allocation) (int, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := exec.CommandContext(ctx, "iptables-save").CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("iptables-save: %v: %s", err, out)
		}
		n := 0
		for _, line := range strings.Split(string(out), "\n") {
			for _, a := range allocs {
				if strings.Contains(line, a.ID) {
					n++
				}
			}
		}
		if n == 0 || time.Now().After(deadline) {
			return n, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// countNamespaces counts the node's allocation namespaces left, once the
// client had a moment to finish the last teardowns (the namespace goes
// after the rules).
func countNamespaces(node *e2e.Agent) int {
	deadline := time.Now().Add(30 * time.Second)
	for {
		entries, _ := os.ReadDir(filepath.Join(node.DataDir, "client", "network", "netns"))
		if len(entries) == 0 || time.Now().After(deadline) {
			return len(entries)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
