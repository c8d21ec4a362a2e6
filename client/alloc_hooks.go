package client

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/drover-sh/drover/structs"
)

type (
	// allocPrerunHook prepares the allocation before any task starts;
	// an error fails the allocation. It also runs for a restored
	// allocation, so it must be idempotent.
	allocPrerunHook interface {
		name() string
		prerun(ctx context.Context, ar *allocRunner) error
	}
	// allocPostrunHook cleans up once the allocation is removed.
	allocPostrunHook interface {
		name() string
		postrun(ctx context.Context, ar *allocRunner) error
	}
)

// allocDirHook creates the shared alloc dir (mounted at /alloc) with its
// logs, data and tmp dirs, and removes the whole allocation dir at the
// end.
type allocDirHook struct{}

func (allocDirHook) name() string { return "alloc_dir" }

func (allocDirHook) prerun(ctx context.Context, ar *allocRunner) error {
	shared := filepath.Join(ar.root, "alloc")
	for _, d := range []string{shared, filepath.Join(shared, "logs"), filepath.Join(shared, "data"), filepath.Join(shared, "tmp")} {
		if err := mkdirShared(d); err != nil {
			return fmt.Errorf("creating alloc dir of %s: %w", ar.id, err)
		}
	}
	return nil
}

func (allocDirHook) postrun(ctx context.Context, ar *allocRunner) error {
	if err := os.RemoveAll(ar.root); err != nil {
		return fmt.Errorf("removing alloc dir of %s: %w", ar.id, err)
	}
	return nil
}

// networkHook gives an allocation whose group asks for its own network
// (any mode but host) a namespace from the client's Network, and tears
// it down at the end. A client without a Network runs such allocations
// in the host's network and says so in the tasks' setup event.
type networkHook struct{}

func (networkHook) name() string { return "network" }

func wantsNetwork(g *structs.TaskGroup) bool {
	return g != nil && g.Network != nil && g.Network.Mode != "" && g.Network.Mode != structs.NetworkModeHost
}

func (networkHook) prerun(ctx context.Context, ar *allocRunner) error {
	if !wantsNetwork(ar.group()) {
		return nil
	}
	ar.mu.RLock()
	have := ar.network != nil
	ar.mu.RUnlock()
	if have {
		// Restored: the namespace outlived the agent.
		ar.c.listenDNSOnGateway(ar)
		return ar.writeResolvConf()
	}
	if ar.c.cfg.Network == nil {
		note := fmt.Sprintf("network mode %s: this client has no network setup; the tasks use the host's network", ar.group().Network.Mode)
		ar.mu.Lock()
		ar.netNote = note
		ar.mu.Unlock()
		return nil
	}
	st, err := ar.c.cfg.Network.Setup(ctx, ar.allocation())
	if err != nil {
		return fmt.Errorf("setting up network of %s: %w", ar.id, err)
	}
	if st == nil {
		st = &NetworkStatus{}
	}
	ar.mu.Lock()
	ar.network = st
	ar.mu.Unlock()
	if err := ar.c.db.PutNetwork(ar.id, st); err != nil {
		ar.logger.Error("persisting network state failed", "error", err)
	}
	ar.c.listenDNSOnGateway(ar)
	return ar.writeResolvConf()
}

func (networkHook) postrun(ctx context.Context, ar *allocRunner) error {
	return ar.teardownNetwork(ctx)
}

// teardownNetwork releases the allocation's network: once every task is
// dead for good (so a stopped allocation frees its address, ports and
// rules at once), and again when the allocation is removed (a no-op by
// then, as Teardown is idempotent).
func (ar *allocRunner) teardownNetwork(ctx context.Context) error {
	ar.mu.RLock()
	st := ar.network
	ar.mu.RUnlock()
	if st == nil || ar.c.cfg.Network == nil {
		return nil
	}
	return ar.c.cfg.Network.Teardown(ctx, ar.allocation(), st)
}

// hostResolvConf is the host's resolver config, read for the
// allocations' own.
var hostResolvConf = "/etc/resolv.conf"

// resolvConfPath is the resolv.conf written for an allocation in bridge
// mode, mounted at /etc/resolv.conf in its tasks; empty when the
// allocation has none (its tasks get the host's).
func (ar *allocRunner) resolvConfPath() string {
	ar.mu.RLock()
	st := ar.network
	ar.mu.RUnlock()
	if st == nil || st.Data["cni"] != structs.NetworkModeBridge || st.Data["gateway"] == "" {
		return ""
	}
	return filepath.Join(ar.root, "resolv.conf")
}

// writeResolvConf writes the allocation's resolv.conf: the node's DNS on
// the bridge gateway first (it answers <service>.service.drover), then
// the host's nameservers that are reachable from behind the bridge
// (loopback ones are not), and the search domains.
func (ar *allocRunner) writeResolvConf() error {
	path := ar.resolvConfPath()
	if path == "" {
		return nil
	}
	ar.mu.RLock()
	gateway := ar.network.Data["gateway"]
	ar.mu.RUnlock()
	host, err := os.ReadFile(hostResolvConf)
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("reading %s for allocation %s: %w", hostResolvConf, ar.id, err)
	}
	var b strings.Builder
	b.WriteString("nameserver " + gateway + "\n")
	search := []string{"service.drover"}
	var options []string
	for _, line := range strings.Split(string(host), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			if ip := net.ParseIP(f[1]); ip != nil && !ip.IsLoopback() && f[1] != gateway {
				b.WriteString("nameserver " + f[1] + "\n")
			}
		case "search", "domain":
			search = append(search, f[1:]...)
		case "options":
			options = append(options, f[1:]...)
		}
	}
	b.WriteString("search " + strings.Join(search, " ") + "\n")
	if len(options) > 0 {
		b.WriteString("options " + strings.Join(options, " ") + "\n")
	}
	if err := os.MkdirAll(ar.root, 0o755); err != nil {
		return fmt.Errorf("creating alloc dir of %s: %w", ar.id, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("writing resolv.conf of allocation %s: %w", ar.id, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing resolv.conf of allocation %s: %w", ar.id, err)
	}
	return nil
}
