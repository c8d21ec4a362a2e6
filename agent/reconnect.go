package agent

import (
	"context"
	"math/rand/v2"
	"net"
	"strconv"
	"time"

	"github.com/drover-sh/drover/agent/gossip"
	"github.com/drover-sh/drover/structs"
)

// Reconnect intervals: how often an agent tries to reach the members
// gossip gave up on.
const (
	reconnectInterval     = 30 * time.Second
	fastReconnectInterval = 2 * time.Second
)

// reconnect heals partitions. memberlist stops talking to a member once it
// declares it dead, so two sides of a partition that outlasted the
// failure timeouts never merge again by themselves. Like Serf's reconnect,
// this loop tries a dead member now and then; an agent that sees no
// server at all also joins its configured -join addresses again.
func (a *Agent) reconnect(ctx context.Context) {
	interval := reconnectInterval
	if a.config.Dev || a.config.FastGossip {
		interval = fastReconnectInterval
	}
	for {
		// Jitter, so a healed partition is not rejoined by everyone at once.
		wait := interval/2 + rand.N(interval)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		a.reconnectOnce()
	}
}

func (a *Agent) reconnectOnce() {
	var dead []string
	serverAlive := false
	self := a.gossip.LocalMember().Name
	for _, m := range a.gossip.Members() {
		if m.Name == self {
			continue
		}
		switch m.Status {
		case structs.MemberDead:
			dead = append(dead, net.JoinHostPort(m.Addr, strconv.Itoa(m.Port)))
		case structs.MemberAlive:
			if m.IsServer() {
				serverAlive = true
			}
		}
	}
	var targets []string
	if len(dead) > 0 {
		targets = append(targets, dead[rand.N(len(dead))])
	}
	if !serverAlive && a.server == nil {
		for _, addr := range a.config.Join {
			targets = append(targets, gossip.JoinAddr(addr, DefaultGossipPort))
		}
	}
	if len(targets) == 0 {
		return
	}
	n, err := a.gossip.Join(targets)
	if n > 0 {
		a.logger.Info("reconnected to gossip members", "addresses", targets, "contacted", n)
	} else {
		a.logger.Debug("reconnect attempt failed", "addresses", targets, "error", err)
	}
}
