package client

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/drover-sh/drover/client/driver"
	"github.com/drover-sh/drover/structs"
)

// A task's life is a sequence of phases; each phase runs its hooks in
// order. Prestart hooks prepare a start and may fail it (the restart
// policy then decides); the others only act and log.
type (
	// taskPrestartHook runs before every start, filling in cfg.
	taskPrestartHook interface {
		name() string
		prestart(ctx context.Context, tr *taskRunner, cfg *driver.TaskConfig) error
	}
	// taskPoststartHook runs after a start and after a reattach.
	taskPoststartHook interface {
		poststart(ctx context.Context, tr *taskRunner, h *driver.TaskHandle)
	}
	// taskExitedHook runs after the process ended, before the restart
	// policy is consulted.
	taskExitedHook interface {
		exited(ctx context.Context, tr *taskRunner)
	}
	// taskStopHook runs once when the task is finished for good.
	taskStopHook interface {
		stop(ctx context.Context, tr *taskRunner)
	}
)

func (tr *taskRunner) initHooks() {
	dirs := taskDirHook{}
	env := envHook{}
	container := containerHook{}
	image := imageHook{}
	logs := logsHook{}
	tr.prestartHooks = []taskPrestartHook{dirs, env, container, image}
	tr.poststartHooks = []taskPoststartHook{logs}
	tr.exitedHooks = []taskExitedHook{container}
	tr.stopHooks = []taskStopHook{logs, container}
}

// taskDirHook creates the task's local dir and points the task at its
// dirs and log files.
type taskDirHook struct{}

func (taskDirHook) name() string { return "task_dir" }

func (taskDirHook) prestart(ctx context.Context, tr *taskRunner, cfg *driver.TaskConfig) error {
	local := tr.ar.taskLocalDir(tr.name)
	if err := mkdirShared(local); err != nil {
		return fmt.Errorf("creating task dir of %s: %w", tr.name, err)
	}
	cfg.AllocDir = filepath.Join(tr.ar.root, "alloc")
	cfg.TaskDir = local
	cfg.StdoutPath, cfg.StderrPath = tr.ar.logPaths(tr.name)
	cfg.LogMaxBytes, cfg.LogMaxFiles = tr.c.cfg.LogMaxBytes, tr.c.cfg.LogMaxFiles
	tr.ar.mu.RLock()
	note := tr.ar.netNote
	tr.ar.mu.RUnlock()
	if note != "" && !tr.setupNoted {
		tr.setupNoted = true
		tr.update(event(structs.TaskEventSetup, note), nil)
	}
	return nil
}

// mkdirShared creates dir writable by any user, since a task may run as
// one the image names.
func mkdirShared(dir string) error {
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	return os.Chmod(dir, 0o777)
}

// envHook sets the task's environment and hostname.
type envHook struct{}

func (envHook) name() string { return "env" }

// Environment variables every task gets; the task's own env cannot
// override them.
func (envHook) prestart(ctx context.Context, tr *taskRunner, cfg *driver.TaskConfig) error {
	a := tr.ar.allocation()
	env := make(map[string]string, len(cfg.Env)+16)
	for k, v := range cfg.Env {
		env[k] = v
	}
	env["DROVER_ALLOC_ID"] = a.ID
	env["DROVER_ALLOC_NAME"] = a.Name
	env["DROVER_ALLOC_INDEX"] = allocIndex(a.Name)
	env["DROVER_JOB_ID"] = a.JobID
	env["DROVER_GROUP_NAME"] = a.TaskGroup
	env["DROVER_TASK_NAME"] = tr.name
	env["DROVER_NAMESPACE"] = a.Namespace
	env["DROVER_NODE_ID"] = tr.c.cfg.NodeID
	env["DROVER_DC"] = tr.c.cfg.Datacenter
	env["DROVER_ALLOC_DIR"] = "/alloc"
	env["DROVER_TASK_DIR"] = "/local"
	env["DROVER_CPU_LIMIT"] = strconv.Itoa(cfg.CPU)
	env["DROVER_MEMORY_LIMIT"] = strconv.Itoa(cfg.MemoryMB)
	tr.ar.portEnv(env)
	cfg.Env = env
	cfg.Hostname = allocHostname(a.ID)
	return nil
}

