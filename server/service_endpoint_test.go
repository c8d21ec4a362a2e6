package server

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
	"github.com/drover-sh/drover/structs/mock"
)

// placedAllocs registers a node and a job and places n allocations of it
// there, as a plan would.
func placedAllocs(t *testing.T, s *Server, n int) (*structs.Node, []*structs.Allocation) {
	t.Helper()
	node := mock.Node()
	registerNode(t, s, node)
	job := mock.Job()
	var jr structs.JobRegisterResponse
	require.NoError(t, s.RPC("Job.Register", &structs.JobRegisterRequest{Job: job}, &jr))
	stored, err := s.State().Snapshot().JobByID(nil, job.Namespace, job.ID)
	require.NoError(t, err)
	var allocs []*structs.Allocation
	for i := range n {
		allocs = append(allocs, mock.AllocFor(stored, node.ID, i))
	}
	_, _, err = s.raftApply(structs.ApplyPlanResultsRequestType, &structs.ApplyPlanResultsRequest{Job: stored, Allocs: allocs})
	require.NoError(t, err)
	return node, allocs
}

func registration(a *structs.Allocation, name string) *structs.ServiceRegistration {
	return &structs.ServiceRegistration{
		ID: structs.ServiceRegistrationID(a.ID, name, "http"), ServiceName: name, NodeID: a.NodeID, AllocID: a.ID,
		// What the servers fill from the allocation, whatever the report says.
		Namespace: "forged", JobID: "forged",
		Address: "127.0.0.1", Port: 8080, HostAddress: "127.0.0.1", HostPort: 23000, Tags: []string{"v1"},
	}
}

func TestService_UpsertValidates(t *testing.T) {
	t.Parallel()
	s := testServer(t, nil)
	_, allocs := placedAllocs(t, s, 1)
	cases := map[string]struct {
		edit func(r *structs.ServiceRegistration)
		msg  string
	}{
		"bad name":     {func(r *structs.ServiceRegistration) { r.ServiceName = "Web_1" }, "services[0].service_name"},
		"port 0":       {func(r *structs.ServiceRegistration) { r.Port = 0 }, "services[0].port: must be between 1 and 65535"},
		"port 65536":   {func(r *structs.ServiceRegistration) { r.Port = 65536 }, "services[0].port"},
		"unknown":      {func(r *structs.ServiceRegistration) { r.AllocID = "nope"; r.ID = "nope/web/http" }, `allocation "nope" is not placed on node`},
		"another node": {func(r *structs.ServiceRegistration) { r.NodeID = "other" }, `is not placed on node "other"`},
	}
	idx := s.State().LatestIndex()
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := registration(allocs[0], "web")
			tc.edit(r)
			var resp structs.GenericResponse
			err := s.RPC("Service.Upsert", &structs.ServiceRegistrationUpsertRequest{Services: []*structs.ServiceRegistration{r}}, &resp)
			require.Equal(t, structs.ErrInvalid, structs.CodeOf(err), "%v", err)
			require.ErrorContains(t, err, tc.msg)
		})
	}
	var resp structs.GenericResponse
	err := s.RPC("Service.Upsert", &structs.ServiceRegistrationUpsertRequest{}, &resp)
	require.Equal(t, structs.ErrInvalid, structs.CodeOf(err))
	err = s.RPC("Service.Delete", &structs.ServiceRegistrationDeleteRequest{IDs: []string{"x"}}, &resp)
	require.ErrorContains(t, err, "node_id")
	require.Equal(t, idx, s.State().LatestIndex(), "rejected requests write nothing")
}

