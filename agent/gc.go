package agent

import (
	"os"
	"runtime/debug"
)

// defaultGCPercent is the GOGC a server runs with unless GOGC is set.
//
// A server's live heap is the whole cluster store, and most of what it
// allocates (decoded requests, Raft entries) dies young. With Go's default
// of 100 the collector rescans the entire store every time the heap grows
// by its own size again: profiles of `make bench` showed a quarter of the
// leader's CPU in GC marking. 400 trades memory (the store is small next to
// the machines' RAM) for about a quarter of that marking work.
const defaultGCPercent = 400

func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
}
