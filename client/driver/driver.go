// Package driver is the seam between the client's task runners and a
// container runtime. The containerd adapter (client/containerd) is the real
// implementation; client tests use a scriptable fake behind the same
// interface.
//
// A task is one container. Its ID is chosen by the client (see TaskID) and
// is the container's ID in the runtime, so a restarted agent can find it
// again from nothing but its own state database.
package driver

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/drover-sh/drover/structs"
)

// Sentinel errors; check with errors.Is.
var (
	// ErrTaskNotFound: the runtime has no container or task with that ID.
	ErrTaskNotFound = errors.New("task not found")
	// ErrImageNotFound: the registry (or the import directory) has no
	// such image. The wrapped message carries the registry's own words.
	ErrImageNotFound = errors.New("image not found")
)

// Labels put on every container, so the runtime alone tells what a
// container belongs to (sweeping orphans after a crash).
const (
	LabelAlloc = "drover.alloc"
	LabelTask  = "drover.task"
	LabelJob   = "drover.job"
	LabelNode  = "drover.node"
)

// Driver runs tasks. Every method takes its own context; none keeps it.
type Driver interface {
	// Name is the key under which the driver reports in Node.Drivers.
	Name() string

	// Fingerprint reports whether the runtime is usable now, and why not
	// when it is not, with attributes such as the runtime's version.
	// It never fails: an unusable runtime is a DriverInfo with Healthy
	// false and a HealthDescription a user can act on.
	Fingerprint(ctx context.Context) *structs.DriverInfo

	// PullImage makes the image available locally: already present,
	// imported from the node's image directory, or pulled from its
	// registry. The returned string describes what happened, for the
	// task event ("pulled in 180ms", "imported from busybox.tar",
	// "already present").
	PullImage(ctx context.Context, image string) (string, error)

	// StartTask creates the container and its task and starts the
	// process. The exit is being waited on before the process starts,
	// so WaitTask never misses a fast exit.
	StartTask(ctx context.Context, cfg *TaskConfig) (*TaskHandle, error)

	// RecoverTask reattaches to a task started by an earlier agent
	// process, without restarting it. A task whose process ended while
	// the agent was away is recovered too; WaitTask then returns its
	// exit at once. ErrTaskNotFound when the container is gone.
	RecoverTask(ctx context.Context, id string) (*TaskHandle, error)

	// WaitTask returns a channel that receives the task's exit once,
	// then is closed. It may be called more than once.
	WaitTask(ctx context.Context, id string) (<-chan *ExitResult, error)

	// StopTask sends SIGTERM (or the given signal), waits up to
	// timeout for the process to end, then kills every process of the
	// task with SIGKILL. It returns once the process has ended.
	StopTask(ctx context.Context, id string, timeout time.Duration, signal string) error

	// SignalTask sends a signal ("SIGHUP", "SIGUSR1", ...) to the task.
	SignalTask(ctx context.Context, id string, signal string) error

	// DestroyTask removes the task, the container and its snapshot. A
	// running task is killed first. Destroying a task that is already
	// gone is not an error.
	DestroyTask(ctx context.Context, id string) error

	// ExecTask runs a command inside the task's container and returns
	// its exit code once it ends (or the context is cancelled, which
	// kills it).
	ExecTask(ctx context.Context, id string, opts *ExecOptions) (int, error)

	// ListTasks returns every container of this node known to the
	// runtime, with its labels, so the client can sweep what belongs to
	// allocations it no longer has.
	ListTasks(ctx context.Context) ([]*TaskInfo, error)
}

// TaskConfig is everything the runtime needs to start one task.
type TaskConfig struct {
	// ID is the container ID: at most 76 characters of [A-Za-z0-9_.-],
	// unique on the node (see TaskID).
	ID       string
	AllocID  string
	TaskName string
	JobID    string
	NodeID   string

	Image   string
	Command string   // replaces the image's entrypoint when set
	Args    []string // replaces the image's cmd when Command or Args is set
	Env     map[string]string
	User    string
	WorkDir string

	// CPU in MHz becomes CPU shares (1024 per core's worth); MemoryMB is
	// the hard memory limit.
	CPU      int
	MemoryMB int
	Hostname string

	// AllocDir on the host is mounted read-write at /alloc; TaskDir at
	// /local.
	AllocDir string
	TaskDir  string

	// StdoutPath and StderrPath are the log files the runtime writes
	// the task's output to (they outlive the agent); rotation keeps
	// each under LogMaxBytes with LogMaxFiles old files beside it.
	StdoutPath  string
	StderrPath  string
	LogMaxBytes int64
	LogMaxFiles int

	// NetNSPath joins an existing network namespace; empty means the
	// host's network.
	NetNSPath string
	// ResolvConfPath is a host file mounted read-only at
	// /etc/resolv.conf; empty mounts the host's own.
	ResolvConfPath string
}

// TaskHandle is what the client stores to find a task again.
type TaskHandle struct {
	ID        string    `json:"id"`
	PID       int       `json:"pid"`
	StartedAt time.Time `json:"started_at"`
}

// TaskInfo is one container the runtime knows, for sweeping.
type TaskInfo struct {
	ID      string
	Labels  map[string]string
	Running bool
}

// ExitResult is how a task's process ended.
type ExitResult struct {
	ExitCode  int
	Signal    int
	OOMKilled bool
	ExitedAt  time.Time
	// Err is set when the exit could not be learned (the runtime went
	// away); ExitCode is then meaningless.
	Err error
}

// Successful reports a clean exit.
func (r *ExitResult) Successful() bool {
	return r.Err == nil && r.ExitCode == 0 && r.Signal == 0 && !r.OOMKilled
}

// ExecOptions describe a command run inside a task.
type ExecOptions struct {
	Command []string
	TTY     bool
	Stdin   io.Reader // nil: no stdin
	Stdout  io.Writer
	Stderr  io.Writer // ignored with a TTY (the terminal merges them)
	// Resize carries terminal size changes (TTY only).
	Resize <-chan TerminalSize
}

// TerminalSize is a terminal's width and height in characters.
type TerminalSize struct {
	Width, Height uint16
}

// TaskID is the container ID of an allocation's task: the allocation ID
// followed by the task name, shortened with a hash suffix when the two
// would exceed the runtime's limit.
func TaskID(allocID, task string) string {
	id := allocID + "-" + task
	if len(id) <= maxIDLen {
		return id
	}
	// 36 (uuid) + 1 + 30 + 1 + 8 = 76.
	return id[:len(allocID)+1+30] + "-" + shortHash(task)
}

const maxIDLen = 76

// shortHash is eight hex digits of FNV-1a over s.
func shortHash(s string) string {
	const hex = "0123456789abcdef"
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	var b [8]byte
	for i := 7; i >= 0; i-- {
		b[i] = hex[h&0xf]
		h >>= 4
	}
	return string(b[:])
}
