//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/api"
	"github.com/drover-sh/drover/client/nodesim"
	"github.com/drover-sh/drover/structs"
)

// startSim registers n simulated nodes through the given servers and runs
// them until the test ends.
func startSim(t *testing.T, servers []*Agent, n int) *nodesim.Sim {
	t.Helper()
	var addrs []string
	for _, a := range servers {
		addrs = append(addrs, a.RPCAddr())
	}
	sim, err := nodesim.New(nodesim.Config{Servers: addrs, Nodes: n, Name: "sim"})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done; sim.Close() })
	regCtx, regCancel := context.WithTimeout(ctx, 30*time.Second)
	defer regCancel()
	require.NoError(t, sim.Register(regCtx))
	go func() { defer close(done); sim.Run(ctx) }()
	return sim
}

// partitionFor cuts a off from others and heals at cleanup, failing the
// test if any of its rules is left.
func partitionFor(t *testing.T, a *Agent, others ...*Agent) *Partition {
	t.Helper()
	tag := fmt.Sprintf("drover-e2e-%s-%d", strings.ReplaceAll(a.IP, ".", "-"), os.Getpid())
	p, err := NewPartition(tag, a, others...)
	require.NoError(t, err)
	t.Cleanup(func() {
		if err := p.Heal(); err != nil {
			t.Errorf("healing: %v", err)
		}
	})
	return p
}

// runningAllocs returns the job's allocations whose client reports them
// running, read from server a (consistent read).
func runningAllocs(ctx context.Context, a *Agent, job string) ([]*structs.AllocListStub, error) {
	stubs, _, err := a.Client().Jobs().Allocations(ctx, job, nil)
	if err != nil {
		return nil, err
	}
	var out []*structs.AllocListStub
	for _, s := range stubs {
		if s.ClientStatus == structs.AllocClientRunning {
			out = append(out, s)
		}
	}
	return out, nil
}

// (c) One server is cut off from the other two with iptables rules on
// their loopback addresses. It was the leader: it steps down and commits
// nothing (a write sent to it fails and is absent after healing); the
// other two elect a leader and keep scheduling onto simulated nodes;
// after healing the three agree on one leader and all serve the
// majority's writes. The rules are checked gone.
func TestFaults_PartitionMinorityCommitsNothing(t *testing.T) {
	requireIptables(t)
	c := startServers(t, 3)
	ctx := testCtx(t, 90*time.Second)
	old, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	var majority []*Agent
	for _, a := range c.Agents {
		if a != old {
			majority = append(majority, a)
		}
	}

	p := partitionFor(t, old, majority...)
	var leader *Agent
	require.Eventually(t, func() bool {
		leader = AgreedLeader(ctx, majority)
		return leader != nil
	}, 20*time.Second, 50*time.Millisecond, "the majority elects a leader")
	require.NotEqual(t, old.Name, leader.Name)
	require.Eventually(t, func() bool {
		l := LeaderSeenBy(ctx, old)
		return l != old.RPCAddr()
	}, 10*time.Second, 50*time.Millisecond, "the cut-off leader steps down")

	// A write sent to the minority is not committed.
	wctx, wcancel := context.WithTimeout(ctx, 8*time.Second)
	_, _, err = RegisterYAML(wctx, old, JobYAML("minority", "lost", 1))
	wcancel()
	require.Error(t, err, "a write to the cut-off server must fail or time out")

	// The majority keeps scheduling.
	startSim(t, majority, 2)
	_, _, err = RegisterYAML(ctx, majority[0], JobYAML("majority", "kept", 2))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		run, err := runningAllocs(ctx, majority[1], "majority")
		return err == nil && len(run) == 2
	}, 20*time.Second, 100*time.Millisecond, "the majority places and runs the job")

	// Heal: the rules are gone, one leader, every server has the
	// majority's job and none has the minority's.
	require.NoError(t, p.Heal())
	left, err := RulesTagged(p.Tag)
	require.NoError(t, err)
	require.Empty(t, left)
	_, err = c.WaitLeader(testCtx(t, 30*time.Second))
	require.NoError(t, err)
	for _, a := range c.Agents {
		require.Eventually(t, func() bool {
			j, _, err := a.Client().Jobs().Info(ctx, "majority", &api.QueryOptions{AllowStale: true})
			return err == nil && j.Meta["v"] == "kept"
		}, 20*time.Second, 50*time.Millisecond, "%s serves the majority's job", a.Name)
		_, _, err := a.Client().Jobs().Info(ctx, "minority", &api.QueryOptions{AllowStale: true})
		require.True(t, IsNotFound(err), "%s: the minority's write is absent: %v", a.Name, err)
	}
	_, _, err = old.Client().Jobs().Info(ctx, "minority", nil)
	require.True(t, IsNotFound(err), "consistent read: %v", err)
	run, err := runningAllocs(ctx, old, "majority")
	require.NoError(t, err)
	require.Len(t, run, 2)
}

