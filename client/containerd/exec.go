package containerd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"sync"
	"syscall"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/drover-sh/drover/client/driver"
	"github.com/drover-sh/drover/structs"
)

// ExecTask implements driver.Driver: the command runs with the task's
// process settings (env, user, cwd, capabilities) and its own streams.
func (d *Driver) ExecTask(ctx context.Context, id string, opts *driver.ExecOptions) (int, error) {
	if opts == nil || len(opts.Command) == 0 {
		return 0, structs.NewError(structs.ErrInvalid, "command: must not be empty")
	}
	ctx = d.nsCtx(ctx)
	task, err := d.loadTask(ctx, id)
	if err != nil {
		return 0, err
	}
	spec, err := task.Spec(ctx)
	if err != nil {
		return 0, notFound(id, err)
	}
	pspec := *spec.Process
	pspec.Args = opts.Command
	pspec.Terminal = opts.TTY
	pspec.ConsoleSize = nil

	stdout, stderr := opts.Stdout, opts.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil || opts.TTY {
		stderr = io.Discard
	}
	var stdin *stdinCloser
	var in io.Reader
	if opts.Stdin != nil {
		stdin = &stdinCloser{r: opts.Stdin, namespace: d.cfg.Namespace, ready: make(chan client.Process, 1)}
		in = stdin
	}
	cioOpts := []cio.Opt{cio.WithStreams(in, stdout, stderr)}
	if opts.TTY {
		cioOpts = append(cioOpts, cio.WithTerminal)
	}

	execID := "exec-" + randomHex(6)
	process, err := task.Exec(ctx, execID, &pspec, cio.NewCreator(cioOpts...))
	if err != nil {
		if stdin != nil {
			close(stdin.ready)
		}
		return 0, fmt.Errorf("task %s: exec %q: %w", id, opts.Command[0], err)
	}
	// The exec is deleted (its IO drained and closed) whatever happens,
	// with a context that outlives a cancelled caller.
	defer func() {
		cctx, cancel := cleanupCtx(ctx)
		defer cancel()
		if _, err := process.Delete(cctx, client.WithProcessKill); err != nil {
			d.logger.Debug("failed to delete exec", "task_id", id, "exec_id", execID, "error", err)
		}
	}()
	if stdin != nil {
		stdin.ready <- process
	}
	exited, err := process.Wait(ctx)
	if err != nil {
		return 0, fmt.Errorf("task %s: exec %q: %w", id, opts.Command[0], err)
	}
	if err := process.Start(ctx); err != nil {
		return 0, fmt.Errorf("task %s: exec %q: starting: %w", id, opts.Command[0], err)
	}

	resize := opts.Resize
	for {
		select {
		case st := <-exited:
			code, _, err := st.Result()
			if err != nil {
				if ctx.Err() != nil {
					// Wait's stream ended because the caller went away
					// (the deferred Delete kills the exec): the caller
					// gets its own context's error, not gRPC's copy.
					err = ctx.Err()
				}
				return 0, fmt.Errorf("task %s: exec %q: %w", id, opts.Command[0], err)
			}
			// Let the output finish copying before the caller reads it.
			process.IO().Wait()
			return int(code), nil
		case sz, ok := <-resize:
			if !ok {
				resize = nil
				continue
			}
			if opts.TTY {
				if err := process.Resize(ctx, uint32(sz.Width), uint32(sz.Height)); err != nil {
					d.logger.Debug("failed to resize exec terminal", "task_id", id, "exec_id", execID, "error", err)
				}
			}
		case <-ctx.Done():
			cctx, cancel := cleanupCtx(ctx)
			_ = process.Kill(cctx, syscall.SIGKILL)
			cancel()
			return 0, fmt.Errorf("task %s: exec %q: %w", id, opts.Command[0], ctx.Err())
		}
	}
}

// stdinCloser ends the exec's stdin when the caller's reader ends. Closing
// the agent's end of the FIFO is not enough: the shim holds a write end of
// it open too (so stdin survives the agent), and lets go only on CloseIO.
type stdinCloser struct {
	r         io.Reader
	namespace string
	ready     chan client.Process
	once      sync.Once
}

func (s *stdinCloser) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err == io.EOF {
		s.once.Do(func() {
			// The copy may hit EOF before Exec has returned the process.
			if proc, ok := <-s.ready; ok {
				ctx, cancel := cleanupCtx(namespaces.WithNamespace(context.Background(), s.namespace))
				defer cancel()
				_ = proc.CloseIO(ctx, client.WithStdinCloser)
			}
		})
	}
	return n, err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
