//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/drover-sh/drover/agent"
	"github.com/drover-sh/drover/client/cni"
)

// Registry is a docker-registry on loopback started by scripts/registry.sh,
// holding the busybox image scripts/build-image.sh makes.
type Registry struct {
	Addr  string // host:port
	Image string // the busybox image's full reference
	dir   string
	repo  string
}

// StartRegistry starts a registry on a free 127.0.0.1 port under dir and
// pushes the test image to it.
func StartRegistry(repo, dir string) (*Registry, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	r := &Registry{Addr: addr, Image: addr + "/drover/busybox:latest", dir: dir, repo: repo}
	env := []string{"REGISTRY_ADDR=" + addr}
	if out, err := runScript(repo, env, "scripts/registry.sh", "start", filepath.Join(dir, "registry")); err != nil {
		return nil, fmt.Errorf("starting the registry: %v\n%s", err, out)
	}
	if out, err := runScript(repo, env, "scripts/build-image.sh", filepath.Join(dir, "image"), addr); err != nil {
		r.Stop()
		return nil, fmt.Errorf("building the test image: %v\n%s", err, out)
	}
	return r, nil
}

// Stop stops the registry.
func (r *Registry) Stop() {
	runScript(r.repo, []string{"REGISTRY_ADDR=" + r.Addr}, "scripts/registry.sh", "stop", filepath.Join(r.dir, "registry"))
}

func runScript(repo string, env []string, script string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(repo, script), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = repo
	return cmd.CombinedOutput()
}

// NewClient prepares a client agent that joins the cluster's first server,
// with its own data dir, managed containerd and containerd namespace, and
// its own network: a bridge, a /24 and a DNS address of its own, so that it
// meets neither the other clients nor a dev agent on this machine (two
// clients on one bridge would each sweep the other's rules away). extra
// flags come last. Nothing is started yet.
func (c *Cluster) NewClient(name string, extra ...string) (*Agent, error) {
	if len(c.Agents) == 0 {
		return nil, fmt.Errorf("no servers to join")
	}
	if c.netTag == 0 {
		c.netTag = 1 + rand.IntN(0xfffe)
		c.netBase = rand.IntN(256)
	}
	n := len(c.Clients)
	prefix := c.Agents[0].IP[:strings.LastIndex(c.Agents[0].IP, ".")+1]
	ip := prefix + strconv.Itoa(100+n)
	a := &Agent{Name: name, IP: ip, bin: c.Bin,
		DataDir: filepath.Join(c.Dir, name), logPath: filepath.Join(c.Dir, name+".log"),
		Bridge: fmt.Sprintf("dre%04xc%d", c.netTag, n),
		Subnet: fmt.Sprintf("172.29.%d.0/24", (c.netBase+n)%256)}
	a.Namespace = "e2e-" + name + "-" + strings.ReplaceAll(ip, ".", "-")
	a.Args = append([]string{"agent", "-client", "-data-dir", a.DataDir, "-bind", ip, "-name", name,
		"-join", c.Agents[0].IP, "-containerd-namespace", a.Namespace, "-log-level", "debug",
		"-network-bridge", a.Bridge, "-network-subnet", a.Subnet, "-dns-addr", DNSAddr(ip)}, extra...)
	c.Clients = append(c.Clients, a)
	return a, nil
}

// DNSAddr is where the DNS server of the client at ip answers.
func DNSAddr(ip string) string { return net.JoinHostPort(ip, "8600") }

// ContainerdSocket is the socket of a client's managed containerd.
func (a *Agent) ContainerdSocket() string {
	return filepath.Join(a.DataDir, "containerd", "containerd.sock")
}

// Ctr runs containerd's ctr against the client's containerd and namespace.
func (a *Agent) Ctr(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	full := append([]string{"--address", a.ContainerdSocket(), "--namespace", a.Namespace}, args...)
	out, err := exec.CommandContext(ctx, "ctr", full...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ctr %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// CtrIDs lists the first column of a ctr listing (containers, tasks,
// snapshots), without its header.
func (a *Agent) CtrIDs(args ...string) ([]string, error) {
	out, err := a.Ctr(args...)
	if err != nil {
		return nil, err
	}
	var ids []string
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) == 0 {
			continue
		}
		ids = append(ids, f[0])
	}
	return ids, nil
}

// TaskPIDs maps container IDs to the PIDs of their running tasks.
func (a *Agent) TaskPIDs() (map[string]int, error) {
	out, err := a.Ctr("tasks", "ls")
	if err != nil {
		return nil, err
	}
	pids := map[string]int{}
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 3 || f[2] != "RUNNING" {
			continue
		}
		pid, err := strconv.Atoi(f[1])
		if err == nil {
			pids[f[0]] = pid
		}
	}
	return pids, nil
}

// CleanupClient removes everything a client agent left in its containerd
// (tasks, containers, snapshots), stops the managed containerd and the
// shims of its namespace, then its network: namespaces, leases and rules,
// swept as a restarted client holding nothing would, and the bridge.
// Tests call it at cleanup, after the agent died; what could not be
// removed is the error.
func CleanupClient(a *Agent) error {
	if _, err := os.Stat(a.ContainerdSocket()); err == nil {
		if ids, err := a.CtrIDs("tasks", "ls"); err == nil {
			for _, id := range ids {
				a.Ctr("tasks", "kill", "--all", "--signal", "SIGKILL", id)
			}
			for _, id := range ids {
				for i := 0; i < 50; i++ {
					if _, err := a.Ctr("tasks", "rm", "--force", id); err == nil {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		}
		if ids, err := a.CtrIDs("containers", "ls"); err == nil {
			for _, id := range ids {
				a.Ctr("containers", "rm", id)
			}
		}
	}
	pidFile := filepath.Join(a.DataDir, "containerd", "containerd.pid")
	if b, err := os.ReadFile(pidFile); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			syscall.Kill(pid, syscall.SIGTERM)
			for i := 0; i < 50 && syscall.Kill(pid, 0) == nil; i++ {
				time.Sleep(100 * time.Millisecond)
			}
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	// runc keeps its state under /run/containerd/runc/<namespace> whatever
	// containerd's root; the directory is empty once the tasks are gone.
	os.Remove(filepath.Join("/run/containerd/runc", a.Namespace))
	// Shims of this namespace that outlived their tasks.
	out, _ := exec.Command("pgrep", "-f", "containerd-shim-runc-v2 -namespace "+a.Namespace+" ").Output()
	for _, f := range bytes.Fields(out) {
		if pid, err := strconv.Atoi(string(f)); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if a.Bridge == "" {
		return nil
	}
	var errs []error
	n, err := cni.New(cni.Config{BridgeName: a.Bridge, Subnet: a.Subnet,
		StateDir: filepath.Join(a.DataDir, "client", "network")})
	if err == nil {
		err = n.Sweep(context.Background(), func(string) bool { return false })
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("sweeping the network of %s: %w", a.Name, err))
	}
	if out, err := exec.Command("ip", "link", "del", a.Bridge).CombinedOutput(); err != nil &&
		!strings.Contains(string(out), "Cannot find device") {
		errs = append(errs, fmt.Errorf("deleting bridge %s: %v: %s", a.Bridge, err, out))
	}
	// A client killed with -9 leaves its bridge's lock file behind.
	if err := os.Remove(agent.BridgeLockPath(a.Bridge)); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
