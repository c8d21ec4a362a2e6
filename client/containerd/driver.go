package containerd

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/identifiers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/log"
	"github.com/hashicorp/go-hclog"
	"github.com/sirupsen/logrus"

	"github.com/drover-sh/drover/client/driver"
	"github.com/drover-sh/drover/structs"
)

const (
	// Name is the driver's key in Node.Drivers.
	Name = "containerd"

	// DefaultAddress is where a system containerd listens.
	DefaultAddress = "/run/containerd/containerd.sock"
	// DefaultNamespace keeps drover's containers apart from other users of
	// the same containerd.
	DefaultNamespace = "drover"

	snapshotter = "overlayfs"
	runtimeName = "io.containerd.runc.v2"

	// reconnectDelay caps gRPC's reconnection backoff: a containerd that
	// comes back is used again within this delay.
	reconnectDelay = 2 * time.Second
	// fingerprintTimeout bounds one health probe.
	fingerprintTimeout = 5 * time.Second
)

// RegistryAuth is a username and password for one registry.
type RegistryAuth struct {
	Username string
	Password string
}

// Config configures the driver.
type Config struct {
	// Address is containerd's gRPC socket (DefaultAddress when empty).
	Address string
	// Namespace is the containerd namespace of this node's containers
	// (DefaultNamespace when empty). Give every node on a machine its own.
	Namespace string
	// PlainHTTPRegistries are registry hosts ("host:port") reached over
	// http instead of https. Loopback registries always use http.
	PlainHTTPRegistries []string
	// Auth holds credentials by registry host ("host:port", "docker.io").
	Auth map[string]RegistryAuth
	// ImageDir holds image archives (*.tar, OCI or docker) imported when a
	// task asks for an image that is not present, before any registry is
	// tried: the air-gapped path.
	ImageDir string
	// StateDir holds the small files the driver makes per task and
	// mounts into it (/etc/hostname, and /etc/hosts behind a bridge);
	// /run/drover/containerd/<namespace> when empty.
	StateDir string
	Logger   hclog.Logger
}

// Driver runs tasks with containerd. It holds one gRPC connection, one
// waiter goroutine per task it knows, and nothing else per task.
type Driver struct {
	cfg    Config
	logger hclog.Logger
	// libLog receives what containerd's client library logs (through the
	// context, with logrus): warnings and worse, into the agent's log.
	libLog     *log.Entry
	client     *client.Client
	registries *registries
	images     *keyedMutex

	// waitCtx bounds the waiters' lifetime: Close cancels it.
	waitCtx    context.Context
	waitCancel context.CancelFunc

	mu      sync.Mutex
	waiters map[string]*waiter
}

var _ driver.Driver = (*Driver)(nil)

// New returns a driver for the containerd at cfg.Address. It does not
// need containerd to be up: the connection is made when first used and
// remade when containerd comes back, and Fingerprint says why the driver
// is unusable meanwhile.
func New(cfg Config) (*Driver, error) {
	if cfg.Address == "" {
		cfg.Address = DefaultAddress
	}
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if err := identifiers.Validate(cfg.Namespace); err != nil {
		return nil, structs.NewError(structs.ErrInvalid, "namespace: %v", err)
	}
	if cfg.StateDir == "" {
		cfg.StateDir = filepath.Join("/run/drover/containerd", cfg.Namespace)
	}
	for field, p := range map[string]string{"image_dir": cfg.ImageDir, "state_dir": cfg.StateDir} {
		if p != "" && !filepath.IsAbs(p) {
			return nil, structs.NewError(structs.ErrInvalid, "%s: %q is not an absolute path", field, p)
		}
	}
	// grpc.NewClient underneath does not dial, so an absent socket is not
	// an error here.
	c, err := client.New(cfg.Address, client.WithTimeout(reconnectDelay))
	if err != nil {
		return nil, fmt.Errorf("containerd client for %s: %w", cfg.Address, err)
	}
	logger := cfg.Logger.Named("containerd")
	lib := logrus.New()
	lib.SetLevel(logrus.WarnLevel)
	lib.SetFormatter(&logrus.TextFormatter{DisableTimestamp: true})
	lib.SetOutput(logger.StandardWriter(&hclog.StandardLoggerOptions{ForceLevel: hclog.Warn}))

	ctx, cancel := context.WithCancel(context.Background())
	return &Driver{
		cfg:        cfg,
		logger:     logger,
		libLog:     logrus.NewEntry(lib),
		client:     c,
		registries: newRegistries(cfg.PlainHTTPRegistries, cfg.Auth),
		images:     newKeyedMutex(),
		waitCtx:    ctx,
		waitCancel: cancel,
		waiters:    make(map[string]*waiter),
	}, nil
}

