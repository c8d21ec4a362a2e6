// Package fingerprint finds what a client node offers: CPU, memory, OS
// and kernel, and which CNI plugins are installed. Hardware facts are read
// once (Host); what can change while the agent runs (driver and CNI
// health) is cheap to read again (CNI).
package fingerprint

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/drover-sh/drover/structs"
)

// DefaultCoreMHz is assumed per core when neither cpufreq nor
// /proc/cpuinfo gives a clock (some VMs report none): a conservative
// figure for a current server core, so the node offers some CPU rather
// than none.
const DefaultCoreMHz = 2000

// Dynamic host ports handed out to allocations, as the scheduler assumes.
const (
	MinDynamicPort = 20000
	MaxDynamicPort = 32000
)

// RequiredCNIPlugins are what bridge networking needs.
var RequiredCNIPlugins = []string{"bridge", "host-local", "portmap", "loopback"}

// Paths are the files read; tests point them at fixtures.
type Paths struct {
	ProcRoot  string // "/proc"
	SysRoot   string // "/sys"
	OSRelease string // "/etc/os-release"
}

// DefaultPaths are the host's.
func DefaultPaths() Paths {
	return Paths{ProcRoot: "/proc", SysRoot: "/sys", OSRelease: "/etc/os-release"}
}

// Host is what the machine offers and is.
type Host struct {
	Attributes map[string]string
	Resources  structs.NodeResources
}

// HostFacts reads CPU, memory, OS, kernel and hostname. Only memory is
// required: a node whose memory cannot be read cannot be scheduled on.
func HostFacts(p Paths) (*Host, error) {
	h := &Host{Attributes: map[string]string{
		"kernel.name":    runtime.GOOS,
		"cpu.arch":       runtime.GOARCH,
		"drover.version": structs.Version,
	}}
	if name, err := os.Hostname(); err == nil {
		h.Attributes["unique.hostname"] = name
	}
	if b, err := os.ReadFile(filepath.Join(p.ProcRoot, "sys/kernel/osrelease")); err == nil {
		h.Attributes["kernel.version"] = strings.TrimSpace(string(b))
	}
	if f, err := os.Open(p.OSRelease); err == nil {
		id, version := parseOSRelease(f)
		f.Close()
		if id != "" {
			h.Attributes["os.name"] = id
		}
		if version != "" {
			h.Attributes["os.version"] = version
		}
	}

	cpu := readCPU(p)
	h.Resources.Cores = cpu.cores
	h.Resources.CPU = cpu.cores * cpu.mhz
	h.Attributes["cpu.numcores"] = strconv.Itoa(cpu.cores)
	h.Attributes["cpu.frequency"] = strconv.Itoa(cpu.mhz)
	h.Attributes["cpu.totalcompute"] = strconv.Itoa(h.Resources.CPU)
	h.Attributes["cpu.frequency.source"] = cpu.source
	if cpu.model != "" {
		h.Attributes["cpu.modelname"] = cpu.model
	}

	f, err := os.Open(filepath.Join(p.ProcRoot, "meminfo"))
	if err != nil {
		return nil, fmt.Errorf("fingerprinting memory: %w", err)
	}
	defer f.Close()
	kb, err := parseMemTotal(f)
	if err != nil {
		return nil, fmt.Errorf("fingerprinting memory from %s: %w", f.Name(), err)
	}
	h.Resources.Memory = int(kb / 1024)
	h.Attributes["memory.totalbytes"] = strconv.FormatInt(kb*1024, 10)
	h.Resources.MinDynamicPort, h.Resources.MaxDynamicPort = MinDynamicPort, MaxDynamicPort
	return h, nil
}

type cpuFacts struct {
	cores, mhz int
	model      string
	source     string // where mhz came from
}

// readCPU counts processors in /proc/cpuinfo (the CPU count Go sees when
// it has none) and takes the clock from cpufreq's maximum (the stable
// figure), else the highest "cpu MHz" of /proc/cpuinfo (the current clock,
// which may be throttled), else DefaultCoreMHz.
func readCPU(p Paths) cpuFacts {
	c := cpuFacts{}
	var mhz float64
	if f, err := os.Open(filepath.Join(p.ProcRoot, "cpuinfo")); err == nil {
		c.cores, mhz, c.model = parseCPUInfo(f)
		f.Close()
	}
	if c.cores == 0 {
		c.cores = runtime.NumCPU()
	}
	if b, err := os.ReadFile(filepath.Join(p.SysRoot, "devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")); err == nil {
		if khz, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && khz > 0 {
			c.mhz, c.source = int(khz/1000), "cpufreq"
			return c
		}
	}
	if mhz > 0 {
		c.mhz, c.source = int(math.Round(mhz)), "cpuinfo"
		return c
	}
	c.mhz, c.source = DefaultCoreMHz, "default"
	return c
}

// parseCPUInfo returns the number of processors, the highest "cpu MHz"
// and the first model name.
func parseCPUInfo(r io.Reader) (cores int, mhz float64, model string) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch key {
		case "processor":
			cores++
		case "cpu MHz":
			if v, err := strconv.ParseFloat(val, 64); err == nil && v > mhz {
				mhz = v
			}
		case "model name":
			if model == "" {
				model = val
			}
		}
	}
	return cores, mhz, model
}

// parseMemTotal returns MemTotal in KiB.
func parseMemTotal(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			break
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil || kb <= 0 {
			return 0, fmt.Errorf("bad MemTotal %q", strings.TrimSpace(rest))
		}
		return kb, nil
	}
	return 0, fmt.Errorf("no MemTotal line")
}

// parseOSRelease returns ID and VERSION_ID of an os-release file.
func parseOSRelease(r io.Reader) (id, version string) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"'`)
		switch k {
		case "ID":
			id = v
		case "VERSION_ID":
			version = v
		}
	}
	return id, version
}

// CNI lists the executable plugins in dir and judges whether bridge
// networking can work: the "cni" driver entry is unhealthy, naming what
// is missing, unless every RequiredCNIPlugins is there.
func CNI(dir string) (info *structs.DriverInfo, plugins []string) {
	info = &structs.DriverInfo{Attributes: map[string]string{"cni.plugin_dir": dir}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		info.HealthDescription = fmt.Sprintf("cannot read CNI plugin dir %s: %v", dir, err)
		return info, nil
	}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() && fi.Mode()&os.ModeSymlink == 0 {
			continue
		}
		if fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 == 0 {
			continue
		}
		plugins = append(plugins, e.Name())
	}
	slices.Sort(plugins)
	info.Detected = len(plugins) > 0
	info.Attributes["cni.plugins"] = strings.Join(plugins, ",")
	var missing []string
	for _, want := range RequiredCNIPlugins {
		if !slices.Contains(plugins, want) {
			missing = append(missing, want)
		}
	}
	if len(missing) > 0 {
		info.HealthDescription = fmt.Sprintf("missing CNI plugins in %s: %s", dir, strings.Join(missing, ", "))
		return info, plugins
	}
	info.Healthy = true
	info.HealthDescription = "healthy"
	return info, plugins
}
