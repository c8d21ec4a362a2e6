//go:build e2e

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/drover-sh/drover/api"
	"github.com/drover-sh/drover/client/nodesim"
	"github.com/drover-sh/drover/e2e"
	"github.com/drover-sh/drover/structs"
)

// faultsBench measures recovery from the two faults a cluster meets most:
// a client killed with -9 (real clients with containerd: kill -> its
// allocations running on the other client) and the leader killed with -9
// (simulated nodes: kill -> the next placement committed by a new leader).
func faultsBench(bin, repo string, runs int) error {
	clientTimes, downTimes, err := clientLossRuns(bin, repo, runs)
	if err != nil {
		return fmt.Errorf("client loss: %w", err)
	}
	leaderTimes, err := leaderLossRuns(bin, runs)
	if err != nil {
		return fmt.Errorf("leader loss: %w", err)
	}
	fmt.Printf("\nFaults: recovery after kill -9 (%d runs each; 3 servers on loopback)\n", runs)
	fmt.Printf("| %-62s | %9s | %9s | %9s | %8s |\n", "fault -> recovered", "median ms", "min ms", "max ms", "target")
	fmt.Println("|----------------------------------------------------------------|-----------|-----------|-----------|----------|")
	row := func(name string, ds []time.Duration, target string) {
		fmt.Printf("| %-62s | %9.0f | %9.0f | %9.0f | %8s |\n", name, ms(median(ds)), ms(slices.Min(ds)), ms(slices.Max(ds)), target)
	}
	row("client kill -> node marked down (real clients, gossip)", downTimes, "")
	row("client kill -> its allocations running on the other client", clientTimes, "< 10 s")
	row("leader kill -> next placement committed (simulated nodes)", leaderTimes, "< 2 s")
	return nil
}

