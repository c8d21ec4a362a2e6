package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/drover-sh/drover/client/driver"
	"github.com/drover-sh/drover/client/state"
	"github.com/drover-sh/drover/structs"
)

// maxTaskEvents is how many events a task keeps (the newest).
const maxTaskEvents = 10

// exitLearnTimeout bounds waiting for the exit of a task just stopped.
const exitLearnTimeout = 5 * time.Second

// waitAttempts is how many times WaitTask is tried (250ms, 500ms, 1s, 2s
// apart) before a task whose runtime does not answer counts as lost.
const waitAttempts = 5

// taskRunner runs one task of an allocation through its life: received,
// (restart delay,) prestart hooks (dirs, env, image), start, poststart
// hooks, wait, exited hooks, then restart by policy or finish with the
// stop hooks. One goroutine (run) owns every change to the task's state,
// so the state database sees its writes in order.
type taskRunner struct {
	c      *Client
	ar     *allocRunner
	name   string
	id     string // container ID: driver.TaskID(alloc, task)
	logger hclog.Logger

	prestartHooks  []taskPrestartHook
	poststartHooks []taskPoststartHook
	exitedHooks    []taskExitedHook
	stopHooks      []taskStopHook

	killCh     chan struct{} // closed to stop the task for good
	killOnce   sync.Once
	killReason string        // written before killCh closes
	restartCh  chan struct{} // a user's restart request (buffered 1)
	waitCh     chan struct{} // closed when run returns

	restored *state.TaskState // nil for a new task

	mu        sync.Mutex
	state     *structs.TaskState
	handle    *driver.TaskHandle
	restarts  *restartTracker
	restartAt time.Time
	done      bool // dead for good
	// mayHaveContainer is set once a container may exist for the task
	// (a start was attempted, or an earlier agent ran it), so the next
	// start clears what is left first.
	mayHaveContainer bool
	logsWatched      bool   // the rotator watches the log files
	setupNoted       bool   // run's goroutine only
	pulledImage      string // run's goroutine only: the image ready for restarts
}

func newTaskRunner(ar *allocRunner, task *structs.Task, restored *state.TaskState) *taskRunner {
	tr := &taskRunner{
		c: ar.c, ar: ar, name: task.Name,
		id:        driver.TaskID(ar.id, task.Name),
		logger:    ar.logger.With("task", task.Name),
		killCh:    make(chan struct{}),
		restartCh: make(chan struct{}, 1),
		waitCh:    make(chan struct{}),
		restored:  restored,
		state:     &structs.TaskState{State: structs.TaskStatePending},
		restarts:  newRestartTracker(ar.group().Restart, ar.jobType()),
	}
	if restored != nil {
		if restored.State != nil {
			tr.state = restored.State.Copy()
		}
		tr.restarts.count, tr.restarts.windowStart = restored.RestartCount, restored.WindowStart
		tr.restartAt = restored.RestartAt
		tr.mayHaveContainer = true
	}
	tr.initHooks()
	return tr
}

// kill asks the task to stop for good; it is a no-op after the first.
func (tr *taskRunner) kill(reason string) {
	tr.killOnce.Do(func() {
		tr.killReason = reason
		close(tr.killCh)
	})
}

func (tr *taskRunner) killed() bool {
	select {
	case <-tr.killCh:
		return true
	default:
		return false
	}
}

// requestRestart asks for an in-place restart that does not count
// against the restart policy.
func (tr *taskRunner) requestRestart() {
	select {
	case tr.restartCh <- struct{}{}:
	default:
	}
}

// finished reports whether the task is dead for good.
func (tr *taskRunner) finished() bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.done
}

// running reports whether the task's process runs.
func (tr *taskRunner) running() bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.state.State == structs.TaskStateRunning && tr.handle != nil
}

// taskState returns a copy of the task's state.
func (tr *taskRunner) taskState() *structs.TaskState {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.state.Copy()
}

