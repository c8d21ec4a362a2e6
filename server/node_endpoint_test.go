package server

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
	"github.com/drover-sh/drover/structs/mock"
)

// fastHeartbeats makes node liveness testable in well under a second.
func fastHeartbeats(c *Config) {
	c.MinHeartbeatTTL = 200 * time.Millisecond
	c.HeartbeatGrace = 100 * time.Millisecond
	c.FailoverHeartbeatTTL = 300 * time.Millisecond
}

func registerNode(t *testing.T, s *Server, node *structs.Node) *structs.NodeUpdateResponse {
	t.Helper()
	var resp structs.NodeUpdateResponse
	require.NoError(t, s.RPC("Node.Register", &structs.NodeRegisterRequest{Node: node}, &resp))
	return &resp
}

func TestNode_RegisterValidates(t *testing.T) {
	t.Parallel()
	s := testServer(t, nil)
	cases := map[string]struct {
		mutate func(n *structs.Node)
		field  string
	}{
		"no id":           {func(n *structs.Node) { n.ID = "" }, "node.id"},
		"id with slash":   {func(n *structs.Node) { n.ID = "a/b" }, "node.id"},
		"no name":         {func(n *structs.Node) { n.Name = "" }, "node.name"},
		"no datacenter":   {func(n *structs.Node) { n.Datacenter = "" }, "node.datacenter"},
		"no resources":    {func(n *structs.Node) { n.Resources = nil }, "node.resources"},
		"negative memory": {func(n *structs.Node) { n.Resources.Memory = -1 }, "node.resources.memory"},
		"bad port range":  {func(n *structs.Node) { n.Resources.MinDynamicPort = 40000 }, "node.resources.min_dynamic_port"},
		"bad eligibility": {func(n *structs.Node) { n.SchedulingEligibility = "sometimes" }, "node.scheduling_eligibility"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			n := mock.Node()
			tc.mutate(n)
			var resp structs.NodeUpdateResponse
			err := s.RPC("Node.Register", &structs.NodeRegisterRequest{Node: n}, &resp)
			require.Error(t, err)
			require.Equal(t, structs.ErrInvalid, structs.CodeOf(err))
			require.Contains(t, err.Error(), tc.field)
		})
	}
	idx := s.State().LatestIndex()
	var resp structs.NodeUpdateResponse
	err := s.RPC("Node.Register", &structs.NodeRegisterRequest{Node: func() *structs.Node { n := mock.Node(); n.Status = structs.NodeStatusDown; return n }()}, &resp)
	require.ErrorContains(t, err, "node.status")
	require.Equal(t, idx, s.State().LatestIndex(), "a rejected registration writes nothing")
}

func TestNode_RegisterHeartbeatAndList(t *testing.T) {
	t.Parallel()
	s := testServer(t, nil)
	node := mock.Node()
	node.Status = ""
	resp := registerNode(t, s, node)
	require.GreaterOrEqual(t, resp.HeartbeatTTL, 10*time.Second)
	require.Equal(t, []string{s.RPCAddr().String()}, resp.Servers)

	var got structs.SingleNodeResponse
	require.NoError(t, s.RPC("Node.GetNode", &structs.NodeSpecificRequest{NodeID: node.ID}, &got))
	require.Equal(t, structs.NodeStatusReady, got.Node.Status)
	require.NotZero(t, got.Node.StatusUpdatedAt)

	var hb structs.NodeUpdateResponse
	require.NoError(t, s.RPC("Node.Heartbeat", &structs.NodeHeartbeatRequest{NodeID: node.ID}, &hb))
	require.Equal(t, resp.NodeModifyIndex, hb.Index, "a heartbeat of a ready node writes nothing")

	err := s.RPC("Node.Heartbeat", &structs.NodeHeartbeatRequest{NodeID: "unknown"}, &hb)
	require.Equal(t, structs.ErrNotFound, structs.CodeOf(err))

	var list structs.NodeListResponse
	require.NoError(t, s.RPC("Node.List", &structs.NodeListRequest{QueryOptions: structs.QueryOptions{Prefix: node.ID[:4]}}, &list))
	require.Len(t, list.Nodes, 1)
	require.Equal(t, node.Name, list.Nodes[0].Name)
}

