package fsm

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
)

func TestApplyNodeRegister_KeepsOperatorDecisions(t *testing.T) {
	f := newTestFSM(t)
	n := mockNode("n1")
	n.SchedulingEligibility = ""
	applyOK(t, f, entry(t, 10, structs.NodeRegisterRequestType, &structs.NodeRegisterRequest{Node: n}))
	got, err := f.State().Snapshot().NodeByID(nil, "n1")
	require.NoError(t, err)
	require.Equal(t, structs.NodeEligible, got.SchedulingEligibility, "a new node is eligible")

	drain := &structs.DrainStrategy{Deadline: structs.Duration(60e9), StartedAt: 5}
	applyOK(t, f, entry(t, 11, structs.NodeUpdateDrainRequestType, &structs.NodeUpdateDrainRequest{NodeID: "n1", DrainStrategy: drain, UpdatedAt: 5}))

	// The client restarts and registers its fingerprint again.
	again := mockNode("n1")
	again.Attributes["kernel.version"] = "6.1"
	applyOK(t, f, entry(t, 12, structs.NodeRegisterRequestType, &structs.NodeRegisterRequest{Node: again}))
	got, err = f.State().Snapshot().NodeByID(nil, "n1")
	require.NoError(t, err)
	require.Equal(t, uint64(10), got.CreateIndex)
	require.Equal(t, uint64(12), got.ModifyIndex)
	require.Equal(t, "6.1", got.Attributes["kernel.version"])
	require.NotNil(t, got.Drain, "registering again must not cancel a drain")
	require.Equal(t, structs.NodeIneligible, got.SchedulingEligibility)
}

func TestApplyNodeUpdateStatus_WritesEvalsWithTheStatus(t *testing.T) {
	f := newTestFSM(t)
	job := mockJob("default", "web")
	applyOK(t, f, entry(t, 1, structs.NodeRegisterRequestType, &structs.NodeRegisterRequest{Node: mockNode("n1")}))
	applyOK(t, f, entry(t, 2, structs.NodeRegisterRequestType, &structs.NodeRegisterRequest{Node: mockNode("n2")}))
	applyOK(t, f, entry(t, 3, structs.JobRegisterRequestType, &structs.JobRegisterRequest{Job: job}))

	eval := mockEval(job, evalID(1))
	eval.TriggeredBy = structs.EvalTriggerNodeUpdate
	req := &structs.NodeUpdateStatusRequest{NodeIDs: []string{"n1", "n2"}, Status: structs.NodeStatusDown, UpdatedAt: 77, Evals: []*structs.Evaluation{eval}}
	applyOK(t, f, entry(t, 4, structs.NodeUpdateStatusRequestType, req))

	snap := f.State().Snapshot()
	for _, id := range []string{"n1", "n2"} {
		n, err := snap.NodeByID(nil, id)
		require.NoError(t, err)
		require.Equal(t, structs.NodeStatusDown, n.Status)
		require.Equal(t, int64(77), n.StatusUpdatedAt)
		require.Equal(t, uint64(4), n.ModifyIndex)
	}
	e, err := snap.EvalByID(nil, evalID(1))
	require.NoError(t, err)
	require.NotNil(t, e)
	require.Equal(t, uint64(4), e.CreateIndex)
	require.Equal(t, uint64(4), snap.Index(tableNodes))
	require.Equal(t, uint64(4), snap.Index(tableEvals))
}

func TestApplyNodeUpdateStatus_MissingNodeWritesNothing(t *testing.T) {
	f := newTestFSM(t)
	applyOK(t, f, entry(t, 1, structs.NodeRegisterRequestType, &structs.NodeRegisterRequest{Node: mockNode("n1")}))
	before := dump(t, f.State())
	resp := f.Apply(entry(t, 2, structs.NodeUpdateStatusRequestType,
		&structs.NodeUpdateStatusRequest{NodeIDs: []string{"n1", "missing"}, Status: structs.NodeStatusDown}))
	require.ErrorIs(t, resp.(error), ErrNotFound)
	require.Equal(t, before, dump(t, f.State()), "n1 must not be marked down when the entry fails")
}

