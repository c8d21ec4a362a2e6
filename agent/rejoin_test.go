package agent

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
)

// An agent restarted without -join, after the others declared it dead,
// rejoins them through the peers it saved. (Before the peers file, this
// waited on the others: they saw it alive again as soon as it answered a
// probe, and it learnt of them only if a periodic push-pull happened to
// pick it.)
func TestAgent_RejoinsPreviousMembers(t *testing.T) {
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

	peers, err := os.ReadFile(filepath.Join(first.dir, "gossip", "peers.json"))
	require.NoError(t, err, "the agent saved its peers")
	require.Contains(t, string(peers), nodes[1].ip)
	require.Contains(t, string(peers), nodes[2].ip)

	first.start()
	require.Eventually(t, func() bool {
		alive := 0
		for _, m := range first.agent.gossip.Members() {
			if m.Status == structs.MemberAlive {
				alive++
			}
		}
		return alive == 3
	}, 10*time.Second, 50*time.Millisecond, "the restarted agent knows the others again")
	waitForLeader(t, nodes, 3)
}
