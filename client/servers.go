package client

import (
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/drover-sh/drover/server/pool"
	"github.com/drover-sh/drover/structs"
)

// serverPicker chooses which server to call. It sticks to the server that
// last answered (its connection is warm, its view is what the client has
// seen) and moves on only when that server cannot be reached.
type serverPicker struct {
	gossip func() []string

	mu        sync.Mutex
	preferred string
	// learned are the addresses the servers gave in heartbeat replies:
	// they stand in while gossip knows none (an agent just started).
	learned []string
}

func newServerPicker(gossip func() []string) *serverPicker {
	return &serverPicker{gossip: gossip}
}

// candidates returns the addresses to try, the preferred one first.
func (p *serverPicker) candidates() []string {
	addrs := slices.Clone(p.gossip())
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(addrs) == 0 {
		addrs = slices.Clone(p.learned)
	}
	if len(addrs) == 0 {
		return nil
	}
	rand.Shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
	if i := slices.Index(addrs, p.preferred); i > 0 {
		addrs[0], addrs[i] = addrs[i], addrs[0]
	}
	return addrs
}

func (p *serverPicker) setPreferred(addr string) {
	p.mu.Lock()
	p.preferred = addr
	p.mu.Unlock()
}

func (p *serverPicker) setLearned(addrs []string) {
	if len(addrs) == 0 {
		return
	}
	p.mu.Lock()
	p.learned = slices.Clone(addrs)
	p.mu.Unlock()
}

// rpc calls a server, trying the others when one cannot be reached or is
// going away. While no server is known it waits, backing off, until one
// is or the client shuts down. Other errors are the cluster's answer and
// come back as they are.
func (c *Client) rpc(method string, args, reply any) error {
	wait := 50 * time.Millisecond
	var addrs []string
	for {
		if addrs = c.servers.candidates(); len(addrs) > 0 {
			break
		}
		if !c.sleep(wait) {
			return errShutdown
		}
		wait = min(wait*2, 2*time.Second)
	}
	return c.tryServers(addrs, method, args, reply)
}

// RPC calls a server endpoint for the agent's HTTP API, moving to another
// server when one does not answer. Unlike the client's own calls it does
// not wait for a server to become known: the HTTP caller gets unavailable.
func (c *Client) RPC(method string, args, reply any) error {
	addrs := c.servers.candidates()
	if len(addrs) == 0 {
		return structs.NewError(structs.ErrUnavailable, "no server known yet: this agent has not found any through gossip")
	}
	err := c.tryServers(addrs, method, args, reply)
	if errors.Is(err, errShutdown) {
		return structs.NewError(structs.ErrUnavailable, "the agent is shutting down")
	}
	return err
}

// tryServers calls method on each address in turn until one answers.
func (c *Client) tryServers(addrs []string, method string, args, reply any) error {
	var err error
	for _, addr := range addrs {
		if c.ctx.Err() != nil {
			return errShutdown
		}
		err = c.pool.RPC(addr, method, args, reply)
		var te *pool.TransportError
		if !errors.As(err, &te) && structs.CodeOf(err) != structs.ErrUnavailable {
			c.servers.setPreferred(addr)
			return err
		}
		c.logger.Debug("server unreachable; trying another", "server", addr, "method", method, "error", err)
	}
	if c.ctx.Err() != nil {
		return errShutdown
	}
	return err
}

// backoff doubles a retry delay up to a ceiling, with up to 25% jitter so
// nodes that lost the same server do not retry in step.
func backoff(prev, floor, ceiling time.Duration) time.Duration {
	d := max(prev*2, floor)
	d = min(d, ceiling)
	return d + rand.N(d/4+1)
}
