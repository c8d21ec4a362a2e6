package containerd

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	tasks "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/client/driver"
	"github.com/drover-sh/drover/structs"
)

func TestStartTask_SeparateStdoutAndStderrFiles(t *testing.T) {
	d, f := pulled(t)
	cfg := taskConfig(t, f, "out", "/bin/sh", "-c", "echo hi; echo oops >&2; echo there")
	h, err := d.StartTask(context.Background(), cfg)
	require.NoError(t, err)
	require.Positive(t, h.PID)
	require.Equal(t, cfg.ID, h.ID)

	r := waitExit(t, d, cfg.ID, 10*time.Second)
	require.True(t, r.Successful(), "%+v", r)
	require.False(t, r.ExitedAt.IsZero())
	readEventually(t, cfg.StdoutPath, "hi\nthere\n")
	readEventually(t, cfg.StderrPath, "oops\n")
}

// The shim's file:// IO (cio.LogFile) writes both streams to the stdout
// URI's file: the reason logIO passes plain paths. Should containerd ever
// honour the stderr URI, this fails and logIO can be reconsidered.
func TestShimFileURIMergesStreams(t *testing.T) {
	d, f := pulled(t)
	ctx := d.nsCtx(context.Background())
	cfg := taskConfig(t, f, "uri", "/bin/sh", "-c", "echo out; echo err >&2")
	img, err := d.client.GetImage(ctx, mustRef(t, cfg.Image))
	require.NoError(t, err)
	var cgroup string
	ctr, err := d.client.NewContainer(ctx, cfg.ID, client.WithImage(img), client.WithSnapshotter(snapshotter),
		client.WithNewSnapshot(cfg.ID, img), client.WithNewSpec(specOpts(cfg, img, taskFiles{}, &cgroup)...))
	require.NoError(t, err)
	uris := func(string) (cio.IO, error) {
		return &fileIO{cfg: cio.Config{Stdout: "file://" + cfg.StdoutPath, Stderr: "file://" + cfg.StderrPath}}, nil
	}
	task, err := ctr.NewTask(ctx, uris)
	require.NoError(t, err)
	exited, err := task.Wait(ctx)
	require.NoError(t, err)
	require.NoError(t, task.Start(ctx))
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("no exit")
	}
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(cfg.StdoutPath)
		return strings.Contains(string(b), "out\n") && strings.Contains(string(b), "err\n")
	}, 5*time.Second, 10*time.Millisecond)
	_, err = os.Stat(cfg.StderrPath)
	require.ErrorIs(t, err, os.ErrNotExist, "the stderr URI is ignored")
}

func mustRef(t *testing.T, image string) string {
	ref, err := normalizeRef(image)
	require.NoError(t, err)
	return ref
}

func TestStartTask_ExitCode(t *testing.T) {
	d, f := pulled(t)
	cfg := taskConfig(t, f, "exit3", "/bin/sh", "-c", "exit 3")
	_, err := d.StartTask(context.Background(), cfg)
	require.NoError(t, err)
	r := waitExit(t, d, cfg.ID, 10*time.Second)
	require.Equal(t, 3, r.ExitCode)
	require.Zero(t, r.Signal)
	require.False(t, r.OOMKilled)
	require.NoError(t, r.Err)

	// Every WaitTask caller gets the exit, also after it happened.
	again := waitExit(t, d, cfg.ID, time.Second)
	require.Equal(t, r, again)
}

