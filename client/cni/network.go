// Package cni gives allocations their own network through CNI (go-cni and
// the standard plugins): one network namespace per allocation, shared by
// its tasks, attached to the node's bridge (network mode bridge), to a
// user's conflist (cni/<name>), or to nothing but loopback (none).
//
// What it creates for an allocation, it first records on disk, so that a
// client that crashed anywhere in the middle can undo it later (Sweep):
//
//	<state_dir>/netns/<alloc_id>/network.json   the record: mode, conflist, ports
//	<state_dir>/netns/<alloc_id>/cni-<random>   the namespace's bind mount
//	<state_dir>/ipam/<network>/<ip>             host-local's lease, naming the alloc ID
//
// The allocation ID is the CNI container ID, so the plugins' iptables
// rules (their comments carry `id: "<alloc_id>"`) and host-local's leases
// lead back to the allocation.
package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/containerd/containerd/v2/pkg/netns"
	gocni "github.com/containerd/go-cni"
	"github.com/hashicorp/go-hclog"

	"github.com/drover-sh/drover/client/state"
	"github.com/drover-sh/drover/structs"
)

// Keys of NetworkStatus.Data. "ip" and "gateway" are read by the service
// registry and the DNS server (the gateway is where the node's DNS listens
// for allocations).
const (
	DataIP      = "ip"
	DataGateway = "gateway"
	DataMode    = "cni" // "bridge", "none" or "cni/<name>"
	DataBridge  = "bridge"
)

const (
	recordFile = "network.json"
	nsPrefix   = "cni-" // what containerd's netns names its bind mounts
	ifName     = "eth0"
)

// record is what Setup writes before it creates anything, and what
// Teardown and Sweep undo from.
type record struct {
	AllocID  string              `json:"alloc_id"`
	Mode     string              `json:"mode"`
	Network  string              `json:"network,omitempty"` // the conflist's name
	ConfList json.RawMessage     `json:"conflist,omitempty"`
	Ports    []gocni.PortMapping `json:"ports,omitempty"`
}

// Network implements client.Network with CNI.
type Network struct {
	cfg     Config
	logger  hclog.Logger
	gateway net.IP
	nsDir   string
	ipamDir string
	bridge  []byte     // drover's own conflist
	cni     gocni.CNI  // loaded with it, shared by every bridge allocation
	lo      gocni.CNI  // loopback only, for network mode none
	locks   keyedMutex // one Setup/Teardown at a time per allocation
	mu      sync.Mutex // one Sweep at a time
}

// New checks the config and prepares the bridge network; nothing is
// created on the host until the first Setup.
func New(cfg Config) (*Network, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	gw, _ := subnetGateway(cfg.Subnet)
	if err := checkSubnetFree(cfg.BridgeName, cfg.Subnet); err != nil {
		return nil, err
	}
	ensurePath()
	n := &Network{
		cfg:     cfg,
		logger:  cfg.Logger.Named("cni"),
		gateway: gw,
		nsDir:   filepath.Join(cfg.StateDir, "netns"),
		ipamDir: filepath.Join(cfg.StateDir, "ipam"),
	}
	var err error
	if n.bridge, err = bridgeConfList(cfg.BridgeName, cfg.Subnet, gw, n.ipamDir); err != nil {
		return nil, fmt.Errorf("building the bridge conflist: %w", err)
	}
	if n.cni, err = n.load(n.bridge); err != nil {
		return nil, err
	}
	if n.lo, err = n.load(nil); err != nil {
		return nil, err
	}
	return n, nil
}

