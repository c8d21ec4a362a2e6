// Package mock is a scriptable driver.Driver for client tests: no
// containers, just timers that behave like processes. A task's script is
// read from key=value words in its Command and Args and from its Env
// (Args win over Command, Command over Env):
//
//	run_for=200ms     the process exits after 200ms (default: runs until stopped)
//	exit_code=3       exit code when it ends by itself (default 0)
//	exit_signal=11    signal number it ends with
//	oom_killed=true   it ends as killed by the OOM killer
//	start_error=msg   StartTask fails with msg
//	ignore_sigterm=1  StopTask's SIGTERM is ignored; it is killed after the timeout
//	stdout=text       written (with a newline) to the stdout log file at start
//	stderr=text       the same for stderr
//	exec_exit_code=2  what ExecTask returns
//
// Pulls fail for an image whose reference contains "pull_error=<message>"
// (the rest of the reference is the message) or one given to
// Store.SetPullError.
//
// A Store is the runtime's memory: it outlives Driver instances, so a test
// can stop a client and start another over the same Store to see it
// recover its tasks, as containerd keeps containers across agent restarts.
package mock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/drover-sh/drover/client/driver"
	"github.com/drover-sh/drover/structs"
)

// Signal numbers the mock reports.
const (
	sigKill = 9
	sigTerm = 15
)

// Call is one recorded driver call.
type Call struct {
	Method string
	ID     string // task ID, or image for PullImage
	At     time.Time
}

// Store holds the tasks of one node's runtime and every call made to it.
type Store struct {
	mu         sync.Mutex
	tasks      map[string]*task
	calls      []Call
	pullErrors map[string]string
	health     *structs.DriverInfo
	nextPID    int
	waitFails  int // the next WaitTask calls that fail as if the runtime were unreachable
}

// NewStore returns an empty runtime that reports healthy.
func NewStore() *Store {
	return &Store{
		tasks:      make(map[string]*task),
		pullErrors: make(map[string]string),
		health: &structs.DriverInfo{
			Detected: true, Healthy: true, HealthDescription: "healthy",
			Attributes: map[string]string{"driver.mock.version": "1"},
		},
		nextPID: 1000,
	}
}

// task is one "container": a timer standing in for its process.
type task struct {
	cfg       driver.TaskConfig
	pid       int
	startedAt time.Time
	script    Script
	timer     *time.Timer
	exit      *driver.ExitResult // nil while running
	done      chan struct{}      // closed when exit is set
}

// Script is what a task was told to do.
type Script struct {
	RunFor        time.Duration // 0 with HasRunFor false: until stopped
	HasRunFor     bool
	ExitCode      int
	ExitSignal    int
	OOMKilled     bool
	StartError    string
	IgnoreSIGTERM bool
	Stdout        string
	Stderr        string
	ExecExitCode  int
}

// ParseScript reads a task's script from its config.
func ParseScript(cfg *driver.TaskConfig) (Script, error) {
	kv := make(map[string]string)
	for k, v := range cfg.Env {
		kv[k] = v
	}
	words := strings.Fields(cfg.Command)
	words = append(words, cfg.Args...)
	for _, w := range words {
		if k, v, ok := strings.Cut(w, "="); ok {
			kv[k] = v
		}
	}
	var s Script
	var err error
	num := func(key string) int {
		v, ok := kv[key]
		if !ok || err != nil {
			return 0
		}
		n, perr := strconv.Atoi(v)
		if perr != nil {
			err = fmt.Errorf("mock script %s=%q: not a number", key, v)
		}
		return n
	}
	if v, ok := kv["run_for"]; ok {
		s.RunFor, err = time.ParseDuration(v)
		if err != nil {
			return s, fmt.Errorf("mock script run_for=%q: %w", v, err)
		}
		s.HasRunFor = true
	}
	s.ExitCode = num("exit_code")
	s.ExitSignal = num("exit_signal")
	s.ExecExitCode = num("exec_exit_code")
	s.OOMKilled = truthy(kv["oom_killed"])
	s.IgnoreSIGTERM = truthy(kv["ignore_sigterm"])
	s.StartError = kv["start_error"]
	s.Stdout = kv["stdout"]
	s.Stderr = kv["stderr"]
	return s, err
}

func truthy(v string) bool { return v == "1" || v == "true" || v == "yes" }

// SetPullError makes pulls of image fail with msg; "" clears it.
func (s *Store) SetPullError(image, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if msg == "" {
		delete(s.pullErrors, image)
		return
	}
	s.pullErrors[image] = msg
}

// FailWaits makes the next n WaitTask calls fail as a runtime that does
// not answer would (not with ErrTaskNotFound).
func (s *Store) FailWaits(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waitFails = n
}

// SetHealth changes what Fingerprint reports.
func (s *Store) SetHealth(healthy bool, description string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := *s.health
	h.Healthy, h.HealthDescription = healthy, description
	s.health = &h
}

