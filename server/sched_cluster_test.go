package server

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/client/nodesim"
	"github.com/drover-sh/drover/structs"
	"github.com/drover-sh/drover/structs/mock"
)

// simFleet starts n simulated nodes against servers and stops them at the
// end of the test.
func simFleet(t *testing.T, servers []*Server, n, cpu, memory int) *nodesim.Sim {
	t.Helper()
	var addrs []string
	for _, s := range servers {
		addrs = append(addrs, s.RPCAddr().String())
	}
	sim, err := nodesim.New(nodesim.Config{Servers: addrs, Nodes: n, CPU: cpu, Memory: memory, ReportInterval: 20 * time.Millisecond})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, sim.Register(ctx))
	done := make(chan struct{})
	go func() { defer close(done); sim.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		sim.Close()
	})
	return sim
}

// waitRunning waits until the job has exactly want allocations running
// (as the nodes reported them) and nothing else live, and returns them.
func waitRunning(t *testing.T, s *Server, job *structs.Job, want int) []*structs.Allocation {
	t.Helper()
	var live []*structs.Allocation
	require.Eventually(t, func() bool {
		live = liveAllocs(t, s, job)
		if len(live) != want {
			return false
		}
		for _, a := range live {
			if a.ClientStatus != structs.AllocClientRunning {
				return false
			}
		}
		return true
	}, 20*time.Second, 20*time.Millisecond, "job %s: want %d running allocations, have %d live", job.ID, want, len(live))
	return live
}

// requireFits checks that no node is given more than it has and that no
// host port is used twice on a node.
func requireFits(t *testing.T, s *Server, allocs []*structs.Allocation) {
	t.Helper()
	cpu, mem := map[string]int{}, map[string]int{}
	ports := map[string]map[int]string{}
	names := map[string]bool{}
	for _, a := range allocs {
		require.False(t, names[a.Name], "allocation name %s used twice", a.Name)
		names[a.Name] = true
		for _, r := range a.Resources.Tasks {
			cpu[a.NodeID] += r.CPU
			mem[a.NodeID] += r.Memory
		}
		if ports[a.NodeID] == nil {
			ports[a.NodeID] = map[int]string{}
		}
		for _, p := range a.Resources.Ports {
			require.Empty(t, ports[a.NodeID][p.Value], "port %d on node %s given to %s and %s", p.Value, a.NodeID, ports[a.NodeID][p.Value], a.ID)
			ports[a.NodeID][p.Value] = a.ID
		}
	}
	for nodeID := range cpu {
		n, err := s.State().Snapshot().NodeByID(nil, nodeID)
		require.NoError(t, err)
		require.LessOrEqual(t, cpu[nodeID], n.Resources.CPU, "cpu on %s", nodeID)
		require.LessOrEqual(t, mem[nodeID], n.Resources.Memory, "memory on %s", nodeID)
	}
}

func registerStoredJob(t *testing.T, s *Server, job *structs.Job) *structs.Job {
	t.Helper()
	var resp structs.JobRegisterResponse
	require.NoError(t, s.RPC("Job.Register", &structs.JobRegisterRequest{Job: job}, &resp))
	stored, err := s.State().Snapshot().JobByID(nil, job.Namespace, job.ID)
	require.NoError(t, err)
	return stored
}

// A count-10 job over 3 simulated nodes places 10 allocations, each
// within its node's resources.
func TestSchedCluster_Count10Over3Nodes(t *testing.T) {
	servers := testCluster(t, 3, withSchedulers)
	leader := waitForLeader(t, servers...)
	// 10 x 500 MHz does not fit on two 2,000 MHz nodes: all three are used.
	simFleet(t, servers, 3, 2000, 2048)
	job := registerStoredJob(t, leader, mock.Job())
	live := waitRunning(t, leader, job, 10)
	requireFits(t, leader, live)
	nodes := map[string]int{}
	for _, a := range live {
		nodes[a.NodeID]++
	}
	require.Len(t, nodes, 3)
}