// checkSubnetFree refuses a subnet in which an interface other than the
// node's own bridge has an address: another client's bridge (two clients
// on one machine given the same -network-subnet), a container runtime's
// bridge, or the host's own network. Allocations would get addresses
// whose traffic the kernel routes elsewhere.
func checkSubnetFree(bridge, subnet string) error {
	_, want, err := net.ParseCIDR(subnet)
	if err != nil {
		return err
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return fmt.Errorf("listing network interfaces: %w", err)
	}
	for _, iface := range ifaces {
		if iface.Name == bridge {
			continue
		}
		addrs, err := iface.Addrs()
		if err != nil {
			continue // gone meanwhile
		}
		for _, a := range addrs {
			have, ok := a.(*net.IPNet)
			if !ok || have.IP.To4() == nil {
				continue
			}
			if want.Contains(have.IP) || have.Contains(want.IP) {
				return structs.NewError(structs.ErrInvalid,
					"subnet: %s overlaps %s on interface %s (another drover client's bridge?): give this client its own -network-subnet",
					subnet, have, iface.Name)
			}
		}
	}
	return nil
}

// Gateway is the bridge's address: the allocations' default route, and
// where a node-local service (DNS) is reachable from inside them.
func (n *Network) Gateway() net.IP { return n.gateway }

// BridgeName is the node's bridge, also the CNI network's name.
func (n *Network) BridgeName() string { return n.cfg.BridgeName }

// load returns a go-cni instance for a conflist (plus loopback), or for
// loopback alone when conf is nil. The conflist goes first so that its
// interface is eth0.
func (n *Network) load(conf []byte) (gocni.CNI, error) {
	count := 1
	var opts []gocni.Opt
	if conf != nil {
		count = 2
		opts = append(opts, gocni.WithConfListBytes(conf))
	}
	opts = append(opts, gocni.WithLoNetwork)
	c, err := gocni.New(gocni.WithPluginDir([]string{n.cfg.PluginDir}), gocni.WithInterfacePrefix("eth"),
		gocni.WithMinNetworkCount(count))
	if err != nil {
		return nil, fmt.Errorf("initialising go-cni: %w", err)
	}
	if err := c.Load(opts...); err != nil {
		return nil, fmt.Errorf("loading CNI config: %w", err)
	}
	return c, nil
}

// instance returns the go-cni instance a record's attachment was made
// with.
func (n *Network) instance(rec *record) (gocni.CNI, error) {
	switch {
	case rec.ConfList == nil:
		return n.lo, nil
	case string(rec.ConfList) == string(n.bridge):
		return n.cni, nil
	}
	return n.load(rec.ConfList)
}

func (n *Network) allocDir(allocID string) string { return filepath.Join(n.nsDir, allocID) }

