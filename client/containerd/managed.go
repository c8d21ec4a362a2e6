package containerd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/hashicorp/go-hclog"

	"github.com/drover-sh/drover/structs"
)

const (
	// maxSocketPath is sun_path's 108 bytes less the terminating NUL.
	maxSocketPath = 107
	// ttrpcSuffix is appended by containerd to the gRPC address for its
	// ttrpc socket, the longer of the two.
	ttrpcSuffix = ".ttrpc"

	defaultStartTimeout = 30 * time.Second
	stopTimeout         = 10 * time.Second
	pollInterval        = 25 * time.Millisecond
)

// ManagedConfig configures a containerd the agent runs itself.
type ManagedConfig struct {
	// DataDir holds config.toml, the socket, the pid file, the log and
	// containerd's root and state directories.
	DataDir string
	// Binary is the containerd executable ("containerd" on PATH when
	// empty).
	Binary string
	// StartTimeout bounds waiting for the socket to answer (30s when 0).
	StartTimeout time.Duration
	Logger       hclog.Logger
}

// Managed is a containerd started (or adopted) by the agent. It runs in
// its own process group and survives the agent: its tasks' shims do not
// depend on it, and an agent that comes back adopts it. While the agent
// runs, a containerd that exits (crashed, killed) is started again, with
// a backoff; tasks keep running under their shims meanwhile, and the new
// containerd finds them.
type Managed struct {
	cfg    ManagedConfig
	logger hclog.Logger
	sock   string

	mu      sync.Mutex
	pid     int
	adopted bool
	// exited is closed when our own child has been reaped; nil when the
	// process was adopted, since only its parent can wait for it.
	exited chan struct{}
	// restarts counts the starts after an unexpected exit.
	restarts int

	stopOnce       sync.Once
	stopping       chan struct{} // closed by Stop
	supervisorDone chan struct{}
}

// Restart backoff of the supervisor: doubling from min up to max, back to
// min after a run of at least healthyRun.
var (
	restartMinBackoff = 250 * time.Millisecond
	restartMaxBackoff = 30 * time.Second
	healthyRun        = time.Minute
	// adoptedPoll is how often the liveness of an adopted containerd,
	// which cannot be waited for, is checked.
	adoptedPoll = time.Second
)

// CheckDataDir reports whether a managed containerd can run under dir:
// the path of its socket must fit in a unix socket address.
func CheckDataDir(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	sock := filepath.Join(abs, "containerd.sock") + ttrpcSuffix
	if len(sock) > maxSocketPath {
		return fmt.Errorf("containerd's socket %s would be %d bytes long; unix sockets allow %d", sock, len(sock), maxSocketPath)
	}
	return nil
}

// StartManaged starts containerd with a config under cfg.DataDir, or adopts
// the one already answering on that socket (left by an agent that was
// killed), and returns once the socket answers.
func StartManaged(cfg ManagedConfig) (*Managed, error) {
	if cfg.DataDir == "" {
		return nil, structs.NewError(structs.ErrInvalid, "data_dir: must not be empty")
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("managed containerd: data_dir %s: %w", cfg.DataDir, err)
	}
	cfg.DataDir = dir
	if cfg.Binary == "" {
		cfg.Binary = "containerd"
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = defaultStartTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	m := &Managed{
		cfg:    cfg,
		logger: cfg.Logger.Named("containerd"),
		sock:   filepath.Join(dir, "containerd.sock"),
	}
	if err := CheckDataDir(dir); err != nil {
		return nil, structs.NewError(structs.ErrInvalid, "data_dir: %v: use a shorter data_dir", err)
	}
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, fmt.Errorf("managed containerd: %w", err)
	}

	if err := m.startOrAdopt(); err != nil {
		return nil, err
	}
	m.stopping = make(chan struct{})
	m.supervisorDone = make(chan struct{})
	go m.supervise()
	return m, nil
}

// startOrAdopt adopts a containerd already serving the socket, or starts
// one.
func (m *Managed) startOrAdopt() error {
	if pid, ok := socketPeer(m.sock); ok && isContainerd(pid) {
		return m.adopt(pid)
	}
	if pid, err := m.readPID(); err == nil && isContainerd(pid) {
		// Started but not listening yet, or listening somewhere else:
		// waiting tells which.
		return m.adopt(pid)
	}
	return m.start()
}

