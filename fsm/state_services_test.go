package fsm

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
)

func mockService(a *structs.Allocation, name, label string) *structs.ServiceRegistration {
	return &structs.ServiceRegistration{
		ID:          structs.ServiceRegistrationID(a.ID, name, label),
		ServiceName: name,
		Namespace:   a.Namespace,
		NodeID:      a.NodeID,
		Datacenter:  "dc1",
		JobID:       a.JobID,
		AllocID:     a.ID,
		Tags:        []string{"v1"},
		Address:     "10.0.0.2",
		Port:        8080,
		HostAddress: "192.168.1.10",
		HostPort:    23456,
	}
}

// serviceFixture registers a job and n running allocations of it, the
// first half on node n-1 and the rest on n-2.
func serviceFixture(t *testing.T, n int) (*FSM, []*structs.Allocation) {
	t.Helper()
	f := newTestFSM(t)
	s := f.State()
	job := mockJob("default", "web")
	applyOK(t, f, entry(t, 10, structs.JobRegisterRequestType, &structs.JobRegisterRequest{Job: job}))
	require.NoError(t, s.UpsertNode(11, mockNode("n-1")))
	require.NoError(t, s.UpsertNode(12, mockNode("n-2")))
	stored, err := s.JobByID(nil, "default", "web")
	require.NoError(t, err)
	var allocs []*structs.Allocation
	for i := range n {
		node := "n-1"
		if i >= n/2 {
			node = "n-2"
		}
		a := mockAlloc(stored, "a-"+string(rune('1'+i)), node, evalID(0))
		a.ClientStatus = structs.AllocClientRunning
		allocs = append(allocs, a)
	}
	require.NoError(t, s.UpsertAllocs(13, allocs))
	return f, allocs
}

func serviceIDs(t *testing.T, s *StateStore) []string {
	t.Helper()
	regs, err := s.Services(nil)
	require.NoError(t, err)
	ids := []string{}
	for _, r := range regs {
		ids = append(ids, r.ID)
	}
	return ids
}

func TestApplyServiceUpsert_WritesReadsAndKeepsCreateIndex(t *testing.T) {
	f, allocs := serviceFixture(t, 2)
	s := f.State()
	web0, web1 := mockService(allocs[0], "web", "http"), mockService(allocs[1], "web", "http")
	admin := mockService(allocs[0], "admin", "admin")
	applyOK(t, f, entry(t, 20, structs.ServiceRegistrationUpsertRequestType,
		&structs.ServiceRegistrationUpsertRequest{Services: []*structs.ServiceRegistration{web1, web0, admin}}))
	require.Equal(t, uint64(20), s.Index(tableServices))

	got, err := s.ServicesByName(nil, "default", "web")
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, web0.ID, got[0].ID, "sorted by ID")
	require.Equal(t, uint64(20), got[0].CreateIndex)
	require.Equal(t, uint64(20), got[0].ModifyIndex)
	byNode, err := s.ServicesByNode(nil, "n-2")
	require.NoError(t, err)
	require.Equal(t, []*structs.ServiceRegistration{got[1]}, byNode)
	byAlloc, err := s.ServicesByAlloc(nil, allocs[0].ID)
	require.NoError(t, err)
	require.Len(t, byAlloc, 2)
	none, err := s.ServicesByName(nil, "other", "web")
	require.NoError(t, err)
	require.Empty(t, none)

	stubs, err := s.ServiceStubs(nil, "default")
	require.NoError(t, err)
	require.Equal(t, []*structs.ServiceListStub{
		{ServiceName: "admin", Namespace: "default", Tags: []string{"v1"}, Instances: 1},
		{ServiceName: "web", Namespace: "default", Tags: []string{"v1"}, Instances: 2},
	}, stubs)

	// The same report again writes nothing and leaves the index.
	applyOK(t, f, entry(t, 21, structs.ServiceRegistrationUpsertRequestType,
		&structs.ServiceRegistrationUpsertRequest{Services: []*structs.ServiceRegistration{mockService(allocs[0], "web", "http")}}))
	require.Equal(t, uint64(20), s.Index(tableServices))

	// A change keeps the CreateIndex.
	moved := mockService(allocs[0], "web", "http")
	moved.Tags = []string{"v2", "canary"}
	applyOK(t, f, entry(t, 22, structs.ServiceRegistrationUpsertRequestType,
		&structs.ServiceRegistrationUpsertRequest{Services: []*structs.ServiceRegistration{moved}}))
	reg, err := s.ServiceByID(nil, moved.ID)
	require.NoError(t, err)
	require.Equal(t, uint64(20), reg.CreateIndex)
	require.Equal(t, uint64(22), reg.ModifyIndex)
	require.Equal(t, []string{"v2", "canary"}, reg.Tags)
	stubs, err = s.ServiceStubs(nil, "*")
	require.NoError(t, err)
	require.Equal(t, []string{"canary", "v1", "v2"}, stubs[1].Tags)
}

