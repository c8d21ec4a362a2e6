package agent

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/drover-sh/drover/server/pool"
	"github.com/drover-sh/drover/structs"
)

// remoteServers is how an agent without a server of its own reaches the
// servers: their RPC addresses come from gossip metadata, one is used
// until it fails, then another.
type remoteServers struct {
	agent *Agent
	pool  *pool.Pool

	mu      sync.Mutex
	current string
}

func newRemoteServers(a *Agent) *remoteServers {
	return &remoteServers{agent: a, pool: pool.New(5 * time.Second)}
}

// addrs lists the RPC addresses of the alive servers of this region.
func (r *remoteServers) addrs() []string {
	if r.agent.gossip == nil {
		return nil
	}
	var out []string
	for _, m := range r.agent.gossip.Members() {
		if m.IsServer() && m.Status == structs.MemberAlive && m.Region == r.agent.config.Region && m.RPCAddr != "" {
			out = append(out, m.RPCAddr)
		}
	}
	return out
}

// call runs one RPC, trying each known server once when one is
// unreachable.
func (r *remoteServers) call(method string, args, reply any) error {
	addrs := r.addrs()
	if len(addrs) == 0 {
		return structs.NewError(structs.ErrUnavailable, "no server known yet: this agent has not found any through gossip")
	}
	r.mu.Lock()
	first := r.current
	r.mu.Unlock()
	order := make([]string, 0, len(addrs))
	for _, a := range addrs {
		if a == first {
			order = append(order, a)
		}
	}
	perm := rand.Perm(len(addrs))
	for _, i := range perm {
		if addrs[i] != first {
			order = append(order, addrs[i])
		}
	}
	var err error
	for _, addr := range order {
		err = r.pool.RPC(addr, method, args, reply)
		if structs.CodeOf(err) != structs.ErrUnavailable {
			r.mu.Lock()
			r.current = addr
			r.mu.Unlock()
			return err
		}
	}
	return err
}

func (r *remoteServers) close() { r.pool.Close() }
