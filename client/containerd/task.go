package containerd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	tasks "github.com/containerd/containerd/api/services/tasks/v1"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/moby/sys/signal"

	"github.com/drover-sh/drover/client/driver"
	"github.com/drover-sh/drover/structs"
)

const (
	// cleanupTimeout bounds undoing a half-made task after a failure.
	cleanupTimeout = 30 * time.Second
	// killWait bounds waiting for the exit after SIGKILL when the caller's
	// context has no deadline: a process stuck in the kernel never exits.
	killWait = 30 * time.Second
)

// StartTask implements driver.Driver in containerd's order: container with
// snapshot and spec, task, waiter, start. Whatever was made is undone when
// a later step fails.
func (d *Driver) StartTask(ctx context.Context, cfg *driver.TaskConfig) (_ *driver.TaskHandle, err error) {
	if err := validateTaskConfig(cfg); err != nil {
		return nil, err
	}
	ref, err := normalizeRef(cfg.Image)
	if err != nil {
		return nil, err
	}
	ctx = d.nsCtx(ctx)
	image, err := d.client.GetImage(ctx, ref)
	if errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("task %s: image %s is not pulled: %w", cfg.ID, ref, driver.ErrImageNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("task %s: image %s: %w", cfg.ID, ref, err)
	}
	stdout, err := logFile(cfg.StdoutPath)
	if err != nil {
		return nil, fmt.Errorf("task %s: stdout: %w", cfg.ID, err)
	}
	stderr, err := logFile(cfg.StderrPath)
	if err != nil {
		return nil, fmt.Errorf("task %s: stderr: %w", cfg.ID, err)
	}

	stateDir := d.taskStateDir(cfg.ID)
	files, err := writeTaskFiles(stateDir, cfg)
	if err != nil {
		return nil, fmt.Errorf("task %s: %w", cfg.ID, err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(stateDir)
		}
	}()

	var cgroup string
	container, err := d.client.NewContainer(ctx, cfg.ID,
		client.WithImage(image),
		client.WithSnapshotter(snapshotter),
		client.WithNewSnapshot(cfg.ID, image),
		client.WithRuntime(runtimeName, nil),
		client.WithNewSpec(specOpts(cfg, image, files, &cgroup)...),
		client.WithContainerLabels(labels(cfg)),
		client.WithImageStopSignal(image, "SIGTERM"),
	)
	if errdefs.IsAlreadyExists(err) {
		// Not ours to undo: the files belong to the existing container.
		stateDir = ""
		return nil, structs.NewError(structs.ErrConflict, "task %s: a container with this id already exists", cfg.ID)
	}
	if err != nil {
		return nil, fmt.Errorf("task %s: creating container: %w", cfg.ID, err)
	}
	defer func() {
		if err == nil {
			return
		}
		cctx, cancel := cleanupCtx(ctx)
		defer cancel()
		if derr := container.Delete(cctx, client.WithSnapshotCleanup); derr != nil && !errdefs.IsNotFound(derr) {
			d.logger.Warn("failed to remove container after a failed start", "task_id", cfg.ID, "error", derr)
		}
	}()

	task, err := container.NewTask(ctx, logIO(stdout, stderr))
	if err != nil {
		return nil, fmt.Errorf("task %s: creating task: %w", cfg.ID, err)
	}
	defer func() {
		if err == nil {
			return
		}
		cctx, cancel := cleanupCtx(ctx)
		defer cancel()
		if _, derr := task.Delete(cctx, client.WithProcessKill); derr != nil && !errdefs.IsNotFound(derr) {
			d.logger.Warn("failed to remove task after a failed start", "task_id", cfg.ID, "error", derr)
		}
		d.dropWaiter(cfg.ID)
	}()

	// The waiter exists before the process does, so no exit is missed;
	// containerd keeps the exit status until the task is deleted anyway.
	d.ensureWaiter(cfg.ID, cgroup)
	if err := task.Start(ctx); err != nil {
		return nil, fmt.Errorf("task %s: starting: %w", cfg.ID, err)
	}
	d.logger.Debug("started task", "task_id", cfg.ID, "pid", task.Pid())
	return &driver.TaskHandle{ID: cfg.ID, PID: int(task.Pid()), StartedAt: time.Now()}, nil
}

