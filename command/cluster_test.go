package command

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
)

func members() map[string]any {
	return map[string]any{
		"leader": "10.0.0.2:4751",
		"members": []structs.Member{
			{Name: "s2", Addr: "10.0.0.2", Port: 4752, Status: "alive", Role: "server", Region: "global",
				Datacenter: "dc1", RPCAddr: "10.0.0.2:4751", RaftID: "raft-2", Version: "0.1.0"},
			{Name: "c1", Addr: "10.0.0.9", Port: 4752, Status: "alive", Role: "client", Region: "global", Datacenter: "dc1"},
			{Name: "s1", Addr: "10.0.0.1", Port: 4752, Status: "failed", Role: "server", Region: "global",
				Datacenter: "dc1", RPCAddr: "10.0.0.1:4751", RaftID: "raft-1", Version: "0.1.0"},
			{Name: "s10", Addr: "10.0.0.10", Port: 14752, Status: "alive", Role: "server+client", Region: "global",
				Datacenter: "dc2", RPCAddr: "10.0.0.10:4751", RaftID: "raft-10", Version: "0.1.0-dev"},
		},
	}
}

func TestServerMembers(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /v1/agent/members", members())
	r := run(t, "server", "members")
	requireOK(t, r)
	require.Equal(t, lines(
		"Name  Address    Port   Status  Leader  Raft ID  Region  Datacenter  Version",
		"s1    10.0.0.1   4752   failed  false   raft-1   global  dc1         0.1.0",
		"s10   10.0.0.10  14752  alive   false   raft-10  global  dc2         0.1.0-dev",
		"s2    10.0.0.2   4752   alive   true    raft-2   global  dc1         0.1.0",
	), r.stdout)
}

func TestServerMembers_NoLeaderMarksNone(t *testing.T) {
	f := newFakeAPI(t)
	m := members()
	m["leader"] = ""
	m["members"] = []structs.Member{{Name: "s1", Role: "server"}}
	f.reply("GET /v1/agent/members", m)
	r := run(t, "server", "members")
	requireOK(t, r)
	require.Equal(t, lines(
		"Name  Address  Port  Status  Leader  Raft ID  Region  Datacenter  Version",
		"s1             0             false",
	), r.stdout)
}

func TestServerMembers_JSON(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /v1/agent/members", members())
	r := run(t, "server", "members", "-json")
	requireOK(t, r)
	var got []*structs.Member
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	require.Len(t, got, 3, "servers only")
	require.Equal(t, "s1", got[0].Name)
}

func TestServerJoin(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("PUT /v1/agent/join", map[string]int{"num_joined": 2})
	r := run(t, "server", "join", "10.0.0.2", "10.0.0.3:4752")
	requireOK(t, r)
	require.Equal(t, "Joined 2 servers\n", r.stdout)
	require.Equal(t, []string{"10.0.0.2", "10.0.0.3:4752"}, f.find("PUT /v1/agent/join").Query["address"])

	r = run(t, "server", "join")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "Error: missing argument: <address>...\n")
}

func TestServerJoin_Fails(t *testing.T) {
	f := newFakeAPI(t)
	f.fail("PUT /v1/agent/join", http.StatusServiceUnavailable, map[string]any{
		"error": "1 error occurred: no route to host", "code": "unavailable"})
	r := run(t, "server", "join", "10.0.0.2")
	require.Equal(t, 1, r.code)
	require.Equal(t, "Error: joining 10.0.0.2: 1 error occurred: no route to host\n", r.stderr)
}

func TestServerForceLeave(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("PUT /v1/agent/force-leave", struct{}{})
	r := run(t, "server", "force-leave", "s3")
	requireOK(t, r)
	require.Equal(t, "Member \"s3\" forced to leave\n", r.stdout)
	require.Equal(t, []string{"s3"}, f.find("PUT /v1/agent/force-leave").Query["node"])
}

func raftConfig() *structs.RaftConfigurationResponse {
	return &structs.RaftConfigurationResponse{Index: 9, Servers: []*structs.RaftServer{
		{ID: "raft-1", Node: "s1", Address: "10.0.0.1:4751", Voter: true},
		{ID: "raft-2", Node: "s2", Address: "10.0.0.2:4751", Leader: true, Voter: true},
		{ID: "raft-10", Node: "s10", Address: "10.0.0.10:4751"},
	}}
}

func TestRaftListPeers(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /v1/operator/raft/configuration", raftConfig())
	r := run(t, "operator", "raft", "list-peers")
	requireOK(t, r)
	require.Equal(t, lines(
		"Node  ID       Address         State     Voter",
		"s1    raft-1   10.0.0.1:4751   follower  true",
		"s2    raft-2   10.0.0.2:4751   leader    true",
		"s10   raft-10  10.0.0.10:4751  follower  false",
	), r.stdout)
	require.Empty(t, f.find("GET /v1/operator/raft/configuration").Query["stale"])

	r = run(t, "operator", "raft", "list-peers", "-stale", "-json")
	requireOK(t, r)
	var got structs.RaftConfigurationResponse
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	require.Equal(t, raftConfig(), &got)
	require.Equal(t, []string{"true"}, f.find("GET /v1/operator/raft/configuration").Query["stale"])
}

func TestRaftRemovePeer(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("DELETE /v1/operator/raft/peer", struct{}{})

	r := run(t, "operator", "raft", "remove-peer", "-peer-id", "raft-3")
	requireOK(t, r)
	require.Equal(t, "Removed peer with ID \"raft-3\"\n", r.stdout)
	require.Equal(t, map[string][]string{"id": {"raft-3"}}, f.find("DELETE /v1/operator/raft/peer").Query)

	r = run(t, "operator", "raft", "remove-peer", "-peer-address", "10.0.0.3:4751")
	requireOK(t, r)
	require.Equal(t, "Removed peer with address \"10.0.0.3:4751\"\n", r.stdout)
	require.Equal(t, map[string][]string{"address": {"10.0.0.3:4751"}}, f.find("DELETE /v1/operator/raft/peer").Query)

	for _, args := range [][]string{{}, {"-peer-id", "a", "-peer-address", "b:1"}} {
		r = run(t, append([]string{"operator", "raft", "remove-peer"}, args...)...)
		require.Equal(t, 1, r.code)
		require.Equal(t, lines(
			"Error: give exactly one of -peer-id and -peer-address",
			"Run 'drover operator raft remove-peer -help' for usage.",
		), r.stderr)
	}
}

func TestRaftRemovePeer_NotFound(t *testing.T) {
	f := newFakeAPI(t)
	f.fail("DELETE /v1/operator/raft/peer", http.StatusNotFound, map[string]any{
		"error": "no raft peer with id \"x\"", "code": "not_found"})
	r := run(t, "operator", "raft", "remove-peer", "-peer-id", "x")
	require.Equal(t, 1, r.code)
	require.Equal(t, "Error: removing peer \"x\": no raft peer with id \"x\"\n", r.stderr)
}
