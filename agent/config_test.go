package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConfig_ClientNetwork(t *testing.T) {
	valid := func() *Config {
		c := DefaultConfig()
		c.Client.Enabled, c.Server.Enabled, c.DataDir = true, true, "/tmp/x"
		return c
	}
	c := valid()
	require.NoError(t, c.Validate())
	require.Equal(t, "drover0", c.Client.Network.BridgeName)
	require.Equal(t, "172.26.64.0/20", c.Client.Network.Subnet)
	require.Equal(t, 20000, c.Client.Network.MinDynamicPort)
	require.Equal(t, 32000, c.Client.Network.MaxDynamicPort)

	for want, mutate := range map[string]func(*ClientNetwork){
		"client.network.subnet:":       func(n *ClientNetwork) { n.Subnet = "10.0.0.0/99" },
		"client.network.bridge_name:":  func(n *ClientNetwork) { n.BridgeName = "way-too-long-bridge" },
		"client.network.cni_conf_dir:": func(n *ClientNetwork) { n.CNIConfDir = "relative" },
		"min_dynamic_port":             func(n *ClientNetwork) { n.MinDynamicPort, n.MaxDynamicPort = 30000, 29999 },
	} {
		c := valid()
		mutate(&c.Client.Network)
		require.ErrorContains(t, c.Validate(), want)
	}
}

func TestConfig_ClientGC(t *testing.T) {
	c := DefaultConfig()
	c.Client.Enabled, c.Server.Enabled, c.DataDir = true, true, "/tmp/x"
	require.Equal(t, 50, c.Client.GCMaxAllocs)

	path := filepath.Join(t.TempDir(), "agent.yaml")
	require.NoError(t, os.WriteFile(path, []byte("client:\n  gc_max_allocs: 7\n"), 0o644))
	require.NoError(t, LoadConfigFile(c, path))
	require.Equal(t, 7, c.Client.GCMaxAllocs)
	require.NoError(t, c.Validate())

	require.NoError(t, os.WriteFile(path, []byte("client:\n  gc_max_allocs: 0\n"), 0o644))
	require.NoError(t, LoadConfigFile(c, path))
	require.ErrorContains(t, c.Validate(), "client.gc_max_allocs must be at least 1, got 0")
}

// A data dir too long for the managed containerd's socket is refused
// before anything starts, unless containerd is the user's own.
func TestConfig_DataDirTooLongForContainerd(t *testing.T) {
	c := DefaultConfig()
	c.Client.Enabled, c.Server.Enabled = true, true
	c.DataDir = "/tmp/" + strings.Repeat("x", 80)
	err := c.Validate()
	require.ErrorContains(t, err, "-data-dir /tmp/xxx")
	require.ErrorContains(t, err, "too long")
	require.ErrorContains(t, err, "unix sockets allow 107")

	c.Client.Containerd.Address = "/run/containerd/containerd.sock"
	require.NoError(t, c.Validate())
}