// supervise starts containerd again whenever it exits, until Stop.
func (m *Managed) supervise() {
	defer close(m.supervisorDone)
	backoff := time.Duration(0)
	for {
		since := time.Now()
		if !m.waitExit() {
			return
		}
		pid := m.PID()
		if time.Since(since) >= healthyRun {
			backoff = 0
		}
		m.logger.Error("containerd exited; starting it again (running tasks are not affected)",
			"pid", pid, "log", m.LogPath())
		for {
			backoff = min(max(2*backoff, restartMinBackoff), restartMaxBackoff)
			select {
			case <-m.stopping:
				return
			case <-time.After(backoff):
			}
			err := m.startOrAdopt()
			if err == nil {
				m.mu.Lock()
				m.restarts++
				m.mu.Unlock()
				break
			}
			m.logger.Error("starting containerd again failed", "retry_in", min(2*backoff, restartMaxBackoff), "error", err)
		}
	}
}

// waitExit returns true once containerd has exited, false when Stop was
// called first.
func (m *Managed) waitExit() bool {
	m.mu.Lock()
	exited := m.exited
	m.mu.Unlock()
	if exited != nil {
		select {
		case <-exited:
			return true
		case <-m.stopping:
			return false
		}
	}
	t := time.NewTicker(adoptedPoll)
	defer t.Stop()
	for m.alive() {
		select {
		case <-t.C:
		case <-m.stopping:
			return false
		}
	}
	return true
}

// Restarts is how many times containerd was started again after exiting.
func (m *Managed) Restarts() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.restarts
}

// Address is containerd's gRPC socket.
func (m *Managed) Address() string { return m.sock }

// PID is containerd's process id.
func (m *Managed) PID() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pid
}

// Adopted reports whether this containerd was found running rather than
// started.
func (m *Managed) Adopted() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.adopted
}

func (m *Managed) path(name string) string { return filepath.Join(m.cfg.DataDir, name) }

// LogPath is containerd's log file. containerd holds it open with
// O_APPEND, so a rotator must copy and truncate it, not move it.
func (m *Managed) LogPath() string { return m.path("containerd.log") }

func (m *Managed) adopt(pid int) error {
	m.mu.Lock()
	m.pid, m.adopted, m.exited = pid, true, nil
	m.mu.Unlock()
	if err := m.waitReady(); err != nil {
		return fmt.Errorf("managed containerd: adopting pid %d: %w", pid, err)
	}
	if err := m.writePID(); err != nil {
		return err
	}
	m.logger.Info("adopted running containerd", "pid", pid, "address", m.sock)
	return nil
}

func (m *Managed) start() error {
	bin, err := exec.LookPath(m.cfg.Binary)
	if err != nil {
		return fmt.Errorf("managed containerd: %s not found: install the containerd package: %w", m.cfg.Binary, err)
	}
	config := m.path("config.toml")
	if err := os.WriteFile(config, []byte(m.config()), 0o600); err != nil {
		return fmt.Errorf("managed containerd: %w", err)
	}
	// Nobody answers on it (checked by the caller): a socket file left by
	// a containerd that died would make the listen fail.
	for _, s := range []string{m.sock, m.sock + ttrpcSuffix} {
		if err := os.Remove(s); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("managed containerd: removing stale socket: %w", err)
		}
	}
	if err := rotateLog(m.LogPath(), maxLogSize); err != nil {
		return fmt.Errorf("managed containerd: %w", err)
	}
	logf, err := os.OpenFile(m.LogPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("managed containerd: %w", err)
	}
	defer logf.Close()

	cmd := exec.Command(bin, "--config", config)
	cmd.Dir = m.cfg.DataDir
	// The file, not a pipe: containerd keeps logging after the agent dies.
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so a ^C or a signal to the agent's group does
	// not take containerd down with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("managed containerd: starting %s: %w", bin, err)
	}
	exited := make(chan struct{})
	m.mu.Lock()
	m.pid, m.adopted, m.exited = cmd.Process.Pid, false, exited
	m.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	if err := m.writePID(); err != nil {
		_ = m.kill()
		return err
	}
	if err := m.waitReady(); err != nil {
		_ = m.kill()
		return fmt.Errorf("managed containerd: %w; log %s ends with:\n%s", err, m.LogPath(), tail(m.LogPath(), 20))
	}
	m.logger.Info("started containerd", "pid", m.PID(), "address", m.sock)
	return nil
}

// maxLogSize is the size beyond which containerd's log is set aside when
// containerd starts. While it runs, the client's log rotator keeps the
// file small (see LogPath); this covers the time no client ran.
const maxLogSize = 16 << 20

