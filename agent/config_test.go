package agent

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
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

// examples/config/agent.yaml lists every config key with its default value, bar
// the few it sets on purpose: a key added to Config without the example,
// or a default changed without it, fails here.
func TestConfig_ExampleFileListsEveryKeyWithItsDefault(t *testing.T) {
	const path = "../examples/config/agent.yaml"
	c := DefaultConfig()
	require.NoError(t, LoadConfigFile(c, path))
	want := DefaultConfig()
	want.Server.Enabled, want.Server.BootstrapExpect = true, 1
	want.Client.Enabled = true
	want.DataDir = "/var/lib/drover"
	// Empty lists and maps in the file decode as empty, not nil.
	want.Join, want.Client.PlainHTTPRegistries = []string{}, []string{}
	want.Client.Meta, want.Client.RegistryAuth = map[string]string{}, map[string]RegistryAuth{}
	require.Equal(t, want, c)
	require.NoError(t, c.Validate())

	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &doc))
	var missing []string
	var walk func(prefix string, typ reflect.Type, node map[string]any)
	walk = func(prefix string, typ reflect.Type, node map[string]any) {
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			key := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if key == "" || key == "-" {
				continue
			}
			v, ok := node[key]
			if !ok {
				missing = append(missing, prefix+key)
				continue
			}
			if f.Type.Kind() == reflect.Struct {
				sub, _ := v.(map[string]any)
				walk(prefix+key+".", f.Type, sub)
			}
		}
	}
	walk("", reflect.TypeOf(Config{}), doc)
	require.Empty(t, missing, "keys of Config missing from %s", path)
}
