package cni

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// Sweep removes what this network made for allocations that are not live:
// those the client no longer has, or that finished while it was down.
// It works from three traces, so that a crash at any point is covered:
// the records under the netns dir (namespace, conflist, ports), the
// bridge network's leases under the IPAM dir (each names the allocation),
// and the iptables rules whose comment names the bridge network and the
// allocation. Nothing else on the host is touched: other networks'
// rules, namespaces outside the state dir and other bridges stay.
func (n *Network) Sweep(ctx context.Context, live func(allocID string) bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	var errs []error
	entries, err := os.ReadDir(n.nsDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("listing network namespaces in %s: %w", n.nsDir, err)
	}
	for _, e := range entries {
		id := e.Name()
		if !e.IsDir() || !validAllocID(id) || live(id) {
			continue
		}
		unlock := n.locks.lock(id)
		err := n.teardown(ctx, id)
		unlock()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		n.logger.Info("removed the network of a gone allocation", "alloc_id", id)
	}

	leases, err := leaseIDs(filepath.Join(n.ipamDir, n.cfg.BridgeName))
	if err != nil {
		errs = append(errs, err)
	}
	for id, files := range leases {
		if live(id) {
			continue
		}
		unlock := n.locks.lock(id)
		// The lease outlived its record: the namespace is gone, so
		// the plugins release what they can without it.
		err := n.cni.Remove(ctx, id, "")
		for _, f := range files {
			if rerr := os.Remove(f); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
				err = rerr
			}
		}
		unlock()
		if err != nil {
			errs = append(errs, fmt.Errorf("releasing the lease of allocation %s: %w", id, err))
			continue
		}
		n.logger.Info("released the address of a gone allocation", "alloc_id", id)
	}

	if err := removeRules(ctx, n.cfg.BridgeName, func(id string) bool { return !live(id) }); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// leaseIDs maps each allocation holding a host-local lease in dir to its
// lease files. A lease file is named by the address and holds the
// container ID on its first line (the interface on the second).
func leaseIDs(dir string) (map[string][]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing leases in %s: %w", dir, err)
	}
	out := map[string][]string{}
	for _, e := range entries {
		if e.IsDir() || net.ParseIP(e.Name()) == nil {
			continue // lock, last_reserved_ip.0
		}
		p := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("reading lease %s: %w", p, err)
		}
		id, _, _ := strings.Cut(string(b), "\n")
		id = strings.TrimSpace(id)
		if validAllocID(id) {
			out[id] = append(out[id], p)
		}
	}
	return out, nil
}

// The plugins' rule comments: bridge's masquerade rule says
// `name: "<net>" id: "<container id>"`, portmap's DNAT rule the same after
// "dnat ".
var commentPattern = regexp.MustCompile(`name: "([^"]*)" id: "([^"]*)"`)

// rule is one line of `iptables -S`.
type rule struct {
	chain  string
	args   []string // after "-A <chain>"
	net    string   // from the comment
	id     string   // from the comment
	target string   // -j
}

// iptablesTables are the tables the plugins write: bridge's masquerade and
// portmap's DNAT live in nat.
var iptablesTables = []string{"nat"}

// removeRules removes the rules whose comment names network and an ID
// for which match is true, then the per-container chains they jumped to
// (CNI-<hash>, CNI-DN-<hash>; never the shared CNI-HOSTPORT-* chains).
func removeRules(ctx context.Context, network string, match func(id string) bool) error {
	for _, table := range iptablesTables {
		rules, err := listRules(ctx, table)
		if err != nil {
			return err
		}
		chains := map[string]bool{}
		for _, r := range rules {
			if r.net != network || r.id == "" || !match(r.id) {
				continue
			}
			args := append([]string{"-t", table, "-D", r.chain}, r.args...)
			if out, err := iptables(ctx, args...); err != nil && !strings.Contains(out, "does a matching rule exist") {
				return fmt.Errorf("deleting rule of %s in chain %s: %w: %s", r.id, r.chain, err, out)
			}
			if strings.HasPrefix(r.target, "CNI-") && !strings.HasPrefix(r.target, "CNI-HOSTPORT-") {
				chains[r.target] = true
			}
		}
		for chain := range chains {
			for _, op := range []string{"-F", "-X"} {
				if out, err := iptables(ctx, "-t", table, op, chain); err != nil && !strings.Contains(out, "No chain") {
					return fmt.Errorf("removing chain %s: %w: %s", chain, err, out)
				}
			}
		}
	}
	return nil
}

// listRules parses `iptables -t table -S`.
func listRules(ctx context.Context, table string) ([]*rule, error) {
	out, err := iptables(ctx, "-t", table, "-S")
	if err != nil {
		return nil, fmt.Errorf("listing iptables table %s: %w: %s", table, err, out)
	}
	var rules []*rule
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "-A ") {
			continue
		}
		words := splitWords(line)
		if len(words) < 3 {
			continue
		}
		r := &rule{chain: words[1], args: words[2:]}
		for i := 0; i+1 < len(r.args); i++ {
			switch r.args[i] {
			case "--comment":
				if m := commentPattern.FindStringSubmatch(r.args[i+1]); m != nil {
					r.net, r.id = m[1], m[2]
				}
			case "-j":
				r.target = r.args[i+1]
			}
		}
		rules = append(rules, r)
	}
	return rules, sc.Err()
}

// splitWords splits an `iptables -S` line as the shell would: double
// quotes group, a backslash escapes the next character.
func splitWords(s string) []string {
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case ch == '"':
			quoted = !quoted
			inWord = true
		case (ch == ' ' || ch == '\t') && !quoted:
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// iptables runs the iptables on PATH (the plugins run the same one; on
// these machines it is the nft variant) and returns its combined output.
func iptables(ctx context.Context, args ...string) (string, error) {
	// -w: wait for the xtables lock rather than fail while a plugin
	// holds it.
	cmd := exec.CommandContext(ctx, "iptables", append([]string{"-w"}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// ensurePath makes sure iptables is found: the plugins look it up on the
// agent's PATH, which may lack the sbin dirs when started by hand.
func ensurePath() {
	if _, err := exec.LookPath("iptables"); err == nil {
		return
	}
	path := os.Getenv("PATH")
	for _, d := range []string{"/usr/sbin", "/sbin"} {
		if !strings.Contains(":"+path+":", ":"+d+":") {
			path += ":" + d
		}
	}
	os.Setenv("PATH", strings.TrimPrefix(path, ":"))
}
