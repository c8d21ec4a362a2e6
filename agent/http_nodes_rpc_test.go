package agent

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/api"
	"github.com/drover-sh/drover/structs"
	"github.com/drover-sh/drover/structs/mock"
)

// registerNode registers a mock node with the given ID through the real
// Node.Register RPC, as a client would.
func registerNode(t *testing.T, n *testNode, id string) *structs.Node {
	t.Helper()
	node := mock.Node()
	node.ID = id
	node.Name = "node-" + id[:8]
	var resp structs.NodeUpdateResponse
	require.NoError(t, n.agent.Server().RPC("Node.Register", &structs.NodeRegisterRequest{Node: node}, &resp))
	return node
}

func TestHTTP_NodesRoundTrip(t *testing.T) {
	n := startSingle(t)
	c := n.client()
	base := "http://" + n.agent.HTTPAddr()
	id1 := "aaaa1111-0000-4000-8000-000000000001"
	id2 := "aaaa2222-0000-4000-8000-000000000002"
	registerNode(t, n, id1)
	registerNode(t, n, id2)

	nodes, meta, err := c.Nodes().List(ctx(t), nil)
	require.NoError(t, err)
	require.Len(t, nodes, 2)
	require.NotZero(t, meta.LastIndex)
	nodes, _, err = c.Nodes().List(ctx(t), &api.QueryOptions{Prefix: "aaaa2"})
	require.NoError(t, err)
	require.Len(t, nodes, 1)
	require.Equal(t, id2, nodes[0].ID)

	// Exact ID, unique prefix, ambiguous prefix, unknown.
	node, _, err := c.Nodes().Info(ctx(t), id1, nil)
	require.NoError(t, err)
	require.Equal(t, "node-aaaa1111", node.Name)
	node, _, err = c.Nodes().Info(ctx(t), "aaaa1", nil)
	require.NoError(t, err)
	require.Equal(t, id1, node.ID)
	resp, body := doHTTP(t, "GET", base+"/v1/node/aaaa", "", "")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%v", body)
	require.Equal(t, "invalid", body["code"])
	require.Equal(t, "id", body["field"])
	require.Contains(t, body["error"], id1)
	require.Contains(t, body["error"], id2)
	resp, body = doHTTP(t, "GET", base+"/v1/node/bbbb", "", "")
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "%v", body)
	require.Equal(t, "not_found", body["code"])
	resp, body = doHTTP(t, "GET", base+"/v1/node/bbbb/allocations", "", "")
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "%v", body)

	allocs, _, err := c.Nodes().Allocations(ctx(t), "aaaa1", nil)
	require.NoError(t, err)
	require.Empty(t, allocs)

	// Eligibility, with a blocking query that wakes on the change.
	_, meta, err = c.Nodes().Info(ctx(t), id1, nil)
	require.NoError(t, err)
	woke := make(chan *structs.Node, 1)
	go func() {
		n, _, err := c.Nodes().Info(ctx(t), id1, &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 20 * time.Second})
		if err != nil {
			n = nil
		}
		woke <- n
	}()
	upd, err := c.Nodes().UpdateEligibility(ctx(t), id1, false, nil)
	require.NoError(t, err)
	require.NotZero(t, upd.Index)
	select {
	case got := <-woke:
		require.NotNil(t, got)
		require.Equal(t, structs.NodeIneligible, got.SchedulingEligibility)
	case <-time.After(15 * time.Second):
		t.Fatal("blocking node query did not wake on the eligibility change")
	}

	// Drain on and off.
	_, err = c.Nodes().UpdateDrain(ctx(t), id2, &api.DrainSpec{Deadline: time.Hour}, false, nil)
	require.NoError(t, err)
	node, _, err = c.Nodes().Info(ctx(t), id2, nil)
	require.NoError(t, err)
	require.NotNil(t, node.Drain)
	require.Equal(t, structs.Duration(time.Hour), node.Drain.Deadline)
	require.Equal(t, structs.NodeIneligible, node.SchedulingEligibility)
	_, err = c.Nodes().UpdateDrain(ctx(t), id2, nil, true, nil)
	require.NoError(t, err)
	node, _, err = c.Nodes().Info(ctx(t), id2, nil)
	require.NoError(t, err)
	require.Nil(t, node.Drain)
	require.Equal(t, structs.NodeEligible, node.SchedulingEligibility)

	// Writes to an unknown node are 404s.
	resp, body = doHTTP(t, "PUT", base+"/v1/node/"+structs.GenerateUUID()+"/eligibility", "application/json", `{"eligibility": "eligible"}`)
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "%v", body)
	resp, body = doHTTP(t, "PUT", base+"/v1/node/"+structs.GenerateUUID()+"/drain", "application/json", `{"drain_spec": {"deadline": "1h"}}`)
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "%v", body)
}

