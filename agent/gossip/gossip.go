// Package gossip is the agent's memberlist pool: servers and clients join
// it, gossip their role and addresses as node metadata, and learn about
// each other. It keeps the last known state of members that failed or
// left, so `server members` can show them and force-leave can find them,
// and it hands events to subscribers without ever blocking memberlist.
package gossip

import (
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"

	"github.com/drover-sh/drover/structs"
)

// Config configures the pool.
type Config struct {
	Name          string
	BindAddr      string
	BindPort      int
	AdvertiseAddr string
	AdvertisePort int
	// Meta is what this agent gossips about itself; Name, Addr, Port and
	// Status are filled from memberlist.
	Meta structs.Member
	// Fast shortens probe and gossip intervals (tests and dev mode).
	Fast bool
	// ReapAfter is how long failed and left members are remembered.
	ReapAfter time.Duration
	// PeersPath, if set, is where the pool remembers its members, so that
	// a restarted agent can rejoin them (see Previous).
	PeersPath string
	Logger    hclog.Logger
}

// Pool is the gossip pool of one agent.
type Pool struct {
	config Config
	logger hclog.Logger
	list   *memberlist.Memberlist

	mu      sync.RWMutex
	members map[string]*memberState
	meta    []byte

	subMu sync.Mutex
	subs  []func(structs.MemberEvent)

	previous   []peer        // the members known when the agent last ran
	peersDirty chan struct{} // the member table changed since the last save

	eventCh    chan structs.MemberEvent
	shutdownCh chan struct{}
	wg         sync.WaitGroup
}

type memberState struct {
	member  structs.Member
	changed time.Time
}

// metaLimit is memberlist's cap on node metadata.
const metaLimit = memberlist.MetaMaxSize

// wireMeta is the metadata gossiped by each agent, with short keys to stay
// well under memberlist's 512-byte limit.
type wireMeta struct {
	Role     string `json:"r"`
	Region   string `json:"rg"`
	DC       string `json:"dc"`
	RPCAddr  string `json:"rpc,omitempty"`
	HTTPAddr string `json:"http,omitempty"`
	RaftID   string `json:"id,omitempty"`
	NodeID   string `json:"n,omitempty"`
	Expect   int    `json:"e,omitempty"`
	Version  string `json:"v,omitempty"`
	// Leaving is set just before a graceful leave. memberlist tells a
	// leave from a failure only in a field it does not hand out (the
	// Node.State it passes to NotifyLeave is never set), so the agent
	// says it first in its metadata.
	Leaving bool `json:"l,omitempty"`
}

// New creates the pool and starts gossiping; it joins no one yet.
func New(cfg Config) (*Pool, error) {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.ReapAfter <= 0 {
		cfg.ReapAfter = 24 * time.Hour
	}
	p := &Pool{
		config:     cfg,
		logger:     cfg.Logger.Named("gossip"),
		members:    make(map[string]*memberState),
		peersDirty: make(chan struct{}, 1),
		eventCh:    make(chan structs.MemberEvent, 4096),
		shutdownCh: make(chan struct{}),
	}
	meta, err := encodeMeta(cfg.Meta, false)
	if err != nil {
		return nil, err
	}
	p.meta = meta
	if cfg.PeersPath != "" {
		if p.previous, err = loadPeers(cfg.PeersPath); err != nil {
			p.logger.Warn("ignoring the saved gossip peers", "error", err)
		}
	}

	mc := memberlist.DefaultLANConfig()
	if cfg.Fast {
		mc = memberlist.DefaultLocalConfig()
		mc.ProbeInterval = 500 * time.Millisecond
		mc.ProbeTimeout = 250 * time.Millisecond
		mc.SuspicionMult = 3
		mc.GossipInterval = 100 * time.Millisecond
		mc.PushPullInterval = 10 * time.Second
	}
	// A suspected member is declared dead after 4 probe intervals (small
	// pools) when others confirm the suspicion, and memberlist's default
	// lets an unconfirmed suspicion run 6 times that: up to 24 s, which
	// made some client losses take 17 s to notice instead of 8. Twice is
	// enough here: a wrong verdict only cuts a client's heartbeat timer,
	// its heartbeats keep it up, and its refutation restores the timer.
	mc.SuspicionMaxTimeoutMult = 2
	mc.Name = cfg.Name
	mc.BindAddr = cfg.BindAddr
	mc.BindPort = cfg.BindPort
	mc.AdvertiseAddr = cfg.AdvertiseAddr
	mc.AdvertisePort = cfg.AdvertisePort
	mc.Delegate = (*delegate)(p)
	mc.Events = (*events)(p)
	mc.Logger = p.logger.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})
	mc.LogOutput = nil
	// A restarted agent comes back with the same name on the same
	// address; let it reclaim its name at once rather than after 30 s.
	mc.DeadNodeReclaimTime = time.Second

	list, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("starting gossip on %s:%d: %w", cfg.BindAddr, cfg.BindPort, err)
	}
	p.list = list
	p.wg.Add(2)
	go p.dispatch()
	go p.reap()
	if cfg.PeersPath != "" {
		p.wg.Add(1)
		go p.persistPeers()
	}
	return p, nil
}