func TestApplyNodeEligibility(t *testing.T) {
	f := newTestFSM(t)
	applyOK(t, f, entry(t, 1, structs.NodeRegisterRequestType, &structs.NodeRegisterRequest{Node: mockNode("n1")}))
	applyOK(t, f, entry(t, 2, structs.NodeUpdateEligibilityRequestType, &structs.NodeUpdateEligibilityRequest{NodeID: "n1", Eligibility: structs.NodeIneligible}))
	n, _ := f.State().Snapshot().NodeByID(nil, "n1")
	require.Equal(t, structs.NodeIneligible, n.SchedulingEligibility)

	// A bad value is rejected.
	resp := f.Apply(entry(t, 3, structs.NodeUpdateEligibilityRequestType, &structs.NodeUpdateEligibilityRequest{NodeID: "n1", Eligibility: "maybe"}))
	require.ErrorContains(t, resp.(error), `eligibility must be "eligible" or "ineligible", got "maybe"`)

	// A draining node cannot be made eligible; cancelling the drain with
	// MarkEligible can.
	applyOK(t, f, entry(t, 4, structs.NodeUpdateDrainRequestType, &structs.NodeUpdateDrainRequest{NodeID: "n1", DrainStrategy: &structs.DrainStrategy{}}))
	resp = f.Apply(entry(t, 5, structs.NodeUpdateEligibilityRequestType, &structs.NodeUpdateEligibilityRequest{NodeID: "n1", Eligibility: structs.NodeEligible}))
	require.ErrorIs(t, resp.(error), ErrConflict)
	applyOK(t, f, entry(t, 6, structs.NodeUpdateDrainRequestType, &structs.NodeUpdateDrainRequest{NodeID: "n1", MarkEligible: true}))
	n, _ = f.State().Snapshot().NodeByID(nil, "n1")
	require.Nil(t, n.Drain)
	require.Equal(t, structs.NodeEligible, n.SchedulingEligibility)
}

func TestApplyAllocClientUpdate_TakesOnlyClientFields(t *testing.T) {
	f := newTestFSM(t)
	job := mockJob("default", "web")
	applyOK(t, f, entry(t, 1, structs.JobRegisterRequestType, &structs.JobRegisterRequest{Job: job}))
	job, _ = f.State().Snapshot().JobByID(nil, "default", "web")
	a := mockAlloc(job, "a1", "n1", evalID(1))
	applyOK(t, f, entry(t, 2, structs.ApplyPlanResultsRequestType, &structs.ApplyPlanResultsRequest{Job: job, Allocs: []*structs.Allocation{a}}))

	update := &structs.Allocation{
		ID:            "a1",
		ClientStatus:  structs.AllocClientRunning,
		DesiredStatus: structs.AllocDesiredStop, // not the client's to decide
		NodeID:        "elsewhere",
		TaskStates:    map[string]*structs.TaskState{"server": {State: structs.TaskStateRunning, StartedAt: 9}},
		ModifyTime:    9,
	}
	gone := &structs.Allocation{ID: "gc-ed", ClientStatus: structs.AllocClientComplete}
	applyOK(t, f, entry(t, 3, structs.AllocClientUpdateRequestType, &structs.AllocUpdateRequest{Alloc: []*structs.Allocation{update, gone}}))

	snap := f.State().Snapshot()
	got, err := snap.AllocByID(nil, "a1")
	require.NoError(t, err)
	require.Equal(t, structs.AllocClientRunning, got.ClientStatus)
	require.Equal(t, structs.AllocDesiredRun, got.DesiredStatus)
	require.Equal(t, "n1", got.NodeID)
	require.Equal(t, structs.TaskStateRunning, got.TaskStates["server"].State)
	require.Equal(t, uint64(2), got.CreateIndex)
	require.Equal(t, uint64(3), got.ModifyIndex)
	require.Equal(t, uint64(2), got.AllocModifyIndex, "a client update is not a server-side change")
	missing, err := snap.AllocByID(nil, "gc-ed")
	require.NoError(t, err)
	require.Nil(t, missing)
	stored, _ := snap.JobByID(nil, "default", "web")
	require.Equal(t, structs.JobStatusRunning, stored.Status)
}