func TestApplyServiceUpsert_SkipsInstancesThatAreNotLive(t *testing.T) {
	f, allocs := serviceFixture(t, 2)
	s := f.State()
	stopped := allocs[1].Copy()
	stopped.ClientStatus = structs.AllocClientComplete
	require.NoError(t, s.UpdateAllocsFromClient(14, []*structs.Allocation{stopped}, nil))

	wrongNode := mockService(allocs[0], "wrong", "http")
	wrongNode.NodeID = "n-2"
	missing := mockService(allocs[0], "missing", "http")
	missing.AllocID, missing.ID = "no-such-alloc", "no-such-alloc/missing/http"
	applyOK(t, f, entry(t, 20, structs.ServiceRegistrationUpsertRequestType,
		&structs.ServiceRegistrationUpsertRequest{Services: []*structs.ServiceRegistration{
			mockService(allocs[0], "web", "http"), mockService(allocs[1], "web", "http"), wrongNode, missing,
		}}))
	require.Equal(t, []string{structs.ServiceRegistrationID(allocs[0].ID, "web", "http")}, serviceIDs(t, s))

	// A node that is down registers nothing.
	require.NoError(t, s.UpdateNodeStatus(21, []string{"n-1"}, structs.NodeStatusDown, 1, nil))
	applyOK(t, f, entry(t, 22, structs.ServiceRegistrationUpsertRequestType,
		&structs.ServiceRegistrationUpsertRequest{Services: []*structs.ServiceRegistration{mockService(allocs[0], "web", "http")}}))
	require.Empty(t, serviceIDs(t, s))
}

func TestApplyServiceDelete_ScopedToNode(t *testing.T) {
	f, allocs := serviceFixture(t, 2)
	s := f.State()
	a, b := mockService(allocs[0], "web", "http"), mockService(allocs[1], "web", "http")
	require.NoError(t, s.UpsertServices(20, []*structs.ServiceRegistration{a, b}))

	// n-1 cannot remove n-2's instance; unknown IDs are skipped.
	applyOK(t, f, entry(t, 21, structs.ServiceRegistrationDeleteRequestType,
		&structs.ServiceRegistrationDeleteRequest{NodeID: "n-1", IDs: []string{b.ID, "gone"}}))
	require.Equal(t, []string{a.ID, b.ID}, serviceIDs(t, s))
	require.Equal(t, uint64(20), s.Index(tableServices), "nothing deleted, index stays")

	applyOK(t, f, entry(t, 22, structs.ServiceRegistrationDeleteRequestType,
		&structs.ServiceRegistrationDeleteRequest{NodeID: "n-2", IDs: []string{b.ID}}))
	require.Equal(t, []string{a.ID}, serviceIDs(t, s))
	require.Equal(t, uint64(22), s.Index(tableServices))

	// Without a node the delete is unscoped.
	applyOK(t, f, entry(t, 23, structs.ServiceRegistrationDeleteRequestType,
		&structs.ServiceRegistrationDeleteRequest{IDs: []string{a.ID}}))
	require.Empty(t, serviceIDs(t, s))
}

