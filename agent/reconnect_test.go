package agent

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
)

// An agent that comes back without -join (as after a partition that
// outlasted gossip's timeouts) is found again by the others, which keep
// trying the members gossip declared dead.
func TestAgent_ReconnectsDeadMembers(t *testing.T) {
	nodes := startCluster(t, 3)
	waitForLeader(t, nodes, 3)
	first := nodes[0]
	require.Empty(t, first.join, "the first agent joins no one by itself")

	first.stop()
	require.Eventually(t, func() bool {
		for _, m := range nodes[1].agent.gossip.Members() {
			if m.Name == first.name {
				return m.Status == structs.MemberDead
			}
		}
		return false
	}, 10*time.Second, 50*time.Millisecond, "the others see the first agent dead")

	first.start()
	require.Eventually(t, func() bool {
		alive := 0
		for _, m := range first.agent.gossip.Members() {
			if m.Status == structs.MemberAlive {
				alive++
			}
		}
		return alive == 3
	}, 20*time.Second, 100*time.Millisecond, "the restarted agent is found again")
	waitForLeader(t, nodes, 3)
}