func TestStartTask_SpecFromImageAndConfig(t *testing.T) {
	d, f := pulled(t)
	cfg := taskConfig(t, f, "spec", "", "-c",
		`echo "$GREETING $PATH"; pwd; id -u; hostname; cat /etc/hostname; `+
			`touch /alloc/a /local/l; cat /etc/resolv.conf >/dev/null && echo resolv`)
	// No Command: the image's entrypoint (none) with Args replacing its cmd,
	// which needs the shell as first arg.
	cfg.Args = append([]string{"/bin/sh"}, cfg.Args...)
	cfg.Env = map[string]string{"GREETING": "hello"}
	cfg.WorkDir = "/tmp"
	cfg.User = "nobody"
	cfg.Hostname = "web-1"
	cfg.CPU = 500
	cfg.MemoryMB = 64
	// The task runs as nobody; the agent makes these dirs writable for it.
	require.NoError(t, os.Chmod(cfg.AllocDir, 0o777))
	require.NoError(t, os.Chmod(cfg.TaskDir, 0o777))
	_, err := d.StartTask(context.Background(), cfg)
	require.NoError(t, err)
	r := waitExit(t, d, cfg.ID, 10*time.Second)
	require.Zero(t, r.ExitCode, "stderr: %s", readFile(t, cfg.StderrPath))
	readEventually(t, cfg.StdoutPath, strings.Join([]string{
		"hello /bin", "/tmp", "65534", "web-1", "web-1", "resolv", "",
	}, "\n"))
	require.Empty(t, readFile(t, cfg.StderrPath))
	require.FileExists(t, filepath.Join(cfg.AllocDir, "a"))
	require.FileExists(t, filepath.Join(cfg.TaskDir, "l"))

	// The limits are on the task's cgroup (there until the task is deleted).
	cgroup := filepath.Join("/", d.Namespace(), cfg.ID)
	require.Equal(t, "500\n", readFile(t, filepath.Join(cgroupRoot, "cpu", cgroup, "cpu.shares")))
	require.Equal(t, "67108864\n", readFile(t, filepath.Join(cgroupRoot, "memory", cgroup, "memory.limit_in_bytes")))

	// Labels say what the container belongs to.
	infos, err := d.ListTasks(context.Background())
	require.NoError(t, err)
	require.Len(t, infos, 1)
	require.Equal(t, map[string]string{
		driver.LabelAlloc: cfg.AllocID, driver.LabelTask: "web", driver.LabelJob: "job1", driver.LabelNode: "node1",
		client.StopSignalLabel: "SIGTERM",
	}, infos[0].Labels)
}

func readFile(t *testing.T, p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func TestStartTask_HostNetwork(t *testing.T) {
	d, f := pulled(t)
	hostNS, err := os.Readlink("/proc/self/ns/net")
	require.NoError(t, err)
	cfg := taskConfig(t, f, "hostnet", "/bin/sh", "-c", "readlink /proc/self/ns/net")
	_, err = d.StartTask(context.Background(), cfg)
	require.NoError(t, err)
	require.Zero(t, waitExit(t, d, cfg.ID, 10*time.Second).ExitCode)
	readEventually(t, cfg.StdoutPath, hostNS+"\n")
}

func TestStartTask_JoinsNetworkNamespace(t *testing.T) {
	d, f := pulled(t)
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatalf("ip not found: install the iproute2 package")
	}
	name := "drover-test-" + randomHex(4)
	out, err := exec.Command("ip", "netns", "add", name).CombinedOutput()
	require.NoError(t, err, string(out))
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", name).Run() })
	path := filepath.Join("/run/netns", name)
	var st syscall.Stat_t
	require.NoError(t, syscall.Stat(path, &st))

	cfg := taskConfig(t, f, "bridged", "/bin/sh", "-c", "readlink /proc/self/ns/net; cat /etc/hosts")
	cfg.NetNSPath = path
	cfg.Hostname = "web-1"
	_, err = d.StartTask(context.Background(), cfg)
	require.NoError(t, err)
	require.Zero(t, waitExit(t, d, cfg.ID, 10*time.Second).ExitCode, readFile(t, cfg.StderrPath))
	readEventually(t, cfg.StdoutPath, fmt.Sprintf("net:[%d]\n", st.Ino)+
		"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tweb-1\n")
}