// A node that stops heartbeating is marked down within TTL plus grace,
// with an evaluation for each job that had allocations on it; when it
// heartbeats again it is ready and its jobs are evaluated again.
func TestNode_MissedHeartbeatMarksDownAndEvaluates(t *testing.T) {
	t.Parallel()
	s := testServer(t, fastHeartbeats)
	node := mock.Node()
	registerNode(t, s, node)

	job := mock.Job()
	var jr structs.JobRegisterResponse
	require.NoError(t, s.RPC("Job.Register", &structs.JobRegisterRequest{Job: job}, &jr))
	stored, err := s.State().Snapshot().JobByID(nil, job.Namespace, job.ID)
	require.NoError(t, err)
	alloc := mock.AllocFor(stored, node.ID, 0)
	_, _, err = s.raftApply(structs.ApplyPlanResultsRequestType, &structs.ApplyPlanResultsRequest{Job: stored, Allocs: []*structs.Allocation{alloc}})
	require.NoError(t, err)

	start := time.Now()
	require.Eventually(t, func() bool {
		n, _ := s.State().Snapshot().NodeByID(nil, node.ID)
		return n.Status == structs.NodeStatusDown
	}, 5*time.Second, 10*time.Millisecond)
	took := time.Since(start)
	// The TTL is at most 1.25 x 200 ms, plus 100 ms grace and the 50 ms
	// batch window; allow scheduling slack on a loaded machine.
	require.Less(t, took, 2*time.Second)

	evals, err := s.State().Snapshot().EvalsByJob(nil, job.Namespace, job.ID)
	require.NoError(t, err)
	var nodeEvals int
	for _, e := range evals {
		if e.TriggeredBy == structs.EvalTriggerNodeUpdate && e.NodeID == node.ID {
			nodeEvals++
		}
	}
	require.Equal(t, 1, nodeEvals)

	var hb structs.NodeUpdateResponse
	require.NoError(t, s.RPC("Node.Heartbeat", &structs.NodeHeartbeatRequest{NodeID: node.ID, Status: structs.NodeStatusReady}, &hb))
	n, _ := s.State().Snapshot().NodeByID(nil, node.ID)
	require.Equal(t, structs.NodeStatusReady, n.Status)
	require.Len(t, hb.EvalIDs, 1, "the job with an allocation on the returning node is evaluated")
}

// A new leader does not mark nodes down for heartbeats that went to the
// old leader: it first gives every node the failover TTL, then the usual
// liveness rules apply.
func TestNode_NewLeaderGivesGracePeriod(t *testing.T) {
	t.Parallel()
	const failover = 1500 * time.Millisecond
	servers := testCluster(t, 3, func(c *Config) {
		fastHeartbeats(c)
		c.FailoverHeartbeatTTL = failover
	})
	leader := waitForLeader(t, servers...)
	node := mock.Node()
	registerNode(t, leader, node)
	require.NoError(t, leader.Shutdown())

	var rest []*Server
	for _, s := range servers {
		if s != leader {
			rest = append(rest, s)
		}
	}
	next := waitForLeader(t, rest...)
	require.Eventually(t, func() bool { return next.heartbeats.count() == 1 }, 5*time.Second, 10*time.Millisecond)
	started := time.Now()
	// Several old TTLs (300 ms) later, the node is still up...
	require.Never(t, func() bool {
		n, _ := next.State().Snapshot().NodeByID(nil, node.ID)
		return n.Status != structs.NodeStatusReady
	}, failover/2, 20*time.Millisecond)
	// ...and once the failover TTL is over without a heartbeat, it is down.
	require.Eventually(t, func() bool {
		n, _ := next.State().Snapshot().NodeByID(nil, node.ID)
		return n.Status == structs.NodeStatusDown
	}, 5*time.Second, 10*time.Millisecond)
	require.GreaterOrEqual(t, time.Since(started), failover/2)
}

