package agent

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/api"
	"github.com/drover-sh/drover/internal/testlog"
)

// loopbackBlock returns a random 127.A.B.0/24 prefix whose default ports
// are free on .1 to .n, so parallel test packages do not collide.
func loopbackBlock(t *testing.T, n int) string {
	t.Helper()
	for attempt := 0; attempt < 50; attempt++ {
		prefix := fmt.Sprintf("127.%d.%d.", 10+rand.IntN(240), rand.IntN(256))
		free := true
		for i := 1; i <= n && free; i++ {
			for _, port := range []int{DefaultHTTPPort, DefaultRPCPort, DefaultGossipPort} {
				ln, err := net.Listen("tcp", fmt.Sprintf("%s%d:%d", prefix, i, port))
				if err != nil {
					free = false
					break
				}
				ln.Close()
			}
		}
		if free {
			return prefix
		}
	}
	t.Fatal("no free loopback block")
	return ""
}

// testNode is one in-process agent of a test cluster.
type testNode struct {
	t      *testing.T
	name   string
	ip     string
	dir    string
	expect int
	join   []string
	agent  *Agent
	id     string
}

func (n *testNode) config() *Config {
	c := DefaultConfig()
	c.Name = n.name
	c.BindAddr = n.ip
	c.DataDir = n.dir
	c.Server.Enabled = true
	c.Server.BootstrapExpect = n.expect
	c.Join = n.join
	c.FastGossip = true
	return c
}

// start starts (or restarts, on the same data dir) the agent.
func (n *testNode) start() {
	n.t.Helper()
	logger := testlog.New(n.t, n.name, hclog.Info)
	a, err := New(n.config(), logger)
	require.NoError(n.t, err)
	n.agent = a
	n.id = a.NodeID()
}

// stop shuts the agent down without leaving gossip, as a crash would.
func (n *testNode) stop() {
	if n.agent != nil {
		n.agent.Shutdown(false)
		n.agent = nil
	}
}

func (n *testNode) client() *api.Client {
	c, err := api.NewClient(&api.Config{Address: "http://" + n.agent.HTTPAddr()})
	require.NoError(n.t, err)
	return c
}

// startCluster starts n servers that find each other only through -join
// to the first one.
func startCluster(t *testing.T, n int) []*testNode {
	t.Helper()
	prefix := loopbackBlock(t, n+1) // one spare address for a late joiner
	nodes := make([]*testNode, n)
	for i := range nodes {
		ip := fmt.Sprintf("%s%d", prefix, i+1)
		nodes[i] = &testNode{t: t, name: fmt.Sprintf("s%d", i+1), ip: ip, dir: t.TempDir(), expect: n}
		if i > 0 {
			nodes[i].join = []string{prefix + "1"}
		}
	}
	for _, node := range nodes {
		node.start()
	}
	t.Cleanup(func() {
		for _, node := range nodes {
			node.stop()
		}
	})
	return nodes
}

// waitForLeader waits until every running node agrees on one leader with
// a full Raft configuration, and returns the leader.
func waitForLeader(t *testing.T, nodes []*testNode, voters int) *testNode {
	t.Helper()
	var leader *testNode
	require.Eventually(t, func() bool {
		leader = nil
		addr := ""
		for _, n := range nodes {
			if n.agent == nil {
				continue
			}
			l := n.agent.Server().Leader()
			if l == "" || (addr != "" && l != addr) {
				return false
			}
			addr = l
			if n.agent.Server().IsLeader() {
				leader = n
			}
		}
		if leader == nil {
			return false
		}
		f := leader.agent.Server().Raft().GetConfiguration()
		return f.Error() == nil && len(f.Configuration().Servers) == voters
	}, 20*time.Second, 20*time.Millisecond, "no stable leader with %d voters", voters)
	return leader
}

func followers(nodes []*testNode, leader *testNode) []*testNode {
	var out []*testNode
	for _, n := range nodes {
		if n != leader && n.agent != nil {
			out = append(out, n)
		}
	}
	return out
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func jobYAML(id string, count int) []byte {
	return []byte(fmt.Sprintf(`id: %s
datacenters: [dc1]
groups:
  - name: web
    count: %d
    tasks:
      - name: server
        image: 127.0.0.1:5000/drover/busybox:latest
        command: /bin/httpd
        args: ["-f", "-p", "8080"]
`, id, count))
}
