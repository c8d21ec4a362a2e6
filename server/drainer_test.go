package server

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
	"github.com/drover-sh/drover/structs/mock"
)

// actAsScheduler does what the scheduler does with a migrating
// allocation: stop it and place a pending replacement on target.
func actAsScheduler(t *testing.T, s *Server, job *structs.Job, a *structs.Allocation, target string) *structs.Allocation {
	t.Helper()
	stop := a.Copy()
	stop.DesiredStatus = structs.AllocDesiredStop
	repl := mock.AllocFor(job, target, 0)
	repl.Name = a.Name
	repl.PreviousAllocation = a.ID
	_, _, err := s.raftApply(structs.ApplyPlanResultsRequestType, &structs.ApplyPlanResultsRequest{
		Job:           job,
		Allocs:        []*structs.Allocation{repl},
		AllocsStopped: []*structs.Allocation{structs.StoppedAllocDiff(stop, time.Now().UnixNano())},
	})
	require.NoError(t, err)
	return repl
}

func migrating(t *testing.T, s *Server, nodeID string) []*structs.Allocation {
	t.Helper()
	allocs, err := s.State().Snapshot().AllocsByNode(nil, nodeID)
	require.NoError(t, err)
	var out []*structs.Allocation
	for _, a := range allocs {
		if a.DesiredTransition.Migrate && !a.TerminalStatus() {
			out = append(out, a)
		}
	}
	return out
}

// A drain moves one allocation of a max_parallel 1 group at a time, waits
// for each replacement to run, and ends once the node is empty.
func TestDrainer_MovesMaxParallelAtATime(t *testing.T) {
	t.Parallel()
	s := testServer(t, nil)
	n1, n2 := mock.Node(), mock.Node()
	registerNode(t, s, n1)
	registerNode(t, s, n2)
	job := mock.Job()
	job.Update = &structs.UpdateStrategy{MaxParallel: 1}
	job.Groups[0].Update = nil
	var jr structs.JobRegisterResponse
	require.NoError(t, s.RPC("Job.Register", &structs.JobRegisterRequest{Job: job}, &jr))
	stored, _ := s.State().Snapshot().JobByID(nil, job.Namespace, job.ID)
	allocs := []*structs.Allocation{mock.AllocFor(stored, n1.ID, 0), mock.AllocFor(stored, n1.ID, 1), mock.AllocFor(stored, n1.ID, 2)}
	for _, a := range allocs {
		a.ClientStatus = structs.AllocClientRunning
	}
	_, _, err := s.raftApply(structs.ApplyPlanResultsRequestType, &structs.ApplyPlanResultsRequest{Job: stored, Allocs: allocs})
	require.NoError(t, err)

	var resp structs.NodeUpdateStatusResponse
	require.NoError(t, s.RPC("Node.UpdateDrain", &structs.NodeUpdateDrainRequest{NodeID: n1.ID, DrainStrategy: &structs.DrainStrategy{Deadline: structs.Duration(time.Hour)}}, &resp))

	for moved := 0; moved < 3; moved++ {
		var m []*structs.Allocation
		require.Eventually(t, func() bool { m = migrating(t, s, n1.ID); return len(m) > 0 }, 5*time.Second, 10*time.Millisecond)
		require.Len(t, m, 1, "max_parallel 1 moves one allocation at a time")
		evals, _ := s.State().Snapshot().EvalsByJob(nil, job.Namespace, job.ID)
		var drainEvals int
		for _, e := range evals {
			if e.TriggeredBy == structs.EvalTriggerNodeDrain {
				drainEvals++
			}
		}
		require.Equal(t, moved+1, drainEvals)

		repl := actAsScheduler(t, s, stored, m[0], n2.ID)
		// The replacement is not running yet: nothing else moves.
		require.Never(t, func() bool { return len(migrating(t, s, n1.ID)) > 0 }, 300*time.Millisecond, 20*time.Millisecond)
		var ur structs.GenericResponse
		require.NoError(t, s.RPC("Node.UpdateAllocs", &structs.AllocUpdateRequest{Alloc: []*structs.Allocation{{ID: repl.ID, ClientStatus: structs.AllocClientRunning}}}, &ur))
	}
	require.Eventually(t, func() bool {
		n, _ := s.State().Snapshot().NodeByID(nil, n1.ID)
		return n.Drain == nil
	}, 5*time.Second, 10*time.Millisecond, "the drain ends once the node is empty")
	n, _ := s.State().Snapshot().NodeByID(nil, n1.ID)
	require.Equal(t, structs.NodeIneligible, n.SchedulingEligibility, "a drained node stays ineligible")
}

// At the deadline every allocation left moves at once, batch ones too.
func TestDrainer_DeadlineMovesEverything(t *testing.T) {
	t.Parallel()
	s := testServer(t, nil)
	n1 := mock.Node()
	registerNode(t, s, n1)
	service, batch := mock.Job(), mock.BatchJob()
	service.Update = &structs.UpdateStrategy{MaxParallel: 1}
	service.Groups[0].Update = nil
	var allocs []*structs.Allocation
	for _, job := range []*structs.Job{service, batch} {
		var jr structs.JobRegisterResponse
		require.NoError(t, s.RPC("Job.Register", &structs.JobRegisterRequest{Job: job}, &jr))
		stored, _ := s.State().Snapshot().JobByID(nil, job.Namespace, job.ID)
		for i := 0; i < 3; i++ {
			a := mock.AllocFor(stored, n1.ID, i)
			a.ClientStatus = structs.AllocClientRunning
			allocs = append(allocs, a)
		}
		_, _, err := s.raftApply(structs.ApplyPlanResultsRequestType, &structs.ApplyPlanResultsRequest{Job: stored, Allocs: allocs[len(allocs)-3:]})
		require.NoError(t, err)
	}

	var resp structs.NodeUpdateStatusResponse
	require.NoError(t, s.RPC("Node.UpdateDrain", &structs.NodeUpdateDrainRequest{NodeID: n1.ID, DrainStrategy: &structs.DrainStrategy{Deadline: structs.Duration(time.Second)}}, &resp))
	require.Eventually(t, func() bool { return len(migrating(t, s, n1.ID)) == 1 }, 5*time.Second, 10*time.Millisecond,
		"before the deadline one service allocation moves and batch allocations are left to finish")
	require.Eventually(t, func() bool { return len(migrating(t, s, n1.ID)) == 6 }, 5*time.Second, 10*time.Millisecond,
		"at the deadline everything moves")
}
