package agent

import (
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
