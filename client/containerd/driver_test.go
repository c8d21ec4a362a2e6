package containerd

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/client/driver"
	"github.com/drover-sh/drover/structs"
)

func TestFingerprint_Healthy(t *testing.T) {
	d, _ := newDriver(t)
	info := d.Fingerprint(context.Background())
	require.True(t, info.Detected)
	require.True(t, info.Healthy, info.HealthDescription)
	require.Regexp(t, `^1\.`, info.Attributes["containerd.version"])
	require.Equal(t, d.Namespace(), info.Attributes["containerd.namespace"])
	require.FileExists(t, info.Attributes["runc"])
	require.NotZero(t, info.UpdateTime)
}

func TestFingerprint_Unreachable(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "nothing.sock")
	d, err := New(Config{Address: sock})
	require.NoError(t, err, "an absent containerd is reported by Fingerprint, not by New")
	defer d.Close()

	start := time.Now()
	info := d.Fingerprint(context.Background())
	require.Less(t, time.Since(start), time.Second, "an absent socket fails fast")
	require.False(t, info.Detected)
	require.False(t, info.Healthy)
	require.Contains(t, info.HealthDescription, "containerd at "+sock+" unreachable")
	require.Contains(t, info.HealthDescription, "dial unix "+sock+": connect: no such file or directory")
	require.Equal(t, DefaultNamespace, info.Attributes["containerd.namespace"])
}

func TestNew_InvalidConfig(t *testing.T) {
	_, err := New(Config{Namespace: "bad namespace"})
	require.Equal(t, structs.ErrInvalid, structs.CodeOf(err))
	require.Contains(t, err.Error(), "namespace")

	_, err = New(Config{ImageDir: "relative/dir"})
	require.Equal(t, structs.ErrInvalid, structs.CodeOf(err))
	require.Contains(t, err.Error(), "image_dir")
}

func TestValidateTaskConfig(t *testing.T) {
	ok := func() *driver.TaskConfig {
		return &driver.TaskConfig{ID: "a-b_c.1", Image: "busybox", StdoutPath: "/tmp/x"}
	}
	require.NoError(t, validateTaskConfig(ok()))
	for field, mutate := range map[string]func(*driver.TaskConfig){
		"id":               func(c *driver.TaskConfig) { c.ID = "has space" },
		"image":            func(c *driver.TaskConfig) { c.Image = "" },
		"cpu":              func(c *driver.TaskConfig) { c.CPU = -1 },
		"memory":           func(c *driver.TaskConfig) { c.MemoryMB = -1 },
		"stdout_path":      func(c *driver.TaskConfig) { c.StdoutPath = "rel/stdout" },
		"netns_path":       func(c *driver.TaskConfig) { c.NetNSPath = "netns" },
		"resolv_conf_path": func(c *driver.TaskConfig) { c.ResolvConfPath = "resolv.conf" },
	} {
		c := ok()
		mutate(c)
		err := validateTaskConfig(c)
		require.Equal(t, structs.ErrInvalid, structs.CodeOf(err), field)
		require.Contains(t, err.Error(), field+":")
	}
}

func TestExitResult(t *testing.T) {
	at := time.Unix(100, 0)
	r := exitResult(3, at, false)
	require.Equal(t, 3, r.ExitCode)
	require.Zero(t, r.Signal)
	require.False(t, r.Successful())

	r = exitResult(137, at, false)
	require.Equal(t, 137, r.ExitCode)
	require.Equal(t, 9, r.Signal)

	r = exitResult(143, at, true)
	require.Equal(t, 15, r.Signal)
	require.True(t, r.OOMKilled)

	// 255 is containerd's "unknown exit", not signal 127.
	require.Zero(t, exitResult(255, at, false).Signal)
	require.True(t, exitResult(0, at, false).Successful())
}

func TestOOMKilled_ReadsCgroupCounters(t *testing.T) {
	root := t.TempDir()
	old := cgroupRoot
	cgroupRoot = root
	t.Cleanup(func() { cgroupRoot = old })

	v1 := filepath.Join(root, "memory", "ns", "killed")
	require.NoError(t, os.MkdirAll(v1, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(v1, "memory.oom_control"),
		[]byte("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n"), 0o644))
	require.True(t, oomKilled("/ns/killed"))

	calm := filepath.Join(root, "memory", "ns", "calm")
	require.NoError(t, os.MkdirAll(calm, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(calm, "memory.oom_control"),
		[]byte("oom_kill_disable 0\nunder_oom 0\noom_kill 0\n"), 0o644))
	require.False(t, oomKilled("/ns/calm"))

	v2 := filepath.Join(root, "ns", "v2")
	require.NoError(t, os.MkdirAll(v2, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(v2, "memory.events"),
		[]byte("low 0\nhigh 0\nmax 4\noom 1\noom_kill 2\n"), 0o644))
	require.True(t, oomKilled("/ns/v2"))

	require.False(t, oomKilled("/ns/gone"))
	require.False(t, oomKilled(""))
}

func TestKeyedMutex(t *testing.T) {
	k := newKeyedMutex()
	unlockA := k.lock("a")
	// Another key is not held up.
	unlockB := k.lock("b")
	unlockB()

	got := make(chan struct{})
	go func() {
		unlock := k.lock("a")
		close(got)
		unlock()
	}()
	select {
	case <-got:
		t.Fatal("a second holder of the same key got in")
	case <-time.After(50 * time.Millisecond):
	}
	unlockA()
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter never got the key")
	}
	require.Eventually(t, func() bool {
		k.mu.Lock()
		defer k.mu.Unlock()
		return len(k.locks) == 0
	}, time.Second, time.Millisecond, "released keys are forgotten")
}
