package api

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
)

func TestNodes_ListInfoAllocations(t *testing.T) {
	f := newFakeAgent(t)
	f.reply("GET /v1/nodes", []*structs.NodeListStub{{ID: "n1", Name: "a"}, {ID: "n2", Name: "b"}})
	f.reply("GET /v1/node/n1", &structs.Node{ID: "n1", Name: "a", Status: structs.NodeStatusReady})
	f.reply("GET /v1/node/n1/allocations", []*structs.Allocation{{ID: "a1", NodeID: "n1"}})
	c := f.client(nil)

	nodes, meta, err := c.Nodes().List(ctx(t), &QueryOptions{Prefix: "n", WaitIndex: 5, WaitTime: time.Second})
	require.NoError(t, err)
	require.Len(t, nodes, 2)
	require.Equal(t, uint64(42), meta.LastIndex)
	require.Equal(t, map[string][]string{"prefix": {"n"}, "index": {"5"}, "wait": {"1s"}}, f.last().Query)

	node, _, err := c.Nodes().Info(ctx(t), "n1", nil)
	require.NoError(t, err)
	require.Equal(t, structs.NodeStatusReady, node.Status)

	allocs, _, err := c.Nodes().Allocations(ctx(t), "n1", nil)
	require.NoError(t, err)
	require.Equal(t, "a1", allocs[0].ID)
}

func TestNodes_UpdateDrainBody(t *testing.T) {
	f := newFakeAgent(t)
	f.reply("PUT /v1/node/n1/drain", &structs.NodeUpdateStatusResponse{NodeModifyIndex: 9, Index: 9, EvalIDs: []string{"e1"}})
	c := f.client(nil)

	resp, err := c.Nodes().UpdateDrain(ctx(t), "n1", &DrainSpec{Deadline: time.Hour, IgnoreSystemJobs: true}, false, nil)
	require.NoError(t, err)
	require.Equal(t, &structs.NodeUpdateStatusResponse{NodeModifyIndex: 9, Index: 9, EvalIDs: []string{"e1"}}, resp)
	req := f.last()
	require.Equal(t, http.MethodPut, req.Method)
	require.Equal(t, ContentTypeJSON, req.ContentType)
	require.JSONEq(t, `{"drain_spec": {"deadline": "1h0m0s", "ignore_system_jobs": true}, "mark_eligible": false}`, string(req.Body))

	_, err = c.Nodes().UpdateDrain(ctx(t), "n1", nil, true, nil)
	require.NoError(t, err)
	require.JSONEq(t, `{"drain_spec": null, "mark_eligible": true}`, string(f.last().Body))
}

func TestNodes_UpdateEligibilityBody(t *testing.T) {
	f := newFakeAgent(t)
	f.reply("PUT /v1/node/n1/eligibility", &structs.NodeUpdateStatusResponse{Index: 3})
	c := f.client(nil)
	_, err := c.Nodes().UpdateEligibility(ctx(t), "n1", false, nil)
	require.NoError(t, err)
	require.JSONEq(t, `{"eligibility": "ineligible"}`, string(f.last().Body))
	_, err = c.Nodes().UpdateEligibility(ctx(t), "n1", true, nil)
	require.NoError(t, err)
	require.JSONEq(t, `{"eligibility": "eligible"}`, string(f.last().Body))
}

func TestAllocations_ListAndInfo(t *testing.T) {
	f := newFakeAgent(t)
	f.reply("GET /v1/allocations", []*structs.AllocListStub{{ID: "a1"}})
	f.reply("GET /v1/allocation/a1", &structs.Allocation{ID: "a1", ClientStatus: structs.AllocClientRunning})
	c := f.client(&Config{Namespace: "prod"})

	allocs, _, err := c.Allocations().List(ctx(t), &QueryOptions{Namespace: "*"})
	require.NoError(t, err)
	require.Len(t, allocs, 1)
	require.Equal(t, []string{"*"}, f.last().Query["namespace"])

	alloc, _, err := c.Allocations().Info(ctx(t), "a1", nil)
	require.NoError(t, err)
	require.Equal(t, structs.AllocClientRunning, alloc.ClientStatus)
	require.Equal(t, []string{"prod"}, f.last().Query["namespace"])
}

func TestJobs_PlanAndAllocations(t *testing.T) {
	f := newFakeAgent(t)
	f.reply("PUT /v1/job/web/plan", &structs.JobPlanResponse{
		JobModifyIndex: 7,
		Diff:           &structs.JobDiff{Type: structs.DiffTypeEdited, ID: "web"},
		FailedTGAllocs: map[string]*structs.AllocMetric{"frontend": {NodesEvaluated: 2, NodesExhausted: 2}},
	})
	f.reply("GET /v1/job/web/allocations", []*structs.AllocListStub{{ID: "a1", JobID: "web", JobVersion: 3}})
	c := f.client(nil)

	body := []byte("id: web\n")
	resp, err := c.Jobs().Plan(ctx(t), "web", body, ContentTypeYAML, false, nil)
	require.NoError(t, err)
	require.Equal(t, uint64(7), resp.JobModifyIndex)
	require.Equal(t, structs.DiffTypeEdited, resp.Diff.Type)
	require.Equal(t, 2, resp.FailedTGAllocs["frontend"].NodesExhausted)
	req := f.last()
	require.Equal(t, body, req.Body)
	require.Equal(t, []string{"false"}, req.Query["diff"])

	_, err = c.Jobs().PlanJob(ctx(t), &structs.Job{ID: "web"}, true)
	require.NoError(t, err)
	var sent structs.Job
	require.NoError(t, json.Unmarshal(f.last().Body, &sent))
	require.Equal(t, "web", sent.ID)
	require.Equal(t, []string{"true"}, f.last().Query["diff"])

	allocs, _, err := c.Jobs().Allocations(ctx(t), "web", nil)
	require.NoError(t, err)
	require.Equal(t, uint64(3), allocs[0].JobVersion)
}

func TestEvalFilter(t *testing.T) {
	require.Equal(t, map[string]string{}, EvalFilter("", ""))
	require.Equal(t, map[string]string{"job": "web", "status": "blocked"}, EvalFilter("web", "blocked"))
}
