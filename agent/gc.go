package agent

import (
	"context"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// defaultGCPercent is the GOGC a server runs with unless GOGC is set.
//
// A server's live heap is the whole cluster store, and most of what it
// allocates (decoded requests, Raft entries) dies young. With Go's default
// of 100 the collector rescans the entire store every time the heap grows
// by its own size again: profiles of `make bench` showed a quarter of the
// leader's CPU in GC marking. 400 trades memory for about a quarter of that
// marking work.
const defaultGCPercent = 400

// minMemoryLimit is the smallest soft memory limit a server sets. GOGC 400
// alone lets the heap reach five times the live store: 1.7-2.3 GB of RSS
// per server with 100,000 allocations in the store (make bench), where
// GOGC 100 stayed near 0.95 GB. The limit keeps the cheap collections while
// the store is small and makes the collector work harder once the heap
// nears max(minMemoryLimit, 2 x live heap), about what GOGC 100 would give.
const minMemoryLimit = 1 << 30

// tuneGC sets the server's GC policy unless the operator set GOGC or
// GOMEMLIMIT, and keeps the memory limit following the live heap until
// ctx ends.
func tuneGC(ctx context.Context) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetMemoryLimit(minMemoryLimit)
	go func() {
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				debug.SetMemoryLimit(math.MaxInt64)
				return
			case <-tick.C:
			}
			metrics.Read(sample)
			if sample[0].Value.Kind() != metrics.KindUint64 {
				continue
			}
			debug.SetMemoryLimit(memoryLimitFor(sample[0].Value.Uint64()))
		}
	}()
}

// memoryLimitFor is the soft limit for a live heap of live bytes.
func memoryLimitFor(live uint64) int64 {
	return max(int64(minMemoryLimit), int64(2*live))
}
