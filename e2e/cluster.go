//go:build e2e

// Package e2e tests drover as users run it: the real binary, started as
// separate processes on loopback addresses, driven through its CLI and
// HTTP API. Every process and directory a test starts is removed by its
// cleanup. Run with `make e2e` (build tag e2e; DROVER_BIN names the binary).
package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/drover-sh/drover/api"
)

// Default agent ports (see DESIGN.md); agents differ by loopback address.
const (
	httpPort   = 4750
	rpcPort    = 4751
	gossipPort = 4752
)

// Binary returns the drover binary under test: $DROVER_BIN, or bin/drover
// at the repository root.
func Binary() (string, error) {
	if b := os.Getenv("DROVER_BIN"); b != "" {
		return b, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; dir != "/"; dir = filepath.Dir(dir) {
		p := filepath.Join(dir, "bin", "drover")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no drover binary: run `make build` or set DROVER_BIN")
}

// Agent is one drover agent process.
type Agent struct {
	Name    string
	IP      string
	DataDir string
	Args    []string
	// Namespace is a client's containerd namespace.
	Namespace string
	// Bridge and Subnet are a client's allocation network.
	Bridge, Subnet string
	bin            string
	logPath        string
	cmd            *exec.Cmd
	done           chan struct{}
}

// HTTPAddr is the agent's API address as a URL.
func (a *Agent) HTTPAddr() string { return fmt.Sprintf("http://%s:%d", a.IP, httpPort) }

// RPCAddr is the agent's RPC address (what Raft and the leader report).
func (a *Agent) RPCAddr() string { return fmt.Sprintf("%s:%d", a.IP, rpcPort) }

// Client returns an API client for this agent.
func (a *Agent) Client() *api.Client {
	c, _ := api.NewClient(&api.Config{Address: a.HTTPAddr()})
	return c
}

// Start starts the process (again, on the same data dir, after a kill).
func (a *Agent) Start() error {
	logf, err := os.OpenFile(a.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(a.bin, a.Args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group, and die with the test process if it dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := startFromSpawner(cmd); err != nil {
		logf.Close()
		return err
	}
	a.cmd = cmd
	a.done = make(chan struct{})
	go func() {
		cmd.Wait()
		logf.Close()
		close(a.done)
	}()
	return nil
}

// Pdeathsig fires when the OS thread that started the child exits, not
// the process. Go ends a thread whose goroutine exits while locked to it,
// which network namespace code does (ns.Do), so an agent started from an
// ordinary goroutine could be killed half way through a test. Children
// are therefore started from one goroutine locked to its thread for the
// life of the process.
var spawnCh = make(chan spawnReq)

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

func init() {
	go func() {
		runtime.LockOSThread() // never unlocked: this thread lives as long as the process
		for req := range spawnCh {
			req.done <- req.cmd.Start()
		}
	}()
}

func startFromSpawner(cmd *exec.Cmd) error {
	done := make(chan error, 1)
	spawnCh <- spawnReq{cmd: cmd, done: done}
	return <-done
}

// Running reports whether the process is alive.
func (a *Agent) Running() bool {
	if a.cmd == nil {
		return false
	}
	select {
	case <-a.done:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (a *Agent) Kill() {
	if !a.Running() {
		return
	}
	a.cmd.Process.Signal(syscall.SIGKILL)
	<-a.done
}

// Stop sends SIGTERM and waits up to timeout, then kills.
func (a *Agent) Stop(timeout time.Duration) {
	if !a.Running() {
		return
	}
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(timeout):
		a.Kill()
	}
}

// LogTail returns the end of the agent's log.
func (a *Agent) LogTail(n int) string {
	b, _ := os.ReadFile(a.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Cluster is a set of server agents on one loopback /24.
type Cluster struct {
	Bin    string
	Dir    string
	Agents []*Agent // servers
	// Clients are client agents added with NewClient.
	Clients []*Agent
	// netTag and netBase make the clients' bridge names and subnets.
	netTag, netBase int
}

// NewServers prepares n servers with -bootstrap-expect n, each joining the
// first, on a free random 127.A.B.0/24 block. Nothing is started yet.
func NewServers(bin, dir string, n int) (*Cluster, error) {
	prefix, err := loopbackBlock(n + 1)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Bin: bin, Dir: dir}
	for i := 1; i <= n; i++ {
		ip := prefix + strconv.Itoa(i)
		a := &Agent{Name: fmt.Sprintf("s%d", i), IP: ip, bin: bin,
			DataDir: filepath.Join(dir, fmt.Sprintf("s%d", i)), logPath: filepath.Join(dir, fmt.Sprintf("s%d.log", i))}
		a.Args = []string{"agent", "-server", "-bootstrap-expect", strconv.Itoa(n),
			"-data-dir", a.DataDir, "-bind", ip, "-name", a.Name, "-join", prefix + "1", "-log-level", "debug"}
		c.Agents = append(c.Agents, a)
	}
	return c, nil
}

// Start starts every agent.
func (c *Cluster) Start() error {
	for _, a := range c.Agents {
		if err := a.Start(); err != nil {
			c.Stop()
			return err
		}
	}
	return nil
}

// Stop kills every agent, clients first, and removes what the clients
// left in their containerd.
func (c *Cluster) Stop() {
	for _, a := range c.Clients {
		a.Kill()
		if err := CleanupClient(a); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
		}
	}
	for _, a := range c.Agents {
		a.Kill()
	}
}

// Running returns the agents whose process is alive.
func (c *Cluster) Running() []*Agent {
	var out []*Agent
	for _, a := range c.Agents {
		if a.Running() {
			out = append(out, a)
		}
	}
	return out
}

// WaitLeader waits until every running agent names the same leader and
// that leader is one of them; it returns the leader's agent.
func (c *Cluster) WaitLeader(ctx context.Context) (*Agent, error) {
	var last error
	for {
		leader, err := c.leader(ctx)
		if err == nil {
			return leader, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no agreed leader: %w", last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (c *Cluster) leader(ctx context.Context) (*Agent, error) {
	addr := ""
	for _, a := range c.Running() {
		l, err := a.Client().Status().Leader(ctx)
		if err != nil {
			return nil, err
		}
		if l == "" || (addr != "" && l != addr) {
			return nil, fmt.Errorf("%s sees leader %q, others %q", a.Name, l, addr)
		}
		addr = l
	}
	for _, a := range c.Running() {
		if a.RPCAddr() == addr {
			return a, nil
		}
	}
	return nil, fmt.Errorf("leader %q is not running", addr)
}

// CLI runs the drover CLI against agent a and returns stdout, stderr and
// the exit code.
func (c *Cluster) CLI(ctx context.Context, a *Agent, args ...string) (string, string, int) {
	cmd := exec.CommandContext(ctx, c.Bin, args...)
	cmd.Env = append(os.Environ(), "DROVER_ADDR="+a.HTTPAddr())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else {
			code = -1
			errb.WriteString(err.Error())
		}
	}
	return out.String(), errb.String(), code
}

// WaitHTTP waits until the agent's API answers.
func WaitHTTP(ctx context.Context, a *Agent) error {
	for {
		resp, err := http.Get(a.HTTPAddr() + "/v1/agent/self")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("agent %s API not up: %v", a.Name, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// loopbackBlock returns a random 127.A.B. prefix whose default ports are
// free on addresses .1 to .n.
func loopbackBlock(n int) (string, error) {
	for attempt := 0; attempt < 50; attempt++ {
		prefix := fmt.Sprintf("127.%d.%d.", 10+rand.IntN(240), rand.IntN(256))
		if blockFree(prefix, n) {
			return prefix, nil
		}
	}
	return "", errors.New("no free loopback block")
}

func blockFree(prefix string, n int) bool {
	for i := 1; i <= n; i++ {
		for _, port := range []int{httpPort, rpcPort, gossipPort} {
			ln, err := net.Listen("tcp", fmt.Sprintf("%s%d:%d", prefix, i, port))
			if err != nil {
				return false
			}
			ln.Close()
		}
	}
	return true
}

// PID is the agent's process ID, 0 when it is not running.
func (a *Agent) PID() int {
	if !a.Running() {
		return 0
	}
	return a.cmd.Process.Pid
}
