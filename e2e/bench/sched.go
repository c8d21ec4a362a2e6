//go:build e2e

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/drover-sh/drover/e2e"
	"github.com/drover-sh/drover/structs"
)

// schedBench measures the scheduler end to end on a fresh 3-server
// cluster: nodes simulated nodes registered and heartbeating, then jobs
// jobs of count allocations each submitted at once; the clock stops when
// the simulated nodes have received every allocation, i.e. when all
// placements are committed in Raft and delivered to the nodes. A second
// clock stops when every job's evaluation is complete with nothing
// blocked: all placements committed, whether delivered yet or not.
func schedBench(bin string, nodes, jobs, count int, spread bool) error {
	dir, err := os.MkdirTemp("", "drover-schedbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	c, err := e2e.NewServers(bin, dir, 3)
	if err != nil {
		return err
	}
	for _, a := range c.Agents {
		a.Args = append(a.Args, "-log-level", "warn", "-enable-debug")
	}
	if err := c.Start(); err != nil {
		return err
	}
	defer c.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	leader, err := c.WaitLeader(ctx)
	if err != nil {
		return err
	}
	var rpcs []string
	for _, a := range c.Agents {
		rpcs = append(rpcs, a.RPCAddr())
	}
	sim, err := newFleet(rpcs, nodes, spread)
	if err != nil {
		return err
	}
	// Closing may wait on connections the servers' shutdown ends; the
	// cluster must be stopped regardless, so it does not hold the way.
	defer func() { go sim.Close() }()

	where := "all watching the first server"
	if spread {
		where = "spread over the servers"
	}
	fmt.Printf("\nScheduler: %d simulated nodes (%s), %d jobs x %d allocations submitted at once (3 servers)\n", nodes, where, jobs, count)
	start := time.Now()
	if err := sim.Register(ctx); err != nil {
		return err
	}
	regTime := time.Since(start)
	simCtx, stopSim := context.WithCancel(ctx)
	var simDone sync.WaitGroup
	simDone.Add(1)
	go func() { defer simDone.Done(); sim.Run(simCtx) }()
	defer func() {
		stopSim()
		// At 5,000 nodes a few blocking queries have been seen to stay
		// in flight after the simulator closed its connections; the
		// bench exits next, so it waits a bounded time and goes on.
		stopped := make(chan struct{})
		go func() { simDone.Wait(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(10 * time.Second):
			fmt.Println("(the simulator did not stop within 10 s)")
		}
	}()

	// The leader's CPU while the fleet only heartbeats.
	const idle = 20 * time.Second
	hb0, cpu0 := sim.Stats().Heartbeats, cpuTime(leader.PID())
	time.Sleep(idle)
	hb1, cpu1 := sim.Stats().Heartbeats, cpuTime(leader.PID())

	client := &http.Client{Transport: transport, Timeout: time.Minute}
	prof := startProfile(c.Agents, leader, "sched", schedProfileLength)
	defer prof.wait()
	// CPU of every process while placing: on one machine the servers and
	// the simulated fleet share the cores, so what the fleet and the
	// followers burn is taken from the leader.
	cpuStart := make([]time.Duration, len(c.Agents)+1)
	for i, a := range c.Agents {
		cpuStart[i] = cpuTime(a.PID())
	}
	cpuStart[len(c.Agents)] = cpuTime(os.Getpid())
	elections0 := electionCount(c)
	submitStart := time.Now()
	var wg sync.WaitGroup
	errCh := make(chan error, jobs)
	sem := make(chan struct{}, 16)
	for j := 0; j < jobs; j++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(j int) {
			defer wg.Done()
			defer func() { <-sem }()
			target := c.Agents[j%len(c.Agents)].HTTPAddr() + "/v1/jobs"
			if err := put(client, target, "application/json", schedJobJSON(j, count)); err != nil {
				errCh <- fmt.Errorf("submitting job %d: %w", j, err)
			}
		}(j)
	}
	wg.Wait()
	close(errCh)
	if err := <-errCh; err != nil {
		return err
	}
	submitted := time.Since(submitStart)
	committedCh := make(chan time.Duration, 1)
	go func() {
		for ctx.Err() == nil {
			if allEvalsComplete(client, leader.HTTPAddr(), jobs) {
				committedCh <- time.Since(submitStart)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	want := int64(jobs * count)
	for sim.Stats().AllocsSeen < want {
		if ctx.Err() != nil {
			return fmt.Errorf("only %d of %d allocations placed before the deadline", sim.Stats().AllocsSeen, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	placed := time.Since(submitStart)
	cpuUsed := make([]time.Duration, len(cpuStart))
	for i, a := range c.Agents {
		cpuUsed[i] = cpuTime(a.PID()) - cpuStart[i]
	}
	cpuUsed[len(c.Agents)] = cpuTime(os.Getpid()) - cpuStart[len(c.Agents)]
	rate := float64(want) / placed.Seconds()
	var committed time.Duration
	select {
	case committed = <-committedCh:
	case <-ctx.Done():
		return fmt.Errorf("evaluations did not complete before the deadline")
	}

	fmt.Printf("| %-52s | %14s |\n", "measure", "value")
	fmt.Println("|------------------------------------------------------|----------------|")
	fmt.Printf("| %-52s | %14s |\n", fmt.Sprintf("register %d nodes (Node.Register, 32 at a time)", nodes), regTime.Round(time.Millisecond))
	fmt.Printf("| %-52s | %14.1f |\n", "heartbeats/s while idle", float64(hb1-hb0)/idle.Seconds())
	fmt.Printf("| %-52s | %13.1f%% |\n", "leader CPU while idle (heartbeats), % of one core", 100*(cpu1-cpu0).Seconds()/idle.Seconds())
	fmt.Printf("| %-52s | %14s |\n", fmt.Sprintf("submit %d jobs (PUT /v1/jobs, 16 at a time)", jobs), submitted.Round(time.Millisecond))
	fmt.Printf("| %-52s | %14s |\n", fmt.Sprintf("first submit -> all %d allocations committed", want), committed.Round(time.Millisecond))
	fmt.Printf("| %-52s | %14.0f |\n", "placements/s committed in Raft", float64(want)/committed.Seconds())
	fmt.Printf("| %-52s | %14s |\n", fmt.Sprintf("first submit -> all %d allocations on nodes", want), placed.Round(time.Millisecond))
	fmt.Printf("| %-52s | %14.0f |\n", "placements/s committed and delivered", rate)
	for _, a := range c.Agents {
		role := "follower"
		if a == leader {
			role = "leader"
		}
		fmt.Printf("| %-52s | %11d MB |\n", "RSS of "+role+" "+a.Name, rssMB(a.PID()))
	}
	for i, a := range c.Agents {
		role := "follower"
		if a == leader {
			role = "leader"
		}
		fmt.Printf("| %-52s | %12.1fs |\n", "CPU of "+role+" "+a.Name+" until all delivered", cpuUsed[i].Seconds())
	}
	fmt.Printf("| %-52s | %12.1fs |\n", "CPU of the simulated nodes (this process)", cpuUsed[len(c.Agents)].Seconds())
	// A leader starved of CPU long enough loses its followers; the run
	// then measures elections too, so say so.
	if elections := electionCount(c) - elections0; elections > 0 {
		fmt.Printf("(%d leader elections started during the run: the figures include failovers)\n", elections)
	}
	st := sim.Stats()
	fmt.Printf("(nodes reported %d running through %d Node.UpdateAllocs calls; %d RPC errors)\n", st.Running, st.UpdateCalls, st.RPCErrors)
	return nil
}

func schedJobJSON(j, count int) []byte {
	return []byte(fmt.Sprintf(`{"id": "sched-%d", "datacenters": ["dc1"], "groups": [{"name": "work", "count": %d,
  "network": {"mode": "host"},
  "tasks": [{"name": "work", "image": "127.0.0.1:5000/drover/busybox:latest", "command": "/bin/sleep",
  "args": ["3600"], "resources": {"cpu": 100, "memory": 64}}]}]}`, j, count))
}

// cpuTime is the user+system CPU time of a process, from /proc.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may contain spaces).
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticks
}

// electionCount is how many elections the agents' logs show so far.
func electionCount(c *e2e.Cluster) int {
	n := 0
	for _, a := range c.Agents {
		n += strings.Count(a.LogTail(1<<30), "starting election")
	}
	return n
}

// rssMB is a process's resident set size in MB.
func rssMB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return kb / 1024
		}
	}
	return 0
}

// allEvalsComplete reports whether each of the jobs has a complete
// evaluation and no evaluation is pending or blocked. An evaluation whose
// plans kept being partly refused ends failed and hands over to a
// follow-up of the same job, so what counts is the job, not the
// registration's own evaluation.
func allEvalsComplete(client *http.Client, addr string, jobs int) bool {
	resp, err := client.Get(addr + "/v1/evaluations")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var evals []*structs.Evaluation
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&evals) != nil {
		return false
	}
	done := map[string]bool{}
	for _, e := range evals {
		switch {
		case e.Status == structs.EvalStatusPending || e.Status == structs.EvalStatusBlocked:
			return false
		case e.Status == structs.EvalStatusComplete && strings.HasPrefix(e.JobID, "sched-"):
			done[e.JobID] = true
		}
	}
	return len(done) >= jobs
}