func requireIptables(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("needs root: iptables partitions; run the tests as root, as CI does")
	}
	if _, err := iptables("-S", "OUTPUT"); err != nil {
		t.Fatalf("iptables does not work here: %v", err)
	}
}

// (d) Every server killed with -9 at the same moment and restarted on its
// data dir: every acknowledged job (at its acknowledged version), every
// allocation and every evaluation read before the crash is there after.
func TestFaults_AllServersKilledAndRestarted(t *testing.T) {
	c := startServers(t, 3)
	ctx := testCtx(t, 90*time.Second)
	_, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	startSim(t, c.Agents, 2)

	jobs := map[string]string{}
	evals := map[string]bool{}
	for i := 0; i < 12; i++ {
		id := fmt.Sprintf("durable-%d", i%6)
		val := fmt.Sprintf("v%d", i)
		// auto_revert: the first placements start a deployment, which
		// must survive too (simulated nodes never report health, so it
		// stays running).
		yaml := strings.Replace(JobYAML(id, val, 2), "groups:", "update: {max_parallel: 1, auto_revert: true}\ngroups:", 1)
		_, evalID, err := RegisterYAML(ctx, c.Agents[i%3], yaml)
		require.NoError(t, err, "register %s", id)
		jobs[id] = val
		evals[evalID] = true
	}
	allocs := map[string]bool{}
	require.Eventually(t, func() bool {
		list, _, err := c.Agents[1].Client().Allocations().List(ctx, nil)
		if err != nil {
			return false
		}
		running := 0
		for _, a := range list {
			allocs[a.ID] = true
			if a.ClientStatus == structs.AllocClientRunning {
				running++
			}
		}
		return running == 12
	}, 30*time.Second, 100*time.Millisecond, "12 allocations running")
	list, _, err := c.Agents[2].Client().Evaluations().List(ctx, nil)
	require.NoError(t, err)
	for _, e := range list {
		evals[e.ID] = true
	}
	deps, _, err := c.Agents[0].Client().Deployments().List(ctx, nil)
	require.NoError(t, err)
	require.NotEmpty(t, deps)
	deployments := map[string]uint64{}
	for _, d := range deps {
		deployments[d.ID] = d.JobVersion
	}

	KillAll(c.Agents)
	require.NoError(t, c.Start())
	_, err = c.WaitLeader(testCtx(t, 40*time.Second))
	require.NoError(t, err)

	for _, a := range c.Agents {
		cl := a.Client()
		for id, val := range jobs {
			require.Eventually(t, func() bool {
				j, _, err := cl.Jobs().Info(ctx, id, &api.QueryOptions{AllowStale: true})
				return err == nil && j.Meta["v"] == val
			}, 10*time.Second, 50*time.Millisecond, "%s: job %s at %s", a.Name, id, val)
		}
	}
	cl := c.Agents[0].Client()
	gotAllocs, _, err := cl.Allocations().List(ctx, nil)
	require.NoError(t, err)
	have := map[string]bool{}
	for _, a := range gotAllocs {
		have[a.ID] = true
	}
	for id := range allocs {
		require.True(t, have[id], "allocation %s survived", id)
	}
	gotEvals, _, err := cl.Evaluations().List(ctx, nil)
	require.NoError(t, err)
	have = map[string]bool{}
	for _, e := range gotEvals {
		have[e.ID] = true
	}
	for id := range evals {
		require.True(t, have[id], "evaluation %s survived", id)
	}
	gotDeps, _, err := cl.Deployments().List(ctx, nil)
	require.NoError(t, err)
	haveDep := map[string]uint64{}
	for _, d := range gotDeps {
		haveDep[d.ID] = d.JobVersion
	}
	for id, v := range deployments {
		got, ok := haveDep[id]
		require.True(t, ok, "deployment %s survived", id)
		require.Equal(t, v, got, "deployment %s job version", id)
	}
	t.Logf("after kill -9 of all servers: %d jobs, %d allocations, %d evaluations, %d deployments all present",
		len(jobs), len(allocs), len(evals), len(deployments))
}