func TestNode_UpdateAllocsCoalescesAndEvaluatesFailures(t *testing.T) {
	t.Parallel()
	s := testServer(t, nil)
	node := mock.Node()
	registerNode(t, s, node)
	job := mock.Job()
	var jr structs.JobRegisterResponse
	require.NoError(t, s.RPC("Job.Register", &structs.JobRegisterRequest{Job: job}, &jr))
	stored, _ := s.State().Snapshot().JobByID(nil, job.Namespace, job.ID)
	var allocs []*structs.Allocation
	for i := 0; i < 20; i++ {
		allocs = append(allocs, mock.AllocFor(stored, node.ID, i))
	}
	_, _, err := s.raftApply(structs.ApplyPlanResultsRequestType, &structs.ApplyPlanResultsRequest{Job: stored, Allocs: allocs})
	require.NoError(t, err)

	before := s.State().LatestIndex()
	var wg sync.WaitGroup
	indexes := make([]uint64, len(allocs))
	for i, a := range allocs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status := structs.AllocClientRunning
			if i == 0 {
				status = structs.AllocClientFailed
			}
			var resp structs.GenericResponse
			require.NoError(t, s.RPC("Node.UpdateAllocs", &structs.AllocUpdateRequest{Alloc: []*structs.Allocation{{ID: a.ID, ClientStatus: status}}}, &resp))
			indexes[i] = resp.Index
		}()
	}
	wg.Wait()
	distinct := map[uint64]bool{}
	for _, idx := range indexes {
		distinct[idx] = true
	}
	require.Less(t, len(distinct), 5, "20 concurrent updates share a few entries, got %d", len(distinct))
	require.Less(t, s.State().LatestIndex()-before, uint64(5))

	snap := s.State().Snapshot()
	got, _ := snap.AllocByID(nil, allocs[0].ID)
	require.Equal(t, structs.AllocClientFailed, got.ClientStatus)
	got, _ = snap.AllocByID(nil, allocs[1].ID)
	require.Equal(t, structs.AllocClientRunning, got.ClientStatus)
	evals, _ := snap.EvalsByJob(nil, job.Namespace, job.ID)
	var retries int
	for _, e := range evals {
		if e.TriggeredBy == structs.EvalTriggerRetryFailed {
			retries++
		}
	}
	require.Equal(t, 1, retries, "one evaluation reschedules the failed allocation")

	var resp structs.GenericResponse
	err = s.RPC("Node.UpdateAllocs", &structs.AllocUpdateRequest{Alloc: []*structs.Allocation{{ID: allocs[2].ID, ClientStatus: "exploded"}}}, &resp)
	require.Equal(t, structs.ErrInvalid, structs.CodeOf(err))
	require.ErrorContains(t, err, "alloc.client_status")
}

func TestNode_GetAllocsBlocksUntilAPlacement(t *testing.T) {
	t.Parallel()
	s := testServer(t, nil)
	node := mock.Node()
	registerNode(t, s, node)
	var first structs.NodeAllocsResponse
	require.NoError(t, s.RPC("Node.GetAllocs", &structs.NodeSpecificRequest{NodeID: node.ID}, &first))
	require.Empty(t, first.Allocs)

	job := mock.Job()
	var jr structs.JobRegisterResponse
	require.NoError(t, s.RPC("Job.Register", &structs.JobRegisterRequest{Job: job}, &jr))
	stored, _ := s.State().Snapshot().JobByID(nil, job.Namespace, job.ID)

	done := make(chan *structs.NodeAllocsResponse, 1)
	go func() {
		var resp structs.NodeAllocsResponse
		req := &structs.NodeSpecificRequest{NodeID: node.ID, QueryOptions: structs.QueryOptions{MinQueryIndex: s.State().LatestIndex(), MaxQueryTime: 10 * time.Second}}
		if err := s.RPC("Node.GetAllocs", req, &resp); err != nil {
			t.Error(err)
		}
		done <- &resp
	}()
	select {
	case <-done:
		t.Fatal("the query returned before anything changed on the node")
	case <-time.After(100 * time.Millisecond):
	}
	alloc := mock.AllocFor(stored, node.ID, 0)
	_, index, err := s.raftApply(structs.ApplyPlanResultsRequestType, &structs.ApplyPlanResultsRequest{Job: stored, Allocs: []*structs.Allocation{alloc}})
	require.NoError(t, err)
	select {
	case resp := <-done:
		require.Len(t, resp.Allocs, 1)
		require.Equal(t, alloc.ID, resp.Allocs[0].ID)
		require.Equal(t, index, resp.Index)
	case <-time.After(5 * time.Second):
		t.Fatal("the blocking query did not wake up on a placement")
	}
}

