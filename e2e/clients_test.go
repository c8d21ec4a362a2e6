//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
)

// startClients starts 3 servers, a registry with the test image, and n
// client agents; everything is stopped and cleaned up at the end.
func startClients(t *testing.T, n int) (*Cluster, *Registry) {
	t.Helper()
	requireRoot(t)
	dir := t.TempDir()
	reg, err := StartRegistry(repoFile(), dir)
	require.NoError(t, err)
	t.Cleanup(reg.Stop)

	c := startServers(t, 3)
	ctx := testCtx(t, 2*time.Minute)
	_, err = c.WaitLeader(ctx)
	require.NoError(t, err)
	for i := 1; i <= n; i++ {
		a, err := c.NewClient(fmt.Sprintf("c%d", i))
		require.NoError(t, err)
		require.NoError(t, a.Start())
		require.NoError(t, WaitHTTP(ctx, a))
	}
	waitNodesReady(t, c, n)
	return c, reg
}

func requireRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root: containerd, runc and mounts; run the tests as root, as CI does")
	}
	for _, bin := range []string{"containerd", "runc", "ctr", "docker-registry", "umoci", "skopeo"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is not installed: run scripts/install-deps.sh", bin)
		}
	}
}

// waitNodesReady waits for n ready nodes with a healthy containerd.
func waitNodesReady(t *testing.T, c *Cluster, n int) []*structs.NodeListStub {
	t.Helper()
	var nodes []*structs.NodeListStub
	require.Eventually(t, func() bool {
		list, _, err := c.Agents[0].Client().Nodes().List(context.Background(), nil)
		if err != nil {
			return false
		}
		ready := 0
		for _, node := range list {
			if node.Status == structs.NodeStatusReady {
				ready++
			}
		}
		nodes = list
		return ready == n
	}, 60*time.Second, 100*time.Millisecond, "nodes: %+v", nodes)
	return nodes
}

func runJob(t *testing.T, c *Cluster, yaml string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "job.yaml")
	require.NoError(t, os.WriteFile(path, []byte(yaml), 0o644))
	out, errOut, code := c.CLI(testCtx(t, time.Minute), c.Agents[0], "job", "run", "-detach", path)
	require.Equal(t, 0, code, "job run: %s %s", out, errOut)
}

// waitAllocs waits until the job has want allocations for which ok holds.
func waitAllocs(t *testing.T, c *Cluster, job string, want int, ok func(*structs.Allocation) bool, within time.Duration) []*structs.Allocation {
	t.Helper()
	cl := c.Agents[0].Client()
	var got []*structs.Allocation
	var last string
	require.Eventually(t, func() bool {
		stubs, _, err := cl.Jobs().Allocations(context.Background(), job, nil)
		if err != nil {
			last = err.Error()
			return false
		}
		got = got[:0]
		var states []string
		for _, s := range stubs {
			a, _, err := cl.Allocations().Info(context.Background(), s.ID, nil)
			if err != nil {
				return false
			}
			states = append(states, a.ClientStatus)
			if ok(a) {
				got = append(got, a)
			}
		}
		last = strings.Join(states, ",")
		return len(got) == want
	}, within, 100*time.Millisecond, "allocations of %s: %s", job, last)
	return got
}

func clientOf(c *Cluster, nodeName string) *Agent {
	for _, a := range c.Clients {
		if a.Name == nodeName {
			return a
		}
	}
	return nil
}

func batchJob(image string) string {
	return fmt.Sprintf(`id: hello
type: batch
datacenters: [dc1]
groups:
  - name: greet
    tasks:
      - name: echo
        image: %s
        command: /bin/echo
        args: ["hello from drover"]
        resources: {cpu: 50, memory: 16}
`, image)
}

func tickerJob(image string, count int) string {
	return fmt.Sprintf(`id: ticker
type: service
datacenters: [dc1]
groups:
  - name: tick
    count: %d
    restart: {attempts: 3, interval: 10m, delay: 1s, mode: fail}
    network: {mode: host}
    tasks:
      - name: loop
        image: %s
        command: /bin/sh
        args: ["-c", "trap 'exit 0' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"]
        resources: {cpu: 50, memory: 32}
        kill_timeout: 2s
`, count, image)
}