func TestStartTask_ResolvConf(t *testing.T) {
	d, f := pulled(t)
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	require.NoError(t, os.WriteFile(resolv, []byte("nameserver 172.26.64.1\nsearch service.drover\n"), 0o644))
	cfg := taskConfig(t, f, "resolv", "/bin/sh", "-c", "cat /etc/resolv.conf; echo x >> /etc/resolv.conf || echo read-only")
	cfg.ResolvConfPath = resolv
	_, err := d.StartTask(context.Background(), cfg)
	require.NoError(t, err)
	require.Zero(t, waitExit(t, d, cfg.ID, 10*time.Second).ExitCode, readFile(t, cfg.StderrPath))
	readEventually(t, cfg.StdoutPath, "nameserver 172.26.64.1\nsearch service.drover\nread-only\n")
}

func TestStartTask_FailureLeavesNothing(t *testing.T) {
	d, f := pulled(t)
	ctx := context.Background()
	cfg := taskConfig(t, f, "nobinary", "/no/such/binary")
	_, err := d.StartTask(ctx, cfg)
	require.Error(t, err)
	require.Contains(t, err.Error(), "task nobinary")
	assertGone(t, d, cfg.ID)

	// The same id can be used again at once.
	cfg = taskConfig(t, f, "nobinary", "/bin/true")
	_, err = d.StartTask(ctx, cfg)
	require.NoError(t, err)

	_, err = d.StartTask(ctx, cfg)
	require.Equal(t, structs.ErrConflict, structs.CodeOf(err), "%v", err)

	cfg = taskConfig(t, f, "notpulled", "/bin/true")
	cfg.Image = "127.0.0.1:1/never/pulled:latest"
	_, err = d.StartTask(ctx, cfg)
	require.ErrorIs(t, err, driver.ErrImageNotFound)
}

// assertGone checks containerd has no container, task or snapshot for id.
func assertGone(t *testing.T, d *Driver, id string) {
	t.Helper()
	ctx := d.nsCtx(context.Background())
	_, err := d.client.LoadContainer(ctx, id)
	require.True(t, errdefs.IsNotFound(err), "container %s: %v", id, err)
	_, err = d.client.TaskService().Get(ctx, &tasks.GetRequest{ContainerID: id})
	require.True(t, errdefs.IsNotFound(errgrpc.ToNative(err)), "task %s: %v", id, err)
	_, err = d.client.SnapshotService(snapshotter).Stat(ctx, id)
	require.True(t, errdefs.IsNotFound(err), "snapshot %s: %v", id, err)
}

func TestStopTask_EscalatesWhenSIGTERMIsIgnored(t *testing.T) {
	d, f := pulled(t)
	// PID 1 has no default signal handlers: sleep ignores SIGTERM.
	cfg := taskConfig(t, f, "stubborn", "/bin/sleep", "1000")
	_, err := d.StartTask(context.Background(), cfg)
	require.NoError(t, err)

	const killTimeout = 300 * time.Millisecond
	start := time.Now()
	require.NoError(t, d.StopTask(context.Background(), cfg.ID, killTimeout, ""))
	took := time.Since(start)
	require.GreaterOrEqual(t, took, killTimeout)
	require.Less(t, took, killTimeout+5*time.Second)

	r := waitExit(t, d, cfg.ID, time.Second)
	require.Equal(t, int(syscall.SIGKILL), r.Signal)
	require.Equal(t, 137, r.ExitCode)

	// Stopping a stopped task returns at once.
	require.NoError(t, d.StopTask(context.Background(), cfg.ID, killTimeout, ""))
}