// (b) kill -9 of a client running allocations of a service job (count 3
// over 2 clients): they become lost and are replaced on the other client;
// the time from the kill to the replacements running is logged, with the
// moment the servers marked the node down (which dominates).
func TestFaults_ClientKilledAllocsReplaced(t *testing.T) {
	c, reg := startClients(t, 2)
	ctx := testCtx(t, 3*time.Minute)
	runJob(t, c, tickerJob(reg.Image, 3))
	running := waitAllocs(t, c, "ticker", 3, func(a *structs.Allocation) bool {
		return a.ClientStatus == structs.AllocClientRunning
	}, 60*time.Second)
	perNode := map[string][]string{}
	for _, a := range running {
		perNode[a.NodeName] = append(perNode[a.NodeName], a.ID)
	}
	names := make([]string, 0, len(perNode))
	for n := range perNode {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return len(perNode[names[i]]) > len(perNode[names[j]]) })
	victim := clientOf(c, names[0])
	require.NotNil(t, victim)
	var survivor *Agent
	for _, a := range c.Clients {
		if a != victim {
			survivor = a
		}
	}
	lostIDs := perNode[victim.Name]

	killed := time.Now()
	victim.Kill()
	var downAt, replacedAt time.Duration
	cl := c.Agents[0].Client()
	require.Eventually(t, func() bool {
		if downAt == 0 {
			nodes, _, err := cl.Nodes().List(ctx, nil)
			if err == nil {
				for _, n := range nodes {
					if n.Name == victim.Name && n.Status == structs.NodeStatusDown {
						downAt = time.Since(killed)
					}
				}
			}
		}
		stubs, _, err := cl.Jobs().Allocations(ctx, "ticker", nil)
		if err != nil {
			return false
		}
		onSurvivor, lost := 0, 0
		for _, s := range stubs {
			if s.NodeName == survivor.Name && s.ClientStatus == structs.AllocClientRunning && s.DesiredStatus == structs.AllocDesiredRun {
				onSurvivor++
			}
			for _, id := range lostIDs {
				if s.ID == id && s.ClientStatus == structs.AllocClientLost {
					lost++
				}
			}
		}
		if onSurvivor == 3 && lost == len(lostIDs) {
			replacedAt = time.Since(killed)
			return true
		}
		return false
	}, 60*time.Second, 50*time.Millisecond, "the killed client's allocations are lost and replaced on %s", survivor.Name)
	gossip := false
	for _, a := range c.Agents {
		gossip = gossip || strings.Contains(a.LogTail(400), "gossip reports node failed")
	}
	t.Logf("client %s killed with %d allocations: node down after %s, replacements running after %s (gossip failure notice seen: %v)",
		victim.Name, len(lostIDs), downAt.Round(10*time.Millisecond), replacedAt.Round(10*time.Millisecond), gossip)

	// The killed client comes back: its stale allocations, whose tasks
	// outlived the agent, are stopped, so the job never runs more than its
	// count.
	stale, err := victim.TaskPIDs()
	require.NoError(t, err)
	for _, id := range lostIDs {
		require.NotZero(t, stale[id+"-loop"], "task of lost allocation %s still running before the restart: %v", id, stale)
	}
	require.NoError(t, victim.Start())
	require.NoError(t, WaitHTTP(ctx, victim))
	waitNodesReady(t, c, 2)
	require.Eventually(t, func() bool {
		pids, err := victim.TaskPIDs()
		if err != nil {
			return false
		}
		for _, id := range lostIDs {
			if pids[id+"-loop"] != 0 {
				return false
			}
		}
		return true
	}, 30*time.Second, 100*time.Millisecond, "the returning client stops its lost allocations")
	stubs, _, err := cl.Jobs().Allocations(ctx, "ticker", nil)
	require.NoError(t, err)
	live := 0
	for _, s := range stubs {
		if s.DesiredStatus == structs.AllocDesiredRun && (s.ClientStatus == structs.AllocClientRunning || s.ClientStatus == structs.AllocClientPending) {
			live++
		}
	}
	require.Equal(t, 3, live, "the count is not exceeded")
}

