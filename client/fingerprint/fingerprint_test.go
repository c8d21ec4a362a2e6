package fingerprint

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const cpuinfo = `processor	: 0
model name	: Intel(R) Xeon(R) Processor
cpu MHz		: 2599.998

processor	: 1
model name	: Intel(R) Xeon(R) Processor
cpu MHz		: 2600.004
`

const meminfo = `MemTotal:       24684084 kB
MemFree:        23599380 kB
`

// fakeRoot writes /proc, /sys and os-release fixtures; files maps a path
// under the root to its content.
func fakeRoot(t *testing.T, files map[string]string) Paths {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, p)
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, []byte(content), 0o644))
	}
	return Paths{ProcRoot: filepath.Join(root, "proc"), SysRoot: filepath.Join(root, "sys"), OSRelease: filepath.Join(root, "etc/os-release")}
}

func TestHostFacts(t *testing.T) {
	p := fakeRoot(t, map[string]string{
		"proc/cpuinfo":              cpuinfo,
		"proc/meminfo":              meminfo,
		"proc/sys/kernel/osrelease": "6.1.0-18-amd64\n",
		"etc/os-release":            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
	})
	h, err := HostFacts(p)
	require.NoError(t, err)
	require.Equal(t, 2, h.Resources.Cores)
	require.Equal(t, 5200, h.Resources.CPU, "two cores at the highest cpu MHz, rounded")
	require.Equal(t, 24105, h.Resources.Memory, "MemTotal in MiB")
	require.Equal(t, MinDynamicPort, h.Resources.MinDynamicPort)
	require.Equal(t, "cpuinfo", h.Attributes["cpu.frequency.source"])
	require.Equal(t, "2600", h.Attributes["cpu.frequency"])
	require.Equal(t, "6.1.0-18-amd64", h.Attributes["kernel.version"])
	require.Equal(t, "debian", h.Attributes["os.name"])
	require.Equal(t, "12", h.Attributes["os.version"])
	require.Equal(t, runtime.GOARCH, h.Attributes["cpu.arch"])
	require.Equal(t, "linux", h.Attributes["kernel.name"])
	require.Equal(t, "Intel(R) Xeon(R) Processor", h.Attributes["cpu.modelname"])
	require.NotEmpty(t, h.Attributes["unique.hostname"])
}

func TestHostFacts_CPUFallbacks(t *testing.T) {
	// cpufreq's maximum wins over the current clock.
	p := fakeRoot(t, map[string]string{
		"proc/cpuinfo": cpuinfo,
		"proc/meminfo": meminfo,
		"sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq": "3500000\n",
	})
	h, err := HostFacts(p)
	require.NoError(t, err)
	require.Equal(t, 7000, h.Resources.CPU)
	require.Equal(t, "cpufreq", h.Attributes["cpu.frequency.source"])

	// A VM that reports no clock at all gets the default per core.
	p = fakeRoot(t, map[string]string{
		"proc/cpuinfo": "processor\t: 0\nprocessor\t: 1\nprocessor\t: 2\n",
		"proc/meminfo": meminfo,
	})
	h, err = HostFacts(p)
	require.NoError(t, err)
	require.Equal(t, 3, h.Resources.Cores)
	require.Equal(t, 3*DefaultCoreMHz, h.Resources.CPU)
	require.Equal(t, "default", h.Attributes["cpu.frequency.source"])

	// No cpuinfo at all: the CPUs Go sees.
	p = fakeRoot(t, map[string]string{"proc/meminfo": meminfo})
	h, err = HostFacts(p)
	require.NoError(t, err)
	require.Equal(t, runtime.NumCPU(), h.Resources.Cores)
}

func TestHostFacts_NoMemory(t *testing.T) {
	p := fakeRoot(t, map[string]string{"proc/cpuinfo": cpuinfo})
	_, err := HostFacts(p)
	require.ErrorContains(t, err, "fingerprinting memory")

	p = fakeRoot(t, map[string]string{"proc/meminfo": "MemFree: 1 kB\n"})
	_, err = HostFacts(p)
	require.ErrorContains(t, err, "no MemTotal")
}

func TestHostFacts_RealHost(t *testing.T) {
	h, err := HostFacts(DefaultPaths())
	require.NoError(t, err)
	require.Positive(t, h.Resources.CPU)
	require.Positive(t, h.Resources.Memory)
	require.Positive(t, h.Resources.Cores)
}

func TestCNI(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"bridge", "host-local", "loopback"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "README"), []byte("not a plugin"), 0o644))

	info, plugins := CNI(dir)
	require.Equal(t, []string{"bridge", "host-local", "loopback"}, plugins)
	require.True(t, info.Detected)
	require.False(t, info.Healthy)
	require.Contains(t, info.HealthDescription, "portmap")
	require.Equal(t, "bridge,host-local,loopback", info.Attributes["cni.plugins"])

	require.NoError(t, os.WriteFile(filepath.Join(dir, "portmap"), []byte("#!/bin/sh\n"), 0o755))
	info, _ = CNI(dir)
	require.True(t, info.Healthy)

	info, plugins = CNI(filepath.Join(dir, "missing"))
	require.False(t, info.Detected)
	require.False(t, info.Healthy)
	require.Empty(t, plugins)
	require.True(t, strings.HasPrefix(info.HealthDescription, "cannot read CNI plugin dir"))
}
