package structs

import "slices"

// NodeUsage is what the live (not terminal) allocations on one node take:
// the sum of their task resources and the host ports they hold. The store
// derives one per node from every allocation write, so the scheduler and
// the plan applier read one row per node instead of walking every
// allocation on it; the scheduler also keeps its own copies current as a
// plan grows.
type NodeUsage struct {
	NodeID string `json:"node_id"`
	// Allocs counts the live allocations.
	Allocs int `json:"allocs"`
	CPU    int `json:"cpu"`
	Memory int `json:"memory"`
	// Ports are the host ports held, sorted. A port held twice (which no
	// committed plan does) appears twice, so a check can see it.
	Ports []int `json:"ports,omitempty"`

	// Stored counts the node's allocations in the store, terminal ones
	// included.
	Stored int `json:"stored"`
	// Index is the Raft index of the servers' last change to the node's
	// allocations: one placed, updated (a new AllocModifyIndex), stopped
	// or removed. A client's watch on its allocations waits for it to
	// move; the client's own status reports do not move it.
	Index uint64 `json:"index"`
}

// Copy returns a deep copy.
func (u *NodeUsage) Copy() *NodeUsage {
	if u == nil {
		return nil
	}
	c := *u
	c.Ports = slices.Clone(u.Ports)
	return &c
}

// Add counts a's resources and ports in, whatever a's status: callers
// decide which allocations are live.
func (u *NodeUsage) Add(a *Allocation) {
	u.Allocs++
	if a.Resources == nil {
		return
	}
	for _, r := range a.Resources.Tasks {
		if r != nil {
			u.CPU += r.CPU
			u.Memory += r.Memory
		}
	}
	for _, p := range a.Resources.Ports {
		if p != nil {
			i, _ := slices.BinarySearch(u.Ports, p.Value)
			u.Ports = slices.Insert(u.Ports, i, p.Value)
		}
	}
}

// Remove takes back what Add(a) counted.
func (u *NodeUsage) Remove(a *Allocation) {
	u.Allocs--
	if a.Resources == nil {
		return
	}
	for _, r := range a.Resources.Tasks {
		if r != nil {
			u.CPU -= r.CPU
			u.Memory -= r.Memory
		}
	}
	for _, p := range a.Resources.Ports {
		if p == nil {
			continue
		}
		if i, found := slices.BinarySearch(u.Ports, p.Value); found {
			u.Ports = slices.Delete(u.Ports, i, i+1)
		}
	}
	if len(u.Ports) == 0 {
		// One form for "no ports", so rows compare equal however they
		// were reached.
		u.Ports = nil
	}
}

// PortUsed reports whether a live allocation holds port.
func (u *NodeUsage) PortUsed(port int) bool {
	_, found := slices.BinarySearch(u.Ports, port)
	return found
}

// PortHeldTwice reports whether two live allocations hold the same port.
func (u *NodeUsage) PortHeldTwice() bool {
	for i := 1; i < len(u.Ports); i++ {
		if u.Ports[i] == u.Ports[i-1] {
			return true
		}
	}
	return false
}

// SameUsage reports whether a and b take the same resources and ports, so
// replacing one by the other leaves a node's usage as it was.
func SameUsage(a, b *Allocation) bool {
	if a.Resources == b.Resources {
		return true
	}
	var ua, ub NodeUsage
	ua.Add(a)
	ub.Add(b)
	return ua.CPU == ub.CPU && ua.Memory == ub.Memory && slices.Equal(ua.Ports, ub.Ports)
}
