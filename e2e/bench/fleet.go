//go:build e2e

package main

import (
	"context"
	"sync"

	"github.com/drover-sh/drover/client/nodesim"
)

// fleet is the simulated nodes, as one simulator per server when spread:
// real clients each pick a server for their reads (blocking allocation
// queries are served by any server) and the leader forwards their writes,
// whereas one simulator sends every node's reads to its first server.
type fleet struct {
	sims []*nodesim.Sim
}

// newFleet splits nodes over the servers (spread) or puts them all on the
// first one; each simulator still fails over to the other servers.
func newFleet(servers []string, nodes int, spread bool) (*fleet, error) {
	f := &fleet{}
	parts := 1
	if spread {
		parts = len(servers)
	}
	for i := range parts {
		n := nodes / parts
		if i < nodes%parts {
			n++
		}
		if n == 0 {
			continue
		}
		// Rotated, so this simulator's first server is servers[i].
		order := append(append([]string(nil), servers[i:]...), servers[:i]...)
		sim, err := nodesim.New(nodesim.Config{Servers: order, Nodes: n})
		if err != nil {
			f.Close()
			return nil, err
		}
		f.sims = append(f.sims, sim)
	}
	return f, nil
}

// Register registers every simulator's nodes, the simulators side by side.
func (f *fleet) Register(ctx context.Context) error {
	errs := make([]error, len(f.sims))
	var wg sync.WaitGroup
	for i, s := range f.sims {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = s.Register(ctx) }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Run runs every simulator until ctx ends.
func (f *fleet) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, s := range f.sims {
		wg.Add(1)
		go func() { defer wg.Done(); s.Run(ctx) }()
	}
	wg.Wait()
}

// Stats adds up the simulators' counters.
func (f *fleet) Stats() nodesim.Stats {
	var t nodesim.Stats
	for _, s := range f.sims {
		st := s.Stats()
		t.Registered += st.Registered
		t.Heartbeats += st.Heartbeats
		t.AllocsSeen += st.AllocsSeen
		t.Running += st.Running
		t.Stopped += st.Stopped
		t.RPCErrors += st.RPCErrors
		t.UpdateCalls += st.UpdateCalls
	}
	return t
}

// Close releases every simulator's connections.
func (f *fleet) Close() {
	for _, s := range f.sims {
		s.Close()
	}
}