// portEnv adds the allocation's address and ports. Behind a bridge (or a
// user's CNI network) the task listens on its own address and the port
// inside (to); on the host's network the host port is the only one, at
// the node's address.
func (ar *allocRunner) portEnv(env map[string]string) {
	ar.mu.RLock()
	var allocIP string
	if ar.network != nil {
		allocIP = ar.network.Data["ip"]
	}
	ar.mu.RUnlock()
	if allocIP != "" {
		env["DROVER_ALLOC_IP"] = allocIP
	}
	a := ar.allocation()
	if a.Resources == nil {
		return
	}
	nodeAddr := ar.c.nodeAddr()
	for _, p := range a.Resources.Ports {
		if p == nil {
			continue
		}
		label := envName(p.Label)
		host := strconv.Itoa(p.Value)
		env["DROVER_HOST_PORT_"+label] = host
		if allocIP == "" {
			env["DROVER_PORT_"+label] = host
			env["DROVER_ADDR_"+label] = net.JoinHostPort(nodeAddr, host)
			continue
		}
		inside := p.To
		if inside == 0 {
			inside = p.Value
		}
		env["DROVER_PORT_"+label] = strconv.Itoa(inside)
		env["DROVER_ADDR_"+label] = net.JoinHostPort(allocIP, strconv.Itoa(inside))
	}
}

// allocHostname is the first 8 characters of the allocation ID: the
// short ID `alloc status` shows, unique enough on one node.
func allocHostname(allocID string) string {
	if len(allocID) > 8 {
		return allocID[:8]
	}
	return allocID
}

// allocIndex returns N of an allocation named "job.group[N]".
func allocIndex(name string) string {
	i := strings.LastIndexByte(name, '[')
	if i < 0 || !strings.HasSuffix(name, "]") {
		return "0"
	}
	return name[i+1 : len(name)-1]
}

// envName makes a port label fit an environment variable name.
func envName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_':
			return r
		}
		return '_'
	}, s)
}

// imageHook makes the image available (pulling -> pulled). Restarts after
// a successful start skip it; a failed start pulls again next time, in
// case the image was removed meanwhile.
type imageHook struct{}

func (imageHook) name() string { return "image" }

func (imageHook) prestart(ctx context.Context, tr *taskRunner, cfg *driver.TaskConfig) error {
	if tr.pulledImage == cfg.Image {
		return nil // a restart of a task that started from it
	}
	tr.update(event(structs.TaskEventPulling, "pulling image "+cfg.Image), nil)
	start := time.Now()
	how, err := tr.c.driver.PullImage(ctx, cfg.Image)
	if err != nil {
		return fmt.Errorf("image %s: %w", cfg.Image, err)
	}
	if how == "" {
		how = fmt.Sprintf("pulled in %s", time.Since(start).Round(time.Millisecond))
	}
	tr.update(event(structs.TaskEventPulled, how), nil)
	tr.pulledImage = cfg.Image
	return nil
}

// containerHook removes the task's container: what an earlier run left
// before a start, an exited one right away (its snapshot is not kept
// through a restart delay that may be long), and at the end.
type containerHook struct{}

func (containerHook) name() string { return "container" }

func (h containerHook) prestart(ctx context.Context, tr *taskRunner, cfg *driver.TaskConfig) error {
	tr.mu.Lock()
	leftover := tr.mayHaveContainer
	tr.mu.Unlock()
	if !leftover {
		return nil
	}
	if err := tr.c.driver.DestroyTask(ctx, tr.id); err != nil {
		return fmt.Errorf("removing the earlier container %s: %w", tr.id, err)
	}
	return nil
}

func (h containerHook) exited(ctx context.Context, tr *taskRunner) { h.destroy(ctx, tr) }
func (h containerHook) stop(ctx context.Context, tr *taskRunner)   { h.destroy(ctx, tr) }

func (containerHook) destroy(ctx context.Context, tr *taskRunner) {
	tr.mu.Lock()
	exists := tr.mayHaveContainer
	tr.mu.Unlock()
	if !exists {
		return
	}
	if err := tr.c.driver.DestroyTask(ctx, tr.id); err != nil {
		tr.logger.Warn("removing container failed", "task_id", tr.id, "error", err)
		return
	}
	tr.mu.Lock()
	tr.mayHaveContainer = false
	tr.mu.Unlock()
}

// logsHook has the client's rotator watch the task's log files while the
// task may write them.
type logsHook struct{}

func (logsHook) poststart(ctx context.Context, tr *taskRunner, h *driver.TaskHandle) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.logsWatched {
		return
	}
	tr.logsWatched = true
	stdout, stderr := tr.ar.logPaths(tr.name)
	tr.c.rotator.add(stdout, stderr)
}

func (logsHook) stop(ctx context.Context, tr *taskRunner) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if !tr.logsWatched {
		return
	}
	tr.logsWatched = false
	stdout, stderr := tr.ar.logPaths(tr.name)
	tr.c.rotator.remove(stdout, stderr)
}