// clientLossRuns runs a count-3 service job on two real clients, kills the
// client holding most of it and times its replacements running on the
// other; each run adds a fresh client in place of the killed one.
func clientLossRuns(bin, repo string, runs int) (replaced, down []time.Duration, err error) {
	dir, err := os.MkdirTemp("", "drover-bench-faults-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	reg, err := e2e.StartRegistry(repo, dir)
	if err != nil {
		return nil, nil, err
	}
	defer reg.Stop()
	c, err := e2e.NewServers(bin, dir, 3)
	if err != nil {
		return nil, nil, err
	}
	for _, a := range c.Agents {
		a.Args = append(a.Args, "-log-level", "warn")
	}
	if err := c.Start(); err != nil {
		return nil, nil, err
	}
	defer c.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if _, err := c.WaitLeader(ctx); err != nil {
		return nil, nil, err
	}
	cl := c.Agents[0].Client()
	addClient := func() (*e2e.Agent, error) {
		a, err := c.NewClient(fmt.Sprintf("c%d", len(c.Clients)+1), "-log-level", "warn")
		if err != nil {
			return nil, err
		}
		if err := a.Start(); err != nil {
			return nil, err
		}
		return a, waitNode(ctx, cl, a.Name, structs.NodeStatusReady)
	}
	live := []*e2e.Agent{}
	for len(live) < 2 {
		a, err := addClient()
		if err != nil {
			return nil, nil, err
		}
		live = append(live, a)
	}
	for i := 0; i < runs; i++ {
		job := fmt.Sprintf("loss-%d", i)
		if _, err := cl.Jobs().Register(ctx, []byte(lossJob(job, reg.Image)), api.ContentTypeYAML, nil); err != nil {
			return nil, nil, fmt.Errorf("registering %s: %w", job, err)
		}
		var perNode map[string]int
		if err := poll(ctx, 60*time.Second, func() bool {
			perNode = runningByNode(ctx, cl, job)
			return perNode[live[0].Name]+perNode[live[1].Name] == 3
		}); err != nil {
			return nil, nil, fmt.Errorf("%s never ran 3 allocations: %v", job, perNode)
		}
		victim, survivor := live[0], live[1]
		if perNode[survivor.Name] > perNode[victim.Name] {
			victim, survivor = survivor, victim
		}
		killed := time.Now()
		victim.Kill()
		var downAt time.Duration
		if err := poll(ctx, 90*time.Second, func() bool {
			if downAt == 0 && nodeStatus(ctx, cl, victim.Name) == structs.NodeStatusDown {
				downAt = time.Since(killed)
			}
			return runningByNode(ctx, cl, job)[survivor.Name] == 3
		}); err != nil {
			return nil, nil, fmt.Errorf("run %d: the allocations of %s never all ran on %s", i+1, victim.Name, survivor.Name)
		}
		took := time.Since(killed)
		if downAt == 0 {
			downAt = took
		}
		replaced, down = append(replaced, took), append(down, downAt)
		fmt.Printf("  client loss run %d: %s killed with %d allocations: node down %.0f ms, replacements running %.0f ms\n",
			i+1, victim.Name, perNode[victim.Name], ms(downAt), ms(took))
		if err := e2e.CleanupClient(victim); err != nil {
			fmt.Fprintln(os.Stderr, "bench: cleaning up", victim.Name+":", err)
		}
		if _, err := cl.Jobs().Deregister(ctx, job, false); err != nil {
			return nil, nil, fmt.Errorf("stopping %s: %w", job, err)
		}
		if i == runs-1 {
			break
		}
		fresh, err := addClient()
		if err != nil {
			return nil, nil, err
		}
		live = []*e2e.Agent{survivor, fresh}
	}
	return replaced, down, nil
}

// lossJob is a count-3 service spread over the clients by the scheduler.
func lossJob(id, image string) string {
	return fmt.Sprintf(`id: %s
type: service
datacenters: [dc1]
groups:
  - name: g
    count: 3
    network: {mode: host}
    tasks:
      - name: t
        image: %s
        command: /bin/sh
        args: ["-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"]
        resources: {cpu: 20, memory: 16}
        kill_timeout: 1s
`, id, image)
}

// runningByNode counts the job's allocations running (and meant to run)
// per node name.
func runningByNode(ctx context.Context, cl *api.Client, job string) map[string]int {
	out := map[string]int{}
	stubs, _, err := cl.Jobs().Allocations(ctx, job, nil)
	if err != nil {
		return out
	}
	for _, s := range stubs {
		if s.ClientStatus == structs.AllocClientRunning && s.DesiredStatus == structs.AllocDesiredRun {
			out[s.NodeName]++
		}
	}
	return out
}

func nodeStatus(ctx context.Context, cl *api.Client, name string) string {
	nodes, _, err := cl.Nodes().List(ctx, nil)
	if err != nil {
		return ""
	}
	for _, n := range nodes {
		if n.Name == name {
			return n.Status
		}
	}
	return ""
}

func waitNode(ctx context.Context, cl *api.Client, name, status string) error {
	if err := poll(ctx, 60*time.Second, func() bool { return nodeStatus(ctx, cl, name) == status }); err != nil {
		return fmt.Errorf("node %s never %s", name, status)
	}
	return nil
}

// poll checks cond every 10 ms until it holds or within passes.
func poll(ctx context.Context, within time.Duration, cond func() bool) error {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// leaderLossRuns kills the leader of 3 servers with 3 simulated nodes and
// times, from the kill, a job registered through the survivors until its
// allocation is committed; then restarts the old leader.
func leaderLossRuns(bin string, runs int) ([]time.Duration, error) {
	dir, err := os.MkdirTemp("", "drover-bench-leaderloss-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	c, err := e2e.NewServers(bin, dir, 3)
	if err != nil {
		return nil, err
	}
	for _, a := range c.Agents {
		a.Args = append(a.Args, "-log-level", "warn")
	}
	if err := c.Start(); err != nil {
		return nil, err
	}
	defer c.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := c.WaitLeader(ctx); err != nil {
		return nil, err
	}
	var rpcs []string
	for _, a := range c.Agents {
		rpcs = append(rpcs, a.RPCAddr())
	}
	sim, err := nodesim.New(nodesim.Config{Servers: rpcs, Nodes: 3, Name: "sim"})
	if err != nil {
		return nil, err
	}
	defer func() { go sim.Close() }()
	if err := sim.Register(ctx); err != nil {
		return nil, err
	}
	simCtx, stopSim := context.WithCancel(ctx)
	var simDone sync.WaitGroup
	simDone.Add(1)
	go func() { defer simDone.Done(); sim.Run(simCtx) }()
	defer func() { stopSim(); simDone.Wait() }()

	var times []time.Duration
	for i := 0; i < runs; i++ {
		leader, err := c.WaitLeader(ctx)
		if err != nil {
			return nil, err
		}
		var survivors []*e2e.Agent
		for _, a := range c.Agents {
			if a != leader {
				survivors = append(survivors, a)
			}
		}
		job := fmt.Sprintf("resume-%d", i)
		killed := time.Now()
		leader.Kill()
		placed, err := firstPlacement(ctx, survivors, job)
		if err != nil {
			return nil, fmt.Errorf("run %d: %w", i+1, err)
		}
		took := placed.Sub(killed)
		times = append(times, took)
		fmt.Printf("  leader loss run %d: %s killed, next placement committed after %.0f ms\n", i+1, leader.Name, ms(took))
		if err := leader.Start(); err != nil {
			return nil, err
		}
		if err := e2e.WaitHTTP(ctx, leader); err != nil {
			return nil, err
		}
		if _, err := c.WaitLeader(ctx); err != nil {
			return nil, err
		}
	}
	return times, nil
}

// firstPlacement registers job through the survivors (retrying while
// there is no leader) and returns when an allocation of it is first seen
// in a consistent read: the new leader has committed a placement.
func firstPlacement(ctx context.Context, survivors []*e2e.Agent, job string) (time.Time, error) {
	body := []byte(e2e.JobYAML(job, "x", 1))
	deadline := time.Now().Add(time.Minute)
	try := func(n int, op func(context.Context, *api.Client) bool) bool {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return op(rctx, survivors[n%len(survivors)].Client())
	}
	accepted := false
	for n := 0; time.Now().Before(deadline); n++ {
		if !accepted {
			accepted = try(n, func(rctx context.Context, cl *api.Client) bool {
				_, err := cl.Jobs().Register(rctx, body, api.ContentTypeYAML, nil)
				return err == nil
			})
		}
		if accepted && try(n, func(rctx context.Context, cl *api.Client) bool {
			stubs, _, err := cl.Jobs().Allocations(rctx, job, nil)
			return err == nil && len(stubs) > 0
		}) {
			return time.Now(), nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return time.Time{}, fmt.Errorf("no placement of %s within a minute", job)
}
