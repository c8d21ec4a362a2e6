package containerd

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	tasks "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"

	"github.com/drover-sh/drover/client/driver"
)

// waitRetryMax caps the pause between attempts to wait on a task while
// containerd cannot be reached (restarting): the task runs on under its
// shim meanwhile, so the waiter keeps waiting instead of reporting.
const waitRetryMax = 5 * time.Second

// waiter learns one task's exit with one Wait call and hands it to every
// WaitTask caller.
type waiter struct {
	id     string
	cgroup string

	mu     sync.Mutex
	result *driver.ExitResult
	subs   []chan *driver.ExitResult
}

// subscribe returns a channel that receives the exit once, then closes.
func (w *waiter) subscribe() <-chan *driver.ExitResult {
	ch := make(chan *driver.ExitResult, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.result != nil {
		ch <- w.result
		close(ch)
		return ch
	}
	w.subs = append(w.subs, ch)
	return ch
}

func (w *waiter) finish(r *driver.ExitResult) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.result = r
	for _, ch := range w.subs {
		ch <- r // buffered, never blocks
		close(ch)
	}
	w.subs = nil
}

// ensureWaiter starts the task's waiter unless it has one.
func (d *Driver) ensureWaiter(id, cgroup string) *waiter {
	d.mu.Lock()
	defer d.mu.Unlock()
	if w, ok := d.waiters[id]; ok {
		return w
	}
	w := &waiter{id: id, cgroup: cgroup}
	d.waiters[id] = w
	go d.wait(w)
	return w
}

// recoverWaiter starts the waiter of a task found again, reading its
// cgroup from the stored spec.
func (d *Driver) recoverWaiter(ctx context.Context, c client.Container) error {
	d.mu.Lock()
	_, ok := d.waiters[c.ID()]
	d.mu.Unlock()
	if ok {
		return nil
	}
	spec, err := c.Spec(ctx)
	if err != nil {
		return notFound(c.ID(), err)
	}
	cgroup := ""
	if spec.Linux != nil {
		cgroup = spec.Linux.CgroupsPath
	}
	d.ensureWaiter(c.ID(), cgroup)
	return nil
}

func (d *Driver) dropWaiter(id string) {
	d.mu.Lock()
	delete(d.waiters, id)
	d.mu.Unlock()
}

// WaitTask implements driver.Driver. A task the driver has not seen yet
// (an agent that restarted and skipped RecoverTask) is looked up first.
func (d *Driver) WaitTask(ctx context.Context, id string) (<-chan *driver.ExitResult, error) {
	d.mu.Lock()
	w, ok := d.waiters[id]
	d.mu.Unlock()
	if ok {
		return w.subscribe(), nil
	}
	ctx = d.nsCtx(ctx)
	container, err := d.client.LoadContainer(ctx, id)
	if err != nil {
		return nil, notFound(id, err)
	}
	if _, err := container.Task(ctx, nil); err != nil {
		return nil, notFound(id, err)
	}
	if err := d.recoverWaiter(ctx, container); err != nil {
		return nil, err
	}
	d.mu.Lock()
	w = d.waiters[id]
	d.mu.Unlock()
	if w == nil {
		// Destroyed between the two looks.
		return nil, fmt.Errorf("task %s: %w", id, driver.ErrTaskNotFound)
	}
	return w.subscribe(), nil
}

// wait is the task's one waiter goroutine.
func (d *Driver) wait(w *waiter) {
	ctx := d.nsCtx(d.waitCtx)
	delay := 250 * time.Millisecond
	for {
		resp, err := d.client.TaskService().Wait(ctx, &tasks.WaitRequest{ContainerID: w.id})
		if err == nil {
			var at time.Time
			if resp.ExitedAt != nil {
				at = resp.ExitedAt.AsTime()
			}
			w.finish(exitResult(resp.ExitStatus, at, oomKilled(w.cgroup)))
			return
		}
		err = errgrpc.ToNative(err)
		switch {
		case d.waitCtx.Err() != nil:
			w.finish(&driver.ExitResult{Err: fmt.Errorf("task %s: driver closed while waiting", w.id)})
			return
		case errdefs.IsNotFound(err):
			w.finish(&driver.ExitResult{Err: fmt.Errorf("task %s: %w", w.id, driver.ErrTaskNotFound)})
			return
		}
		d.logger.Warn("waiting on task failed, retrying", "task_id", w.id, "error", err, "retry_in", delay)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-d.waitCtx.Done():
			t.Stop()
		}
		delay = min(delay*2, waitRetryMax)
	}
}

// exitResult reads an exit status. The shim reports a process killed by
// signal N as status 128+N, like a shell, and does not pass on the raw
// wait status; so any status in 129..192 (signals 1..64) is read as that
// signal, and a process that itself exits with such a status is
// indistinguishable from one killed. ExitCode keeps the status (137 for
// SIGKILL) so users see what a shell would show them.
func exitResult(status uint32, at time.Time, oom bool) *driver.ExitResult {
	r := &driver.ExitResult{ExitCode: int(status), ExitedAt: at, OOMKilled: oom}
	if status > 128 && status <= 128+64 {
		r.Signal = int(status - 128)
	}
	return r
}

// cgroupRoot is where cgroup filesystems are mounted; a variable so tests
// can point it at a fake tree.
var cgroupRoot = "/sys/fs/cgroup"

// oomKilled reports whether the kernel's OOM killer killed a process of
// the task's cgroup. The counter is read from the cgroup itself, which
// lives until the task is deleted, so a task that was killed while the
// agent was away is reported too, with no event subscription kept open.
// cgroup v1 counts in memory.oom_control, v2 in memory.events.
func oomKilled(cgroup string) bool {
	if cgroup == "" {
		return false
	}
	for _, f := range []string{
		filepath.Join(cgroupRoot, "memory", cgroup, "memory.oom_control"),
		filepath.Join(cgroupRoot, cgroup, "memory.events"),
	} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		return counter(b, "oom_kill") > 0
	}
	return false
}

// counter reads "key value" lines.
func counter(b []byte, key string) int64 {
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		k, v, ok := bytes.Cut(s.Bytes(), []byte(" "))
		if ok && string(k) == key {
			n, _ := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
			return n
		}
	}
	return 0
}
