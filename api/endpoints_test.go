package api

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
)

func TestJobs_Register(t *testing.T) {
	f := newFakeAgent(t)
	f.reply("PUT /v1/jobs", &structs.JobRegisterResponse{
		EvalID: "e1", EvalCreateIndex: 10, JobModifyIndex: 10, JobVersion: 2, Warnings: []string{"w"}, Index: 10,
	})
	body := []byte("id: web\n")
	resp, err := f.client(nil).Jobs().Register(ctx(t), body, ContentTypeYAML, &WriteOptions{
		Namespace: "prod", Params: map[string]string{"enforce_index": "9"},
	})
	require.NoError(t, err)
	require.Equal(t, &structs.JobRegisterResponse{
		EvalID: "e1", EvalCreateIndex: 10, JobModifyIndex: 10, JobVersion: 2, Warnings: []string{"w"}, Index: 10,
	}, resp)
	req := f.last()
	require.Equal(t, http.MethodPut, req.Method)
	require.Equal(t, body, req.Body)
	require.Equal(t, ContentTypeYAML, req.ContentType)
	require.Equal(t, map[string][]string{"namespace": {"prod"}, "enforce_index": {"9"}}, req.Query)
}

func TestJobs_RegisterJobSendsJSON(t *testing.T) {
	f := newFakeAgent(t)
	f.reply("PUT /v1/jobs", &structs.JobRegisterResponse{EvalID: "e1"})
	job := &structs.Job{ID: "web", Type: structs.JobTypeService, Priority: 50,
		Groups: []*structs.TaskGroup{{Name: "g", Count: 2}}}
	_, err := f.client(nil).Jobs().RegisterJob(ctx(t), job)
	require.NoError(t, err)
	req := f.last()
	require.Equal(t, ContentTypeJSON, req.ContentType)
	var sent structs.Job
	require.NoError(t, json.Unmarshal(req.Body, &sent))
	require.Equal(t, "web", sent.ID)
	require.Equal(t, 2, sent.Groups[0].Count)
}

func TestJobs_InfoEscapesTheID(t *testing.T) {
	f := newFakeAgent(t)
	f.reply("GET /v1/job/a b/c", &structs.Job{ID: "a b/c"})
	job, meta, err := f.client(nil).Jobs().Info(ctx(t), "a b/c", nil)
	require.NoError(t, err)
	require.Equal(t, "a b/c", job.ID)
	require.Equal(t, uint64(42), meta.LastIndex)
	require.Equal(t, "/v1/job/a%20b%2Fc", f.last().RawPath)
}

func TestJobs_Versions(t *testing.T) {
	f := newFakeAgent(t)
	f.reply("GET /v1/job/web/versions", map[string]any{"versions": []*structs.Job{{ID: "web", Version: 1}, {ID: "web", Version: 0}}})
	versions, meta, err := f.client(nil).Jobs().Versions(ctx(t), "web", &QueryOptions{AllowStale: true})
	require.NoError(t, err)
	require.Len(t, versions, 2)
	require.Equal(t, uint64(1), versions[0].Version)
	require.True(t, meta.KnownLeader)
	require.Equal(t, []string{"true"}, f.last().Query["stale"])
}

func TestJobs_Deregister(t *testing.T) {
	f := newFakeAgent(t)
	f.reply("DELETE /v1/job/web", &structs.JobDeregisterResponse{EvalID: "e2", Index: 12})
	c := f.client(&Config{Namespace: "prod"})

	resp, err := c.Jobs().Deregister(ctx(t), "web", false)
	require.NoError(t, err)
	require.Equal(t, "e2", resp.EvalID)
	require.Equal(t, map[string][]string{"namespace": {"prod"}}, f.last().Query)

	_, err = c.Jobs().Deregister(ctx(t), "web", true)
	require.NoError(t, err)
	require.Equal(t, []string{"true"}, f.last().Query["purge"])
}

func TestJobs_Evaluations(t *testing.T) {
	f := newFakeAgent(t)
	f.reply("GET /v1/evaluations", []*structs.Evaluation{{ID: "e1", JobID: "web"}})
	q := &QueryOptions{Params: map[string]string{"status": "complete"}}
	evals, _, err := f.client(nil).Jobs().Evaluations(ctx(t), "web", q)
	require.NoError(t, err)
	require.Len(t, evals, 1)
	require.Equal(t, map[string][]string{"job": {"web"}, "status": {"complete"}}, f.last().Query)
	require.Equal(t, map[string]string{"status": "complete"}, q.Params, "the caller's options are not modified")
}