// The whole client path with the real containerd: a batch job completes
// with its output in the logs; a service job of 4 runs on 2 clients, its
// logs follow, exec works, a killed process is restarted by policy, a
// client killed with -9 and restarted reattaches without restarting
// anything, and a job stop leaves nothing behind in containerd.
func TestClients_RunLogsExecRestartReattachStop(t *testing.T) {
	testStart := time.Now()
	c, reg := startClients(t, 2)
	ctx := testCtx(t, 5*time.Minute)

	// Batch: complete, exit 0, output in alloc logs.
	runJob(t, c, batchJob(reg.Image))
	done := waitAllocs(t, c, "hello", 1, func(a *structs.Allocation) bool {
		return a.ClientStatus == structs.AllocClientComplete
	}, 90*time.Second)
	ts := done[0].TaskStates["echo"]
	require.NotNil(t, ts)
	require.False(t, ts.Failed)
	var exit *structs.TaskEvent
	for _, e := range ts.Events {
		if e.Type == structs.TaskEventTerminated {
			exit = e
		}
	}
	require.NotNil(t, exit, "events: %+v", ts.Events)
	require.Equal(t, 0, exit.ExitCode)
	out, errOut, code := c.CLI(ctx, c.Agents[1], "alloc", "logs", done[0].ID[:8])
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "hello from drover\n", out)

	// Service, count 4 over 2 clients.
	runJob(t, c, tickerJob(reg.Image, 4))
	running := waitAllocs(t, c, "ticker", 4, func(a *structs.Allocation) bool {
		return a.ClientStatus == structs.AllocClientRunning
	}, 90*time.Second)
	nodes := map[string]bool{}
	for _, a := range running {
		nodes[a.NodeID] = true
	}
	require.Len(t, nodes, 2, "spread over both clients")
	target := running[0]

	// alloc logs -f follows: new lines keep arriving.
	follow := exec.CommandContext(ctx, c.Bin, "alloc", "logs", "-f", target.ID)
	follow.Env = append(os.Environ(), "DROVER_ADDR="+c.Agents[2].HTTPAddr())
	pipe, err := follow.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, follow.Start())
	lines := bufio.NewScanner(pipe)
	var seen []string
	deadline := time.AfterFunc(30*time.Second, func() { follow.Process.Kill() })
	for lines.Scan() && len(seen) < 25 {
		seen = append(seen, lines.Text())
	}
	deadline.Stop()
	follow.Process.Kill()
	follow.Wait()
	require.Len(t, seen, 25, "lines followed: %v", seen)
	require.True(t, strings.HasPrefix(seen[24], "tick "), seen[24])

	// exec: the allocation's hostname.
	out, errOut, code = c.CLI(ctx, c.Agents[0], "alloc", "exec", target.ID[:8], "--", "cat", "/etc/hostname")
	require.Equal(t, 0, code, "exec: %s %s", out, errOut)
	require.Equal(t, allocHostname(target.ID), strings.TrimSpace(out))
	_, _, code = c.CLI(ctx, c.Agents[0], "alloc", "exec", target.ID[:8], "--", "sh", "-c", "exit 3")
	require.Equal(t, 3, code, "exec passes the exit code on")

	// Kill the task's process from the host: the restart policy acts.
	owner := clientOf(c, target.NodeName)
	require.NotNil(t, owner, "client of node %s", target.NodeName)
	pids, err := owner.TaskPIDs()
	require.NoError(t, err)
	cid := target.ID + "-loop"
	pid := pids[cid]
	require.NotZero(t, pid, "task pids: %v", pids)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	restarted := waitAllocs(t, c, "ticker", 1, func(a *structs.Allocation) bool {
		s := a.TaskStates["loop"]
		return a.ID == target.ID && s != nil && s.Restarts == 1 && s.State == structs.TaskStateRunning
	}, 60*time.Second)
	var types []string
	for _, e := range restarted[0].TaskStates["loop"].Events {
		types = append(types, e.Type)
	}
	require.Contains(t, types, structs.TaskEventTerminated)
	require.Contains(t, types, structs.TaskEventRestarting)

	// kill -9 of a client agent and a restart: the same PIDs run on, no
	// task restarts.
	before, err := owner.TaskPIDs()
	require.NoError(t, err)
	restartsBefore := restartCounts(t, c, "ticker")
	owner.Kill()
	require.NoError(t, owner.Start())
	require.NoError(t, WaitHTTP(ctx, owner))
	waitNodesReady(t, c, 2)
	// Give the restarted agent time to reattach and report.
	require.Eventually(t, func() bool {
		out, _, code := c.CLI(ctx, owner, "node", "status", "-self")
		return code == 0 && strings.Contains(out, "ready")
	}, 30*time.Second, 200*time.Millisecond)
	after, err := owner.TaskPIDs()
	require.NoError(t, err)
	require.Equal(t, before, after, "the same containers with the same PIDs")
	waitAllocs(t, c, "ticker", 4, func(a *structs.Allocation) bool {
		return a.ClientStatus == structs.AllocClientRunning
	}, 30*time.Second)
	require.Equal(t, restartsBefore, restartCounts(t, c, "ticker"), "no task was restarted")

	// job stop leaves nothing of the job in either containerd.
	out, errOut, code = c.CLI(ctx, c.Agents[0], "job", "stop", "ticker")
	require.Equal(t, 0, code, "%s %s", out, errOut)
	waitAllocs(t, c, "ticker", 4, func(a *structs.Allocation) bool {
		return a.ClientTerminalStatus()
	}, 60*time.Second)
	for _, cl := range c.Clients {
		require.Eventually(t, func() bool {
			return len(leftovers(t, cl, running)) == 0
		}, 30*time.Second, 200*time.Millisecond, "left in %s: %v", cl.Name, leftovers(t, cl, running))
	}
	// Output goes to files the shim writes, exec streams through FIFOs
	// that must be gone once it ends.
	require.Empty(t, fifosSince(t, testStart), "containerd FIFOs left behind")
}