func TestStopTask_GracefulExitDoesNotEscalate(t *testing.T) {
	d, f := pulled(t)
	cfg := taskConfig(t, f, "graceful", "/bin/sh", "-c", `trap "echo bye; exit 0" TERM; echo ready; while true; do sleep 0.05; done`)
	_, err := d.StartTask(context.Background(), cfg)
	require.NoError(t, err)
	readEventually(t, cfg.StdoutPath, "ready\n")

	require.NoError(t, d.StopTask(context.Background(), cfg.ID, 10*time.Second, "SIGTERM"))
	r := waitExit(t, d, cfg.ID, time.Second)
	require.True(t, r.Successful(), "%+v", r)
	readEventually(t, cfg.StdoutPath, "ready\nbye\n")

	err = d.StopTask(context.Background(), cfg.ID, time.Second, "SIGNOPE")
	require.Equal(t, structs.ErrInvalid, structs.CodeOf(err))
	require.ErrorIs(t, d.StopTask(context.Background(), "absent", time.Second, ""), driver.ErrTaskNotFound)
}

func TestSignalTask(t *testing.T) {
	d, f := pulled(t)
	cfg := taskConfig(t, f, "hup", "/bin/sh", "-c", `trap "echo got hup" HUP; echo ready; while true; do sleep 0.05; done`)
	_, err := d.StartTask(context.Background(), cfg)
	require.NoError(t, err)
	readEventually(t, cfg.StdoutPath, "ready\n")
	require.NoError(t, d.SignalTask(context.Background(), cfg.ID, "SIGHUP"))
	readEventually(t, cfg.StdoutPath, "ready\ngot hup\n")

	require.Equal(t, structs.ErrInvalid, structs.CodeOf(d.SignalTask(context.Background(), cfg.ID, "SIGWHAT")))
	require.ErrorIs(t, d.SignalTask(context.Background(), "absent", "SIGHUP"), driver.ErrTaskNotFound)
}

func TestWaitTask_OOMKilled(t *testing.T) {
	d, f := pulled(t)
	// tail keeps the whole "last line" of 64 MiB of zero bytes (no newline)
	// in memory: over a 16 MiB limit, the kernel kills it.
	cfg := taskConfig(t, f, "oom", "/bin/sh", "-c", "head -c 67108864 /dev/zero | tail")
	cfg.MemoryMB = 16
	_, err := d.StartTask(context.Background(), cfg)
	require.NoError(t, err)
	r := waitExit(t, d, cfg.ID, 30*time.Second)
	require.True(t, r.OOMKilled, "%+v", r)
	require.NotZero(t, r.ExitCode)
	require.False(t, r.Successful())
}

func TestRecoverTask_FromANewDriver(t *testing.T) {
	d, f := pulled(t)
	ctx := context.Background()
	running := taskConfig(t, f, "running", "/bin/sleep", "1000")
	h, err := d.StartTask(ctx, running)
	require.NoError(t, err)
	ended := taskConfig(t, f, "ended", "/bin/sh", "-c", "exit 7")
	_, err = d.StartTask(ctx, ended)
	require.NoError(t, err)
	require.Equal(t, 7, waitExit(t, d, ended.ID, 10*time.Second).ExitCode)
	require.NoError(t, d.Close())

	// An agent that restarted: new process, new driver, same namespace.
	d2, err := New(Config{Address: f.managed.Address(), Namespace: d.Namespace(), Logger: testLogger()})
	require.NoError(t, err)
	defer d2.Close()
	h2, err := d2.RecoverTask(ctx, running.ID)
	require.NoError(t, err)
	require.Equal(t, h.PID, h2.PID)
	require.False(t, h2.StartedAt.IsZero())
	require.NoError(t, syscall.Kill(h2.PID, 0), "the process kept running")

	_, err = d2.RecoverTask(ctx, ended.ID)
	require.NoError(t, err)
	r := waitExit(t, d2, ended.ID, time.Second)
	require.Equal(t, 7, r.ExitCode, "the exit of a task that ended while the agent was away is kept")

	require.NoError(t, d2.StopTask(ctx, running.ID, 100*time.Millisecond, ""))
	require.Equal(t, 9, waitExit(t, d2, running.ID, time.Second).Signal)

	_, err = d2.RecoverTask(ctx, "absent")
	require.ErrorIs(t, err, driver.ErrTaskNotFound)
	_, err = d2.WaitTask(ctx, "absent")
	require.ErrorIs(t, err, driver.ErrTaskNotFound)
}