// Calls returns the recorded calls of method ("" for all), oldest first.
func (s *Store) Calls(method string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if method == "" || c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// CallCount counts calls of method for one task ID (or image).
func (s *Store) CallCount(method, id string) int {
	n := 0
	for _, c := range s.Calls(method) {
		if c.ID == id {
			n++
		}
	}
	return n
}

// Running reports whether the task exists and its process runs.
func (s *Store) Running(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tasks[id]
	return ok && t.exit == nil
}

// Exists reports whether the runtime still has the task's container.
func (s *Store) Exists(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.tasks[id]
	return ok
}

// PID returns the task's process ID, 0 when there is no such task.
func (s *Store) PID(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tasks[id]; ok {
		return t.pid
	}
	return 0
}

// IDs returns the IDs of every task the runtime has.
func (s *Store) IDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.tasks))
	for id := range s.tasks {
		ids = append(ids, id)
	}
	return ids
}

// Exit ends a running task's process now with code, as a crash would.
func (s *Store) Exit(id string, code int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tasks[id]
	if !ok {
		return fmt.Errorf("mock task %s: %w", id, driver.ErrTaskNotFound)
	}
	s.exitLocked(t, &driver.ExitResult{ExitCode: code})
	return nil
}

func (s *Store) record(method, id string) {
	s.calls = append(s.calls, Call{Method: method, ID: id, At: time.Now()})
}

// exitLocked ends t's process once; later calls change nothing.
func (s *Store) exitLocked(t *task, r *driver.ExitResult) {
	if t.exit != nil {
		return
	}
	if t.timer != nil {
		t.timer.Stop()
	}
	r.ExitedAt = time.Now()
	t.exit = r
	close(t.done)
}

// Driver is a driver.Driver over a Store.
type Driver struct {
	store *Store
	name  string
}

// New returns a driver over store, reporting under name ("mock" when
// empty; "containerd" makes the scheduler's driver health check apply).
func New(store *Store, name string) *Driver {
	if name == "" {
		name = "mock"
	}
	return &Driver{store: store, name: name}
}

var _ driver.Driver = (*Driver)(nil)

// Name implements driver.Driver.
func (d *Driver) Name() string { return d.name }

// Fingerprint implements driver.Driver.
func (d *Driver) Fingerprint(ctx context.Context) *structs.DriverInfo {
	d.store.mu.Lock()
	defer d.store.mu.Unlock()
	d.store.record("Fingerprint", "")
	h := *d.store.health
	h.Attributes = make(map[string]string, len(d.store.health.Attributes))
	for k, v := range d.store.health.Attributes {
		h.Attributes[k] = v
	}
	h.UpdateTime = time.Now().UnixNano()
	return &h
}

// PullImage implements driver.Driver.
func (d *Driver) PullImage(ctx context.Context, image string) (string, error) {
	d.store.mu.Lock()
	d.store.record("PullImage", image)
	msg, bad := d.store.pullErrors[image]
	d.store.mu.Unlock()
	if _, after, ok := strings.Cut(image, "pull_error="); ok {
		msg, bad = after, true
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if bad {
		return "", fmt.Errorf("pulling %s: %s: %w", image, msg, driver.ErrImageNotFound)
	}
	return "already present", nil
}

// StartTask implements driver.Driver.
func (d *Driver) StartTask(ctx context.Context, cfg *driver.TaskConfig) (*driver.TaskHandle, error) {
	s := d.store
	s.mu.Lock()
	defer s.mu.Unlock()
	s.record("StartTask", cfg.ID)
	script, err := ParseScript(cfg)
	if err != nil {
		return nil, err
	}
	if script.StartError != "" {
		return nil, fmt.Errorf("starting task %s: %s", cfg.ID, script.StartError)
	}
	if _, ok := s.tasks[cfg.ID]; ok {
		return nil, fmt.Errorf("starting task %s: container already exists", cfg.ID)
	}
	writeLine(cfg.StdoutPath, script.Stdout)
	writeLine(cfg.StderrPath, script.Stderr)
	s.nextPID++
	t := &task{cfg: *cfg, pid: s.nextPID, startedAt: time.Now(), script: script, done: make(chan struct{})}
	s.tasks[cfg.ID] = t
	if script.HasRunFor {
		t.timer = time.AfterFunc(script.RunFor, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.exitLocked(t, &driver.ExitResult{ExitCode: script.ExitCode, Signal: script.ExitSignal, OOMKilled: script.OOMKilled})
		})
	}
	return &driver.TaskHandle{ID: cfg.ID, PID: t.pid, StartedAt: t.startedAt}, nil
}

// writeLine appends text and a newline to path, as a process would.
func writeLine(path, text string) {
	if path == "" || text == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	f.WriteString(text + "\n")
}

// RecoverTask implements driver.Driver.
func (d *Driver) RecoverTask(ctx context.Context, id string) (*driver.TaskHandle, error) {
	s := d.store
	s.mu.Lock()
	defer s.mu.Unlock()
	s.record("RecoverTask", id)
	t, ok := s.tasks[id]
	if !ok {
		return nil, fmt.Errorf("recovering task %s: %w", id, driver.ErrTaskNotFound)
	}
	return &driver.TaskHandle{ID: id, PID: t.pid, StartedAt: t.startedAt}, nil
}