// fifosSince lists containerd's FIFO directories made after start.
func fifosSince(t *testing.T, start time.Time) []string {
	entries, err := os.ReadDir("/run/containerd/fifo")
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		info, err := e.Info()
		if err == nil && info.ModTime().After(start) {
			out = append(out, e.Name())
		}
	}
	return out
}

// allocHostname is the hostname the client gives an allocation's tasks.
func allocHostname(allocID string) string { return allocID[:8] }

func restartCounts(t *testing.T, c *Cluster, job string) map[string]int {
	t.Helper()
	out := map[string]int{}
	cl := c.Agents[0].Client()
	stubs, _, err := cl.Jobs().Allocations(context.Background(), job, nil)
	require.NoError(t, err)
	for _, s := range stubs {
		a, _, err := cl.Allocations().Info(context.Background(), s.ID, nil)
		require.NoError(t, err)
		for name, ts := range a.TaskStates {
			out[a.ID+"/"+name] = ts.Restarts
		}
	}
	return out
}

// leftovers lists what containerd still holds of the allocations:
// containers, tasks, snapshots named after them.
func leftovers(t *testing.T, a *Agent, allocs []*structs.Allocation) []string {
	var left []string
	for _, kind := range []string{"containers", "tasks", "snapshots"} {
		ids, err := a.CtrIDs(kind, "ls")
		require.NoError(t, err)
		for _, id := range ids {
			for _, al := range allocs {
				if strings.HasPrefix(id, al.ID) {
					left = append(left, kind+":"+id)
				}
			}
		}
	}
	return left
}

// An image that does not exist fails the task with the registry's error,
// and the pull is retried no faster than the restart delay; a client
// whose containerd socket does not answer says so on its node and gets
// no allocations, and does not crash.
func TestClients_BadImageAndUnreachableContainerd(t *testing.T) {
	c, reg := startClients(t, 1)
	ctx := testCtx(t, 3*time.Minute)

	broken, err := c.NewClient("broken", "-containerd-socket", "/nonexistent/containerd.sock")
	require.NoError(t, err)
	require.NoError(t, broken.Start())
	require.NoError(t, WaitHTTP(ctx, broken))
	require.Eventually(t, func() bool {
		out, _, code := c.CLI(ctx, broken, "node", "status", "-self", "-verbose")
		return code == 0 && strings.Contains(out, "/nonexistent/containerd.sock")
	}, 30*time.Second, 200*time.Millisecond, "node status of the broken client names the socket")

	runJob(t, c, fmt.Sprintf(`id: ghost
type: service
datacenters: [dc1]
groups:
  - name: g
    count: 2
    restart: {attempts: 2, interval: 10m, delay: 2s, mode: delay}
    network: {mode: host}
    tasks:
      - name: t
        image: %s/drover/nothing-here:latest
        resources: {cpu: 50, memory: 16}
`, reg.Addr))
	var alloc *structs.Allocation
	require.Eventually(t, func() bool {
		stubs, _, err := c.Agents[0].Client().Jobs().Allocations(ctx, "ghost", nil)
		if err != nil || len(stubs) == 0 {
			return false
		}
		for _, s := range stubs {
			a, _, err := c.Agents[0].Client().Allocations().Info(ctx, s.ID, nil)
			if err != nil {
				return false
			}
			ts := a.TaskStates["t"]
			if ts != nil && countEvents(ts, structs.TaskEventDriverFailure) >= 2 {
				alloc = a
				return true
			}
		}
		return false
	}, 90*time.Second, 200*time.Millisecond)
	nodeName := alloc.NodeName
	require.NotEqual(t, "broken", nodeName, "no allocation on the node without a runtime")
	var failures []*structs.TaskEvent
	for _, e := range alloc.TaskStates["t"].Events {
		if e.Type == structs.TaskEventDriverFailure {
			failures = append(failures, e)
		}
	}
	require.Contains(t, strings.ToLower(failures[0].Message), "not found", "the registry's words: %q", failures[0].Message)
	gap := time.Duration(failures[1].Time - failures[0].Time)
	require.GreaterOrEqual(t, gap, 2*time.Second, "retried no faster than the restart delay")

	stubs, _, err := c.Agents[0].Client().Jobs().Allocations(ctx, "ghost", nil)
	require.NoError(t, err)
	for _, s := range stubs {
		require.NotEqual(t, "broken", s.NodeName)
	}
	require.True(t, broken.Running(), "the client without containerd keeps running")
}