// A node that stops heartbeating is marked down within TTL plus grace and
// its allocations are replaced on the other nodes.
func TestSchedCluster_DownNodeIsReplaced(t *testing.T) {
	servers := testCluster(t, 3, func(c *Config) { withSchedulers(c); fastHeartbeats(c) })
	leader := waitForLeader(t, servers...)
	sim := simFleet(t, servers, 3, 4000, 8192)
	job := mock.Job()
	job.Groups[0].Count = 6
	job = registerStoredJob(t, leader, job)
	live := waitRunning(t, leader, job, 6)
	victim := live[0].NodeID
	idx := -1
	for i, id := range sim.NodeIDs() {
		if id == victim {
			idx = i
		}
	}
	require.NotEqual(t, -1, idx)
	sim.StopHeartbeating(idx)
	start := time.Now()
	require.Eventually(t, func() bool {
		n, _ := leader.State().Snapshot().NodeByID(nil, victim)
		return n.Status == structs.NodeStatusDown
	}, 10*time.Second, 10*time.Millisecond)
	t.Logf("node marked down %s after its last heartbeat could have been sent", time.Since(start))

	var after []*structs.Allocation
	require.Eventually(t, func() bool {
		after = waitRunningQuiet(leader, job)
		if len(after) != 6 {
			return false
		}
		for _, a := range after {
			if a.NodeID == victim {
				return false
			}
		}
		return true
	}, 20*time.Second, 20*time.Millisecond)
	requireFits(t, leader, after)
	all, _ := leader.State().Snapshot().AllocsByJob(nil, job.Namespace, job.ID, false)
	var lost int
	for _, a := range all {
		if a.NodeID == victim {
			require.True(t, a.TerminalStatus())
			if a.ClientStatus == structs.AllocClientLost {
				lost++
			}
		}
	}
	require.Positive(t, lost, "allocations of the down node are marked lost")
}

// waitRunningQuiet is liveAllocs filtered to running, without failing.
func waitRunningQuiet(s *Server, job *structs.Job) []*structs.Allocation {
	allocs, err := s.State().Snapshot().AllocsByJob(nil, job.Namespace, job.ID, false)
	if err != nil {
		return nil
	}
	var out []*structs.Allocation
	for _, a := range allocs {
		if !a.TerminalStatus() && a.ClientStatus == structs.AllocClientRunning {
			out = append(out, a)
		}
	}
	return out
}

// Killing the leader while it schedules loses no evaluation: every job
// ends with exactly its count running, and no allocation name twice.
func TestSchedCluster_LeaderKillMidScheduling(t *testing.T) {
	servers := testCluster(t, 3, withSchedulers)
	leader := waitForLeader(t, servers...)
	simFleet(t, servers, 10, 4000, 8192)

	const jobs, count = 40, 5
	var registered []*structs.Job
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < jobs; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			job := mock.Job()
			job.ID = fmt.Sprintf("job-%02d", i)
			job.Groups[0].Count = count
			job.Groups[0].Tasks[0].Resources = &structs.Resources{CPU: 100, Memory: 64}
			stored := registerStoredJob(t, leader, job)
			mu.Lock()
			registered = append(registered, stored)
			mu.Unlock()
		}()
	}
	wg.Wait()
	// Kill the leader once its workers have started placing.
	var placed int
	require.Eventually(t, func() bool {
		allocs, err := leader.State().Snapshot().AllocsByPrefix(nil, "*", "")
		require.NoError(t, err)
		placed = len(allocs)
		return placed > 0
	}, 10*time.Second, time.Millisecond)
	require.NoError(t, leader.Shutdown())
	t.Logf("leader killed with %d of %d allocations placed", placed, jobs*count)
	require.Less(t, placed, jobs*count, "the leader finished before it was killed: the test proves nothing")
	var rest []*Server
	for _, s := range servers {
		if s != leader {
			rest = append(rest, s)
		}
	}
	next := waitForLeader(t, rest...)
	for _, job := range registered {
		live := waitRunning(t, next, job, count)
		requireFits(t, next, live)
	}
	require.Eventually(t, func() bool {
		evals, err := next.State().Snapshot().EvalsByPrefix(nil, "*", "")
		require.NoError(t, err)
		for _, e := range evals {
			if !e.TerminalStatus() && e.Status != structs.EvalStatusBlocked {
				return false
			}
		}
		return true
	}, 20*time.Second, 20*time.Millisecond, "every evaluation ends")
}

// Draining a node moves every allocation off it.
func TestSchedCluster_DrainMovesEverything(t *testing.T) {
	servers := testCluster(t, 3, withSchedulers)
	leader := waitForLeader(t, servers...)
	sim := simFleet(t, servers, 3, 4000, 8192)
	job := mock.Job()
	job.Groups[0].Count = 6
	job.Update = &structs.UpdateStrategy{MaxParallel: 2}
	job = registerStoredJob(t, leader, job)
	waitRunning(t, leader, job, 6)

	target := sim.NodeIDs()[0]
	var resp structs.NodeUpdateStatusResponse
	require.NoError(t, leader.RPC("Node.UpdateDrain", &structs.NodeUpdateDrainRequest{NodeID: target, DrainStrategy: &structs.DrainStrategy{Deadline: structs.Duration(time.Minute)}}, &resp))
	require.Eventually(t, func() bool {
		n, _ := leader.State().Snapshot().NodeByID(nil, target)
		return n.Drain == nil
	}, 20*time.Second, 20*time.Millisecond, "the drain completes")
	live := waitRunning(t, leader, job, 6)
	for _, a := range live {
		require.NotEqual(t, target, a.NodeID)
	}
	requireFits(t, leader, live)
}
