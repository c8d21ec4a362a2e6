package agent

import (
	"fmt"
	"path/filepath"

	"github.com/drover-sh/drover/client"
	"github.com/drover-sh/drover/client/cni"
	"github.com/drover-sh/drover/client/containerd"
	"github.com/drover-sh/drover/structs"
)

// startClient starts the node agent: the runtime (a managed containerd
// unless the config names a socket), then the client, which finds the
// servers through this agent's gossip pool.
func (a *Agent) startClient(httpAddr string) error {
	c := a.config
	cc := c.Client
	// The network first: its checks are cheap and refuse a bridge or
	// subnet another client holds before anything is started.
	netw, err := cni.New(cni.Config{
		BridgeName: cc.Network.BridgeName,
		Subnet:     cc.Network.Subnet,
		PluginDir:  cc.CNIPluginDir,
		ConfDir:    cc.Network.CNIConfDir,
		StateDir:   filepath.Join(c.DataDir, "client", "network"),
		Logger:     a.logger,
	})
	if err != nil {
		return fmt.Errorf("client network: %w", err)
	}
	if a.bridgeLock, err = lockBridge(netw.BridgeName()); err != nil {
		return err
	}
	address := cc.Containerd.Address
	if address == "" {
		m, err := containerd.StartManaged(containerd.ManagedConfig{
			DataDir: filepath.Join(c.DataDir, "containerd"),
			Binary:  cc.Containerd.Binary,
			Logger:  a.logger.Named("containerd"),
		})
		if err != nil {
			// The node still registers and says why it cannot run
			// anything: the driver reports the socket unreachable.
			a.logger.Error("failed to start the managed containerd", "error", err)
			address = filepath.Join(c.DataDir, "containerd", "containerd.sock")
		} else {
			a.containerd = m
			address = m.Address()
		}
	}
	auth := make(map[string]containerd.RegistryAuth, len(cc.RegistryAuth))
	for host, ra := range cc.RegistryAuth {
		auth[host] = containerd.RegistryAuth{Username: ra.Username, Password: ra.Password}
	}
	drv, err := containerd.New(containerd.Config{
		Address:             address,
		Namespace:           cc.Containerd.Namespace,
		PlainHTTPRegistries: cc.PlainHTTPRegistries,
		Auth:                auth,
		ImageDir:            cc.ImageDir,
		StateDir:            filepath.Join(c.DataDir, "client", "runtime"),
		Logger:              a.logger.Named("driver"),
	})
	if err != nil {
		return fmt.Errorf("containerd driver: %w", err)
	}
	a.driver = drv
	var otherLogs []string
	if a.containerd != nil {
		otherLogs = append(otherLogs, a.containerd.LogPath())
	}
	a.refreshServerAddrs()
	a.gossip.Subscribe(func(ev structs.MemberEvent) {
		if ev.Member.IsServer() {
			a.refreshServerAddrs()
		}
	})
	cl, err := client.New(client.Config{
		NodeID:       a.nodeID,
		Name:         c.Name,
		Datacenter:   c.Datacenter,
		NodeClass:    cc.NodeClass,
		Meta:         cc.Meta,
		DataDir:      c.DataDir,
		HTTPAddr:     httpAddr,
		Servers:      a.serverRPCAddrs,
		Driver:       drv,
		Network:      netw,
		CNIPluginDir: cc.CNIPluginDir,
		// The node advertises the range; the scheduler picks from it.
		MinDynamicPort: cc.Network.MinDynamicPort,
		MaxDynamicPort: cc.Network.MaxDynamicPort,
		Reserved:       &structs.NodeResources{CPU: cc.Reserved.CPU, Memory: cc.Reserved.Memory},
		LogMaxBytes:    cc.LogMaxBytes,
		LogMaxFiles:    cc.LogMaxFiles,
		OtherLogs:      otherLogs,
		GCMaxAllocs:    cc.GCMaxAllocs,
		Logger:         a.logger,
		// Host-network instances are registered at the address other
		// nodes reach this one at.
		ServiceAddress: c.advertiseIP(),
		DNSAddr:        cc.DNS.Addr,
	})
	if err != nil {
		return fmt.Errorf("starting the client: %w", err)
	}
	a.client = cl
	a.local = cl
	return nil
}

// serverRPCAddrs lists the servers' RPC addresses for the client, which
// asks on every call: the list kept by refreshServerAddrs.
func (a *Agent) serverRPCAddrs() []string {
	a.serversMu.RLock()
	defer a.serversMu.RUnlock()
	return a.serverAddrs
}

// refreshServerAddrs recomputes the servers' RPC addresses from gossip,
// this agent's own server first when it runs one. It runs at start and on
// member events about servers, not on every call: the pool may hold
// thousands of clients.
func (a *Agent) refreshServerAddrs() {
	var addrs []string
	own := ""
	if a.server != nil {
		own = a.server.RPCAddr().String()
		addrs = append(addrs, own)
	}
	for _, m := range a.gossip.Members() {
		if m.IsServer() && m.Status == structs.MemberAlive && m.Region == a.config.Region && m.RPCAddr != "" && m.RPCAddr != own {
			addrs = append(addrs, m.RPCAddr)
		}
	}
	a.serversMu.Lock()
	a.serverAddrs = addrs
	a.serversMu.Unlock()
}

// stopClient stops the client without stopping its tasks (a restarted
// agent reattaches to them), then the driver and the managed containerd.
func (a *Agent) stopClient() {
	if a.client != nil {
		a.client.Shutdown()
	}
	if a.driver != nil {
		a.driver.Close()
	}
	if a.containerd != nil {
		if err := a.containerd.Stop(); err != nil {
			a.logger.Warn("failed to stop the managed containerd", "error", err)
		}
	}
}
