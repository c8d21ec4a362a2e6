package client

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

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
		return nil // restored: the namespace outlived the agent
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
	return nil
}

func (networkHook) postrun(ctx context.Context, ar *allocRunner) error {
	ar.mu.RLock()
	st := ar.network
	ar.mu.RUnlock()
	if st == nil || ar.c.cfg.Network == nil {
		return nil
	}
	return ar.c.cfg.Network.Teardown(ctx, ar.allocation(), st)
}