// Close stops the waiters and closes the connection. Tasks keep running.
func (d *Driver) Close() error {
	d.waitCancel()
	return d.client.Close()
}

// Name implements driver.Driver.
func (d *Driver) Name() string { return Name }

// Address is the containerd socket the driver talks to.
func (d *Driver) Address() string { return d.cfg.Address }

// Namespace is the containerd namespace of the driver's containers.
func (d *Driver) Namespace() string { return d.cfg.Namespace }

// nsCtx puts the driver's namespace on a call's context, and its logger
// for the library's messages (else they go to stderr, at info level).
func (d *Driver) nsCtx(ctx context.Context) context.Context {
	return log.WithLogger(namespaces.WithNamespace(ctx, d.cfg.Namespace), d.libLog)
}

// Fingerprint implements driver.Driver: containerd answers, runc is on
// PATH and the overlayfs snapshotter loaded.
func (d *Driver) Fingerprint(ctx context.Context) *structs.DriverInfo {
	info := &structs.DriverInfo{
		Attributes: map[string]string{
			"containerd.address":   d.cfg.Address,
			"containerd.namespace": d.cfg.Namespace,
		},
		UpdateTime: time.Now().UnixNano(),
	}
	ctx, cancel := context.WithTimeout(d.nsCtx(ctx), fingerprintTimeout)
	defer cancel()

	// A plain dial first: it fails at once with the reason (no socket,
	// refused), where containerd's dialer retries for its whole timeout
	// and then says only "timeout".
	conn, err := net.DialTimeout("unix", d.cfg.Address, time.Second)
	if err != nil {
		info.HealthDescription = fmt.Sprintf("containerd at %s unreachable: %v", d.cfg.Address, err)
		return info
	}
	conn.Close()
	v, err := d.client.Version(ctx)
	if err != nil {
		info.HealthDescription = fmt.Sprintf("containerd at %s unreachable: %v", d.cfg.Address, err)
		return info
	}
	info.Detected = true
	info.Attributes["containerd.version"] = v.Version
	info.Attributes["containerd.revision"] = v.Revision

	// The shim finds runc on containerd's PATH; the agent's PATH is the
	// best proxy it has, and on one machine they are the same.
	runc, err := exec.LookPath("runc")
	if err != nil {
		info.Attributes["runc"] = "false"
		info.HealthDescription = "runc not found on PATH: install the runc package"
		return info
	}
	info.Attributes["runc"] = runc

	if err := d.snapshotterLoaded(ctx); err != nil {
		info.HealthDescription = err.Error()
		return info
	}
	info.Healthy = true
	info.HealthDescription = "healthy"
	return info
}

// snapshotterLoaded reports why the overlayfs snapshotter is unusable, or
// nil. containerd starts without a snapshotter whose backing filesystem
// does not support it, so pulls would fail later with a vaguer error.
func (d *Driver) snapshotterLoaded(ctx context.Context) error {
	resp, err := d.client.IntrospectionService().Plugins(ctx, "type==io.containerd.snapshotter.v1,id=="+snapshotter)
	if err != nil {
		return fmt.Errorf("containerd at %s: listing plugins: %w", d.cfg.Address, err)
	}
	if len(resp.Plugins) == 0 {
		return fmt.Errorf("containerd at %s has no %s snapshotter", d.cfg.Address, snapshotter)
	}
	if e := resp.Plugins[0].InitErr; e != nil {
		return fmt.Errorf("containerd at %s: %s snapshotter failed to load: %s", d.cfg.Address, snapshotter, e.Message)
	}
	return nil
}

// keyedMutex serialises work per key (one pull per image at a time) without
// holding a lock per key forever.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyedLock
}

type keyedLock struct {
	mu   sync.Mutex
	refs int
}

func newKeyedMutex() *keyedMutex {
	return &keyedMutex{locks: make(map[string]*keyedLock)}
}

// lock takes the key's lock and returns its unlock function.
func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	l := k.locks[key]
	if l == nil {
		l = &keyedLock{}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()

	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		k.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
