package server

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/internal/testlog"
	"github.com/drover-sh/drover/structs"
	"github.com/drover-sh/drover/structs/mock"
)

// benchPlanSetup starts a leader with nodes and a registered job, and
// returns a function that builds a plan of n allocations spread over the
// nodes.
func benchPlanSetup(b *testing.B, nodes int) (*Server, func(evalID string, n int) *structs.Plan) {
	b.Helper()
	// Only errors: the benchmark log is the figures.
	s := testServer(b, func(c *Config) {
		c.Logger = testlog.New(b, "", hclog.Error)
	})
	ids := make([]string, nodes)
	for i := range ids {
		n := mock.Node()
		ids[i] = n.ID
		_, _, err := s.raftApply(structs.NodeRegisterRequestType, &structs.NodeRegisterRequest{Node: n})
		require.NoError(b, err)
	}
	job := mock.Job()
	job.Groups[0].Network = nil
	job.Groups[0].Tasks[0].Resources = &structs.Resources{CPU: 1, Memory: 4}
	var resp structs.JobRegisterResponse
	require.NoError(b, s.RPC("Job.Register", &structs.JobRegisterRequest{Job: job}, &resp))
	stored, err := s.State().JobByID(nil, job.Namespace, job.ID)
	require.NoError(b, err)

	build := func(evalID string, n int) *structs.Plan {
		plan := &structs.Plan{EvalID: evalID, Priority: 50, Job: stored}
		for i := 0; i < n; i++ {
			a := mock.AllocFor(stored, ids[i%len(ids)], i)
			a.EvalID = evalID
			plan.AppendAlloc(a)
		}
		return plan
	}
	return s, build
}

// outstandingEval hands out an evaluation from the leader's broker so a
// plan for it passes the applier's token check.
func outstandingEval(b testing.TB, s *Server) (*structs.Evaluation, string) {
	e := mock.Eval()
	s.evalBroker.Enqueue(e)
	got, token, err := s.evalBroker.Dequeue(context.Background(), []string{e.Type}, time.Second)
	require.NoError(b, err)
	require.Equal(b, e.ID, got.ID)
	return got, token
}

// BenchmarkPlanApply_1000Allocs measures one plan of 1,000 new
// allocations over 100 nodes through the applier: token check,
// verification of every node against the newest snapshot, one Raft entry
// (encode, log append and fsync, FSM apply) and the answer to the worker.
func BenchmarkPlanApply_1000Allocs(b *testing.B) {
	s, build := benchPlanSetup(b, 100)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		eval, token := outstandingEval(b, s)
		plan := build(eval.ID, 1000)
		b.StartTimer()
		pending, err := s.planQueue.Enqueue(plan, token)
		require.NoError(b, err)
		r := <-pending.respCh
		b.StopTimer()
		require.NoError(b, r.err)
		require.Empty(b, r.result.RejectedNodes)
		require.NoError(b, s.evalBroker.Ack(eval.ID, token))
		b.StartTimer()
	}
}

// BenchmarkPlanVerify_1000Allocs measures the verification alone.
func BenchmarkPlanVerify_1000Allocs(b *testing.B) {
	s, build := benchPlanSetup(b, 100)
	plan := build(structs.GenerateUUID(), 1000)
	snap := s.State().Snapshot()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		result, err := evaluatePlan(snap, nil, plan)
		require.NoError(b, err)
		require.Empty(b, result.RejectedNodes)
	}
}

// BenchmarkPlanVerify_1000Allocs1000Nodes verifies a plan that places
// one allocation on each of 1,000 nodes, the shape of the e2e scheduler
// bench's plans.
func BenchmarkPlanVerify_1000Allocs1000Nodes(b *testing.B) {
	s, build := benchPlanSetup(b, 1000)
	plan := build(structs.GenerateUUID(), 1000)
	snap := s.State().Snapshot()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		result, err := evaluatePlan(snap, nil, plan)
		require.NoError(b, err)
		require.Empty(b, result.RejectedNodes)
	}
}

// BenchmarkPipeline_Placements measures the leader's whole pipeline in
// one process and one server: 10 jobs of 1,000 allocations registered at
// once on 1,000 nodes, until every evaluation is complete. It reports
// placements/s; the e2e bench measures the same across 3 servers.
func BenchmarkPipeline_Placements(b *testing.B) {
	const jobs, count, nodes = 10, 1000, 1000
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s := testServer(b, func(c *Config) {
			c.NumSchedulers = 2
			c.Logger = testlog.New(b, "", hclog.Error)
		})
		for n := 0; n < nodes; n++ {
			_, _, err := s.raftApply(structs.NodeRegisterRequestType, &structs.NodeRegisterRequest{Node: mock.Node()})
			require.NoError(b, err)
		}
		evalIDs := make([]string, jobs)
		b.StartTimer()
		start := time.Now()
		for j := range evalIDs {
			job := mock.Job()
			job.Groups[0].Count = count
			job.Groups[0].Tasks[0].Resources = &structs.Resources{CPU: 20, Memory: 32}
			var resp structs.JobRegisterResponse
			require.NoError(b, s.RPC("Job.Register", &structs.JobRegisterRequest{Job: job}, &resp))
			evalIDs[j] = resp.EvalID
		}
		for _, id := range evalIDs {
			require.Eventually(b, func() bool {
				e, err := s.State().EvalByID(nil, id)
				require.NoError(b, err)
				return e != nil && e.TerminalStatus()
			}, time.Minute, 5*time.Millisecond)
		}
		b.ReportMetric(float64(jobs*count)/time.Since(start).Seconds(), "placements/s")
		b.StopTimer()
		s.Shutdown()
	}
}