// Setup creates the allocation's namespace and attaches it. Whatever it
// created is removed again when it fails.
func (n *Network) Setup(ctx context.Context, alloc *structs.Allocation) (_ *state.NetworkState, err error) {
	if !validAllocID(alloc.ID) {
		return nil, structs.NewError(structs.ErrInvalid, "allocation id: %q cannot name a network namespace", alloc.ID)
	}
	mode := structs.NetworkModeBridge
	var g *structs.TaskGroup
	if alloc.Job != nil {
		g = alloc.Job.LookupGroup(alloc.TaskGroup)
	}
	if g != nil && g.Network != nil && g.Network.Mode != "" {
		mode = g.Network.Mode
	}
	rec := &record{AllocID: alloc.ID, Mode: mode, Ports: portMappings(alloc)}
	switch name, custom := strings.CutPrefix(mode, "cni/"); {
	case mode == structs.NetworkModeBridge:
		rec.ConfList, rec.Network = n.bridge, n.cfg.BridgeName
	case mode == structs.NetworkModeNone:
		rec.Ports = nil
	case custom:
		b, list, err := loadUserConfList(n.cfg.ConfDir, n.cfg.PluginDir, name)
		if err != nil {
			return nil, err
		}
		rec.ConfList, rec.Network = b, list.Name
	default:
		return nil, structs.NewError(structs.ErrInvalid, "allocation %s: network mode %q has no network to set up", alloc.ID, mode)
	}

	unlock := n.locks.lock(alloc.ID)
	defer unlock()
	// An earlier attempt may have left a half-made network (a crash
	// during setup): start from nothing.
	if err := n.teardown(ctx, alloc.ID); err != nil {
		return nil, fmt.Errorf("removing the earlier network of allocation %s: %w", alloc.ID, err)
	}
	dir := n.allocDir(alloc.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating network dir of allocation %s: %w", alloc.ID, err)
	}
	defer func() {
		if err == nil {
			return
		}
		// Not ctx: it may be the reason Setup failed.
		if terr := n.teardown(context.Background(), alloc.ID); terr != nil {
			n.logger.Error("undoing a failed network setup failed; the sweep retries", "alloc_id", alloc.ID, "error", terr)
		}
	}()
	if err := writeRecord(dir, rec); err != nil {
		return nil, err
	}
	ns, err := netns.NewNetNS(dir)
	if err != nil {
		return nil, fmt.Errorf("creating network namespace of allocation %s: %w", alloc.ID, err)
	}
	c, err := n.instance(rec)
	if err != nil {
		return nil, fmt.Errorf("allocation %s: %w", alloc.ID, err)
	}
	var opts []gocni.NamespaceOpts
	if len(rec.Ports) > 0 {
		opts = append(opts, gocni.WithCapabilityPortMap(rec.Ports))
	}
	res, err := c.Setup(ctx, alloc.ID, ns.GetPath(), opts...)
	if err != nil {
		return nil, fmt.Errorf("attaching allocation %s to network %s: %w", alloc.ID, mode, err)
	}
	st := &state.NetworkState{NetNSPath: ns.GetPath(), Data: map[string]string{DataMode: mode}}
	if rec.Network != "" {
		if cfg := res.Interfaces[ifName]; cfg != nil {
			for _, ipc := range cfg.IPConfigs {
				if ip4 := ipc.IP.To4(); ip4 != nil {
					st.Data[DataIP] = ip4.String()
					if ipc.Gateway != nil {
						st.Data[DataGateway] = ipc.Gateway.String()
					}
					break
				}
			}
		}
		if st.Data[DataIP] == "" {
			return nil, fmt.Errorf("attaching allocation %s to network %s: the plugins gave %s no IPv4 address", alloc.ID, mode, ifName)
		}
	}
	if mode == structs.NetworkModeBridge {
		st.Data[DataGateway] = n.gateway.String()
		st.Data[DataBridge] = n.cfg.BridgeName
	}
	n.logger.Debug("allocation network set up", "alloc_id", alloc.ID, "mode", mode, "ip", st.Data[DataIP])
	return st, nil
}

// Teardown undoes Setup. It is idempotent: a namespace, lease or rule
// already gone is no error, and so is an allocation never set up.
func (n *Network) Teardown(ctx context.Context, alloc *structs.Allocation, _ *state.NetworkState) error {
	if !validAllocID(alloc.ID) {
		return nil // Setup never accepted it
	}
	unlock := n.locks.lock(alloc.ID)
	defer unlock()
	return n.teardown(ctx, alloc.ID)
}

