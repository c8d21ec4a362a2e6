//go:build e2e

// Command bench measures a real 3-server drover cluster on loopback:
// Raft-committed job registrations per second through the HTTP API at
// several concurrencies, and leader failover time over repeated kill -9s.
// It prints a table. Run it with `make bench`.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/drover-sh/drover/e2e"
)

func main() {
	duration := flag.Duration("duration", 5*time.Second, "length of each throughput run")
	failovers := flag.Int("failovers", 5, "number of leader kills")
	schedNodes := flag.Int("sched-nodes", 5000, "simulated nodes in the scheduler run (0 skips it)")
	schedJobs := flag.Int("sched-jobs", 100, "jobs submitted at once in the scheduler run")
	schedCount := flag.Int("sched-count", 1000, "allocations per job in the scheduler run")
	writes := flag.Bool("writes", true, "run the registration throughput and failover part")
	clientRuns := flag.Int("client-runs", 20, "job starts timed on a real client node (0 skips the client part)")
	networkRuns := flag.Int("network-runs", 20, "bridge-mode starts and CNI setups timed on a real client node (0 skips the network part)")
	networkAllocs := flag.Int("network-allocs", 100, "allocations started at once on one node in the network part")
	faultRuns := flag.Int("fault-runs", 5, "kill -9 runs of a client and of the leader in the faults part (0 skips it)")
	spread := flag.Bool("sim-spread", false, "split the simulated nodes over the servers, as real clients spread, instead of all reading from the first server")
	flag.DurationVar(&schedProfileLength, "profile-sched", 10*time.Second, "length of the leader's CPU profile in the scheduler run (with -profile-dir)")
	flag.DurationVar(&traceDelay, "profile-trace-at", 5*time.Second, "how long into each phase the leader's 2 s trace starts (with -profile-dir)")
	flag.StringVar(&profileDir, "profile-dir", "", "save the leader's CPU profile and execution trace of each measured phase here")
	flag.Parse()
	var err error
	if *writes {
		err = run(*duration, *failovers)
	}
	if err == nil && *clientRuns > 0 {
		var bin, repo string
		if bin, err = e2e.Binary(); err == nil {
			if repo, err = repoRoot(); err == nil {
				err = clientBench(bin, repo, *clientRuns)
			}
		}
	}
	if err == nil && *networkRuns > 0 {
		var bin, repo string
		if bin, err = e2e.Binary(); err == nil {
			if repo, err = repoRoot(); err == nil {
				err = networkBench(bin, repo, *networkRuns, *networkAllocs)
			}
		}
	}
	if err == nil && *faultRuns > 0 {
		var bin, repo string
		if bin, err = e2e.Binary(); err == nil {
			if repo, err = repoRoot(); err == nil {
				err = faultsBench(bin, repo, *faultRuns)
			}
		}
	}
	if err == nil && *schedNodes > 0 {
		var bin string
		if bin, err = e2e.Binary(); err == nil {
			err = schedBench(bin, *schedNodes, *schedJobs, *schedCount, *spread)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(duration time.Duration, failovers int) error {
	bin, err := e2e.Binary()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "drover-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	c, err := e2e.NewServers(bin, dir, 3)
	if err != nil {
		return err
	}
	for _, a := range c.Agents {
		// Debug logging would cost more than the work measured.
		a.Args = append(a.Args, "-log-level", "warn", "-enable-debug")
	}
	if err := c.Start(); err != nil {
		return err
	}
	defer c.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	leader, err := c.WaitLeader(ctx)
	if err != nil {
		return err
	}

	if os.Getenv("BENCH_PAUSE") != "" {
		fmt.Println("leader:", leader.HTTPAddr())
		for _, a := range c.Agents {
			if a != leader {
				fmt.Println("follower:", a.HTTPAddr())
			}
		}
	}
	fmt.Printf("drover bench: 3 servers on loopback, %d CPUs, %s\n\n", runtime.NumCPU(), runtime.Version())
	fmt.Println("Raft-committed job registrations through PUT /v1/jobs (distinct jobs; YAML body unless noted)")
	fmt.Printf("| %-28s | %11s | %8s | %6s | %9s | %8s | %8s |\n", "target", "concurrency", "requests", "errors", "writes/s", "p50 ms", "p99 ms")
	fmt.Println("|------------------------------|-------------|----------|--------|-----------|----------|----------|")
	runs := []struct {
		name    string
		conc    int
		targets []*e2e.Agent
		json    bool
	}{
		{"leader", 16, []*e2e.Agent{leader}, false},
		{"leader", 64, []*e2e.Agent{leader}, false},
		{"leader, JSON body", 64, []*e2e.Agent{leader}, true},
		{"all 3 servers (forwarding)", 64, c.Agents, false},
	}
	seq := new(atomic.Int64)
	// Warm up connections, Raft pipelines and the Go runtime.
	registrations([]*e2e.Agent{leader}, 16, time.Second, seq, false)
	// CPU per registration of the leader, the followers and this process
	// (the HTTP clients): on one machine they share the cores.
	var cpuRows []string
	for i, r := range runs {
		prof := startProfile(c.Agents, leader, fmt.Sprintf("writes-%d-c%d", i, r.conc), duration-time.Second)
		cpu0 := clusterCPU(c, leader)
		res := registrations(r.targets, r.conc, duration, seq, r.json)
		cpu1 := clusterCPU(c, leader)
		prof.wait()
		fmt.Printf("| %-28s | %11d | %8d | %6d | %9.0f | %8.2f | %8.2f |\n",
			r.name, r.conc, res.ok, res.errors, float64(res.ok)/res.elapsed.Seconds(), ms(res.p50), ms(res.p99))
		if res.ok > 0 {
			per := func(i int) float64 { return float64(cpu1[i]-cpu0[i]) / float64(time.Microsecond) / float64(res.ok) }
			cpuRows = append(cpuRows, fmt.Sprintf("| %-28s | %11d | %8.0f | %9.0f | %7.0f |", r.name, r.conc, per(0), per(1), per(2)))
		}
	}
	fmt.Println()
	fmt.Println("CPU per registration, microseconds")
	fmt.Printf("| %-28s | %11s | %8s | %9s | %7s |\n", "target", "concurrency", "leader", "followers", "clients")
	fmt.Println("|------------------------------|-------------|----------|-----------|---------|")
	for _, row := range cpuRows {
		fmt.Println(row)
	}

	if failovers == 0 {
		return nil
	}
	fmt.Println()
	fmt.Printf("Leader failover: kill -9 of the leader -> first accepted write (%d runs)\n", failovers)
	var times []time.Duration
	for i := 0; i < failovers; i++ {
		d, err := failover(c)
		if err != nil {
			return fmt.Errorf("failover %d: %w", i+1, err)
		}
		times = append(times, d)
		fmt.Printf("  run %d: %.0f ms (a survivor named the new leader after %.0f ms)\n", i+1, ms(d), ms(lastElection))
	}
	slices.Sort(times)
	fmt.Printf("| %-10s | %10s | %10s | %10s |\n", "runs", "median ms", "min ms", "max ms")
	fmt.Println("|------------|------------|------------|------------|")
	fmt.Printf("| %-10d | %10.0f | %10.0f | %10.0f |\n", len(times), ms(times[len(times)/2]), ms(times[0]), ms(times[len(times)-1]))
	return nil
}

// clusterCPU is the CPU time used so far by the leader, by the followers
// together, and by this process.
func clusterCPU(c *e2e.Cluster, leader *e2e.Agent) [3]time.Duration {
	var out [3]time.Duration
	for _, a := range c.Agents {
		if a == leader {
			out[0] += cpuTime(a.PID())
		} else {
			out[1] += cpuTime(a.PID())
		}
	}
	out[2] = cpuTime(os.Getpid())
	return out
}

type result struct {
	ok, errors int
	elapsed    time.Duration
	p50, p99   time.Duration
}

var transport = &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 128, IdleConnTimeout: time.Minute}

// registrations runs conc workers, each registering new jobs back to back
// for d, spread over the targets; it returns throughput and latencies.
func registrations(targets []*e2e.Agent, conc int, d time.Duration, seq *atomic.Int64, asJSON bool) result {
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	var mu sync.Mutex
	var lat []time.Duration
	var errs int
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			url := targets[w%len(targets)].HTTPAddr() + "/v1/jobs"
			var mine []time.Duration
			bad := 0
			for time.Now().Before(deadline) {
				body, ct := jobYAML(seq.Add(1)), "application/yaml"
				if asJSON {
					body, ct = jobJSON(seq.Add(1)), "application/json"
				}
				t0 := time.Now()
				if err := put(client, url, ct, body); err != nil {
					bad++
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			errs += bad
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	r := result{ok: len(lat), errors: errs, elapsed: elapsed}
	if len(lat) > 0 {
		r.p50 = lat[len(lat)/2]
		r.p99 = lat[len(lat)*99/100]
	}
	return r
}

func put(client *http.Client, url, contentType string, body []byte) error {
	req, err := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var buf [512]byte
	for {
		if _, err := resp.Body.Read(buf[:]); err != nil {
			break
		}
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// failover kills the leader and returns the time until a survivor accepts
// a write; then it restarts the old leader and waits for it to rejoin.
func failover(c *e2e.Cluster) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	leader, err := c.WaitLeader(ctx)
	if err != nil {
		return 0, err
	}
	survivors := []*e2e.Agent{}
	for _, a := range c.Agents {
		if a != leader {
			survivors = append(survivors, a)
		}
	}
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	var seq atomic.Int64
	seq.Store(1 << 40)

	killed := time.Now()
	leader.Kill()
	first := make(chan time.Time, len(survivors))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// When a survivor first names another leader: the election, without
	// what follows it (the barrier, the first write's round trip).
	var electedAt atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for electedAt.Load() == 0 {
			for _, s := range survivors {
				if l, err := s.Client().Status().Leader(ctx); err == nil && l != "" && l != leader.RPCAddr() {
					electedAt.CompareAndSwap(0, int64(time.Since(killed)))
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	for _, s := range survivors {
		wg.Add(1)
		go func(url string) {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := put(client, url, "application/yaml", jobYAML(seq.Add(1))); err == nil {
					first <- time.Now()
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}(s.HTTPAddr() + "/v1/jobs")
	}
	var at time.Time
	select {
	case at = <-first:
	case <-ctx.Done():
		close(stop)
		wg.Wait()
		return 0, fmt.Errorf("no write accepted within a minute of the kill")
	}
	close(stop)
	wg.Wait()

	if err := leader.Start(); err != nil {
		return 0, err
	}
	if err := e2e.WaitHTTP(ctx, leader); err != nil {
		return 0, err
	}
	if _, err := c.WaitLeader(ctx); err != nil {
		return 0, err
	}
	lastElection = time.Duration(electedAt.Load())
	return at.Sub(killed), nil
}

// lastElection is how long after the kill of the last failover a survivor
// named the new leader (0 if none did before the first write).
var lastElection time.Duration

func jobYAML(n int64) []byte {
	return []byte(fmt.Sprintf(`id: bench-%d
datacenters: [dc1]
groups:
  - name: web
    count: 3
    tasks:
      - name: server
        image: 127.0.0.1:5000/drover/busybox:latest
        command: /bin/httpd
        args: ["-f", "-p", "8080"]
        resources: {cpu: 100, memory: 64}
`, n))
}

func jobJSON(n int64) []byte {
	return []byte(fmt.Sprintf(`{"id": "bench-%d", "datacenters": ["dc1"], "groups": [{"name": "web", "count": 3,
  "tasks": [{"name": "server", "image": "127.0.0.1:5000/drover/busybox:latest", "command": "/bin/httpd",
  "args": ["-f", "-p", "8080"], "resources": {"cpu": 100, "memory": 64}}]}]}`, n))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