// rollingJob is a count-4 service rolled out one allocation at a time;
// version is in the task's env, so changing it replaces every allocation.
func rollingJob(image, version string) string {
	return fmt.Sprintf(`id: rolling
type: service
datacenters: [dc1]
update: {max_parallel: 1, min_healthy_time: 2s, healthy_deadline: 30s, progress_deadline: 1m, auto_revert: true}
groups:
  - name: web
    count: 4
    restart: {attempts: 2, interval: 10m, delay: 1s, mode: fail}
    network: {mode: host}
    tasks:
      - name: loop
        image: %s
        command: /bin/sh
        args: ["-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"]
        env: {VERSION: "%s"}
        resources: {cpu: 20, memory: 16}
        kill_timeout: 1s
`, image, version)
}

// healthyByVersion counts the job's allocations meant to run, running,
// and reported healthy by their client, per job version.
func healthyByVersion(ctx context.Context, a *Agent, job string) (map[uint64]int, error) {
	stubs, _, err := a.Client().Jobs().Allocations(ctx, job, nil)
	if err != nil {
		return nil, err
	}
	out := map[uint64]int{}
	for _, s := range stubs {
		ds := s.DeploymentStatus
		if s.DesiredStatus == structs.AllocDesiredRun && s.ClientStatus == structs.AllocClientRunning &&
			ds != nil && ds.Healthy != nil && *ds.Healthy {
			out[s.JobVersion]++
		}
	}
	return out, nil
}