// A job that fits is placed on the registered node; its allocations are
// read back by job, by node, by ID and by prefix. A job that cannot fit
// fails with the reason, in the evaluation and in the plan.
func TestHTTP_AllocationsAndPlanRoundTrip(t *testing.T) {
	n := startSingle(t)
	c := n.client()
	base := "http://" + n.agent.HTTPAddr()
	node := registerNode(t, n, structs.GenerateUUID())

	reg, err := c.Jobs().Register(ctx(t), jobYAML("fits", 2), "application/yaml", nil)
	require.NoError(t, err)
	var allocs []*structs.AllocListStub
	require.Eventually(t, func() bool {
		allocs, _, err = c.Jobs().Allocations(ctx(t), "fits", nil)
		return err == nil && len(allocs) == 2
	}, 15*time.Second, 50*time.Millisecond, "allocations of the job: %v", err)
	for _, a := range allocs {
		require.Equal(t, node.ID, a.NodeID)
		require.Equal(t, reg.EvalID, a.EvalID)
	}
	all, meta, err := c.Allocations().List(ctx(t), nil)
	require.NoError(t, err)
	require.Len(t, all, 2)
	require.NotZero(t, meta.LastIndex)
	onNode, _, err := c.Nodes().Allocations(ctx(t), node.ID, nil)
	require.NoError(t, err)
	require.Len(t, onNode, 2)

	a, _, err := c.Allocations().Info(ctx(t), allocs[0].ID, nil)
	require.NoError(t, err)
	require.Equal(t, "fits", a.JobID)
	prefix := allocs[0].ID[:8]
	if allocs[1].ID[:8] == prefix {
		prefix = allocs[0].ID[:20]
	}
	a, _, err = c.Allocations().Info(ctx(t), prefix, nil)
	require.NoError(t, err)
	require.Equal(t, allocs[0].ID, a.ID)
	resp, body := doHTTP(t, "GET", base+"/v1/allocation/"+structs.GenerateUUID(), "", "")
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "%v", body)

	// The evaluation finishes without failures.
	require.Eventually(t, func() bool {
		e, _, err := c.Evaluations().Info(ctx(t), reg.EvalID, nil)
		return err == nil && e.Status == structs.EvalStatusComplete && len(e.FailedTGAllocs) == 0
	}, 15*time.Second, 50*time.Millisecond)

	// A plan of one more instance: a diff and one placement.
	plan, err := c.Jobs().Plan(ctx(t), "fits", jobYAML("fits", 3), "application/yaml", true, nil)
	require.NoError(t, err)
	require.NotNil(t, plan.Diff)
	require.Equal(t, structs.DiffTypeEdited, plan.Diff.Type)
	require.Equal(t, 1, plan.Annotations.DesiredTGUpdates["web"].Place)
	require.Empty(t, plan.FailedTGAllocs)
	require.NotZero(t, plan.JobModifyIndex)

	// A job no node can hold.
	huge := []byte(string(jobYAML("huge", 1)) + "        resources: {cpu: 100, memory: 1000000}\n")
	plan, err = c.Jobs().Plan(ctx(t), "huge", huge, "application/yaml", true, nil)
	require.NoError(t, err)
	require.Equal(t, structs.DiffTypeAdded, plan.Diff.Type)
	m := plan.FailedTGAllocs["web"]
	require.NotNil(t, m, "%+v", plan)
	require.Equal(t, 1, m.NodesExhausted)
	reg, err = c.Jobs().Register(ctx(t), huge, "application/yaml", nil)
	require.NoError(t, err)
	var eval *structs.Evaluation
	require.Eventually(t, func() bool {
		eval, _, err = c.Evaluations().Info(ctx(t), reg.EvalID, nil)
		return err == nil && eval.TerminalStatus()
	}, 15*time.Second, 50*time.Millisecond)
	require.Contains(t, eval.FailedTGAllocs, "web")
	require.Equal(t, 1, eval.FailedTGAllocs["web"].NodesExhausted)
	jobAllocs, _, err := c.Jobs().Allocations(ctx(t), "huge", nil)
	require.NoError(t, err)
	require.Empty(t, jobAllocs)

	resp, _ = doHTTP(t, "GET", base+"/v1/job/huge/allocations", "", "")
	_, err = strconv.ParseUint(resp.Header.Get("X-Drover-Index"), 10, 64)
	require.NoError(t, err, fmt.Sprint(resp.Header))
}