func TestNode_DrainAndEligibility(t *testing.T) {
	t.Parallel()
	s := testServer(t, nil)
	node := mock.Node()
	registerNode(t, s, node)
	sys := mock.SystemJob()
	var jr structs.JobRegisterResponse
	require.NoError(t, s.RPC("Job.Register", &structs.JobRegisterRequest{Job: sys}, &jr))

	var resp structs.NodeUpdateStatusResponse
	err := s.RPC("Node.UpdateDrain", &structs.NodeUpdateDrainRequest{NodeID: node.ID}, &resp)
	require.ErrorContains(t, err, "is not draining")
	err = s.RPC("Node.UpdateDrain", &structs.NodeUpdateDrainRequest{NodeID: "missing", DrainStrategy: &structs.DrainStrategy{}}, &resp)
	require.Equal(t, structs.ErrNotFound, structs.CodeOf(err))

	before := time.Now().UnixNano()
	require.NoError(t, s.RPC("Node.UpdateDrain", &structs.NodeUpdateDrainRequest{NodeID: node.ID, DrainStrategy: &structs.DrainStrategy{Deadline: structs.Duration(time.Minute)}}, &resp))
	n, _ := s.State().Snapshot().NodeByID(nil, node.ID)
	require.NotNil(t, n.Drain)
	require.GreaterOrEqual(t, n.Drain.StartedAt, before)
	require.Equal(t, n.Drain.StartedAt+int64(time.Minute), n.Drain.ForceDeadline)
	require.Equal(t, structs.NodeIneligible, n.SchedulingEligibility)

	err = s.RPC("Node.UpdateEligibility", &structs.NodeUpdateEligibilityRequest{NodeID: node.ID, Eligibility: structs.NodeEligible}, &resp)
	require.Equal(t, structs.ErrConflict, structs.CodeOf(err))

	require.NoError(t, s.RPC("Node.UpdateDrain", &structs.NodeUpdateDrainRequest{NodeID: node.ID, MarkEligible: true}, &resp))
	n, _ = s.State().Snapshot().NodeByID(nil, node.ID)
	require.Nil(t, n.Drain)
	require.Equal(t, structs.NodeEligible, n.SchedulingEligibility)
	require.Len(t, resp.EvalIDs, 1, "the system job is evaluated for the node that is eligible again")

	require.NoError(t, s.RPC("Node.UpdateEligibility", &structs.NodeUpdateEligibilityRequest{NodeID: node.ID, Eligibility: structs.NodeIneligible}, &resp))
	n, _ = s.State().Snapshot().NodeByID(nil, node.ID)
	require.Equal(t, structs.NodeIneligible, n.SchedulingEligibility)
}

func TestAlloc_GetListAndJobAllocations(t *testing.T) {
	t.Parallel()
	s := testServer(t, nil)
	node := mock.Node()
	registerNode(t, s, node)
	job := mock.Job()
	var jr structs.JobRegisterResponse
	require.NoError(t, s.RPC("Job.Register", &structs.JobRegisterRequest{Job: job}, &jr))
	stored, _ := s.State().Snapshot().JobByID(nil, job.Namespace, job.ID)
	a0, a1 := mock.AllocFor(stored, node.ID, 0), mock.AllocFor(stored, node.ID, 1)
	_, _, err := s.raftApply(structs.ApplyPlanResultsRequestType, &structs.ApplyPlanResultsRequest{Job: stored, Allocs: []*structs.Allocation{a0, a1}})
	require.NoError(t, err)

	var one structs.SingleAllocResponse
	require.NoError(t, s.RPC("Alloc.GetAlloc", &structs.AllocSpecificRequest{AllocID: a0.ID}, &one))
	require.Equal(t, a0.Name, one.Alloc.Name)
	require.NoError(t, s.RPC("Alloc.GetAlloc", &structs.AllocSpecificRequest{AllocID: "nope"}, &one))
	require.Nil(t, one.Alloc)

	var list structs.AllocListResponse
	require.NoError(t, s.RPC("Alloc.List", &structs.AllocListRequest{}, &list))
	require.Len(t, list.Allocations, 2)

	var ja structs.JobAllocationsResponse
	require.NoError(t, s.RPC("Job.Allocations", &structs.JobSpecificRequest{JobID: job.ID}, &ja))
	require.Len(t, ja.Allocations, 2)
	require.NoError(t, s.RPC("Job.Allocations", &structs.JobSpecificRequest{JobID: "other"}, &ja))
	require.Empty(t, ja.Allocations)
}