func countEvents(ts *structs.TaskState, typ string) int {
	n := 0
	for _, e := range ts.Events {
		if e.Type == typ {
			n++
		}
	}
	return n
}

// Past client.gc_max_allocs a real client removes the directories of its
// oldest finished allocations; the servers keep their records, and
// `alloc logs` says why the files are gone. Its containerd's log is
// rotated past client.log_max_bytes while containerd runs.
// (The name is short on purpose: the test's temp dir carries it, and
// containerd's socket path under it is limited to 107 bytes.)
func TestClients_GCAndLogRotation(t *testing.T) {
	c, reg := startClients(t, 0)
	ctx := testCtx(t, 3*time.Minute)
	cfg := filepath.Join(t.TempDir(), "client.yaml")
	require.NoError(t, writeFile(cfg, "client:\n  gc_max_allocs: 2\n  log_max_bytes: 4096\n"))
	a, err := c.NewClient("gc", "-config", cfg)
	require.NoError(t, err)
	require.NoError(t, a.Start())
	require.NoError(t, WaitHTTP(ctx, a))
	waitNodesReady(t, c, 1)

	runJob(t, c, fmt.Sprintf(`id: short
type: batch
datacenters: [dc1]
groups:
  - name: g
    count: 5
    network: {mode: host}
    tasks:
      - name: t
        image: %s/drover/busybox:latest
        command: /bin/sh
        args: [-c, "echo done"]
        resources: {cpu: 50, memory: 16}
`, reg.Addr))
	allocs := waitAllocs(t, c, "short", 5, func(a *structs.Allocation) bool {
		return a.ClientStatus == structs.AllocClientComplete
	}, 90*time.Second)

	allocDir := filepath.Join(a.DataDir, "client", "allocs")
	require.Eventually(t, func() bool {
		entries, err := os.ReadDir(allocDir)
		return err == nil && len(entries) == 2
	}, 30*time.Second, 100*time.Millisecond, "the client keeps 2 allocation dirs")

	collected := 0
	for _, alloc := range allocs {
		if _, err := os.Stat(filepath.Join(allocDir, alloc.ID)); err == nil {
			out, errOut, code := c.CLI(ctx, c.Agents[0], "alloc", "logs", alloc.ID)
			require.Equal(t, 0, code, "%s %s", out, errOut)
			require.Equal(t, "done\n", out)
			continue
		}
		collected++
		_, errOut, code := c.CLI(ctx, c.Agents[0], "alloc", "logs", alloc.ID)
		require.NotEqual(t, 0, code)
		require.Contains(t, errOut, "garbage-collected", "alloc logs of a collected allocation: %s", errOut)
		if collected == 1 {
			t.Logf("alloc logs of a collected allocation: %s", strings.TrimSpace(errOut))
		}
	}
	require.Equal(t, 3, collected)
	// The servers still have all five.
	waitAllocs(t, c, "short", 5, func(a *structs.Allocation) bool {
		return a.ClientStatus == structs.AllocClientComplete
	}, 5*time.Second)

	// containerd logged more than 4 KiB by now (its start alone does).
	logPath := filepath.Join(a.DataDir, "containerd", "containerd.log")
	require.Eventually(t, func() bool {
		rotated, err1 := os.Stat(logPath + ".1")
		current, err2 := os.Stat(logPath)
		return err1 == nil && err2 == nil && rotated.Size() > 4096 && current.Size() <= 4096+64<<10
	}, 30*time.Second, 100*time.Millisecond, "containerd.log rotated")
}
