package agent

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConfig_ClientDNS(t *testing.T) {
	c := DefaultConfig()
	c.Client.Enabled, c.Server.Enabled, c.DataDir = true, true, "/tmp/x"
	require.Equal(t, "127.0.0.1:8600", c.Client.DNS.Addr)
	require.NoError(t, c.Validate())

	path := filepath.Join(t.TempDir(), "agent.yaml")
	require.NoError(t, os.WriteFile(path, []byte("client:\n  dns:\n    addr: 127.0.0.2:8653\n"), 0o644))
	require.NoError(t, LoadConfigFile(c, path))
	require.Equal(t, "127.0.0.2:8653", c.Client.DNS.Addr)

	for _, bad := range []string{"localhost:8600", "127.0.0.1", "127.0.0.1:99999", "127.0.0.1:x"} {
		c.Client.DNS.Addr = bad
		require.ErrorContains(t, c.Validate(), "client.dns.addr", bad)
	}
	c.Client.DNS.Addr = ""
	require.NoError(t, c.Validate(), "empty runs no DNS server")
}