// A client watches ID -> AllocModifyIndex and fetches only what changed:
// its own status updates do not end the watch, the servers' changes do.
func TestNode_GetClientAllocsAndAllocGetAllocs(t *testing.T) {
	t.Parallel()
	s := testServer(t, nil)
	node := mock.Node()
	registerNode(t, s, node)
	job := mock.Job()
	var jr structs.JobRegisterResponse
	require.NoError(t, s.RPC("Job.Register", &structs.JobRegisterRequest{Job: job}, &jr))
	stored, _ := s.State().Snapshot().JobByID(nil, job.Namespace, job.ID)
	a0, a1 := mock.AllocFor(stored, node.ID, 0), mock.AllocFor(stored, node.ID, 1)
	_, placed, err := s.raftApply(structs.ApplyPlanResultsRequestType, &structs.ApplyPlanResultsRequest{Job: stored, Allocs: []*structs.Allocation{a0, a1}})
	require.NoError(t, err)

	var watch structs.NodeClientAllocsResponse
	require.NoError(t, s.RPC("Node.GetClientAllocs", &structs.NodeSpecificRequest{NodeID: node.ID}, &watch))
	require.Equal(t, map[string]uint64{a0.ID: placed, a1.ID: placed}, watch.Allocs)
	require.ElementsMatch(t, []string{a0.ID, a1.ID}, allocIDs(watch.Changed), "the first answer carries every allocation")

	var ur structs.GenericResponse
	require.NoError(t, s.RPC("Node.UpdateAllocs", &structs.AllocUpdateRequest{Alloc: []*structs.Allocation{{ID: a0.ID, ClientStatus: structs.AllocClientRunning}}}, &ur))
	var again structs.NodeClientAllocsResponse
	start := time.Now()
	require.NoError(t, s.RPC("Node.GetClientAllocs", &structs.NodeSpecificRequest{NodeID: node.ID, QueryOptions: structs.QueryOptions{MinQueryIndex: watch.Index, MaxQueryTime: 200 * time.Millisecond}}, &again))
	require.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond, "the client's own report does not end the watch")
	require.Equal(t, watch.Index, again.Index)
	require.Equal(t, watch.Allocs, again.Allocs, "a client's own update changes no AllocModifyIndex")
	require.Empty(t, again.Changed)

	// A stop by the servers does, at once.
	type answer struct {
		resp structs.NodeClientAllocsResponse
		err  error
	}
	woke := make(chan answer, 1)
	go func() {
		var a answer
		a.err = s.RPC("Node.GetClientAllocs", &structs.NodeSpecificRequest{NodeID: node.ID, QueryOptions: structs.QueryOptions{MinQueryIndex: again.Index, MaxQueryTime: 10 * time.Second}}, &a.resp)
		woke <- a
	}()
	_, stopped, err := s.raftApply(structs.ApplyPlanResultsRequestType, &structs.ApplyPlanResultsRequest{
		AllocsStopped: []*structs.Allocation{{ID: a1.ID, DesiredStatus: structs.AllocDesiredStop}},
	})
	require.NoError(t, err)
	select {
	case a := <-woke:
		require.NoError(t, a.err)
		r := a.resp
		require.Equal(t, stopped, r.Index)
		require.Equal(t, map[string]uint64{a0.ID: placed, a1.ID: stopped}, r.Allocs)
		require.Len(t, r.Changed, 1, "only what changed after the index the client saw")
		require.Equal(t, a1.ID, r.Changed[0].ID)
		require.Equal(t, structs.AllocDesiredStop, r.Changed[0].DesiredStatus)
		again = r
	case <-time.After(5 * time.Second):
		t.Fatal("a stop did not end the watch")
	}

	var got structs.AllocsGetResponse
	req := &structs.AllocsGetRequest{AllocIDs: []string{a1.ID, "gone", a0.ID}, QueryOptions: structs.QueryOptions{MinQueryIndex: again.Index}}
	require.NoError(t, s.RPC("Alloc.GetAllocs", req, &got))
	require.Len(t, got.Allocs, 2)
	require.Equal(t, a1.ID, got.Allocs[0].ID)
	require.Equal(t, a0.ID, got.Allocs[1].ID)
	require.Equal(t, structs.AllocClientRunning, got.Allocs[1].ClientStatus)
	require.GreaterOrEqual(t, got.Index, again.Index)
}

