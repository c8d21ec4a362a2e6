package server

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
	"github.com/drover-sh/drover/structs/mock"
)

// Gossip's failure notice about a client cuts its heartbeat timer short,
// so the node goes down long before its TTL; a node gossip wrongly reports
// failed that keeps heartbeating stays up: the heartbeat is the authority.
func TestHeartbeat_GossipFailureHurriesDownNode(t *testing.T) {
	t.Parallel()
	s := testServer(t, gossipHeartbeats)
	dead, alive := mock.Node(), mock.Node()
	registerNode(t, s, dead)
	registerNode(t, s, alive)

	// A server-role event or another region does nothing to nodes.
	s.HandleMemberEvent(structs.MemberEvent{Type: structs.MemberEventFailed,
		Member: structs.Member{Name: "x", Role: structs.RoleClient, Region: "elsewhere", NodeID: dead.ID}})

	start := time.Now()
	for _, n := range []*structs.Node{dead, alive} {
		s.HandleMemberEvent(structs.MemberEvent{Type: structs.MemberEventFailed,
			Member: structs.Member{Name: n.Name, Role: structs.RoleClient, Region: s.config.Region, NodeID: n.ID}})
	}
	// The wrongly suspected node heartbeats right away.
	var hb structs.NodeUpdateResponse
	require.Eventually(t, func() bool {
		require.NoError(t, s.RPC("Node.Heartbeat", &structs.NodeHeartbeatRequest{NodeID: alive.ID}, &hb))
		n, _ := s.State().Snapshot().NodeByID(nil, dead.ID)
		return n.Status == structs.NodeStatusDown
	}, 5*time.Second, 50*time.Millisecond)
	require.Less(t, time.Since(start), 5*time.Second, "down after the gossip grace, not the 20 s TTL")

	n, _ := s.State().Snapshot().NodeByID(nil, alive.ID)
	require.Equal(t, structs.NodeStatusReady, n.Status)
}

// A node gossip reported failed that gossip then sees alive again (it
// refuted the failure) gets its full TTL back, heartbeat or not.
func TestHeartbeat_GossipAliveAgainRestoresTTL(t *testing.T) {
	t.Parallel()
	s := testServer(t, gossipHeartbeats)
	n := mock.Node()
	registerNode(t, s, n)
	member := structs.Member{Name: n.Name, Role: structs.RoleClient, Region: s.config.Region, NodeID: n.ID}
	s.HandleMemberEvent(structs.MemberEvent{Type: structs.MemberEventFailed, Member: member})
	s.HandleMemberEvent(structs.MemberEvent{Type: structs.MemberEventJoin, Member: member})
	// Well past the gossip grace: still up.
	deadline := time.Now().Add(5 * 300 * time.Millisecond)
	require.Never(t, func() bool {
		got, _ := s.State().Snapshot().NodeByID(nil, n.ID)
		return got.Status == structs.NodeStatusDown
	}, time.Until(deadline), 50*time.Millisecond, "a node gossip sees alive again was marked down")
}

// gossipHeartbeats gives a test server heartbeat TTLs far longer than its
// gossip grace, so which of them marked a node down shows in the timing.
func gossipHeartbeats(c *Config) {
	c.MinHeartbeatTTL = 20 * time.Second
	c.HeartbeatGrace = 10 * time.Second
	c.FailoverHeartbeatTTL = 30 * time.Second
	c.GossipDeadGrace = 300 * time.Millisecond
}
