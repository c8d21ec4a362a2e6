package containerd

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/client/driver"
)

// The tests run against a real containerd. One managed containerd, one
// registry and one built image serve the whole test binary (starting them
// per test would cost seconds each); every test gets its own containerd
// namespace, emptied and deleted by its cleanup, and tests of the managed
// daemon itself start their own.

// archiveImage is the name build-image.sh gives the image in busybox.tar.
const archiveImage = "127.0.0.1:5000/drover/busybox:latest"

type fixture struct {
	dir      string // short: containerd's socket path must stay < 108 bytes
	managed  *Managed
	client   *client.Client
	regDir   string
	registry string // host:port
	image    string // in the registry
	imageDir string // holds busybox.tar
}

var (
	fixOnce sync.Once
	fix     *fixture
	fixErr  error
	nsSeq   atomic.Int64
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fix != nil {
		fix.close()
	}
	os.Exit(code)
}

// requireRuntime fails when not root (containerd, runc and overlay mounts
// need it) or, naming the package, when a tool is missing: a test that
// skips proves nothing.
func requireRuntime(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("needs root: runs containerd, runc and overlayfs mounts; run the tests as root, as CI does")
	}
	for bin, pkg := range map[string]string{
		"containerd": "containerd", "runc": "runc", "umoci": "umoci", "skopeo": "skopeo",
		"docker-registry": "docker-registry", "curl": "curl",
	} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not found on PATH: install the %s package (scripts/install-deps.sh installs all test dependencies)", bin, pkg)
		}
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Fatalf("/bin/busybox not found: install the busybox-static package")
	}
}

// sharedFixture starts containerd, the registry and the image once.
func sharedFixture(t testing.TB) *fixture {
	t.Helper()
	requireRuntime(t)
	fixOnce.Do(func() { fix, fixErr = startFixture() })
	require.NoError(t, fixErr)
	return fix
}

func startFixture() (_ *fixture, err error) {
	dir, err := os.MkdirTemp("", "drv")
	if err != nil {
		return nil, err
	}
	f := &fixture{dir: dir, regDir: filepath.Join(dir, "reg"), imageDir: filepath.Join(dir, "img")}
	defer func() {
		if err != nil {
			f.close()
		}
	}()
	if f.managed, err = StartManaged(ManagedConfig{DataDir: filepath.Join(dir, "c")}); err != nil {
		return nil, err
	}
	if f.client, err = client.New(f.managed.Address()); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	f.registry = fmt.Sprintf("127.0.0.1:%d", port)
	if err := script("registry.sh", []string{"REGISTRY_ADDR=" + f.registry}, "start", f.regDir); err != nil {
		return nil, err
	}
	if err := script("build-image.sh", nil, f.imageDir, f.registry); err != nil {
		return nil, err
	}
	f.image = f.registry + "/drover/busybox:latest"
	return f, nil
}

func (f *fixture) close() {
	if f.client != nil {
		f.client.Close()
	}
	if f.managed != nil {
		_ = f.managed.Stop()
	}
	_ = script("registry.sh", nil, "stop", f.regDir)
	_ = os.RemoveAll(f.dir)
}

func script(name string, env []string, args ...string) error {
	cmd := exec.Command(filepath.Join("..", "..", "scripts", name), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("scripts/%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

var nsUnsafe = regexp.MustCompile(`[^A-Za-z0-9]+`)

// newDriver returns a driver on the shared containerd in a namespace of
// its own, which the test's cleanup empties and deletes.
func newDriver(t testing.TB, mutate ...func(*Config)) (*Driver, *fixture) {
	t.Helper()
	f := sharedFixture(t)
	name := strings.ToLower(nsUnsafe.ReplaceAllString(t.Name(), "-"))
	if len(name) > 40 {
		name = name[:40]
	}
	ns := strings.Trim(fmt.Sprintf("t%d-%s", nsSeq.Add(1), name), "-")
	cfg := Config{Address: f.managed.Address(), Namespace: ns, StateDir: t.TempDir(), Logger: testLogger()}
	for _, m := range mutate {
		m(&cfg)
	}
	d, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		d.Close()
		emptyNamespace(t, f.client, ns)
	})
	return d, f
}

func testLogger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "test", Level: hclog.Warn, Output: os.Stderr})
}