// WaitTask implements driver.Driver. The channel is closed without a
// value when ctx ends first.
func (d *Driver) WaitTask(ctx context.Context, id string) (<-chan *driver.ExitResult, error) {
	s := d.store
	s.mu.Lock()
	s.record("WaitTask", id)
	t, ok := s.tasks[id]
	if s.waitFails > 0 {
		s.waitFails--
		s.mu.Unlock()
		return nil, fmt.Errorf("waiting on task %s: connection refused", id)
	}
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("waiting on task %s: %w", id, driver.ErrTaskNotFound)
	}
	ch := make(chan *driver.ExitResult, 1)
	go func() {
		defer close(ch)
		select {
		case <-t.done:
			s.mu.Lock()
			r := *t.exit
			s.mu.Unlock()
			ch <- &r
		case <-ctx.Done():
		}
	}()
	return ch, nil
}

// StopTask implements driver.Driver.
func (d *Driver) StopTask(ctx context.Context, id string, timeout time.Duration, signal string) error {
	s := d.store
	s.mu.Lock()
	s.record("StopTask", id)
	t, ok := s.tasks[id]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("stopping task %s: %w", id, driver.ErrTaskNotFound)
	}
	if signal == "" {
		signal = "SIGTERM"
	}
	if signal == "SIGKILL" || !(signal == "SIGTERM" && t.script.IgnoreSIGTERM) {
		s.exitLocked(t, signalled(signal))
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	select {
	case <-t.done:
		return nil
	case <-time.After(timeout):
	case <-ctx.Done():
		return ctx.Err()
	}
	s.mu.Lock()
	s.exitLocked(t, signalled("SIGKILL"))
	s.mu.Unlock()
	return nil
}

// signalled is the exit of a process killed by a signal: code 128+n, as
// runc reports it.
func signalled(signal string) *driver.ExitResult {
	n := sigTerm
	if signal == "SIGKILL" {
		n = sigKill
	}
	return &driver.ExitResult{ExitCode: 128 + n, Signal: n}
}

// SignalTask implements driver.Driver: SIGTERM and SIGKILL end the task
// (unless it ignores SIGTERM); other signals are only recorded.
func (d *Driver) SignalTask(ctx context.Context, id string, signal string) error {
	s := d.store
	s.mu.Lock()
	defer s.mu.Unlock()
	s.record("SignalTask", id)
	t, ok := s.tasks[id]
	if !ok {
		return fmt.Errorf("signalling task %s: %w", id, driver.ErrTaskNotFound)
	}
	if signal == "SIGKILL" || (signal == "SIGTERM" && !t.script.IgnoreSIGTERM) {
		s.exitLocked(t, signalled(signal))
	}
	return nil
}

// DestroyTask implements driver.Driver.
func (d *Driver) DestroyTask(ctx context.Context, id string) error {
	s := d.store
	s.mu.Lock()
	defer s.mu.Unlock()
	s.record("DestroyTask", id)
	if t, ok := s.tasks[id]; ok {
		s.exitLocked(t, signalled("SIGKILL"))
		delete(s.tasks, id)
	}
	return nil
}

// ExecTask implements driver.Driver: it writes the command to Stdout and
// returns the script's exec_exit_code.
func (d *Driver) ExecTask(ctx context.Context, id string, opts *driver.ExecOptions) (int, error) {
	s := d.store
	s.mu.Lock()
	s.record("ExecTask", id)
	t, ok := s.tasks[id]
	running := ok && t.exit == nil
	code := 0
	if ok {
		code = t.script.ExecExitCode
	}
	s.mu.Unlock()
	if !ok {
		return 0, fmt.Errorf("exec in task %s: %w", id, driver.ErrTaskNotFound)
	}
	if !running {
		return 0, errors.New("exec in task " + id + ": task is not running")
	}
	if opts != nil && opts.Stdout != nil {
		fmt.Fprintf(opts.Stdout, "exec %s\n", strings.Join(opts.Command, " "))
	}
	return code, nil
}

// ListTasks implements driver.Driver.
func (d *Driver) ListTasks(ctx context.Context) ([]*driver.TaskInfo, error) {
	s := d.store
	s.mu.Lock()
	defer s.mu.Unlock()
	s.record("ListTasks", "")
	out := make([]*driver.TaskInfo, 0, len(s.tasks))
	for id, t := range s.tasks {
		out = append(out, &driver.TaskInfo{
			ID: id,
			Labels: map[string]string{
				driver.LabelAlloc: t.cfg.AllocID, driver.LabelTask: t.cfg.TaskName,
				driver.LabelJob: t.cfg.JobID, driver.LabelNode: t.cfg.NodeID,
			},
			Running: t.exit == nil,
		})
	}
	return out, nil
}

// Config returns the config a task was last started with.
func (s *Store) Config(id string) (driver.TaskConfig, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tasks[id]
	if !ok {
		return driver.TaskConfig{}, false
	}
	return t.cfg, true
}