// update changes the state, records ev, persists the task and tells the
// allocation runner. Only run's goroutine calls it.
func (tr *taskRunner) update(ev *structs.TaskEvent, change func(*structs.TaskState)) {
	now := time.Now()
	tr.mu.Lock()
	if change != nil {
		change(tr.state)
	}
	if ev != nil {
		ev.Time = now.UnixNano()
		tr.state.Events = append(tr.state.Events, ev)
		if n := len(tr.state.Events); n > maxTaskEvents {
			tr.state.Events = append([]*structs.TaskEvent(nil), tr.state.Events[n-maxTaskEvents:]...)
		}
	}
	rec := &state.TaskState{
		State: tr.state.Copy(), Handle: tr.handle,
		RestartCount: tr.restarts.count, WindowStart: tr.restarts.windowStart, RestartAt: tr.restartAt,
	}
	tr.mu.Unlock()
	if err := tr.c.db.PutTask(tr.ar.id, tr.name, rec); err != nil {
		tr.logger.Error("persisting task state failed", "error", err)
	}
	tr.ar.taskUpdated()
}

func event(typ, msg string) *structs.TaskEvent { return &structs.TaskEvent{Type: typ, Message: msg} }

// outcome is how waiting on a running task ended.
type outcome int

const (
	outExited   outcome = iota // the process ended by itself
	outKill                    // stop for good
	outRestart                 // a user's restart
	outShutdown                // the client is shutting down: leave the task alone
)

func (tr *taskRunner) run() {
	defer close(tr.waitCh)
	handle, gone := tr.begin()
	for {
		if tr.finished() || tr.c.ctx.Err() != nil {
			return
		}
		var res *driver.ExitResult
		if gone != nil {
			res, gone = gone, nil
		} else {
			if handle == nil {
				if !tr.waitRestartDelay() {
					return
				}
				h, err := tr.start()
				if err != nil {
					if tr.c.ctx.Err() != nil {
						return
					}
					if tr.killed() {
						tr.finish(false, event(structs.TaskEventKilled, "killed before it started: "+tr.killReason))
						return
					}
					tr.pulledImage = ""
					tr.update(event(structs.TaskEventDriverFailure, err.Error()), nil)
					tr.restarts.setPolicy(tr.ar.group().Restart)
					if !tr.decide(tr.restarts.onStartFailure(err, time.Now())) {
						return
					}
					continue
				}
				handle = h
			}
			var what outcome
			what, res = tr.wait(handle)
			switch what {
			case outShutdown:
				return
			case outKill:
				tr.stopTask(handle)
				return
			case outRestart:
				if !tr.userRestart(handle) {
					return
				}
				handle = nil
				continue
			}
		}
		ev := event(structs.TaskEventTerminated, exitDescription(res))
		ev.ExitCode, ev.Signal, ev.OOMKilled = res.ExitCode, res.Signal, res.OOMKilled
		tr.update(ev, nil)
		tr.runExitedHooks()
		handle = nil
		tr.restarts.setPolicy(tr.ar.group().Restart)
		if !tr.decide(tr.restarts.onExit(res, time.Now())) {
			return
		}
	}
}

// begin starts a new task's life or picks up a restored one. It returns
// the handle of a task still known to the runtime, or the exit to judge
// for a task whose container is gone.
func (tr *taskRunner) begin() (*driver.TaskHandle, *driver.ExitResult) {
	rs := tr.restored
	if rs == nil {
		tr.update(event(structs.TaskEventReceived, "task received by the client"), nil)
		return nil, nil
	}
	if rs.State != nil && rs.State.State == structs.TaskStateDead {
		// Finished before the restart; clear what a crash may have
		// left of its container.
		tr.mu.Lock()
		tr.done = true
		tr.mu.Unlock()
		tr.runStopHooks()
		return nil, nil
	}
	if rs.Handle == nil {
		return nil, nil
	}
	h, err := tr.c.driver.RecoverTask(tr.c.ctx, rs.Handle.ID)
	if err != nil {
		if tr.c.ctx.Err() != nil {
			return nil, nil
		}
		tr.logger.Warn("task could not be recovered", "task_id", rs.Handle.ID, "error", err)
		tr.mu.Lock()
		tr.handle = nil
		tr.mu.Unlock()
		msg := "container gone while the client was down"
		if !errors.Is(err, driver.ErrTaskNotFound) {
			msg = "recovering the task failed"
		}
		return nil, &driver.ExitResult{Err: fmt.Errorf("%s: %w", msg, err)}
	}
	tr.mu.Lock()
	tr.handle = h
	tr.mu.Unlock()
	tr.logger.Info("reattached to task", "task_id", h.ID, "pid", h.PID)
	tr.runPoststartHooks(h)
	return h, nil
}

