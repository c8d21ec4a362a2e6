// Package dns is the DNS server each client node runs for service
// discovery. It answers, from a local copy of the service registry:
//
//	<service>.service.drover.              A and SRV, default namespace
//	<service>.service.<namespace>.drover.  A and SRV, that namespace
//	<alloc short id>.alloc.drover.         A: the SRV targets
//
// with NXDOMAIN for other names under drover. and REFUSED for names
// outside it: it never forwards a query. The copy (Catalog) is fed by a
// blocking query on Service.NodeServices (Watch), so answers need no round
// trip to the servers.
package dns

import (
	"net"
	"slices"
	"strings"
	"sync"

	"github.com/drover-sh/drover/structs"
)

// Source is what the server answers from.
type Source interface {
	// Instances returns the healthy instances of a service, sorted by
	// ID; nil when it has none.
	Instances(namespace, service string) []*structs.ServiceRegistration
	// AllocAddress returns the address of the allocation whose ID
	// starts with shortID, when one instance of it is registered.
	AllocAddress(shortID string) (net.IP, bool)
}

// Catalog is the node's copy of the registry.
type Catalog struct {
	mu      sync.RWMutex
	byName  map[nameKey][]*structs.ServiceRegistration
	byAlloc map[string]net.IP // short alloc ID -> address
	index   uint64
}

type nameKey struct{ namespace, service string }

var _ Source = (*Catalog)(nil)

// NewCatalog returns an empty catalog.
func NewCatalog() *Catalog {
	return &Catalog{byName: map[nameKey][]*structs.ServiceRegistration{}, byAlloc: map[string]net.IP{}}
}

// Set replaces the catalog's content with every registered instance, as
// of the registry's index.
func (c *Catalog) Set(index uint64, regs []*structs.ServiceRegistration) {
	byName := make(map[nameKey][]*structs.ServiceRegistration)
	byAlloc := make(map[string]net.IP)
	for _, r := range regs {
		ip := net.ParseIP(r.Address)
		if ip == nil {
			// Only addresses can go in A records; an instance
			// registered by name is left out rather than answered wrong.
			continue
		}
		k := nameKey{r.Namespace, r.ServiceName}
		byName[k] = append(byName[k], r)
		byAlloc[structs.ShortID(r.AllocID)] = ip
	}
	for _, rs := range byName {
		slices.SortFunc(rs, func(a, b *structs.ServiceRegistration) int { return strings.Compare(a.ID, b.ID) })
	}
	c.mu.Lock()
	c.byName, c.byAlloc, c.index = byName, byAlloc, index
	c.mu.Unlock()
}

// Index is the registry index the catalog is as new as.
func (c *Catalog) Index() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.index
}

// Instances implements Source.
func (c *Catalog) Instances(namespace, service string) []*structs.ServiceRegistration {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.byName[nameKey{namespace, service}]
}

// AllocAddress implements Source.
func (c *Catalog) AllocAddress(shortID string) (net.IP, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ip, ok := c.byAlloc[shortID]
	return ip, ok
}