func TestApplyPlanResults(t *testing.T) {
	f := newTestFSM(t)
	job := mockJob("default", "web")
	applyOK(t, f, entry(t, 1, structs.JobRegisterRequestType, &structs.JobRegisterRequest{Job: job}))
	stored, _ := f.State().Snapshot().JobByID(nil, "default", "web")

	old := mockAlloc(stored, "old", "n1", evalID(1))
	old.ClientStatus = structs.AllocClientRunning
	applyOK(t, f, entry(t, 2, structs.ApplyPlanResultsRequestType, &structs.ApplyPlanResultsRequest{Job: stored, Allocs: []*structs.Allocation{old}}))

	// The next plan: n1 went down, so "old" is stopped as lost and
	// replaced on n2; the new allocation carries no job (the entry has it
	// once); a deployment and a follow-up eval come along.
	stop := old.Copy()
	stop.DesiredStatus = structs.AllocDesiredStop
	stop.DesiredDescription = "alloc is lost since its node is down"
	stop.ClientStatus = structs.AllocClientLost
	repl := mockAlloc(stored, "new", "n2", evalID(2))
	repl.Job = nil
	repl.PreviousAllocation = "old"
	d := mockDeployment(stored, "dep")
	follow := mockEval(stored, evalID(3))
	req := &structs.ApplyPlanResultsRequest{
		Job:           stored,
		Allocs:        []*structs.Allocation{repl},
		AllocsStopped: []*structs.Allocation{structs.StoppedAllocDiff(stop, 50)},
		Deployment:    d,
		EvalID:        evalID(2),
		Evals:         []*structs.Evaluation{follow},
		UpdatedAt:     50,
	}
	applyOK(t, f, entry(t, 3, structs.ApplyPlanResultsRequestType, req))

	snap := f.State().Snapshot()
	gotOld, _ := snap.AllocByID(nil, "old")
	require.Equal(t, structs.AllocDesiredStop, gotOld.DesiredStatus)
	require.Equal(t, structs.AllocClientLost, gotOld.ClientStatus)
	require.Equal(t, "alloc is lost since its node is down", gotOld.DesiredDescription)
	require.Equal(t, "new", gotOld.NextAllocation)
	require.Equal(t, uint64(3), gotOld.AllocModifyIndex)
	require.NotNil(t, gotOld.Job, "the stop keeps the allocation's job")

	gotNew, _ := snap.AllocByID(nil, "new")
	require.Equal(t, stored.ID, gotNew.Job.ID)
	require.Equal(t, stored.Version, gotNew.Job.Version)
	require.Equal(t, uint64(3), gotNew.CreateIndex)

	gotDep, _ := snap.DeploymentByID(nil, "dep")
	require.NotNil(t, gotDep)
	e, _ := snap.EvalByID(nil, evalID(3))
	require.NotNil(t, e)
	for _, table := range []string{tableAllocs, tableDeployments, tableEvals} {
		require.Equal(t, uint64(3), snap.Index(table), table)
	}

	// An in-place update keeps what the client reported.
	inplace := gotNew.Copy()
	inplace.ClientStatus = structs.AllocClientPending
	inplace.TaskStates = nil
	applyOK(t, f, entry(t, 4, structs.AllocClientUpdateRequestType, &structs.AllocUpdateRequest{Alloc: []*structs.Allocation{{ID: "new", ClientStatus: structs.AllocClientRunning}}}))
	applyOK(t, f, entry(t, 5, structs.ApplyPlanResultsRequestType, &structs.ApplyPlanResultsRequest{Job: stored, Allocs: []*structs.Allocation{inplace}}))
	gotNew, _ = f.State().Snapshot().AllocByID(nil, "new")
	require.Equal(t, structs.AllocClientRunning, gotNew.ClientStatus)
	require.Equal(t, uint64(3), gotNew.CreateIndex)

	// A status update of a deployment that does not exist fails the
	// entry, and nothing of it is written.
	before := dump(t, f.State())
	resp := f.Apply(entry(t, 6, structs.ApplyPlanResultsRequestType, &structs.ApplyPlanResultsRequest{
		Job:               stored,
		Allocs:            []*structs.Allocation{mockAlloc(stored, "third", "n2", evalID(4))},
		DeploymentUpdates: []*structs.DeploymentStatusUpdate{{DeploymentID: "nope", Status: structs.DeploymentStatusFailed}},
	}))
	require.ErrorIs(t, resp.(error), ErrNotFound)
	require.Equal(t, before, dump(t, f.State()))
}