// Registrations go in the same transaction as whatever ends their
// allocation or node, so no reader sees an instance of a stopped
// allocation.
func TestServices_CascadeWithAllocsAndNodes(t *testing.T) {
	cases := []struct {
		name  string
		write func(t *testing.T, f *FSM, allocs []*structs.Allocation)
		left  []int // indexes into allocs whose instances remain
	}{
		{"client reports failed", func(t *testing.T, f *FSM, allocs []*structs.Allocation) {
			u := allocs[0].Copy()
			u.ClientStatus = structs.AllocClientFailed
			applyOK(t, f, entry(t, 30, structs.AllocClientUpdateRequestType, &structs.AllocUpdateRequest{Alloc: []*structs.Allocation{u}}))
		}, []int{1, 2, 3}},
		{"client reports running again", func(t *testing.T, f *FSM, allocs []*structs.Allocation) {
			u := allocs[0].Copy()
			u.ClientStatus = structs.AllocClientRunning
			applyOK(t, f, entry(t, 30, structs.AllocClientUpdateRequestType, &structs.AllocUpdateRequest{Alloc: []*structs.Allocation{u}}))
		}, []int{0, 1, 2, 3}},
		{"plan stops", func(t *testing.T, f *FSM, allocs []*structs.Allocation) {
			stop := allocs[1].Copy()
			stop.DesiredStatus = structs.AllocDesiredStop
			applyOK(t, f, entry(t, 30, structs.ApplyPlanResultsRequestType, &structs.ApplyPlanResultsRequest{AllocsStopped: []*structs.Allocation{stop}}))
		}, []int{0, 2, 3}},
		{"garbage collected", func(t *testing.T, f *FSM, allocs []*structs.Allocation) {
			applyOK(t, f, entry(t, 30, structs.AllocGCRequestType, &structs.AllocGCRequest{AllocIDs: []string{allocs[2].ID}}))
		}, []int{0, 1, 3}},
		{"node down", func(t *testing.T, f *FSM, allocs []*structs.Allocation) {
			applyOK(t, f, entry(t, 30, structs.NodeUpdateStatusRequestType, &structs.NodeUpdateStatusRequest{NodeIDs: []string{"n-1"}, Status: structs.NodeStatusDown}))
		}, []int{2, 3}},
		{"node drained", func(t *testing.T, f *FSM, allocs []*structs.Allocation) {
			applyOK(t, f, entry(t, 30, structs.NodeUpdateDrainRequestType, &structs.NodeUpdateDrainRequest{NodeID: "n-1", DrainStrategy: &structs.DrainStrategy{}}))
		}, []int{0, 1, 2, 3}},
		{"node deregistered", func(t *testing.T, f *FSM, allocs []*structs.Allocation) {
			applyOK(t, f, entry(t, 30, structs.NodeDeregisterRequestType, &structs.NodeDeregisterRequest{NodeIDs: []string{"n-2"}}))
		}, []int{0, 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, allocs := serviceFixture(t, 4)
			s := f.State()
			var regs []*structs.ServiceRegistration
			for _, a := range allocs {
				regs = append(regs, mockService(a, "web", "http"))
			}
			require.NoError(t, s.UpsertServices(20, regs))
			ws := memdb.NewWatchSet()
			_, err := s.ServicesByName(ws, "default", "web")
			require.NoError(t, err)

			tc.write(t, f, allocs)

			want := []string{}
			for _, i := range tc.left {
				want = append(want, regs[i].ID)
			}
			require.Equal(t, want, serviceIDs(t, s))
			if len(tc.left) < len(allocs) {
				require.Equal(t, uint64(30), s.Index(tableServices))
				require.False(t, ws.Watch(time.After(time.Second)), "the removal wakes watchers of the service")
			} else {
				require.Equal(t, uint64(20), s.Index(tableServices))
			}
		})
	}
}

// A batch of entries shares one transaction: the cascade must hold there
// too, and a failed entry must not leave half of it behind.
func TestServices_CascadeInsideABatch(t *testing.T) {
	f, allocs := serviceFixture(t, 2)
	require.NoError(t, f.State().UpsertServices(20, []*structs.ServiceRegistration{
		mockService(allocs[0], "web", "http"), mockService(allocs[1], "web", "http"),
	}))
	u := allocs[0].Copy()
	u.ClientStatus = structs.AllocClientComplete
	resp := f.ApplyBatch([]*raft.Log{
		entry(t, 30, structs.AllocClientUpdateRequestType, &structs.AllocUpdateRequest{Alloc: []*structs.Allocation{u}}),
		entry(t, 31, structs.ServiceRegistrationUpsertRequestType, &structs.ServiceRegistrationUpsertRequest{
			Services: []*structs.ServiceRegistration{mockService(allocs[0], "web", "http")},
		}),
	})
	require.Equal(t, []interface{}{nil, nil}, resp)
	require.Equal(t, []string{structs.ServiceRegistrationID(allocs[1].ID, "web", "http")}, serviceIDs(t, f.State()),
		"the stopped allocation's late report is skipped")
}

func TestServices_BlockingQueryWakesOnRegistration(t *testing.T) {
	f, allocs := serviceFixture(t, 2)
	s := f.State()
	done := make(chan uint64, 1)
	go func() {
		idx, err := s.BlockingQuery(context.Background(), 13, 5*time.Second, func(ws memdb.WatchSet, snap *StateSnapshot) (uint64, error) {
			if _, err := snap.ServicesByName(ws, "default", "web"); err != nil {
				return 0, err
			}
			return snap.Index(tableServices), nil
		})
		if err == nil {
			done <- idx
		}
	}()
	require.NoError(t, s.UpsertServices(40, []*structs.ServiceRegistration{mockService(allocs[0], "web", "http")}))
	select {
	case idx := <-done:
		require.Equal(t, uint64(40), idx)
	case <-time.After(3 * time.Second):
		t.Fatal("blocking query did not wake")
	}
}
