package gossip

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/drover-sh/drover/structs"
)

// The pool remembers its peers across restarts, as Serf's snapshot does.
// memberlist forgets everything when the process ends, and a restarted
// agent that knows no one is only half back: the others see it alive
// again as soon as it answers their probes, so none of them has a reason
// to push their member list to it, and it may learn of them only by the
// luck of a periodic push-pull. Joining the servers it last knew makes
// the return whole at once, with or without -join. Only servers are
// saved: any one of them brings the whole member list, and the file stays
// a few lines long on a node among thousands.

// peersWriteDelay coalesces bursts of member events into one write.
const peersWriteDelay = time.Second

// peer is one remembered server.
type peer struct {
	Name  string `json:"name"`
	Addr  string `json:"addr"` // host:port of its gossip listener
	Alive bool   `json:"alive,omitempty"`
}

type peersFile struct {
	Peers []peer `json:"peers"`
}

// loadPeers reads the peers file; a missing file is no peers.
func loadPeers(path string) ([]peer, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var f peersFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return f.Peers, nil
}

// writePeers replaces the peers file atomically.
func writePeers(path string, peers []peer) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(peersFile{Peers: peers})
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Previous returns the gossip addresses of the servers this agent knew
// when it last ran: those alive then first, each group in random order so
// that restarted agents do not all call on the same server.
func (p *Pool) Previous() []string {
	var groups [2][]string
	for _, pr := range p.previous {
		g := 0
		if !pr.Alive {
			g = 1
		}
		groups[g] = append(groups[g], pr.Addr)
	}
	var out []string
	for _, g := range groups {
		rand.Shuffle(len(g), func(i, j int) { g[i], g[j] = g[j], g[i] })
		out = append(out, g...)
	}
	return out
}

// currentPeers lists the servers but this agent. Failed and left ones
// stay, behind the alive ones: they may be back by the time this agent
// restarts.
func (p *Pool) currentPeers() []peer {
	p.mu.RLock()
	out := make([]peer, 0, len(p.members))
	for name, m := range p.members {
		if name == p.config.Name || !m.member.IsServer() {
			continue
		}
		out = append(out, peer{
			Name:  name,
			Addr:  net.JoinHostPort(m.member.Addr, strconv.Itoa(m.member.Port)),
			Alive: m.member.Status == structs.MemberAlive,
		})
	}
	p.mu.RUnlock()
	slices.SortFunc(out, func(a, b peer) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// markPeersDirty has persistPeers save the member table; it never blocks.
func (p *Pool) markPeersDirty() {
	select {
	case p.peersDirty <- struct{}{}:
	default:
	}
}

// persistPeers writes the peers file whenever the member table changes,
// at most once per peersWriteDelay, and once more on shutdown.
func (p *Pool) persistPeers() {
	defer p.wg.Done()
	var last []peer
	write := func() {
		peers := p.currentPeers()
		if slices.Equal(peers, last) {
			return
		}
		if err := writePeers(p.config.PeersPath, peers); err != nil {
			p.logger.Warn("cannot save gossip peers", "path", p.config.PeersPath, "error", err)
			return
		}
		last = peers
	}
	for {
		select {
		case <-p.shutdownCh:
			write()
			return
		case <-p.peersDirty:
		}
		select {
		case <-p.shutdownCh:
		case <-time.After(peersWriteDelay):
		}
		write()
	}
}
