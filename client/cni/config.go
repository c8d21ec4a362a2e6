package cni

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"

	"github.com/containernetworking/cni/libcni"
	"github.com/hashicorp/go-hclog"

	"github.com/drover-sh/drover/structs"
)

// Defaults for Config fields left zero. The subnet sits in a corner of
// 172.16/12 that Docker (172.17/16 and up) and Podman (10.88/16) leave
// alone.
const (
	DefaultBridgeName = "drover0"
	DefaultSubnet     = "172.26.64.0/20"
	DefaultPluginDir  = "/usr/lib/cni"
	DefaultConfDir    = "/etc/drover/cni"
)

// cniVersion is what drover's own conflists say; the plugins on Debian 12
// (1.1.1) reject 1.1.0.
const cniVersion = "1.0.0"

// compatibleVersions are the cniVersions a user conflist may name: what a
// runtime speaking 1.0.0 can drive.
var compatibleVersions = map[string]bool{"0.3.0": true, "0.3.1": true, "0.4.0": true, "1.0.0": true}

// A Linux interface name is at most 15 bytes.
var bridgeNamePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,15}$`)

// Config configures a Network. Several clients on one machine must differ
// in BridgeName and Subnet (and, having their own data dirs, StateDir).
type Config struct {
	BridgeName string // default drover0; also the CNI network's name
	Subnet     string // IPv4 CIDR of the bridge, default 172.26.64.0/20
	PluginDir  string // default /usr/lib/cni
	// ConfDir holds user conflists: network mode cni/<name> loads
	// <ConfDir>/<name>.conflist. Default /etc/drover/cni.
	ConfDir string
	// StateDir is where the network namespaces (bind mounts), the
	// per-allocation records and host-local's leases live; required.
	StateDir string
	Logger   hclog.Logger
}

// Validate fills the defaults and checks the fields, naming the one that
// is wrong.
func (c *Config) Validate() error {
	if c.BridgeName == "" {
		c.BridgeName = DefaultBridgeName
	}
	if c.Subnet == "" {
		c.Subnet = DefaultSubnet
	}
	if c.PluginDir == "" {
		c.PluginDir = DefaultPluginDir
	}
	if c.ConfDir == "" {
		c.ConfDir = DefaultConfDir
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if !bridgeNamePattern.MatchString(c.BridgeName) {
		return structs.NewError(structs.ErrInvalid, "bridge_name: %q must be 1 to 15 characters of [A-Za-z0-9_.-]", c.BridgeName)
	}
	if _, err := subnetGateway(c.Subnet); err != nil {
		return err
	}
	if c.StateDir == "" || !filepath.IsAbs(c.StateDir) {
		return structs.NewError(structs.ErrInvalid, "state_dir: %q must be an absolute path", c.StateDir)
	}
	if !filepath.IsAbs(c.PluginDir) {
		return structs.NewError(structs.ErrInvalid, "cni_plugin_dir: %q must be an absolute path", c.PluginDir)
	}
	if !filepath.IsAbs(c.ConfDir) {
		return structs.NewError(structs.ErrInvalid, "cni_conf_dir: %q must be an absolute path", c.ConfDir)
	}
	return nil
}

// subnetGateway checks an IPv4 subnet with room for a gateway and at least
// one allocation, and returns its first address, the bridge's.
func subnetGateway(cidr string) (net.IP, error) {
	ip, ipn, err := net.ParseCIDR(cidr)
	if err != nil {
		return nil, structs.NewError(structs.ErrInvalid, "subnet: %q is not a CIDR: %v", cidr, err)
	}
	ones, bits := ipn.Mask.Size()
	if ip.To4() == nil || bits != 32 {
		return nil, structs.NewError(structs.ErrInvalid, "subnet: %q is not IPv4", cidr)
	}
	if !ip.Equal(ipn.IP) {
		return nil, structs.NewError(structs.ErrInvalid, "subnet: %q has host bits set (did you mean %s?)", cidr, ipn)
	}
	if ones > 29 {
		return nil, structs.NewError(structs.ErrInvalid, "subnet: %q is too small, at most /29", cidr)
	}
	gw := make(net.IP, 4)
	copy(gw, ipn.IP.To4())
	gw[3]++
	return gw, nil
}

// bridgeConfList is drover's own network: a bridge that is the
// allocations' gateway and masquerades their traffic, host-local IPAM
// with its leases under the state dir, and portmap with snat so that
// 127.0.0.1:<host port> reaches the allocation too.
func bridgeConfList(name, subnet string, gateway net.IP, ipamDir string) ([]byte, error) {
	conf := map[string]any{
		"cniVersion": cniVersion,
		"name":       name,
		"plugins": []any{
			map[string]any{
				"type":        "bridge",
				"bridge":      name,
				"isGateway":   true,
				"ipMasq":      true,
				"hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"dataDir": ipamDir,
					"ranges":  [][]map[string]string{{{"subnet": subnet, "gateway": gateway.String()}}},
					"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
				},
			},
			map[string]any{
				"type":         "portmap",
				"capabilities": map[string]bool{"portMappings": true},
				"snat":         true,
			},
		},
	}
	return json.MarshalIndent(conf, "", "  ")
}

// loadUserConfList reads <confDir>/<name>.conflist and checks that this
// node can run it: a cniVersion drover speaks and plugins that exist.
func loadUserConfList(confDir, pluginDir, name string) ([]byte, *libcni.NetworkConfigList, error) {
	path := filepath.Join(confDir, name+".conflist")
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil, structs.NewError(structs.ErrNotFound, "network mode cni/%s: no conflist %s on this node", name, path)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("network mode cni/%s: reading %s: %w", name, path, err)
	}
	list, err := libcni.ConfListFromBytes(b)
	if err != nil {
		return nil, nil, structs.NewError(structs.ErrInvalid, "network mode cni/%s: %s: %v", name, path, err)
	}
	if !compatibleVersions[list.CNIVersion] {
		return nil, nil, structs.NewError(structs.ErrInvalid,
			"network mode cni/%s: %s: cniVersion %q is not supported (use 1.0.0, or 0.3.0 to 0.4.0)", name, path, list.CNIVersion)
	}
	for i, p := range list.Plugins {
		typ := p.Network.Type
		fi, err := os.Stat(filepath.Join(pluginDir, typ))
		if typ == "" || filepath.Base(typ) != typ || err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return nil, nil, structs.NewError(structs.ErrInvalid,
				"network mode cni/%s: %s: plugins[%d].type: no plugin %q in %s", name, path, i, typ, pluginDir)
		}
	}
	return b, list, nil
}