// Subscribe registers fn for every member event. fn runs on the pool's
// dispatch goroutine, one event at a time; it must not block for long.
func (p *Pool) Subscribe(fn func(structs.MemberEvent)) {
	p.subMu.Lock()
	p.subs = append(p.subs, fn)
	p.subMu.Unlock()
}

// Join contacts the given gossip addresses ("host:port", or "host" for the
// default port) and returns how many answered.
func (p *Pool) Join(addrs []string) (int, error) {
	n, err := p.list.Join(addrs)
	if err != nil && n == 0 {
		return 0, fmt.Errorf("joining %v: %w", addrs, err)
	}
	return n, nil
}

// Members returns every known member, alive or not, sorted by name.
func (p *Pool) Members() []structs.Member {
	p.mu.RLock()
	out := make([]structs.Member, 0, len(p.members))
	for _, m := range p.members {
		out = append(out, m.member)
	}
	p.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LocalMember returns this agent as the pool sees it.
func (p *Pool) LocalMember() structs.Member {
	n := p.list.LocalNode()
	return p.toMember(n)
}

// NumAlive returns the number of alive members.
func (p *Pool) NumAlive() int { return p.list.NumMembers() }

// Leave tells the pool this agent is leaving, then stops gossip. The saved
// peers stay: leaving is a courtesy to the others (they see "left" at
// once rather than a failure later), and a server that left is still a
// voter, so a restart rejoins its peers as after a crash.
func (p *Pool) Leave(timeout time.Duration) error {
	if meta, err := encodeMeta(p.config.Meta, true); err == nil {
		p.mu.Lock()
		p.meta = meta
		p.mu.Unlock()
		// Waits until the update went out, so it comes before the leave.
		if err := p.list.UpdateNode(timeout); err != nil {
			p.logger.Warn("could not announce the leave", "error", err)
		}
	}
	err := p.list.Leave(timeout)
	p.Shutdown()
	return err
}

// Shutdown stops gossip without saying goodbye (others will see a failure).
func (p *Pool) Shutdown() {
	select {
	case <-p.shutdownCh:
		return
	default:
	}
	close(p.shutdownCh)
	p.list.Shutdown()
	p.wg.Wait()
}

func (p *Pool) dispatch() {
	defer p.wg.Done()
	for {
		select {
		case <-p.shutdownCh:
			return
		case ev := <-p.eventCh:
			p.subMu.Lock()
			subs := append([]func(structs.MemberEvent){}, p.subs...)
			p.subMu.Unlock()
			for _, fn := range subs {
				fn(ev)
			}
		}
	}
}

// reap forgets failed and left members after ReapAfter.
func (p *Pool) reap() {
	defer p.wg.Done()
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-p.shutdownCh:
			return
		case <-tick.C:
			cutoff := time.Now().Add(-p.config.ReapAfter)
			reaped := false
			p.mu.Lock()
			for name, m := range p.members {
				if m.member.Status != structs.MemberAlive && m.changed.Before(cutoff) {
					delete(p.members, name)
					reaped = true
				}
			}
			p.mu.Unlock()
			if reaped {
				p.markPeersDirty()
			}
		}
	}
}

