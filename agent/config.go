package agent

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"gopkg.in/yaml.v3"

	"github.com/drover-sh/drover/client"
	"github.com/drover-sh/drover/client/cni"
	"github.com/drover-sh/drover/client/containerd"
	"github.com/drover-sh/drover/client/fingerprint"
)

// Default ports; see DESIGN.md.
const (
	DefaultHTTPPort   = 4750
	DefaultRPCPort    = 4751
	DefaultGossipPort = 4752
)

// Config is an agent's configuration: a YAML file (-config) overridden by
// command-line flags.
type Config struct {
	Name       string   `yaml:"name"`
	Region     string   `yaml:"region"`
	Datacenter string   `yaml:"datacenter"`
	DataDir    string   `yaml:"data_dir"`
	BindAddr   string   `yaml:"bind_addr"`
	Advertise  string   `yaml:"advertise"`
	LogLevel   string   `yaml:"log_level"`
	LogJSON    bool     `yaml:"log_json"`
	Ports      Ports    `yaml:"ports"`
	Join       []string `yaml:"join"`
	Server     Server   `yaml:"server"`
	Client     Client   `yaml:"client"`
	// MaxRequestBytes caps request bodies (job files); larger ones get 413.
	MaxRequestBytes int64 `yaml:"max_request_bytes"`

	// EnableDebug serves Go's profiler at /debug/pprof/.
	EnableDebug bool `yaml:"enable_debug"`

	// Dev runs one server on 127.0.0.1 with a temporary data dir.
	Dev bool `yaml:"-"`
	// FastGossip shortens gossip timers (tests, dev).
	FastGossip bool `yaml:"-"`
}

// Ports are the agent's listening ports.
type Ports struct {
	HTTP   int `yaml:"http"`
	RPC    int `yaml:"rpc"`
	Gossip int `yaml:"gossip"`
}

// Server is the server part of the config.
type Server struct {
	Enabled         bool `yaml:"enabled"`
	BootstrapExpect int  `yaml:"bootstrap_expect"`
	RaftMultiplier  int  `yaml:"raft_multiplier"`
}

// Client is the client part of the config: the node that runs tasks.
type Client struct {
	Enabled   bool              `yaml:"enabled"`
	NodeClass string            `yaml:"node_class"`
	Meta      map[string]string `yaml:"meta"`
	// Containerd is the runtime. With no address the agent runs its own
	// containerd under the data dir (managed), as k3s does.
	Containerd Containerd `yaml:"containerd"`
	// PlainHTTPRegistries are registries pulled over http (loopback
	// registries always are).
	PlainHTTPRegistries []string                `yaml:"plain_http_registries"`
	RegistryAuth        map[string]RegistryAuth `yaml:"registry_auth"`
	// ImageDir holds image archives (*.tar) imported when an image is not
	// present, for nodes without a registry.
	ImageDir     string `yaml:"image_dir"`
	CNIPluginDir string `yaml:"cni_plugin_dir"`
	// Network is how allocations get their own network (bridge mode,
	// cni/<name>) and which host ports they are given.
	Network ClientNetwork `yaml:"network"`
	// DNS is the node's DNS server for service discovery.
	DNS ClientDNS `yaml:"dns"`
	// Reserved is kept for the OS and the agent itself.
	Reserved    Reserved `yaml:"reserved"`
	LogMaxBytes int64    `yaml:"log_max_bytes"`
	LogMaxFiles int      `yaml:"log_max_files"`
	// GCMaxAllocs is how many allocations the client keeps before it
	// removes the files of its oldest finished ones.
	GCMaxAllocs int `yaml:"gc_max_allocs"`
}

// ClientNetwork configures allocation networking. Several clients on one
// machine need their own bridge name and subnet.
type ClientNetwork struct {
	BridgeName string `yaml:"bridge_name"`
	Subnet     string `yaml:"subnet"`
	// CNIConfDir holds user conflists: network mode cni/<name> loads
	// <dir>/<name>.conflist.
	CNIConfDir string `yaml:"cni_conf_dir"`
	// MinDynamicPort..MaxDynamicPort is where dynamic host ports are
	// picked from.
	MinDynamicPort int `yaml:"min_dynamic_port"`
	MaxDynamicPort int `yaml:"max_dynamic_port"`
}

// ClientDNS configures the node's DNS server, which answers
// <service>.service.drover from the service registry (and, for bridge
// allocations, on their bridge gateway port 53 too).
type ClientDNS struct {
	// Addr is host:port; "" runs no DNS server.
	Addr string `yaml:"addr"`
}

// DefaultDNSAddr keeps the node's DNS off port 53 of the host, where a
// system resolver may already listen.
const DefaultDNSAddr = "127.0.0.1:8600"

// Containerd says which containerd to use.
type Containerd struct {
	// Address is the socket of a containerd the agent does not manage;
	// empty runs a managed one.
	Address   string `yaml:"address"`
	Namespace string `yaml:"namespace"`
	// Binary is the containerd executable of the managed daemon.
	Binary string `yaml:"binary"`
}

