// Package scheduler turns an evaluation into a plan. It owns the decision
// of what should run where: the reconciler compares a job with its
// allocations (what to place, stop, update, reschedule), and a stack of
// feasibility and ranking iterators picks a node for each placement.
//
// The package is pure: it reads a State snapshot, writes only through a
// Planner, and takes the clock as a function. It knows nothing of Raft,
// the network or the store; the leader adapts its snapshot to State and
// its plan applier to Planner, and runs Process in worker goroutines. The
// Harness in testing.go is both, in memory, for tests here and in server.
package scheduler