// waitRestartDelay waits until a pending restart is due. False means the
// runner is done (killed meanwhile, or the client shut down).
func (tr *taskRunner) waitRestartDelay() bool {
	tr.mu.Lock()
	at := tr.restartAt
	tr.mu.Unlock()
	wait := time.Until(at)
	if at.IsZero() || wait <= 0 {
		return !tr.killedBeforeStart()
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return !tr.killedBeforeStart()
	case <-tr.killCh:
		return !tr.killedBeforeStart()
	case <-tr.restartCh:
		tr.update(event(structs.TaskEventRestartSignal, "restart requested: starting now"), nil)
		return !tr.killedBeforeStart()
	case <-tr.c.ctx.Done():
		return false
	}
}

// killedBeforeStart finishes a task killed while it was not running.
func (tr *taskRunner) killedBeforeStart() bool {
	if !tr.killed() {
		return false
	}
	tr.finish(false, event(structs.TaskEventKilled, "killed while not running: "+tr.killReason))
	return true
}

// start runs the prestart hooks and starts the process.
func (tr *taskRunner) start() (*driver.TaskHandle, error) {
	ctx, cancel := context.WithCancel(tr.c.ctx)
	defer cancel()
	// A kill stops a slow pull or start.
	go func() {
		select {
		case <-tr.killCh:
			cancel()
		case <-ctx.Done():
		}
	}()
	cfg := tr.ar.baseTaskConfig(tr.name)
	for _, h := range tr.prestartHooks {
		if err := h.prestart(ctx, tr, cfg); err != nil {
			return nil, err
		}
	}
	tr.mu.Lock()
	tr.mayHaveContainer = true
	tr.mu.Unlock()
	h, err := tr.c.driver.StartTask(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("starting task %s: %w", tr.id, err)
	}
	now := time.Now()
	tr.mu.Lock()
	tr.handle = h
	tr.restartAt = time.Time{}
	tr.mu.Unlock()
	tr.update(event(structs.TaskEventStarted, fmt.Sprintf("task started (pid %d)", h.PID)), func(s *structs.TaskState) {
		s.State = structs.TaskStateRunning
		s.StartedAt = now.UnixNano()
		s.FinishedAt = 0
	})
	tr.runPoststartHooks(h)
	return h, nil
}

// wait blocks until the task exits, is killed or restarted, or the
// client shuts down.
func (tr *taskRunner) wait(h *driver.TaskHandle) (outcome, *driver.ExitResult) {
	ctx, cancel := context.WithCancel(tr.c.ctx)
	defer cancel()
	var ch <-chan *driver.ExitResult
	// A runtime that does not answer for a moment is asked again before
	// the task is given up for lost: restarting it would kill a process
	// that may be running fine.
	delay := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		var err error
		ch, err = tr.c.driver.WaitTask(ctx, h.ID)
		if err == nil {
			break
		}
		if tr.c.ctx.Err() != nil {
			return outShutdown, nil
		}
		if errors.Is(err, driver.ErrTaskNotFound) || attempt == waitAttempts {
			return outExited, &driver.ExitResult{Err: fmt.Errorf("waiting on task %s: %w", h.ID, err)}
		}
		tr.logger.Warn("waiting on task failed; retrying", "task_id", h.ID, "retry_in", delay, "error", err)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-tr.killCh:
			t.Stop()
			return outKill, nil
		case <-tr.restartCh:
			t.Stop()
			return outRestart, nil
		case <-tr.c.ctx.Done():
			t.Stop()
			return outShutdown, nil
		}
		delay *= 2
	}
	select {
	case res, ok := <-ch:
		if tr.c.ctx.Err() != nil {
			return outShutdown, nil
		}
		if !ok || res == nil {
			return outExited, &driver.ExitResult{Err: fmt.Errorf("task %s: the runtime stopped reporting its exit", h.ID)}
		}
		return outExited, res
	case <-tr.killCh:
		return outKill, nil
	case <-tr.restartCh:
		return outRestart, nil
	case <-tr.c.ctx.Done():
		return outShutdown, nil
	}
}