func TestApplyAllocDesiredTransitionAndGC(t *testing.T) {
	f := newTestFSM(t)
	job := mockJob("default", "web")
	applyOK(t, f, entry(t, 1, structs.JobRegisterRequestType, &structs.JobRegisterRequest{Job: job}))
	a1, a2 := mockAlloc(job, "a1", "n1", evalID(1)), mockAlloc(job, "a2", "n1", evalID(1))
	applyOK(t, f, entry(t, 2, structs.ApplyPlanResultsRequestType, &structs.ApplyPlanResultsRequest{Job: job, Allocs: []*structs.Allocation{a1, a2}}))

	eval := mockEval(job, evalID(2))
	eval.TriggeredBy = structs.EvalTriggerNodeDrain
	applyOK(t, f, entry(t, 3, structs.AllocUpdateDesiredTransitionRequestType, &structs.AllocUpdateDesiredTransitionRequest{
		Allocs: map[string]*structs.DesiredTransition{"a1": {Migrate: true}, "missing": {Migrate: true}},
		Evals:  []*structs.Evaluation{eval},
	}))
	snap := f.State().Snapshot()
	got, _ := snap.AllocByID(nil, "a1")
	require.True(t, got.DesiredTransition.Migrate)
	got, _ = snap.AllocByID(nil, "a2")
	require.False(t, got.DesiredTransition.Migrate)
	e, _ := snap.EvalByID(nil, evalID(2))
	require.NotNil(t, e)

	applyOK(t, f, entry(t, 4, structs.AllocGCRequestType, &structs.AllocGCRequest{AllocIDs: []string{"a1", "already-gone"}}))
	snap = f.State().Snapshot()
	got, _ = snap.AllocByID(nil, "a1")
	require.Nil(t, got)
	got, _ = snap.AllocByID(nil, "a2")
	require.NotNil(t, got)
}

func TestApplyJobBatchDeregister_PurgesJobsAndVersions(t *testing.T) {
	f := newTestFSM(t)
	job := mockJob("default", "web")
	applyOK(t, f, entry(t, 1, structs.JobRegisterRequestType, &structs.JobRegisterRequest{Job: job}))
	job2 := job.Copy()
	job2.Meta = map[string]string{"v": "2"}
	applyOK(t, f, entry(t, 2, structs.JobRegisterRequestType, &structs.JobRegisterRequest{Job: job2}))
	applyOK(t, f, entry(t, 3, structs.JobBatchDeregisterRequestType, &structs.JobBatchDeregisterRequest{
		Jobs: []structs.NamespacedID{{Namespace: "default", ID: "web"}, {Namespace: "default", ID: "gone"}},
	}))
	snap := f.State().Snapshot()
	got, err := snap.JobByID(nil, "default", "web")
	require.NoError(t, err)
	require.Nil(t, got)
	versions, err := snap.JobVersionsByID(nil, "default", "web")
	require.NoError(t, err)
	require.Empty(t, versions)
}
