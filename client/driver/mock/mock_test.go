package mock

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/client/driver"
)

func exitOf(t *testing.T, d *Driver, id string) *driver.ExitResult {
	t.Helper()
	ch, err := d.WaitTask(context.Background(), id)
	require.NoError(t, err)
	select {
	case r := <-ch:
		require.NotNil(t, r)
		return r
	case <-time.After(5 * time.Second):
		t.Fatalf("task %s did not exit", id)
		return nil
	}
}

func TestMock_Script(t *testing.T) {
	ctx := context.Background()
	d := New(NewStore(), "")
	require.Equal(t, "mock", d.Name())

	_, err := d.StartTask(ctx, &driver.TaskConfig{ID: "a", Env: map[string]string{"run_for": "20ms", "exit_code": "3"}})
	require.NoError(t, err)
	r := exitOf(t, d, "a")
	require.Equal(t, 3, r.ExitCode)
	require.False(t, r.Successful())

	// Args override the env.
	_, err = d.StartTask(ctx, &driver.TaskConfig{ID: "b", Command: "run_for=0s", Args: []string{"exit_signal=11", "oom_killed=true"},
		Env: map[string]string{"run_for": "1h"}})
	require.NoError(t, err)
	r = exitOf(t, d, "b")
	require.Equal(t, 11, r.Signal)
	require.True(t, r.OOMKilled)

	_, err = d.StartTask(ctx, &driver.TaskConfig{ID: "c", Env: map[string]string{"start_error": "no such binary"}})
	require.ErrorContains(t, err, "no such binary")
	_, err = d.StartTask(ctx, &driver.TaskConfig{ID: "c", Env: map[string]string{"exit_code": "x"}})
	require.ErrorContains(t, err, "exit_code")

	_, err = d.PullImage(ctx, "registry/app:1 pull_error=manifest unknown")
	require.ErrorIs(t, err, driver.ErrImageNotFound)
	require.ErrorContains(t, err, "manifest unknown")
	d.store.SetPullError("img", "denied")
	_, err = d.PullImage(ctx, "img")
	require.ErrorContains(t, err, "denied")
	require.Equal(t, 1, d.store.CallCount("PullImage", "img"))
}

func TestMock_StopAndRecover(t *testing.T) {
	ctx := context.Background()
	store := NewStore()
	d := New(store, "containerd")

	h, err := d.StartTask(ctx, &driver.TaskConfig{ID: "svc", AllocID: "a1", TaskName: "web", NodeID: "n1"})
	require.NoError(t, err)
	require.True(t, store.Running("svc"))

	// Another driver over the same store (a restarted agent) finds it.
	d2 := New(store, "containerd")
	h2, err := d2.RecoverTask(ctx, "svc")
	require.NoError(t, err)
	require.Equal(t, h.PID, h2.PID)
	_, err = d2.RecoverTask(ctx, "nope")
	require.True(t, errors.Is(err, driver.ErrTaskNotFound))

	var out bytes.Buffer
	code, err := d2.ExecTask(ctx, "svc", &driver.ExecOptions{Command: []string{"ls", "/"}, Stdout: &out})
	require.NoError(t, err)
	require.Equal(t, 0, code)
	require.Equal(t, "exec ls /\n", out.String())

	tasks, err := d2.ListTasks(ctx)
	require.NoError(t, err)
	require.Len(t, tasks, 1)
	require.Equal(t, "a1", tasks[0].Labels[driver.LabelAlloc])
	require.Equal(t, "n1", tasks[0].Labels[driver.LabelNode])
	require.True(t, tasks[0].Running)

	require.NoError(t, d2.StopTask(ctx, "svc", time.Second, ""))
	r := exitOf(t, d2, "svc")
	require.Equal(t, 15, r.Signal)
	require.True(t, store.Exists("svc"))
	require.NoError(t, d2.DestroyTask(ctx, "svc"))
	require.False(t, store.Exists("svc"))
	require.NoError(t, d2.DestroyTask(ctx, "svc"), "destroying a gone task is not an error")

	// A process that ignores SIGTERM is killed after the timeout.
	_, err = d.StartTask(ctx, &driver.TaskConfig{ID: "stubborn", Env: map[string]string{"ignore_sigterm": "1"}})
	require.NoError(t, err)
	start := time.Now()
	require.NoError(t, d.StopTask(ctx, "stubborn", 50*time.Millisecond, "SIGTERM"))
	require.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond)
	require.Equal(t, 9, exitOf(t, d, "stubborn").Signal)

	// A crash while nobody watches is seen by a later WaitTask.
	_, err = d.StartTask(ctx, &driver.TaskConfig{ID: "crash"})
	require.NoError(t, err)
	require.NoError(t, store.Exit("crash", 7))
	require.Equal(t, 7, exitOf(t, New(store, ""), "crash").ExitCode)
}