func TestService_UpsertListGetDelete(t *testing.T) {
	t.Parallel()
	s := testServer(t, nil)
	node, allocs := placedAllocs(t, s, 2)
	var wr structs.GenericResponse
	require.NoError(t, s.RPC("Service.Upsert", &structs.ServiceRegistrationUpsertRequest{Services: []*structs.ServiceRegistration{
		registration(allocs[0], "web"), registration(allocs[1], "web"), registration(allocs[0], "admin"),
	}}, &wr))
	require.NotZero(t, wr.Index)

	var list structs.ServiceListResponse
	require.NoError(t, s.RPC("Service.List", &structs.ServiceListRequest{}, &list))
	require.Equal(t, []*structs.ServiceListStub{
		{ServiceName: "admin", Namespace: "default", Tags: []string{"v1"}, Instances: 1},
		{ServiceName: "web", Namespace: "default", Tags: []string{"v1"}, Instances: 2},
	}, list.Services)
	require.Equal(t, wr.Index, list.Index)

	var get structs.ServiceGetResponse
	require.NoError(t, s.RPC("Service.Get", &structs.ServiceGetRequest{ServiceName: "web"}, &get))
	require.Len(t, get.Services, 2)
	require.Equal(t, "default", get.Services[0].Namespace, "the namespace comes from the allocation")
	require.Equal(t, allocs[0].JobID, get.Services[0].JobID)
	require.NoError(t, s.RPC("Service.Get", &structs.ServiceGetRequest{ServiceName: "nope"}, &get))
	require.Empty(t, get.Services)
	err := s.RPC("Service.Get", &structs.ServiceGetRequest{}, &get)
	require.Equal(t, structs.ErrInvalid, structs.CodeOf(err))

	var all structs.ServiceGetResponse
	require.NoError(t, s.RPC("Service.NodeServices", &structs.NodeServicesRequest{}, &all))
	require.Len(t, all.Services, 3)

	require.NoError(t, s.RPC("Service.Delete", &structs.ServiceRegistrationDeleteRequest{
		NodeID: node.ID, IDs: []string{structs.ServiceRegistrationID(allocs[0].ID, "web", "http")},
	}, &wr))
	require.NoError(t, s.RPC("Service.Get", &structs.ServiceGetRequest{ServiceName: "web"}, &get))
	require.Len(t, get.Services, 1)
	require.Equal(t, allocs[1].ID, get.Services[0].AllocID)
}

func TestService_GetAndNodeServicesBlock(t *testing.T) {
	t.Parallel()
	s := testServer(t, nil)
	_, allocs := placedAllocs(t, s, 2)
	var first structs.ServiceGetResponse
	require.NoError(t, s.RPC("Service.Get", &structs.ServiceGetRequest{ServiceName: "web"}, &first))

	type result struct {
		resp structs.ServiceGetResponse
		err  error
	}
	get, node := make(chan result, 1), make(chan result, 1)
	go func() {
		var r result
		r.err = s.RPC("Service.Get", &structs.ServiceGetRequest{ServiceName: "web",
			QueryOptions: structs.QueryOptions{MinQueryIndex: first.Index, MaxQueryTime: 10 * time.Second}}, &r.resp)
		get <- r
	}()
	go func() {
		var r result
		r.err = s.RPC("Service.NodeServices", &structs.NodeServicesRequest{
			QueryOptions: structs.QueryOptions{MinQueryIndex: first.Index, MaxQueryTime: 10 * time.Second}}, &r.resp)
		node <- r
	}()
	// Neither answers before the registry changes.
	select {
	case <-get:
		t.Fatal("Service.Get answered before any change")
	case <-node:
		t.Fatal("Service.NodeServices answered before any change")
	case <-time.After(200 * time.Millisecond):
	}
	var wr structs.GenericResponse
	require.NoError(t, s.RPC("Service.Upsert", &structs.ServiceRegistrationUpsertRequest{Services: []*structs.ServiceRegistration{
		registration(allocs[0], "web"),
	}}, &wr))
	for _, ch := range []chan result{get, node} {
		select {
		case r := <-ch:
			require.NoError(t, r.err)
			require.Equal(t, wr.Index, r.resp.Index)
			require.Len(t, r.resp.Services, 1)
		case <-time.After(5 * time.Second):
			t.Fatal("blocking query did not wake on the registration")
		}
	}

	// Stopping the allocation removes the instance and wakes the watch.
	var again structs.ServiceGetResponse
	woke := make(chan result, 1)
	go func() {
		var r result
		r.err = s.RPC("Service.Get", &structs.ServiceGetRequest{ServiceName: "web",
			QueryOptions: structs.QueryOptions{MinQueryIndex: wr.Index, MaxQueryTime: 10 * time.Second}}, &again)
		r.resp = again
		woke <- r
	}()
	stop := allocs[0].Copy()
	stop.DesiredStatus = structs.AllocDesiredStop
	_, stopIndex, err := s.raftApply(structs.ApplyPlanResultsRequestType, &structs.ApplyPlanResultsRequest{AllocsStopped: []*structs.Allocation{stop}})
	require.NoError(t, err)
	select {
	case r := <-woke:
		require.NoError(t, r.err)
		require.Equal(t, stopIndex, r.resp.Index)
		require.Empty(t, r.resp.Services)
	case <-time.After(5 * time.Second):
		t.Fatal("blocking query did not wake on the stop")
	}
}