func TestEvaluations_ListAndInfo(t *testing.T) {
	f := newFakeAgent(t)
	f.reply("GET /v1/evaluations", []*structs.Evaluation{{ID: "e1"}, {ID: "e2"}})
	f.reply("GET /v1/evaluation/e1", &structs.Evaluation{ID: "e1", Status: structs.EvalStatusComplete})
	c := f.client(nil)

	evals, _, err := c.Evaluations().List(ctx(t), &QueryOptions{Prefix: "e"})
	require.NoError(t, err)
	require.Len(t, evals, 2)
	require.Equal(t, []string{"e"}, f.last().Query["prefix"])

	eval, meta, err := c.Evaluations().Info(ctx(t), "e1", nil)
	require.NoError(t, err)
	require.Equal(t, structs.EvalStatusComplete, eval.Status)
	require.Equal(t, uint64(42), meta.LastIndex)
}

func TestStatus_LeaderAndPeers(t *testing.T) {
	f := newFakeAgent(t)
	f.reply("GET /v1/status/leader", "")
	f.reply("GET /v1/status/peers", []string{"10.0.0.1:4751"})
	c := f.client(nil)
	leader, err := c.Status().Leader(ctx(t))
	require.NoError(t, err)
	require.Empty(t, leader, "no leader is an empty string, not an error")
	peers, err := c.Status().Peers(ctx(t))
	require.NoError(t, err)
	require.Equal(t, []string{"10.0.0.1:4751"}, peers)
}

func TestAgent_SelfAndMembers(t *testing.T) {
	f := newFakeAgent(t)
	f.reply("GET /v1/agent/self", map[string]any{
		"name": "s1", "role": "server", "region": "global", "datacenter": "dc1", "version": "0.1.0",
		"http_addr": "10.0.0.1:4750", "rpc_addr": "10.0.0.1:4751",
		"member": structs.Member{Name: "s1", Role: structs.RoleServer, RaftID: "r1"},
	})
	f.reply("GET /v1/agent/members", map[string]any{
		"members": []structs.Member{{Name: "s1", RPCAddr: "10.0.0.1:4751"}, {Name: "s2"}},
		"leader":  "10.0.0.1:4751",
	})
	c := f.client(nil)

	self, err := c.Agent().Self(ctx(t))
	require.NoError(t, err)
	require.Equal(t, "s1", self.Name)
	require.Equal(t, RoleServer, self.Role)
	require.Equal(t, "10.0.0.1:4751", self.RPCAddr)
	require.Equal(t, "r1", self.Member.RaftID)

	members, err := c.Agent().Members(ctx(t))
	require.NoError(t, err)
	require.Len(t, members.Members, 2)
	require.Equal(t, "10.0.0.1:4751", members.Leader)
}

func TestAgent_JoinAndForceLeave(t *testing.T) {
	f := newFakeAgent(t)
	f.reply("PUT /v1/agent/join", map[string]int{"num_joined": 2})
	f.reply("PUT /v1/agent/force-leave", struct{}{})
	c := f.client(nil)

	n, err := c.Agent().Join(ctx(t), "10.0.0.2", "10.0.0.3:4752")
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, map[string][]string{"address": {"10.0.0.2", "10.0.0.3:4752"}}, f.last().Query)

	_, err = c.Agent().Join(ctx(t))
	require.Error(t, err)

	require.NoError(t, c.Agent().ForceLeave(ctx(t), "s3"))
	req := f.last()
	require.Equal(t, http.MethodPut, req.Method)
	require.Equal(t, map[string][]string{"node": {"s3"}}, req.Query)
}

func TestOperator_Raft(t *testing.T) {
	f := newFakeAgent(t)
	f.reply("GET /v1/operator/raft/configuration", &structs.RaftConfigurationResponse{
		Servers: []*structs.RaftServer{{ID: "r1", Node: "s1", Address: "10.0.0.1:4751", Leader: true, Voter: true}},
		Index:   7,
	})
	f.reply("DELETE /v1/operator/raft/peer", struct{}{})
	c := f.client(nil)

	cfg, err := c.Operator().RaftConfiguration(ctx(t), &QueryOptions{AllowStale: true})
	require.NoError(t, err)
	require.Equal(t, uint64(7), cfg.Index)
	require.Equal(t, "s1", cfg.Servers[0].Node)
	require.Equal(t, []string{"true"}, f.last().Query["stale"])

	require.NoError(t, c.Operator().RaftRemovePeerByID(ctx(t), "r2"))
	require.Equal(t, map[string][]string{"id": {"r2"}}, f.last().Query)
	require.NoError(t, c.Operator().RaftRemovePeerByAddress(ctx(t), "10.0.0.2:4751"))
	require.Equal(t, map[string][]string{"address": {"10.0.0.2:4751"}}, f.last().Query)
	require.Equal(t, http.MethodDelete, f.last().Method)
}