// record updates the member table and queues the event. It runs inside
// memberlist callbacks, so it only takes our own lock and never blocks.
func (p *Pool) record(typ string, n *memberlist.Node) {
	m := p.toMember(n)
	if typ == structs.MemberEventFailed {
		m.Status = structs.MemberDead
		if leaving(n.Meta) {
			typ, m.Status = structs.MemberEventLeave, structs.MemberLeft
		}
	}
	p.mu.Lock()
	p.members[m.Name] = &memberState{member: m, changed: time.Now()}
	p.mu.Unlock()
	p.markPeersDirty()
	select {
	case p.eventCh <- structs.MemberEvent{Type: typ, Member: m}:
	default:
		p.logger.Warn("member event queue full, dropping event", "member", m.Name, "event", typ)
	}
}

func (p *Pool) toMember(n *memberlist.Node) structs.Member {
	m := decodeMeta(n.Meta)
	m.Name = n.Name
	m.Addr = n.Addr.String()
	m.Port = int(n.Port)
	// Alive: memberlist does not fill n.State, and hands out nodes only
	// in join and update callbacks (record sets the status of the
	// others) and for this agent.
	m.Status = structs.MemberAlive
	return m
}

func encodeMeta(m structs.Member, leaving bool) ([]byte, error) {
	b, err := json.Marshal(wireMeta{
		Role: m.Role, Region: m.Region, DC: m.Datacenter, RPCAddr: m.RPCAddr,
		HTTPAddr: m.HTTPAddr, RaftID: m.RaftID, NodeID: m.NodeID, Expect: m.BootstrapExpect, Version: m.Version,
		Leaving: leaving,
	})
	if err != nil {
		return nil, err
	}
	if len(b) > metaLimit {
		return nil, fmt.Errorf("gossip metadata is %d bytes, over memberlist's limit of %d", len(b), metaLimit)
	}
	return b, nil
}

func decodeMeta(b []byte) structs.Member {
	var w wireMeta
	if len(b) > 0 {
		_ = json.Unmarshal(b, &w) // a member with garbled metadata shows as role-less
	}
	return structs.Member{
		Role: w.Role, Region: w.Region, Datacenter: w.DC, RPCAddr: w.RPCAddr,
		HTTPAddr: w.HTTPAddr, RaftID: w.RaftID, NodeID: w.NodeID, BootstrapExpect: w.Expect, Version: w.Version,
	}
}

// leaving reports whether the metadata announces a graceful leave.
func leaving(b []byte) bool {
	var w wireMeta
	return len(b) > 0 && json.Unmarshal(b, &w) == nil && w.Leaving
}

// delegate gives memberlist our metadata; the pool uses no user messages.
type delegate Pool

func (d *delegate) NodeMeta(limit int) []byte {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.meta
}
func (d *delegate) NotifyMsg([]byte)                           {}
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

// events turns memberlist callbacks into member events.
type events Pool

func (e *events) NotifyJoin(n *memberlist.Node) { (*Pool)(e).record(structs.MemberEventJoin, n) }
func (e *events) NotifyUpdate(n *memberlist.Node) {
	(*Pool)(e).record(structs.MemberEventUpdate, n)
}
func (e *events) NotifyLeave(n *memberlist.Node) {
	(*Pool)(e).record(structs.MemberEventFailed, n) // or a leave: see record
}

// JoinAddr appends the default gossip port to addresses that have none.
func JoinAddr(addr string, defaultPort int) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	return net.JoinHostPort(addr, strconv.Itoa(defaultPort))
}
