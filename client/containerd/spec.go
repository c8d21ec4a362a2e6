package containerd

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"sort"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/drover-sh/drover/client/driver"
	"github.com/drover-sh/drover/structs"
)

// minCPUShares is the kernel's floor for cpu.shares; Nomad clamps the same.
const minCPUShares = 2

var taskIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,76}$`)

// validateTaskConfig rejects what containerd would reject later with a
// less helpful message, naming the field.
func validateTaskConfig(cfg *driver.TaskConfig) error {
	if cfg == nil {
		return structs.NewError(structs.ErrInvalid, "task config: missing")
	}
	if !taskIDPattern.MatchString(cfg.ID) {
		return structs.NewError(structs.ErrInvalid, "id: %q must be 1 to 76 characters of [A-Za-z0-9_.-]", cfg.ID)
	}
	if cfg.Image == "" {
		return structs.NewError(structs.ErrInvalid, "image: must not be empty")
	}
	if cfg.CPU < 0 {
		return structs.NewError(structs.ErrInvalid, "cpu: %d must not be negative", cfg.CPU)
	}
	if cfg.MemoryMB < 0 {
		return structs.NewError(structs.ErrInvalid, "memory: %d must not be negative", cfg.MemoryMB)
	}
	for field, p := range map[string]string{
		"alloc_dir": cfg.AllocDir, "task_dir": cfg.TaskDir,
		"stdout_path": cfg.StdoutPath, "stderr_path": cfg.StderrPath, "netns_path": cfg.NetNSPath,
		"resolv_conf_path": cfg.ResolvConfPath,
	} {
		if p != "" && !filepath.IsAbs(p) {
			return structs.NewError(structs.ErrInvalid, "%s: %q is not an absolute path", field, p)
		}
	}
	return nil
}

// labels are what the runtime alone tells about a container after a crash.
func labels(cfg *driver.TaskConfig) map[string]string {
	l := map[string]string{}
	for k, v := range map[string]string{
		driver.LabelAlloc: cfg.AllocID, driver.LabelTask: cfg.TaskName,
		driver.LabelJob: cfg.JobID, driver.LabelNode: cfg.NodeID,
	} {
		if v != "" {
			l[k] = v
		}
	}
	return l
}

// specOpts builds the task's OCI spec on top of containerd's defaults and
// the image's config. cgroup receives the spec's cgroups path, which the
// exit path reads OOM kills from.
func specOpts(cfg *driver.TaskConfig, image client.Image, files taskFiles, cgroup *string) []oci.SpecOpts {
	var args []string
	if cfg.Command == "" {
		args = cfg.Args // replaces the image's cmd, keeps its entrypoint
	}
	opts := []oci.SpecOpts{oci.WithImageConfigArgs(image, args)}
	if cfg.Command != "" {
		opts = append(opts, oci.WithProcessArgs(append([]string{cfg.Command}, cfg.Args...)...))
	}
	if len(cfg.Env) > 0 {
		keys := make([]string, 0, len(cfg.Env))
		for k := range cfg.Env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		env := make([]string, 0, len(keys))
		for _, k := range keys {
			env = append(env, k+"="+cfg.Env[k])
		}
		// After the image config, so task values replace the image's.
		opts = append(opts, oci.WithEnv(env))
	}
	if cfg.WorkDir != "" {
		opts = append(opts, oci.WithProcessCwd(cfg.WorkDir))
	}
	if cfg.User != "" {
		opts = append(opts, oci.WithUser(cfg.User))
	}
	if cfg.Hostname != "" {
		opts = append(opts, oci.WithHostname(cfg.Hostname))
	}
	if cfg.CPU > 0 {
		opts = append(opts, oci.WithCPUShares(uint64(max(cfg.CPU, minCPUShares))))
	}
	if cfg.MemoryMB > 0 {
		limit := int64(cfg.MemoryMB) << 20
		// Swap equal to the limit means no swap on top: a task over its
		// memory is OOM-killed rather than slowed down.
		opts = append(opts, oci.WithMemoryLimit(uint64(limit)), oci.WithMemorySwap(limit))
	}

	var mounts []specs.Mount
	if cfg.AllocDir != "" {
		mounts = append(mounts, bindMount(cfg.AllocDir, "/alloc", "rw"))
	}
	if cfg.TaskDir != "" {
		mounts = append(mounts, bindMount(cfg.TaskDir, "/local", "rw"))
	}
	// Minimal images have no resolv.conf. Behind a bridge the client
	// writes one naming the node's DNS; otherwise the host's is right.
	resolv := "/etc/resolv.conf"
	if cfg.ResolvConfPath != "" {
		resolv = cfg.ResolvConfPath
	}
	mounts = append(mounts, bindMount(resolv, "/etc/resolv.conf", "ro"))
	if files.hostname != "" {
		mounts = append(mounts, bindMount(files.hostname, "/etc/hostname", "ro"))
	}
	if files.hosts != "" {
		mounts = append(mounts, bindMount(files.hosts, "/etc/hosts", "ro"))
	}
	if cfg.NetNSPath == "" {
		mounts = append(mounts, bindMount("/etc/hosts", "/etc/hosts", "ro"))
		opts = append(opts, oci.WithHostNamespace(specs.NetworkNamespace))
	} else {
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: cfg.NetNSPath}))
	}
	opts = append(opts, oci.WithMounts(mounts))

	opts = append(opts, func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Linux != nil {
			*cgroup = s.Linux.CgroupsPath
		}
		return nil
	})
	return opts
}

func bindMount(src, dst, mode string) specs.Mount {
	return specs.Mount{Type: "bind", Source: src, Destination: dst, Options: []string{"rbind", mode}}
}

// taskFiles are the files the driver writes for a task to mount.
type taskFiles struct {
	hostname string // mounted at /etc/hostname
	hosts    string // mounted at /etc/hosts, behind a bridge only
}

// writeTaskFiles writes a task's /etc/hostname (when it has a hostname)
// and, for a task in its own network namespace, an /etc/hosts that knows
// localhost and the hostname; a task on the host network sees the
// host's. The image's own files are left alone otherwise.
func writeTaskFiles(dir string, cfg *driver.TaskConfig) (taskFiles, error) {
	var files taskFiles
	if cfg.Hostname == "" && cfg.NetNSPath == "" {
		return files, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return files, err
	}
	if cfg.Hostname != "" {
		files.hostname = filepath.Join(dir, "hostname")
		if err := os.WriteFile(files.hostname, []byte(cfg.Hostname+"\n"), 0o644); err != nil {
			return files, err
		}
	}
	if cfg.NetNSPath != "" {
		hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
		if cfg.Hostname != "" {
			// The address CNI gave is not known here; Debian's convention
			// for a host without a fixed address keeps the name resolvable.
			hosts += "127.0.1.1\t" + cfg.Hostname + "\n"
		}
		files.hosts = filepath.Join(dir, "hosts")
		if err := os.WriteFile(files.hosts, []byte(hosts), 0o644); err != nil {
			return files, err
		}
	}
	return files, nil
}