// An empty node's watch answers index 1 and is not ended by placements on
// other nodes, only by one on the node itself.
func TestNode_GetClientAllocsEmptyNodeIgnoresOtherNodes(t *testing.T) {
	t.Parallel()
	s := testServer(t, nil)
	empty, busy := mock.Node(), mock.Node()
	registerNode(t, s, empty)
	registerNode(t, s, busy)
	job := mock.Job()
	var jr structs.JobRegisterResponse
	require.NoError(t, s.RPC("Job.Register", &structs.JobRegisterRequest{Job: job}, &jr))
	stored, err := s.State().Snapshot().JobByID(nil, job.Namespace, job.ID)
	require.NoError(t, err)

	var first structs.NodeClientAllocsResponse
	require.NoError(t, s.RPC("Node.GetClientAllocs", &structs.NodeSpecificRequest{NodeID: empty.ID}, &first))
	require.Equal(t, uint64(1), first.Index)
	require.Empty(t, first.Allocs)

	_, _, err = s.raftApply(structs.ApplyPlanResultsRequestType, &structs.ApplyPlanResultsRequest{Job: stored, Allocs: []*structs.Allocation{mock.AllocFor(stored, busy.ID, 0)}})
	require.NoError(t, err)
	var again structs.NodeClientAllocsResponse
	start := time.Now()
	require.NoError(t, s.RPC("Node.GetClientAllocs", &structs.NodeSpecificRequest{NodeID: empty.ID, QueryOptions: structs.QueryOptions{MinQueryIndex: first.Index, MaxQueryTime: 200 * time.Millisecond}}, &again))
	require.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond, "a placement elsewhere does not end the watch")
	require.Equal(t, uint64(1), again.Index)

	mine := mock.AllocFor(stored, empty.ID, 1)
	_, placed, err := s.raftApply(structs.ApplyPlanResultsRequestType, &structs.ApplyPlanResultsRequest{Job: stored, Allocs: []*structs.Allocation{mine}})
	require.NoError(t, err)
	var woke structs.NodeClientAllocsResponse
	require.NoError(t, s.RPC("Node.GetClientAllocs", &structs.NodeSpecificRequest{NodeID: empty.ID, QueryOptions: structs.QueryOptions{MinQueryIndex: again.Index, MaxQueryTime: 10 * time.Second}}, &woke))
	require.Equal(t, placed, woke.Index)
	require.Equal(t, map[string]uint64{mine.ID: placed}, woke.Allocs)
}

// Garbage collection of a node's last allocation ends its watch, so the
// client tears down what it kept for it.
func TestNode_GetClientAllocsWakesOnRemoval(t *testing.T) {
	t.Parallel()
	s := testServer(t, nil)
	node := mock.Node()
	registerNode(t, s, node)
	job := mock.Job()
	var jr structs.JobRegisterResponse
	require.NoError(t, s.RPC("Job.Register", &structs.JobRegisterRequest{Job: job}, &jr))
	stored, err := s.State().Snapshot().JobByID(nil, job.Namespace, job.ID)
	require.NoError(t, err)
	a := mock.AllocFor(stored, node.ID, 0)
	a.DesiredStatus = structs.AllocDesiredStop
	_, _, err = s.raftApply(structs.ApplyPlanResultsRequestType, &structs.ApplyPlanResultsRequest{Job: stored, Allocs: []*structs.Allocation{a}})
	require.NoError(t, err)
	var watch structs.NodeClientAllocsResponse
	require.NoError(t, s.RPC("Node.GetClientAllocs", &structs.NodeSpecificRequest{NodeID: node.ID}, &watch))
	require.Len(t, watch.Allocs, 1)

	_, removed, err := s.raftApply(structs.AllocGCRequestType, &structs.AllocGCRequest{AllocIDs: []string{a.ID}})
	require.NoError(t, err)
	var again structs.NodeClientAllocsResponse
	require.NoError(t, s.RPC("Node.GetClientAllocs", &structs.NodeSpecificRequest{NodeID: node.ID, QueryOptions: structs.QueryOptions{MinQueryIndex: watch.Index, MaxQueryTime: 10 * time.Second}}, &again))
	require.Equal(t, removed, again.Index)
	require.Empty(t, again.Allocs)
}

func allocIDs(allocs []*structs.Allocation) []string {
	ids := make([]string, len(allocs))
	for i, a := range allocs {
		ids[i] = a.ID
	}
	return ids
}
