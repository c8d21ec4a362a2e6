package containerd

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/client/driver"
	"github.com/drover-sh/drover/structs"
)

// syncBuffer is written by the exec's copy goroutines and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startSleeper(t *testing.T, mutate ...func(*driver.TaskConfig)) (*Driver, *driver.TaskConfig) {
	d, f := pulled(t)
	cfg := taskConfig(t, f, "sleeper", "/bin/sleep", "1000")
	cfg.Hostname = "exec-host"
	cfg.Env = map[string]string{"FROM_TASK": "yes"}
	for _, m := range mutate {
		m(cfg)
	}
	_, err := d.StartTask(context.Background(), cfg)
	require.NoError(t, err)
	return d, cfg
}

func TestExecTask(t *testing.T) {
	d, cfg := startSleeper(t)
	ctx := context.Background()

	var out, errOut syncBuffer
	code, err := d.ExecTask(ctx, cfg.ID, &driver.ExecOptions{
		Command: []string{"/bin/sh", "-c", `cat /etc/hostname; echo "$FROM_TASK"; echo to-stderr >&2; exit 5`},
		Stdout:  &out, Stderr: &errOut,
	})
	require.NoError(t, err)
	require.Equal(t, 5, code)
	require.Equal(t, "exec-host\nyes\n", out.String())
	require.Equal(t, "to-stderr\n", errOut.String())

	// stdin reaches the process and its end ends the process's input.
	out = syncBuffer{}
	code, err = d.ExecTask(ctx, cfg.ID, &driver.ExecOptions{
		Command: []string{"/bin/cat"},
		Stdin:   strings.NewReader("piped in\n"),
		Stdout:  &out,
	})
	require.NoError(t, err)
	require.Zero(t, code)
	require.Equal(t, "piped in\n", out.String())

	_, err = d.ExecTask(ctx, cfg.ID, &driver.ExecOptions{})
	require.Equal(t, structs.ErrInvalid, structs.CodeOf(err))
	_, err = d.ExecTask(ctx, "absent", &driver.ExecOptions{Command: []string{"true"}})
	require.ErrorIs(t, err, driver.ErrTaskNotFound)
}

func TestExecTask_CancelKills(t *testing.T) {
	d, cfg := startSleeper(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		_, err := d.ExecTask(ctx, cfg.ID, &driver.ExecOptions{
			Command: []string{"/bin/sh", "-c", "echo started; exec sleep 1000"},
			Stdout:  &out,
		})
		done <- err
	}()
	require.Eventually(t, func() bool { return out.String() == "started\n" }, 10*time.Second, 10*time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("exec did not end when its context was cancelled")
	}
	// The task itself is untouched.
	infos, err := d.ListTasks(context.Background())
	require.NoError(t, err)
	require.True(t, infos[0].Running)
}

func TestExecTask_TTY(t *testing.T) {
	d, cfg := startSleeper(t)
	stdinR, stdinW := io.Pipe()
	resize := make(chan driver.TerminalSize) // unbuffered: a send returns once ExecTask took it
	var out syncBuffer
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := d.ExecTask(context.Background(), cfg.ID, &driver.ExecOptions{
			Command: []string{"/bin/sh", "-c", "tty; read line; stty size"},
			TTY:     true,
			Stdin:   stdinR,
			Stdout:  &out,
			Resize:  resize,
		})
		done <- result{code, err}
	}()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "/dev/pts/") }, 10*time.Second, 10*time.Millisecond)
	resize <- driver.TerminalSize{Width: 100, Height: 30}
	// ExecTask applies one resize before taking the next: once this send
	// returns, the first has been applied.
	resize <- driver.TerminalSize{Width: 120, Height: 40}
	resize <- driver.TerminalSize{Width: 120, Height: 40}
	_, err := stdinW.Write([]byte("go\n"))
	require.NoError(t, err)
	select {
	case r := <-done:
		require.NoError(t, r.err)
		require.Zero(t, r.code)
	case <-time.After(10 * time.Second):
		t.Fatalf("tty exec did not end; output so far %q", out.String())
	}
	require.Contains(t, out.String(), "40 120", "the terminal has the size last sent")
	require.NoError(t, stdinW.Close())
}