// RegistryAuth is a username and password for one registry host.
type RegistryAuth struct {
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// Reserved resources: CPU in MHz, memory in MiB.
type Reserved struct {
	CPU    int `yaml:"cpu"`
	Memory int `yaml:"memory"`
}

// DefaultConfig returns the defaults flags and files are laid over.
func DefaultConfig() *Config {
	return &Config{
		Region:          "global",
		Datacenter:      "dc1",
		BindAddr:        "0.0.0.0",
		LogLevel:        "info",
		Ports:           Ports{HTTP: DefaultHTTPPort, RPC: DefaultRPCPort, Gossip: DefaultGossipPort},
		MaxRequestBytes: 4 << 20,
		Server:          Server{RaftMultiplier: 1},
		Client: Client{
			Containerd:   Containerd{Namespace: "drover", Binary: "containerd"},
			CNIPluginDir: cni.DefaultPluginDir,
			Network: ClientNetwork{
				BridgeName:     cni.DefaultBridgeName,
				Subnet:         cni.DefaultSubnet,
				CNIConfDir:     cni.DefaultConfDir,
				MinDynamicPort: fingerprint.MinDynamicPort,
				MaxDynamicPort: fingerprint.MaxDynamicPort,
			},
			DNS:         ClientDNS{Addr: DefaultDNSAddr},
			LogMaxBytes: 10 << 20,
			LogMaxFiles: 2,
			GCMaxAllocs: client.DefaultGCMaxAllocs,
		},
	}
}

// LoadConfigFile reads a YAML config file over c. Unknown keys are errors.
func LoadConfigFile(c *Config, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading config file: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	return nil
}

// Validate checks the config and fills what derives from other fields.
func (c *Config) Validate() error {
	var errs []error
	if !c.Server.Enabled && !c.Client.Enabled {
		errs = append(errs, errors.New("the agent must run a server, a client or both (-server, -client, or -dev)"))
	}
	if (c.Server.Enabled || c.Client.Enabled) && !c.Dev && c.DataDir == "" {
		errs = append(errs, errors.New("-data-dir is required (or use -dev)"))
	}
	if c.Client.Enabled {
		if !c.Server.Enabled && len(c.Join) == 0 {
			errs = append(errs, errors.New("a client needs -join with the gossip address of a server or another agent"))
		}
		if c.Client.Containerd.Address == "" && c.DataDir != "" {
			if err := containerd.CheckDataDir(filepath.Join(c.DataDir, "containerd")); err != nil {
				errs = append(errs, fmt.Errorf("-data-dir %s is too long: %v: use a shorter one, or run containerd yourself and give -containerd-socket", c.DataDir, err))
			}
		}
		if c.Client.Containerd.Namespace == "" {
			errs = append(errs, errors.New("client.containerd.namespace must not be empty"))
		}
		if c.Client.LogMaxBytes < 4096 {
			errs = append(errs, fmt.Errorf("client.log_max_bytes must be at least 4096, got %d", c.Client.LogMaxBytes))
		}
		if c.Client.LogMaxFiles < 1 {
			errs = append(errs, fmt.Errorf("client.log_max_files must be at least 1, got %d", c.Client.LogMaxFiles))
		}
		if c.Client.GCMaxAllocs < 1 {
			errs = append(errs, fmt.Errorf("client.gc_max_allocs must be at least 1, got %d", c.Client.GCMaxAllocs))
		}
		if c.Client.Reserved.CPU < 0 || c.Client.Reserved.Memory < 0 {
			errs = append(errs, errors.New("client.reserved cpu and memory must not be negative"))
		}
		errs = append(errs, c.Client.Network.validate()...)
		if a := c.Client.DNS.Addr; a != "" {
			if host, port, err := net.SplitHostPort(a); err != nil || net.ParseIP(host) == nil || !validPort(port) {
				errs = append(errs, fmt.Errorf("client.dns.addr must be ip:port (or empty for no DNS server), got %q", a))
			}
		}
	}
	if c.Server.BootstrapExpect < 0 {
		errs = append(errs, errors.New("-bootstrap-expect must be >= 0"))
	}
	if net.ParseIP(c.BindAddr) == nil {
		errs = append(errs, fmt.Errorf("-bind %q is not an IP address", c.BindAddr))
	}
	if c.Advertise != "" && net.ParseIP(c.Advertise) == nil {
		errs = append(errs, fmt.Errorf("-advertise %q is not an IP address", c.Advertise))
	}
	for name, p := range map[string]int{"http": c.Ports.HTTP, "rpc": c.Ports.RPC, "gossip": c.Ports.Gossip} {
		if p < 0 || p > 65535 {
			errs = append(errs, fmt.Errorf("%s port %d out of range", name, p))
		}
	}
	if c.Server.RaftMultiplier < 1 || c.Server.RaftMultiplier > 10 {
		errs = append(errs, fmt.Errorf("raft_multiplier must be 1..10, got %d", c.Server.RaftMultiplier))
	}
	return errors.Join(errs...)
}

// validate checks the network section, naming each bad field.
func (n *ClientNetwork) validate() []error {
	var errs []error
	cc := cni.Config{BridgeName: n.BridgeName, Subnet: n.Subnet, ConfDir: n.CNIConfDir, StateDir: "/"}
	if err := cc.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("client.network.%w", err))
	}
	if n.MinDynamicPort < 1 || n.MaxDynamicPort > 65535 || n.MinDynamicPort > n.MaxDynamicPort {
		errs = append(errs, fmt.Errorf("client.network min_dynamic_port and max_dynamic_port: need 1 <= min <= max <= 65535, got %d-%d",
			n.MinDynamicPort, n.MaxDynamicPort))
	}
	return errs
}

func validPort(s string) bool {
	p, err := strconv.Atoi(s)
	return err == nil && p >= 0 && p <= 65535
}

// advertiseIP is the address other agents reach this one at.
func (c *Config) advertiseIP() string {
	if c.Advertise != "" {
		return c.Advertise
	}
	if ip := net.ParseIP(c.BindAddr); ip != nil && !ip.IsUnspecified() {
		return c.BindAddr
	}
	return firstPrivateIP()
}

// firstPrivateIP picks the address to advertise when bound to 0.0.0.0:
// the first non-loopback IPv4 address, else loopback.
func firstPrivateIP() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
				return ipn.IP.String()
			}
		}
	}
	return "127.0.0.1"
}
