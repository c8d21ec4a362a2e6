//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/drover-sh/drover/api"
)

// Partition cuts one server off from others with iptables DROP rules on
// their loopback addresses, in INPUT and OUTPUT, each tagged with a
// comment unique to the partition so Heal removes exactly these rules
// and can prove they are gone. Servers dial each other from their bind
// address, so the rules see one address per server.
type Partition struct {
	Tag   string
	mu    sync.Mutex
	rules [][]string // rule specs without the -I/-D and chain
}

// NewPartition drops all traffic between a and each of others. The
// rules are in place when it returns; call Heal (also on failure).
func NewPartition(tag string, a *Agent, others ...*Agent) (*Partition, error) {
	p := &Partition{Tag: tag}
	for _, o := range others {
		for _, chain := range []string{"INPUT", "OUTPUT"} {
			for _, dir := range [][2]string{{a.IP, o.IP}, {o.IP, a.IP}} {
				spec := []string{chain, "-s", dir[0], "-d", dir[1], "-m", "comment", "--comment", tag, "-j", "DROP"}
				if out, err := iptables(append([]string{"-I"}, spec...)...); err != nil {
					p.Heal()
					return nil, fmt.Errorf("partition %s: adding %v: %w: %s", tag, spec, err, out)
				}
				p.mu.Lock()
				p.rules = append(p.rules, spec)
				p.mu.Unlock()
			}
		}
	}
	return p, nil
}

// Heal removes the partition's rules and then every rule still carrying
// its tag; it returns an error if any is left.
func (p *Partition) Heal() error {
	p.mu.Lock()
	rules := p.rules
	p.rules = nil
	p.mu.Unlock()
	for _, spec := range rules {
		iptables(append([]string{"-D"}, spec...)...)
	}
	left, err := RulesTagged(p.Tag)
	if err != nil {
		return err
	}
	for _, line := range left {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "-A" {
			continue
		}
		for i := range f {
			f[i] = strings.Trim(f[i], `"`)
		}
		iptables(append([]string{"-D"}, f[1:]...)...)
	}
	if left, err = RulesTagged(p.Tag); err != nil {
		return err
	}
	if len(left) > 0 {
		return fmt.Errorf("partition %s: rules left: %v", p.Tag, left)
	}
	return nil
}

// RulesTagged lists the filter rules (iptables -S form) whose comment is tag.
func RulesTagged(tag string) ([]string, error) {
	var out []string
	for _, chain := range []string{"INPUT", "OUTPUT"} {
		s, err := iptables("-S", chain)
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w: %s", chain, err, s)
		}
		for _, line := range strings.Split(s, "\n") {
			if strings.Contains(line, "--comment "+tag) || strings.Contains(line, `--comment "`+tag+`"`) {
				out = append(out, line)
			}
		}
	}
	return out, nil
}

// iptables runs the nft variant on PATH (never iptables-legacy) and waits
// for the xtables lock rather than failing while a CNI plugin holds it.
func iptables(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "iptables", append([]string{"-w", "5"}, args...)...).CombinedOutput()
	return string(out), err
}

// LeaderSeenBy is the RPC address a's server names as leader ("" when it
// knows none or does not answer).
func LeaderSeenBy(ctx context.Context, a *Agent) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	l, err := a.Client().Status().Leader(ctx)
	if err != nil {
		return ""
	}
	return l
}

// AgreedLeader returns the leader that every agent of group names, if
// they agree and it is one of them; nil otherwise.
func AgreedLeader(ctx context.Context, group []*Agent) *Agent {
	addr := ""
	for _, a := range group {
		l := LeaderSeenBy(ctx, a)
		if l == "" || (addr != "" && l != addr) {
			return nil
		}
		addr = l
	}
	for _, a := range group {
		if a.RPCAddr() == addr {
			return a
		}
	}
	return nil
}

// KillAll sends SIGKILL to every agent at the same moment and waits for
// all of them to be gone.
func KillAll(agents []*Agent) {
	var wg sync.WaitGroup
	for _, a := range agents {
		if !a.Running() {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); a.cmd.Process.Signal(syscall.SIGKILL) }()
	}
	wg.Wait()
	for _, a := range agents {
		if a.done != nil {
			<-a.done
		}
	}
}

// JobYAML is a small service job whose meta key "v" carries value: the
// register of the linearizability checks. Its task never needs to run.
func JobYAML(id, value string, count int) string {
	return fmt.Sprintf(`id: %s
type: service
datacenters: [dc1]
meta: {v: "%s"}
groups:
  - name: g
    count: %d
    tasks:
      - name: t
        image: busybox
        resources: {cpu: 10, memory: 8}
`, id, value, count)
}

// RegisterYAML registers a job file through a's HTTP API.
func RegisterYAML(ctx context.Context, a *Agent, yaml string) (*api.Client, string, error) {
	cl := a.Client()
	resp, err := cl.Jobs().Register(ctx, []byte(yaml), api.ContentTypeYAML, nil)
	if err != nil {
		return cl, "", err
	}
	return cl, resp.EvalID, nil
}

// IsNotFound reports an HTTP 404 from the API.
func IsNotFound(err error) bool {
	var ae *api.Error
	return errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound
}

// NotSent reports an error for which the request never reached an agent
// (connection refused), so it cannot have taken effect.
func NotSent(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}