// (a) kill -9 of the leader in the middle of a rolling deployment of a
// count-4 service (max_parallel 1) on real clients: the new leader
// finishes it (all 4 on the new version, healthy, the version marked
// stable), and no sample during the rollout sees fewer than 3 healthy
// allocations.
func TestFaults_LeaderKilledDuringRollingDeployment(t *testing.T) {
	c, reg := startClients(t, 2)
	ctx := testCtx(t, 3*time.Minute)
	runJob(t, c, rollingJob(reg.Image, "1"))
	var state string
	defer func() {
		if t.Failed() {
			t.Logf("last state: %s", state)
		}
	}()
	require.Eventually(t, func() bool {
		h, err := healthyByVersion(ctx, c.Agents[0], "rolling")
		state = fmt.Sprintf("healthy by version %v %v", h, err)
		stubs, _, _ := c.Agents[0].Client().Jobs().Allocations(ctx, "rolling", nil)
		for _, s := range stubs {
			state += fmt.Sprintf("\n  %s v%d %s/%s dep=%+v", s.ID[:8], s.JobVersion, s.DesiredStatus, s.ClientStatus, s.DeploymentStatus)
			if a, _, err := c.Agents[0].Client().Allocations().Info(ctx, s.ID, nil); err == nil {
				state += " deployment=" + a.DeploymentID
			}
		}
		if err != nil || h[0] != 4 {
			return false
		}
		j, _, err := c.Agents[0].Client().Jobs().Info(ctx, "rolling", nil)
		if err == nil {
			state += fmt.Sprintf("; job version %d stable %v", j.Version, j.Stable)
		}
		return err == nil && j.Version == 0 && j.Stable
	}, 60*time.Second, 100*time.Millisecond, "version 0 deployed: 4 healthy and stable")

	// Sample from the start of the rollout; a sample that fails (no
	// leader for a moment) tells nothing and is skipped.
	low, samples, lowAt, rollStart := 4, 0, "", time.Now()
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			for _, a := range c.Running() {
				h, err := healthyByVersion(ctx, a, "rolling")
				if err != nil {
					continue
				}
				samples++
				if n := h[0] + h[1]; n < low {
					low = n
					lowAt = fmt.Sprintf("%v healthy by version, %s after the rollout began, from %s", h, time.Since(rollStart).Round(time.Millisecond), a.Name)
				}
				break
			}
		}
	}()
	t.Cleanup(func() {
		select {
		case <-sampled:
		default:
			close(stop)
			<-sampled
		}
	})
	runJob(t, c, rollingJob(reg.Image, "2"))
	leader, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		h, err := healthyByVersion(ctx, c.Agents[0], "rolling")
		return err == nil && h[1] >= 1 && h[1] < 4
	}, 60*time.Second, 20*time.Millisecond, "the rollout is under way")
	killed := time.Now()
	leader.Kill()
	var survivor *Agent
	for _, a := range c.Agents {
		if a != leader {
			survivor = a
		}
	}
	require.Eventually(t, func() bool {
		h, err := healthyByVersion(ctx, survivor, "rolling")
		if err != nil || h[1] != 4 {
			return false
		}
		j, _, err := survivor.Client().Jobs().Info(ctx, "rolling", nil)
		return err == nil && j.Version == 1 && j.Stable
	}, 90*time.Second, 50*time.Millisecond, "the new leader finishes the deployment")
	finished := time.Since(killed)
	close(stop)
	<-sampled
	deps, _, err := survivor.Client().Deployments().List(ctx, nil)
	require.NoError(t, err)
	var d1 *structs.Deployment
	for _, d := range deps {
		if d.JobID == "rolling" && d.JobVersion == 1 {
			d1 = d
		}
	}
	require.NotNil(t, d1, "the deployment of version 1: %+v", deps)
	require.Equal(t, structs.DeploymentStatusSuccessful, d1.Status, d1.StatusDescription)
	require.Zero(t, d1.TaskGroups["web"].UnhealthyAllocs, "deployment state %+v", d1.TaskGroups["web"])
	// The final counts are taken from the allocations when it ends, not
	// from whoever ended it (the watcher's count may lag after a failover).
	require.Equal(t, 4, d1.TaskGroups["web"].HealthyAllocs, "deployment state %+v", d1.TaskGroups["web"])
	require.Greater(t, samples, 10, "samples taken during the rollout")
	require.GreaterOrEqual(t, low, 3, "fewer than 3 healthy allocations during the rollout: %s (leader killed %s after the rollout began)",
		lowAt, killed.Sub(rollStart).Round(time.Millisecond))

	require.NoError(t, leader.Start())
	_, err = c.WaitLeader(testCtx(t, 30*time.Second))
	require.NoError(t, err)
	t.Logf("leader %s killed mid-rollout; deployment of version 1 finished %s later; lowest healthy count sampled: %d of 4 (%d samples)",
		leader.Name, finished.Round(10*time.Millisecond), low, samples)
}