// rotateLog moves path to path.1, replacing an older one, when it is
// larger than max.
func rotateLog(path string, max int64) error {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) || err == nil && fi.Size() <= max {
		return nil
	}
	if err != nil {
		return err
	}
	return os.Rename(path, path+".1")
}

// config is containerd's config: everything under DataDir, no CRI.
func (m *Managed) config() string {
	return fmt.Sprintf(`# Written by drover; rewritten at each start.
version = 2
root = %s
state = %s
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = %s

[plugins."io.containerd.internal.v1.opt"]
  path = %s
`, tomlString(m.path("root")), tomlString(m.path("state")), tomlString(m.sock), tomlString(m.path("opt")))
}

func tomlString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// waitReady waits until containerd answers a Version call, or its process
// is gone, or StartTimeout passes.
func (m *Managed) waitReady() error {
	deadline := time.Now().Add(m.cfg.StartTimeout)
	pid := m.PID()
	for {
		if !m.alive() {
			return fmt.Errorf("containerd (pid %d) exited before answering on %s", pid, m.sock)
		}
		// A plain dial first: a gRPC client that failed once backs off
		// for a second before trying again, a dial costs nothing.
		if _, ok := socketPeer(m.sock); ok {
			if err := version(m.sock); err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("containerd (pid %d) did not answer on %s within %s", pid, m.sock, m.cfg.StartTimeout)
		}
		time.Sleep(pollInterval)
	}
}

func version(sock string) error {
	c, err := client.New(sock)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = c.Version(ctx)
	return err
}

// Stop stops containerd, and its supervision: SIGTERM, then SIGKILL after
// a grace period. Tasks keep running under their shims, and a later
// StartManaged on the same DataDir finds them again.
func (m *Managed) Stop() error {
	m.stopSupervising()
	return m.kill()
}

// stopSupervising ends the restarts and leaves containerd as it is.
func (m *Managed) stopSupervising() {
	if m.stopping != nil {
		m.stopOnce.Do(func() { close(m.stopping) })
		<-m.supervisorDone
	}
}

// kill stops the current containerd process.
func (m *Managed) kill() error {
	defer os.Remove(m.path("containerd.pid"))
	if !m.alive() {
		return nil
	}
	pid := m.PID()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("managed containerd: stopping pid %d: %w", pid, err)
	}
	if m.waitGone(stopTimeout) {
		m.logger.Info("stopped containerd", "pid", pid)
		return nil
	}
	m.logger.Warn("containerd ignored SIGTERM, killing it", "pid", pid, "timeout", stopTimeout)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("managed containerd: killing pid %d: %w", pid, err)
	}
	if !m.waitGone(stopTimeout) {
		return fmt.Errorf("managed containerd: pid %d still running after SIGKILL", pid)
	}
	return nil
}

func (m *Managed) waitGone(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for m.alive() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollInterval)
	}
	return true
}

func (m *Managed) alive() bool {
	m.mu.Lock()
	pid, exited := m.pid, m.exited
	m.mu.Unlock()
	if exited != nil {
		select {
		case <-exited:
			return false
		default:
			return true
		}
	}
	return processAlive(pid)
}

func (m *Managed) writePID() error {
	if err := os.WriteFile(m.path("containerd.pid"), []byte(strconv.Itoa(m.PID())+"\n"), 0o644); err != nil {
		return fmt.Errorf("managed containerd: %w", err)
	}
	return nil
}

func (m *Managed) readPID() (int, error) {
	b, err := os.ReadFile(m.path("containerd.pid"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// socketPeer dials a unix socket and returns the pid of the process that
// accepted (SO_PEERCRED): that is the one to adopt, whatever a pid file
// says.
func socketPeer(sock string) (int, bool) {
	conn, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return 0, false
	}
	defer conn.Close()
	raw, err := conn.(*net.UnixConn).SyscallConn()
	if err != nil {
		return 0, false
	}
	var cred *syscall.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil || credErr != nil {
		return 0, false
	}
	return int(cred.Pid), true
}

// isContainerd reports a live, non-zombie process named containerd.
func isContainerd(pid int) bool {
	if pid <= 0 || !processAlive(pid) {
		return false
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return err == nil && strings.TrimSpace(string(comm)) == "containerd"
}

// processAlive is false for a zombie: it has exited, only nobody reaped it.
func processAlive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name, which may itself
	// contain spaces and parentheses.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return true
	}
	return stat[i+2] != 'Z'
}

// tail returns the last n lines of a file, for error messages.
func tail(p string, n int) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
