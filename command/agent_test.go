package command

import (
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/agent"
	"github.com/drover-sh/drover/api"
	"github.com/drover-sh/drover/internal/testlog"
	"github.com/drover-sh/drover/structs"
	"github.com/drover-sh/drover/structs/mock"
)

// devAgent is a real one-server agent in the test process, for commands
// run end to end.
type devAgent struct {
	t     *testing.T
	agent *agent.Agent
}

// startDevAgent starts a bootstrapped single server on a free loopback
// address and points the commands at it through $DROVER_ADDR.
func startDevAgent(t *testing.T) *devAgent {
	t.Helper()
	cfg := agent.DefaultConfig()
	cfg.Name = "dev"
	cfg.BindAddr = freeLoopback(t)
	cfg.DataDir = t.TempDir()
	cfg.Server.Enabled = true
	cfg.Server.BootstrapExpect = 1
	cfg.FastGossip = true
	logger := testlog.New(t, "dev", hclog.Warn)
	a, err := agent.New(cfg, logger)
	require.NoError(t, err)
	t.Cleanup(func() { a.Shutdown(false) })
	require.Eventually(t, func() bool { return a.Server().IsLeader() }, 20*time.Second, 20*time.Millisecond, "no leader")
	t.Setenv(api.EnvAddress, "http://"+a.HTTPAddr())
	t.Setenv(api.EnvToken, "")
	t.Setenv(api.EnvNamespace, "")
	return &devAgent{t: t, agent: a}
}

// registerNode registers a mock node through the real Node.Register RPC,
// as a client would.
func (d *devAgent) registerNode() *structs.Node {
	d.t.Helper()
	node := mock.Node()
	var resp structs.NodeUpdateResponse
	require.NoError(d.t, d.agent.Server().RPC("Node.Register", &structs.NodeRegisterRequest{Node: node}, &resp))
	return node
}

// freeLoopback returns a 127.A.B.1 address whose default ports are free,
// so parallel test packages do not collide.
func freeLoopback(t *testing.T) string {
	t.Helper()
	for attempt := 0; attempt < 50; attempt++ {
		ip := fmt.Sprintf("127.%d.%d.1", 10+rand.IntN(240), rand.IntN(256))
		free := true
		for _, port := range []int{agent.DefaultHTTPPort, agent.DefaultRPCPort, agent.DefaultGossipPort} {
			ln, err := net.Listen("tcp", fmt.Sprintf("%s:%d", ip, port))
			if err != nil {
				free = false
				break
			}
			ln.Close()
		}
		if free {
			return ip
		}
	}
	t.Fatal("no free loopback address")
	return ""
}
