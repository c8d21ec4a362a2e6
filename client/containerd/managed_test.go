package containerd

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
)

// managedDir is a short directory of its own for a test's containerd.
func managedDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "drm")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestManaged_AdoptsRunningContainerd(t *testing.T) {
	requireRuntime(t)
	dir := managedDir(t)
	m, err := StartManaged(ManagedConfig{DataDir: dir, Logger: testLogger()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Stop() })
	require.False(t, m.Adopted())
	require.Equal(t, filepath.Join(dir, "containerd.sock"), m.Address())
	require.FileExists(t, filepath.Join(dir, "config.toml"))
	require.FileExists(t, filepath.Join(dir, "containerd.log"))
	pidfile, err := os.ReadFile(filepath.Join(dir, "containerd.pid"))
	require.NoError(t, err)
	require.Equal(t, m.PID(), atoi(t, strings.TrimSpace(string(pidfile))))

	// The agent "dies": its handle is forgotten, containerd keeps running.
	// The next agent adopts it instead of starting a second one.
	m.stopSupervising()
	m2, err := StartManaged(ManagedConfig{DataDir: dir, Logger: testLogger()})
	require.NoError(t, err)
	require.True(t, m2.Adopted())
	require.Equal(t, m.PID(), m2.PID())

	require.NoError(t, m2.Stop())
	require.False(t, processAlive(m.PID()))
	require.NoFileExists(t, filepath.Join(dir, "containerd.pid"))
	require.NoError(t, m2.Stop(), "stopping twice is fine")

	// A stale pid file (the pid now belongs to something else or nothing)
	// does not stop a fresh start.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "containerd.pid"), []byte("1\n"), 0o644))
	m3, err := StartManaged(ManagedConfig{DataDir: dir, Logger: testLogger()})
	require.NoError(t, err)
	require.False(t, m3.Adopted())
	require.NotEqual(t, 1, m3.PID())
	require.NoError(t, m3.Stop())
}

func atoi(t *testing.T, s string) int {
	var n int
	for _, c := range s {
		require.True(t, c >= '0' && c <= '9', s)
		n = n*10 + int(c-'0')
	}
	return n
}

func TestManaged_StopLeavesTasksRunning(t *testing.T) {
	f := sharedFixture(t)
	dir := managedDir(t)
	m, err := StartManaged(ManagedConfig{DataDir: dir, Logger: testLogger()})
	require.NoError(t, err)
	ns := "managed-stop"
	d, err := New(Config{Address: m.Address(), Namespace: ns, Logger: testLogger()})
	require.NoError(t, err)
	ctx := context.Background()
	_, err = d.PullImage(ctx, f.image)
	require.NoError(t, err)
	cfg := taskConfig(t, f, "survivor", "/bin/sleep", "1000")
	h, err := d.StartTask(ctx, cfg)
	require.NoError(t, err)

	require.NoError(t, m.Stop())
	require.NoError(t, syscall.Kill(h.PID, 0), "the task outlives containerd")
	info := d.Fingerprint(ctx)
	require.False(t, info.Healthy)
	require.Contains(t, info.HealthDescription, m.Address())

	m2, err := StartManaged(ManagedConfig{DataDir: dir, Logger: testLogger()})
	require.NoError(t, err)
	t.Cleanup(func() {
		emptyNamespace(t, clientFor(t, m2.Address()), ns)
		_ = m2.Stop()
	})
	require.False(t, m2.Adopted())
	require.NotEqual(t, m.PID(), m2.PID())

	// The old driver reconnects by itself; a new one recovers the task.
	require.Eventually(t, func() bool { return d.Fingerprint(ctx).Healthy }, 10*time.Second, 50*time.Millisecond)
	d.Close()
	d2, err := New(Config{Address: m2.Address(), Namespace: ns, Logger: testLogger()})
	require.NoError(t, err)
	defer d2.Close()
	h2, err := d2.RecoverTask(ctx, cfg.ID)
	require.NoError(t, err)
	require.Equal(t, h.PID, h2.PID)
	require.NoError(t, d2.StopTask(ctx, cfg.ID, 100*time.Millisecond, ""))
	require.Equal(t, 9, waitExit(t, d2, cfg.ID, time.Second).Signal)
	require.NoError(t, d2.DestroyTask(ctx, cfg.ID))
}

