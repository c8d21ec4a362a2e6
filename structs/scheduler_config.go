package structs

// SchedulerAlgorithm is how the scheduler ranks the nodes that fit an
// allocation.
type SchedulerAlgorithm string

const (
	// SchedulerAlgorithmBinpack fills nodes before opening new ones, so
	// whole nodes stay free for large allocations and can be scaled away.
	SchedulerAlgorithmBinpack SchedulerAlgorithm = "binpack"
	// SchedulerAlgorithmSpread prefers the emptiest nodes, trading density
	// for a smaller blast radius when one node fails.
	SchedulerAlgorithmSpread SchedulerAlgorithm = "spread"
)

// Valid reports whether a is a known algorithm; empty means the default.
func (a SchedulerAlgorithm) Valid() bool {
	switch a {
	case "", SchedulerAlgorithmBinpack, SchedulerAlgorithmSpread:
		return true
	}
	return false
}
