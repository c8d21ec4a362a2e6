package scheduler

import (
	"github.com/drover-sh/drover/structs"
)

// The resource dimensions a node can run out of, as counted in
// AllocMetric.DimensionExhausted.
const (
	dimCPU    = "cpu"
	dimMemory = "memory"
	dimPorts  = "ports"
)

// nodeCapacity is what a node offers to allocations: its resources minus
// what it reserves for itself.
func nodeCapacity(node *structs.Node) (cpu, memory int) {
	if r := node.Resources; r != nil {
		cpu, memory = r.CPU, r.Memory
	}
	if r := node.Reserved; r != nil {
		cpu -= r.CPU
		memory -= r.Memory
	}
	return cpu, memory
}

// AllocsFit reports whether allocs, all on node, fit in it together: CPU,
// memory and host ports (no port given twice). Terminal allocations are
// skipped, since they hold nothing. When they do not fit, dimension names
// the first exhausted one ("cpu", "memory" or "ports").
func AllocsFit(node *structs.Node, allocs []*structs.Allocation) (fit bool, dimension string) {
	u := &structs.NodeUsage{}
	for _, a := range allocs {
		if a != nil && !a.TerminalStatus() {
			u.Add(a)
		}
	}
	return UsageFits(node, u)
}

// UsageFits reports whether a node can hold usage, or names the first
// exhausted dimension ("ports" when a port is held twice, then "cpu",
// then "memory"). The scheduler ranks with the same rule, and the plan
// applier re-checks committed plans with it, so both agree on what
// "fits" means.
func UsageFits(node *structs.Node, u *structs.NodeUsage) (fit bool, dimension string) {
	capCPU, capMem := nodeCapacity(node)
	switch {
	case u.PortHeldTwice():
		return false, dimPorts
	case u.CPU > capCPU:
		return false, dimCPU
	case u.Memory > capMem:
		return false, dimMemory
	}
	return true, ""
}