// stopTask stops a running task for good (killing -> killed).
func (tr *taskRunner) stopTask(h *driver.TaskHandle) {
	timeout := tr.ar.killTimeout(tr.name)
	tr.update(event(structs.TaskEventKilling, fmt.Sprintf("%s; sending the stop signal, SIGKILL after %s", tr.killReason, timeout)), nil)
	res, err := tr.signalStop(h, timeout)
	if tr.c.ctx.Err() != nil {
		return // a restarted client finds the task and stops it then
	}
	ev := event(structs.TaskEventKilled, "task killed")
	if err != nil {
		ev.Message = "task killed: " + err.Error()
	}
	if res != nil && res.Err == nil {
		ev.ExitCode, ev.Signal, ev.OOMKilled = res.ExitCode, res.Signal, res.OOMKilled
	}
	tr.finish(false, ev)
}

// signalStop stops the process and learns how it ended. The signal is
// left to the driver: the image's stop signal, else SIGTERM.
func (tr *taskRunner) signalStop(h *driver.TaskHandle, timeout time.Duration) (*driver.ExitResult, error) {
	err := tr.c.driver.StopTask(tr.c.ctx, h.ID, timeout, "")
	if errors.Is(err, driver.ErrTaskNotFound) {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(tr.c.ctx, exitLearnTimeout)
	defer cancel()
	ch, werr := tr.c.driver.WaitTask(ctx, h.ID)
	if werr != nil {
		return nil, err
	}
	res := <-ch
	return res, err
}

// userRestart restarts the task in place at once, outside the restart
// policy. False means the client shut down meanwhile.
func (tr *taskRunner) userRestart(h *driver.TaskHandle) bool {
	timeout := tr.ar.killTimeout(tr.name)
	tr.update(event(structs.TaskEventRestartSignal, "restart requested"), nil)
	res, err := tr.signalStop(h, timeout)
	if tr.c.ctx.Err() != nil {
		return false
	}
	ev := event(structs.TaskEventTerminated, "stopped for restart")
	if err != nil {
		ev.Message += ": " + err.Error()
	}
	if res != nil && res.Err == nil {
		ev.ExitCode, ev.Signal, ev.OOMKilled = res.ExitCode, res.Signal, res.OOMKilled
	}
	tr.update(ev, nil)
	tr.runExitedHooks()
	now := time.Now()
	tr.update(event(structs.TaskEventRestarting, "restarting now (user request, not counted against the restart policy)"), func(s *structs.TaskState) {
		s.State = structs.TaskStatePending
		s.Restarts++
		s.LastRestart = now.UnixNano()
	})
	return true
}

// decide applies a restart decision; false means the task is finished.
func (tr *taskRunner) decide(d restartDecision) bool {
	if !d.restart {
		tr.finish(d.failed, event(structs.TaskEventNotRestarting, d.reason))
		return false
	}
	now := time.Now()
	tr.mu.Lock()
	tr.handle = nil
	tr.restartAt = now.Add(d.delay)
	tr.mu.Unlock()
	tr.update(event(structs.TaskEventRestarting, d.reason), func(s *structs.TaskState) {
		s.State = structs.TaskStatePending
		s.Restarts++
		s.LastRestart = now.UnixNano()
	})
	return true
}

// finish ends the task for good: stop hooks (container removed, logs
// unwatched), then the dead state.
func (tr *taskRunner) finish(failed bool, ev *structs.TaskEvent) {
	tr.runStopHooks()
	now := time.Now()
	tr.mu.Lock()
	tr.done = true
	tr.handle = nil
	tr.restartAt = time.Time{}
	tr.mu.Unlock()
	tr.update(ev, func(s *structs.TaskState) {
		s.State = structs.TaskStateDead
		s.Failed = failed
		s.FinishedAt = now.UnixNano()
	})
}

func (tr *taskRunner) runPoststartHooks(h *driver.TaskHandle) {
	for _, hook := range tr.poststartHooks {
		hook.poststart(tr.c.ctx, tr, h)
	}
}

func (tr *taskRunner) runExitedHooks() {
	for _, hook := range tr.exitedHooks {
		hook.exited(tr.c.ctx, tr)
	}
}

func (tr *taskRunner) runStopHooks() {
	for _, hook := range tr.stopHooks {
		hook.stop(tr.c.ctx, tr)
	}
}