// cleanupCtx outlives a cancelled request: undoing must happen anyway.
func cleanupCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
}

// logFile makes sure a task's log file exists (the shim opens it without
// O_CREAT) and returns its path; "" becomes /dev/null.
func logFile(p string) (string, error) {
	if p == "" {
		return os.DevNull, nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return "", err
	}
	return p, f.Close()
}

// logIO hands the shim two plain file paths. The shim's "fifo" IO copies
// each stream into the path it is given, opened O_APPEND, and only opens
// it as a FIFO when it is one; so stdout and stderr land in two files. A
// file:// URI (cio.LogFile) would not do: the shim writes both streams to
// the stdout URI's file and ignores the stderr one.
func logIO(stdout, stderr string) cio.Creator {
	return func(string) (cio.IO, error) {
		return &fileIO{cfg: cio.Config{Stdout: stdout, Stderr: stderr}}, nil
	}
}

// fileIO is a cio.IO with nothing to copy on the agent's side.
type fileIO struct{ cfg cio.Config }

func (f *fileIO) Config() cio.Config { return f.cfg }
func (f *fileIO) Cancel()            {}
func (f *fileIO) Wait()              {}
func (f *fileIO) Close() error       { return nil }

// RecoverTask implements driver.Driver.
func (d *Driver) RecoverTask(ctx context.Context, id string) (*driver.TaskHandle, error) {
	ctx = d.nsCtx(ctx)
	container, err := d.client.LoadContainer(ctx, id)
	if err != nil {
		return nil, notFound(id, err)
	}
	task, err := container.Task(ctx, nil)
	if err != nil {
		return nil, notFound(id, err)
	}
	info, err := container.Info(ctx, client.WithoutRefreshedMetadata)
	if err != nil {
		return nil, notFound(id, err)
	}
	if err := d.recoverWaiter(ctx, container); err != nil {
		return nil, err
	}
	return &driver.TaskHandle{ID: id, PID: int(task.Pid()), StartedAt: info.CreatedAt}, nil
}

// notFound maps containerd's not-found onto driver.ErrTaskNotFound.
func notFound(id string, err error) error {
	if errdefs.IsNotFound(err) {
		return fmt.Errorf("task %s: %w", id, driver.ErrTaskNotFound)
	}
	return fmt.Errorf("task %s: %w", id, err)
}

// loadTask finds a task, as driver.ErrTaskNotFound when it is gone.
func (d *Driver) loadTask(ctx context.Context, id string) (client.Task, error) {
	container, err := d.client.LoadContainer(ctx, id)
	if err != nil {
		return nil, notFound(id, err)
	}
	task, err := container.Task(ctx, nil)
	if err != nil {
		return nil, notFound(id, err)
	}
	return task, nil
}

// StopTask implements driver.Driver. An empty signal is the image's stop
// signal, SIGTERM when the image names none.
func (d *Driver) StopTask(ctx context.Context, id string, timeout time.Duration, sig string) error {
	ctx = d.nsCtx(ctx)
	container, err := d.client.LoadContainer(ctx, id)
	if err != nil {
		return notFound(id, err)
	}
	stop := syscall.SIGTERM
	if sig != "" {
		if stop, err = parseSignal(sig); err != nil {
			return err
		}
	} else if stop, err = client.GetStopSignal(ctx, container, syscall.SIGTERM); err != nil {
		return fmt.Errorf("task %s: stop signal: %w", id, err)
	}
	task, err := container.Task(ctx, nil)
	if err != nil {
		return notFound(id, err)
	}
	exited, err := d.WaitTask(ctx, id)
	if err != nil {
		return err
	}

	if err := kill(ctx, task, stop); err != nil {
		return fmt.Errorf("task %s: sending %v: %w", id, stop, err)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("task %s: waiting for exit after %v: %w", id, stop, ctx.Err())
	case <-timer.C:
	}

	d.logger.Debug("task outlived its kill timeout, killing it", "task_id", id, "kill_timeout", timeout)
	if err := kill(ctx, task, syscall.SIGKILL, client.WithKillAll); err != nil {
		return fmt.Errorf("task %s: sending SIGKILL: %w", id, err)
	}
	bound := time.NewTimer(killWait)
	defer bound.Stop()
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("task %s: waiting for exit after SIGKILL: %w", id, ctx.Err())
	case <-bound.C:
		return fmt.Errorf("task %s: still running %s after SIGKILL", id, killWait)
	}
}