// teardown removes what the record of allocID says was made, then the
// record: a failure keeps it, so that the sweep tries again.
func (n *Network) teardown(ctx context.Context, allocID string) error {
	dir := n.allocDir(allocID)
	rec, err := readRecord(dir)
	if errors.Is(err, os.ErrNotExist) {
		// Nothing recorded: never set up, or already torn down. A dir
		// without a record holds at most a namespace made before the
		// crash that kept the record from being written; it cannot be.
		if _, serr := os.Stat(dir); serr == nil {
			return n.removeNamespaces(dir)
		}
		return nil
	}
	if err != nil {
		return err
	}
	nsPath := ""
	paths, err := namespaces(dir)
	if err != nil {
		return err
	}
	for _, p := range paths {
		if closed, err := netns.LoadNetNS(p).Closed(); err == nil && !closed {
			nsPath = p
			break
		}
	}
	c, err := n.instance(rec)
	if err != nil {
		return fmt.Errorf("allocation %s: %w", allocID, err)
	}
	var opts []gocni.NamespaceOpts
	if len(rec.Ports) > 0 {
		opts = append(opts, gocni.WithCapabilityPortMap(rec.Ports))
	}
	if err := c.Remove(ctx, allocID, nsPath, opts...); err != nil {
		if nsPath == "" || ctx.Err() != nil {
			return fmt.Errorf("detaching allocation %s from network %s: %w", allocID, rec.Mode, err)
		}
		// A namespace the plugins cannot enter: without it they
		// still release the lease and the port mappings.
		n.logger.Warn("detaching from the namespace failed; detaching without it", "alloc_id", allocID, "error", err)
		nsPath = ""
		if err := c.Remove(ctx, allocID, "", opts...); err != nil {
			return fmt.Errorf("detaching allocation %s from network %s: %w", allocID, rec.Mode, err)
		}
	}
	if nsPath == "" && rec.Network != "" {
		// Without its namespace the bridge plugin cannot learn the
		// address it masqueraded, so its rules stay: remove them by
		// their comment.
		if err := removeRules(ctx, rec.Network, func(id string) bool { return id == allocID }); err != nil {
			return fmt.Errorf("removing iptables rules of allocation %s: %w", allocID, err)
		}
	}
	if err := n.removeNamespaces(dir); err != nil {
		return err
	}
	n.logger.Debug("allocation network torn down", "alloc_id", allocID, "mode", rec.Mode)
	return nil
}

// removeNamespaces unmounts the namespaces in an allocation's dir, then
// removes the dir with the record.
func (n *Network) removeNamespaces(dir string) error {
	paths, err := namespaces(dir)
	if err != nil {
		return err
	}
	for _, p := range paths {
		if err := netns.LoadNetNS(p).Remove(); err != nil {
			return fmt.Errorf("removing network namespace %s: %w", p, err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("removing network dir %s: %w", dir, err)
	}
	return nil
}

// namespaces lists the namespace bind mounts in an allocation's dir.
func namespaces(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing network dir %s: %w", dir, err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), nsPrefix) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out, nil
}

// portMappings maps each host port the scheduler gave the allocation to
// its port inside (to, else the same), for TCP and UDP alike: a label does
// not say which protocol the task speaks.
func portMappings(alloc *structs.Allocation) []gocni.PortMapping {
	if alloc.Resources == nil {
		return nil
	}
	var out []gocni.PortMapping
	for _, p := range alloc.Resources.Ports {
		if p == nil || p.Value <= 0 {
			continue
		}
		to := p.To
		if to == 0 {
			to = p.Value
		}
		for _, proto := range []string{"tcp", "udp"} {
			out = append(out, gocni.PortMapping{HostPort: int32(p.Value), ContainerPort: int32(to), Protocol: proto})
		}
	}
	return out
}

func writeRecord(dir string, rec *record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encoding network record of allocation %s: %w", rec.AllocID, err)
	}
	tmp := filepath.Join(dir, recordFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("writing network record of allocation %s: %w", rec.AllocID, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, recordFile)); err != nil {
		return fmt.Errorf("writing network record of allocation %s: %w", rec.AllocID, err)
	}
	return nil
}

func readRecord(dir string) (*record, error) {
	b, err := os.ReadFile(filepath.Join(dir, recordFile))
	if err != nil {
		return nil, err
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("reading network record %s: %w", dir, err)
	}
	return &rec, nil
}

// validAllocID keeps IDs that are safe as a directory name and as a CNI
// container ID.
func validAllocID(id string) bool {
	if id == "" || len(id) > 128 || id == "." || id == ".." {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// keyedMutex serialises work per key; an entry lives while someone holds
// or waits for it.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	mu   sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = make(map[string]*keyedEntry)
	}
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		e.refs--
		if e.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