// emptyNamespace removes every task, container, snapshot and image of ns,
// then ns itself; containerd refuses the last step if anything is left.
func emptyNamespace(t testing.TB, c *client.Client, ns string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), ns), time.Minute)
	defer cancel()
	cs, err := c.Containers(ctx)
	if err != nil {
		t.Errorf("listing containers of %s: %v", ns, err)
		return
	}
	for _, ctr := range cs {
		if task, err := ctr.Task(ctx, nil); err == nil {
			if _, err := task.Delete(ctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
				t.Errorf("deleting task %s: %v", ctr.ID(), err)
			}
		}
		if err := ctr.Delete(ctx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
			t.Errorf("deleting container %s: %v", ctr.ID(), err)
		}
	}
	imgs, err := c.ImageService().List(ctx)
	require.NoError(t, err)
	for i, img := range imgs {
		var opts []images.DeleteOpt
		if i == len(imgs)-1 {
			// Collects content and snapshots now, not some time later.
			opts = append(opts, images.SynchronousDelete())
		}
		require.NoError(t, c.ImageService().Delete(ctx, img.Name, opts...))
	}
	if err := c.NamespaceService().Delete(ctx, ns); err != nil && !errdefs.IsNotFound(err) {
		t.Errorf("namespace %s not empty after the test: %v", ns, err)
	}
	// runc keeps one state directory per namespace outside containerd's
	// root; it is empty now.
	_ = os.Remove(filepath.Join("/run/containerd/runc", ns))
}

// taskConfig is a task on the registry's image with logs in a temp dir.
func taskConfig(t testing.TB, f *fixture, id string, command string, args ...string) *driver.TaskConfig {
	dir := t.TempDir()
	return &driver.TaskConfig{
		ID:         id,
		AllocID:    "alloc-" + id,
		TaskName:   "web",
		JobID:      "job1",
		NodeID:     "node1",
		Image:      f.image,
		Command:    command,
		Args:       args,
		StdoutPath: filepath.Join(dir, "stdout"),
		StderrPath: filepath.Join(dir, "stderr"),
		AllocDir:   mkdir(t, filepath.Join(dir, "alloc")),
		TaskDir:    mkdir(t, filepath.Join(dir, "local")),
	}
}

func mkdir(t testing.TB, p string) string {
	require.NoError(t, os.MkdirAll(p, 0o755))
	return p
}

// pulled is a driver with the registry's image present.
func pulled(t testing.TB, mutate ...func(*Config)) (*Driver, *fixture) {
	d, f := newDriver(t, mutate...)
	_, err := d.PullImage(context.Background(), f.image)
	require.NoError(t, err)
	return d, f
}

// waitExit waits for a task's exit with a deadline.
func waitExit(t testing.TB, d *Driver, id string, within time.Duration) *driver.ExitResult {
	t.Helper()
	ch, err := d.WaitTask(context.Background(), id)
	require.NoError(t, err)
	select {
	case r, ok := <-ch:
		require.True(t, ok, "wait channel closed without a result")
		return r
	case <-time.After(within):
		t.Fatalf("task %s did not exit within %s", id, within)
		return nil
	}
}

// readEventually waits until a file holds want (the shim writes
// asynchronously to the process's exit).
func readEventually(t testing.TB, p, want string) {
	t.Helper()
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(p)
		return string(b) == want
	}, 5*time.Second, 10*time.Millisecond, "%s never held %q", p, want)
}

// clientFor is a containerd client closed by the test's cleanup.
func clientFor(t testing.TB, address string) *client.Client {
	c, err := client.New(address)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}