// kill signals a task; one that has already exited is not an error (the
// caller learns its exit from the waiter).
func kill(ctx context.Context, task client.Task, sig syscall.Signal, opts ...client.KillOpts) error {
	err := task.Kill(ctx, sig, opts...)
	if err == nil || errdefs.IsNotFound(err) || errdefs.IsFailedPrecondition(err) {
		return nil
	}
	return err
}

func parseSignal(s string) (syscall.Signal, error) {
	sig, err := signal.ParseSignal(s)
	if err != nil {
		return 0, structs.NewError(structs.ErrInvalid, "signal: %q is not a signal", s)
	}
	return sig, nil
}

// SignalTask implements driver.Driver.
func (d *Driver) SignalTask(ctx context.Context, id string, sig string) error {
	s, err := parseSignal(sig)
	if err != nil {
		return err
	}
	ctx = d.nsCtx(ctx)
	task, err := d.loadTask(ctx, id)
	if err != nil {
		return err
	}
	if err := task.Kill(ctx, s); err != nil {
		return notFound(id, err)
	}
	return nil
}

// DestroyTask implements driver.Driver: kill, delete the task, delete the
// container with its snapshot. Each step tolerates the thing being gone,
// so a destroy interrupted halfway can simply be repeated.
func (d *Driver) DestroyTask(ctx context.Context, id string) error {
	ctx = d.nsCtx(ctx)
	container, err := d.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		d.dropWaiter(id)
		return os.RemoveAll(d.taskStateDir(id))
	}
	if err != nil {
		return fmt.Errorf("task %s: %w", id, err)
	}
	task, err := container.Task(ctx, nil)
	switch {
	case err == nil:
		if _, err := task.Delete(ctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("task %s: deleting task: %w", id, err)
		}
	case !errdefs.IsNotFound(err):
		return fmt.Errorf("task %s: %w", id, err)
	}
	if err := container.Delete(ctx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("task %s: deleting container: %w", id, err)
	}
	d.dropWaiter(id)
	if err := os.RemoveAll(d.taskStateDir(id)); err != nil {
		return fmt.Errorf("task %s: %w", id, err)
	}
	return nil
}

func (d *Driver) taskStateDir(id string) string {
	return filepath.Join(d.cfg.StateDir, id)
}

// ListTasks implements driver.Driver with two calls, whatever the number
// of containers: the containers with their labels, and the tasks.
func (d *Driver) ListTasks(ctx context.Context) ([]*driver.TaskInfo, error) {
	ctx = d.nsCtx(ctx)
	cs, err := d.client.ContainerService().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing containers in namespace %s: %w", d.cfg.Namespace, err)
	}
	resp, err := d.client.TaskService().List(ctx, &tasks.ListTasksRequest{})
	if err != nil {
		return nil, fmt.Errorf("listing tasks in namespace %s: %w", d.cfg.Namespace, errgrpc.ToNative(err))
	}
	running := make(map[string]bool, len(resp.Tasks))
	for _, t := range resp.Tasks {
		switch t.Status {
		case tasktypes.Status_RUNNING, tasktypes.Status_PAUSED, tasktypes.Status_PAUSING:
			running[t.ID] = true
		}
	}
	out := make([]*driver.TaskInfo, 0, len(cs))
	for _, c := range cs {
		out = append(out, &driver.TaskInfo{ID: c.ID, Labels: c.Labels, Running: running[c.ID]})
	}
	return out, nil
}