// A containerd that dies while the agent runs is started again, whether
// the agent started it or adopted it; Stop ends that.
func TestManaged_RestartsAfterCrash(t *testing.T) {
	requireRuntime(t)
	old := adoptedPoll
	adoptedPoll = 50 * time.Millisecond
	t.Cleanup(func() { adoptedPoll = old })
	dir := managedDir(t)
	first, err := StartManaged(ManagedConfig{DataDir: dir, Logger: testLogger()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = first.Stop() })

	crash := func(m *Managed, restarts int) {
		t.Helper()
		pid := m.PID()
		require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
		require.Eventually(t, func() bool {
			return m.Restarts() == restarts && m.PID() != pid && version(m.Address()) == nil
		}, 30*time.Second, 20*time.Millisecond, "containerd was not started again")
		require.False(t, m.Adopted())
		pidfile, err := os.ReadFile(filepath.Join(dir, "containerd.pid"))
		require.NoError(t, err)
		require.Equal(t, m.PID(), atoi(t, strings.TrimSpace(string(pidfile))))
	}
	crash(first, 1)
	crash(first, 2)

	// An agent that adopted the running containerd supervises it too.
	adopter, err := StartManaged(ManagedConfig{DataDir: dir, Logger: testLogger()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = adopter.Stop() })
	require.True(t, adopter.Adopted())
	first.stopSupervising() // that agent "died"
	crash(adopter, 1)

	pid := adopter.PID()
	require.NoError(t, adopter.Stop())
	select {
	case <-adopter.supervisorDone:
	default:
		t.Fatal("Stop returned with the supervisor still running")
	}
	require.False(t, processAlive(pid))
	_, alive := socketPeer(adopter.Address())
	require.False(t, alive, "nothing answers after Stop")
}

func TestManaged_SocketPathTooLong(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 100))
	_, err := StartManaged(ManagedConfig{DataDir: dir})
	require.Equal(t, structs.ErrInvalid, structs.CodeOf(err))
	require.Contains(t, err.Error(), "data_dir")
	require.Contains(t, err.Error(), "107")
	require.NoDirExists(t, dir, "nothing is created for a config that cannot work")

	_, err = StartManaged(ManagedConfig{})
	require.Equal(t, structs.ErrInvalid, structs.CodeOf(err))
}

func TestManaged_MissingBinary(t *testing.T) {
	dir := managedDir(t)
	_, err := StartManaged(ManagedConfig{DataDir: dir, Binary: "containerd-that-does-not-exist"})
	require.Error(t, err)
	require.Contains(t, err.Error(), "install the containerd package")
}

func TestManaged_ExitBeforeReadyReportsLog(t *testing.T) {
	requireRuntime(t)
	dir := managedDir(t)
	// /bin/false exits at once: the error names the exit and the log.
	_, err := StartManaged(ManagedConfig{DataDir: dir, Binary: "/bin/false", StartTimeout: 10 * time.Second})
	require.Error(t, err)
	require.Contains(t, err.Error(), "exited before answering")
	require.Contains(t, err.Error(), "containerd.log")
}

func TestRotateLog(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "containerd.log")
	require.NoError(t, rotateLog(p, 10), "no log yet")
	require.NoError(t, os.WriteFile(p, []byte("0123456789"), 0o644))
	require.NoError(t, rotateLog(p, 10))
	require.FileExists(t, p, "at the limit: kept")
	require.NoError(t, os.WriteFile(p, []byte("0123456789ab"), 0o644))
	require.NoError(t, os.WriteFile(p+".1", []byte("older"), 0o644))
	require.NoError(t, rotateLog(p, 10))
	require.NoFileExists(t, p)
	b, err := os.ReadFile(p + ".1")
	require.NoError(t, err)
	require.Equal(t, "0123456789ab", string(b), "the previous run's log replaces the older one")
}
