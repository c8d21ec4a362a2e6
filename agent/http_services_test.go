package agent

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/api"
	"github.com/drover-sh/drover/structs"
)

// The registry over HTTP: list and get through the api package, blocking
// reads that wake on a registration, and a 404 for a service without
// instances that still carries the index.
func TestHTTP_ServicesRoundTrip(t *testing.T) {
	n := startSingle(t)
	c := n.client()
	base := "http://" + n.agent.HTTPAddr()
	node := registerNode(t, n, structs.GenerateUUID())
	_, err := c.Jobs().Register(ctx(t), jobYAML("web", 2), "application/yaml", nil)
	require.NoError(t, err)
	var allocs []*structs.AllocListStub
	require.Eventually(t, func() bool {
		allocs, _, err = c.Jobs().Allocations(ctx(t), "web", nil)
		return err == nil && len(allocs) == 2
	}, 15*time.Second, 50*time.Millisecond, "allocations of the job: %v", err)

	stubs, meta, err := c.Services().List(ctx(t), nil)
	require.NoError(t, err)
	require.Empty(t, stubs)
	resp, body := doHTTP(t, "GET", base+"/v1/service/web", "", "")
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "%v", body)
	require.Equal(t, "not_found", body["code"])
	require.Contains(t, body["error"], `service "web" not found`)
	_, err = strconv.ParseUint(resp.Header.Get("X-Drover-Index"), 10, 64)
	require.NoError(t, err, "a 404 carries the index")

	woke := make(chan []*structs.ServiceRegistration, 1)
	go func() {
		regs, _, err := c.Services().Get(ctx(t), "web", &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 20 * time.Second})
		if err != nil {
			t.Log(err)
		}
		woke <- regs
	}()
	var regs []*structs.ServiceRegistration
	for i, a := range allocs {
		regs = append(regs, &structs.ServiceRegistration{
			ID: structs.ServiceRegistrationID(a.ID, "web", "http"), ServiceName: "web", NodeID: node.ID, AllocID: a.ID,
			Address: "127.0.0.1", Port: 8080 + i, Tags: []string{"v1"},
		})
	}
	var wr structs.GenericResponse
	require.NoError(t, n.agent.Server().RPC("Service.Upsert", &structs.ServiceRegistrationUpsertRequest{Services: regs}, &wr))
	select {
	case got := <-woke:
		require.Len(t, got, 2)
		require.Equal(t, "web", got[0].JobID)
	case <-time.After(15 * time.Second):
		t.Fatal("blocking service query did not wake on the registration")
	}

	stubs, meta, err = c.Services().List(ctx(t), nil)
	require.NoError(t, err)
	require.Equal(t, []*structs.ServiceListStub{{ServiceName: "web", Namespace: "default", Tags: []string{"v1"}, Instances: 2}}, stubs)
	require.Equal(t, wr.Index, meta.LastIndex)
	other, _, err := c.Services().List(ctx(t), &api.QueryOptions{Namespace: "other"})
	require.NoError(t, err)
	require.Empty(t, other)
	got, _, err := c.Services().Get(ctx(t), "web", nil)
	require.NoError(t, err)
	require.ElementsMatch(t, []int{8080, 8081}, []int{got[0].Port, got[1].Port})
	resp, body = doHTTP(t, "GET", base+"/v1/services?index=x", "", "")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%v", body)
}
