package agent

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/api"
)

func TestCluster_ThreeServersBootstrapThroughJoin(t *testing.T) {
	nodes := startCluster(t, 3)
	leader := waitForLeader(t, nodes, 3)

	// Register through a follower: the write is forwarded to the leader.
	f := followers(nodes, leader)[0]
	resp, err := f.client().Jobs().Register(ctx(t), jobYAML("web", 3), "application/yaml", nil)
	require.NoError(t, err)
	require.NotEmpty(t, resp.EvalID)
	require.NotZero(t, resp.JobModifyIndex)

	// Consistent reads on every server see it at once.
	for _, n := range nodes {
		job, _, err := n.client().Jobs().Info(ctx(t), "web", nil)
		require.NoError(t, err, n.name)
		require.Equal(t, 3, job.Groups[0].Count, n.name)
	}
	// Stale reads catch up on followers.
	for _, n := range nodes {
		require.Eventually(t, func() bool {
			job, _, err := n.client().Jobs().Info(ctx(t), "web", &api.QueryOptions{AllowStale: true})
			return err == nil && job.JobModifyIndex == resp.JobModifyIndex
		}, 5*time.Second, 10*time.Millisecond, n.name)
	}

	// Every member is alive in everyone's gossip view.
	for _, n := range nodes {
		members, err := n.client().Agent().Members(ctx(t))
		require.NoError(t, err)
		require.Len(t, members.Members, 3)
	}
}

func TestCluster_LeaderKillKeepsAcknowledgedWrites(t *testing.T) {
	nodes := startCluster(t, 3)
	leader := waitForLeader(t, nodes, 3)

	var acked []string
	for i := 0; i < 20; i++ {
		id := fmt.Sprintf("job-%d", i)
		_, err := nodes[i%3].client().Jobs().Register(ctx(t), jobYAML(id, 1), "application/yaml", nil)
		require.NoError(t, err)
		acked = append(acked, id)
	}

	leader.stop()
	survivors := followers(nodes, nil)
	newLeader := waitForLeader(t, survivors, 3)
	require.NotEqual(t, leader.name, newLeader.name)

	for _, n := range survivors {
		jobs, _, err := n.client().Jobs().List(ctx(t), nil)
		require.NoError(t, err)
		require.Len(t, jobs, len(acked), n.name)
	}
	// New writes succeed through either survivor.
	for i, n := range survivors {
		_, err := n.client().Jobs().Register(ctx(t), jobYAML(fmt.Sprintf("after-%d", i), 2), "application/yaml", nil)
		require.NoError(t, err)
	}

	// The old leader comes back on its data dir and catches up.
	leader.start()
	waitForLeader(t, nodes, 3)
	require.Eventually(t, func() bool {
		jobs, _, err := leader.client().Jobs().List(ctx(t), &api.QueryOptions{AllowStale: true})
		return err == nil && len(jobs) == len(acked)+2
	}, 10*time.Second, 20*time.Millisecond)
}

func TestCluster_RestartAllFromDataDirs(t *testing.T) {
	nodes := startCluster(t, 3)
	waitForLeader(t, nodes, 3)

	for i := 0; i < 5; i++ {
		_, err := nodes[0].client().Jobs().Register(ctx(t), jobYAML(fmt.Sprintf("keep-%d", i), i+1), "application/yaml", nil)
		require.NoError(t, err)
	}
	// A second version of one job, so versions survive too.
	_, err := nodes[1].client().Jobs().Register(ctx(t), jobYAML("keep-0", 7), "application/yaml", nil)
	require.NoError(t, err)

	for _, n := range nodes {
		n.stop()
	}
	for _, n := range nodes {
		n.start()
	}
	waitForLeader(t, nodes, 3)

	for _, n := range nodes {
		jobs, _, err := n.client().Jobs().List(ctx(t), nil)
		require.NoError(t, err)
		require.Len(t, jobs, 5, n.name)
		versions, _, err := n.client().Jobs().Versions(ctx(t), "keep-0", nil)
		require.NoError(t, err)
		require.Len(t, versions, 2, n.name)
		require.Equal(t, 7, versions[0].Groups[0].Count)
	}
	// And the cluster still takes writes.
	_, err = nodes[2].client().Jobs().Register(ctx(t), jobYAML("after-restart", 1), "application/yaml", nil)
	require.NoError(t, err)
}

func TestCluster_FiveServersBootstrap(t *testing.T) {
	nodes := startCluster(t, 5)
	leader := waitForLeader(t, nodes, 5)
	_, err := followers(nodes, leader)[3].client().Jobs().Register(ctx(t), jobYAML("five", 5), "application/yaml", nil)
	require.NoError(t, err)
	peers, err := leader.client().Operator().RaftConfiguration(ctx(t), nil)
	require.NoError(t, err)
	require.Len(t, peers.Servers, 5)
	leaders := 0
	for _, s := range peers.Servers {
		require.True(t, s.Voter)
		if s.Leader {
			leaders++
		}
	}
	require.Equal(t, 1, leaders)
}

func TestCluster_LateServerIsAddedAsVoter(t *testing.T) {
	nodes := startCluster(t, 3)
	waitForLeader(t, nodes, 3)

	// A fourth server with no bootstrap-expect joins the running cluster.
	prefix := nodes[0].ip[:len(nodes[0].ip)-1]
	late := &testNode{t: t, name: "s4", ip: prefix + "4", dir: t.TempDir(), join: []string{nodes[1].ip}}
	late.start()
	t.Cleanup(late.stop)
	all := append(nodes, late)
	waitForLeader(t, all, 4)
	_, err := late.client().Jobs().Register(ctx(t), jobYAML("via-late", 1), "application/yaml", nil)
	require.NoError(t, err)

	// Stopped and removed with remove-peer, it leaves the configuration.
	late.stop()
	leader := waitForLeader(t, nodes, 4)
	require.NoError(t, leader.client().Operator().RaftRemovePeerByID(ctx(t), late.id))
	waitForLeader(t, nodes, 3)
}

func TestCluster_ForceLeaveRemovesDeadServer(t *testing.T) {
	nodes := startCluster(t, 3)
	leader := waitForLeader(t, nodes, 3)
	dead := followers(nodes, leader)[0]
	dead.stop()

	live := followers(nodes, dead)
	// Gossip must see it dead (not alive) before force-leave accepts it.
	require.Eventually(t, func() bool {
		members, err := live[0].client().Agent().Members(ctx(t))
		if err != nil {
			return false
		}
		for _, m := range members.Members {
			if m.Name == dead.name {
				return m.Status != "alive"
			}
		}
		return false
	}, 15*time.Second, 50*time.Millisecond)

	// An alive member is refused.
	err := live[0].client().Agent().ForceLeave(ctx(t), live[1].name)
	require.Error(t, err)
	require.Equal(t, "invalid", string(api.CodeOf(err)))

	require.NoError(t, live[0].client().Agent().ForceLeave(ctx(t), dead.name))
	waitForLeader(t, live, 2)
	_, err = live[1].client().Jobs().Register(ctx(t), jobYAML("after-force-leave", 1), "application/yaml", nil)
	require.NoError(t, err)
}