func TestDestroyTask_LeavesNothing(t *testing.T) {
	d, f := pulled(t)
	ctx := context.Background()
	cfg := taskConfig(t, f, "doomed", "/bin/sleep", "1000")
	cfg.Hostname = "doomed"
	_, err := d.StartTask(ctx, cfg)
	require.NoError(t, err)
	exited, err := d.WaitTask(ctx, cfg.ID)
	require.NoError(t, err)

	require.DirExists(t, d.taskStateDir(cfg.ID), "it has a hostname file")
	require.NoError(t, d.DestroyTask(ctx, cfg.ID))
	assertGone(t, d, cfg.ID)
	require.NoDirExists(t, d.taskStateDir(cfg.ID))
	select {
	case r := <-exited:
		require.NotNil(t, r, "a destroyed task's waiters learn it ended")
	case <-time.After(10 * time.Second):
		t.Fatal("waiter not released by destroy")
	}
	require.NoError(t, d.DestroyTask(ctx, cfg.ID), "destroying twice is fine")

	// A container whose task was never made (an agent that died between
	// the two) is destroyed too.
	img, err := d.client.GetImage(d.nsCtx(ctx), mustRef(t, f.image))
	require.NoError(t, err)
	_, err = d.client.NewContainer(d.nsCtx(ctx), "notask", client.WithImage(img), client.WithSnapshotter(snapshotter),
		client.WithNewSnapshot("notask", img), client.WithNewSpec())
	require.NoError(t, err)
	_, err = d.RecoverTask(ctx, "notask")
	require.ErrorIs(t, err, driver.ErrTaskNotFound)
	require.NoError(t, d.DestroyTask(ctx, "notask"))
	assertGone(t, d, "notask")
}

func TestListTasks(t *testing.T) {
	d, f := pulled(t)
	ctx := context.Background()
	run := taskConfig(t, f, "run", "/bin/sleep", "1000")
	_, err := d.StartTask(ctx, run)
	require.NoError(t, err)
	done := taskConfig(t, f, "done", "/bin/true")
	_, err = d.StartTask(ctx, done)
	require.NoError(t, err)
	waitExit(t, d, done.ID, 10*time.Second)

	infos, err := d.ListTasks(ctx)
	require.NoError(t, err)
	got := map[string]bool{}
	for _, i := range infos {
		got[i.ID] = i.Running
		require.Equal(t, "alloc-"+i.ID, i.Labels[driver.LabelAlloc])
	}
	require.Equal(t, map[string]bool{"run": true, "done": false}, got)

	// Other namespaces (other nodes on the machine) are not listed.
	other, err := New(Config{Address: f.managed.Address(), Namespace: d.Namespace() + "-other"})
	require.NoError(t, err)
	defer other.Close()
	infos, err = other.ListTasks(ctx)
	require.NoError(t, err)
	require.Empty(t, infos)
}

// A running task costs the driver one waiter goroutine and a little heap,
// whatever the number of tasks (the agent's RSS budget is per node).
func TestDriver_CostPerRunningTask(t *testing.T) {
	d, f := pulled(t)
	ctx := context.Background()
	const n = 20
	// Twice: sync.Pool contents survive one collection.
	runtime.GC()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()
	for i := range n {
		_, err := d.StartTask(ctx, taskConfig(t, f, fmt.Sprintf("cost-%d", i), "/bin/sleep", "1000"))
		require.NoError(t, err)
	}
	extra := func() int { return runtime.NumGoroutine() - g0 }
	require.Eventually(t, func() bool { return extra() <= n+4 }, 5*time.Second, 10*time.Millisecond,
		"goroutines grew by %d for %d tasks", extra(), n)
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	t.Logf("%d running tasks: %+d goroutines, live heap %+d KiB", n, extra(), (int64(after.HeapAlloc)-int64(before.HeapAlloc))>>10)
}
