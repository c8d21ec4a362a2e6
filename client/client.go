// Package client is the node agent: it fingerprints the machine, registers
// the node with the servers and heartbeats, watches the node's allocations
// with blocking queries, and runs each allocation's tasks through a
// driver.Driver (containerd in production, a scriptable mock in tests),
// reporting their states back in batches. Its local state (client/state)
// lets a restarted agent reattach to the containers that kept running.
//
// On disk, under DataDir:
//
//	client/state.db                              allocations and task handles
//	client/allocs/<alloc_id>/alloc/              shared by the tasks, mounted at /alloc
//	client/allocs/<alloc_id>/alloc/logs/<task>.stdout, .stderr, rotated .1 (newest) .. .N
//	client/allocs/<alloc_id>/<task>/local/       the task's own dir, mounted at /local
package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/drover-sh/drover/client/dns"
	"github.com/drover-sh/drover/client/driver"
	"github.com/drover-sh/drover/client/fingerprint"
	"github.com/drover-sh/drover/client/state"
	"github.com/drover-sh/drover/server/pool"
	"github.com/drover-sh/drover/structs"
)

// Defaults for Config fields left zero.
const (
	DefaultCNIPluginDir        = "/usr/lib/cni"
	DefaultLogMaxBytes         = 10 << 20
	DefaultLogMaxFiles         = 2
	DefaultFingerprintInterval = 15 * time.Second
	DefaultShutdownWait        = 10 * time.Second
	DefaultUpdateWindow        = 50 * time.Millisecond
	DefaultLogRotateInterval   = time.Second
	DefaultGCMaxAllocs         = 50
	DefaultGCInterval          = time.Minute
)

// Config configures a client. The agent fills it from its own config.
type Config struct {
	// NodeID is the node's stable ID; empty takes the one stored in the
	// client's state, or a new one that is then stored.
	NodeID     string
	Name       string // default: the hostname
	Datacenter string // default: dc1
	NodeClass  string
	Meta       map[string]string
	DataDir    string
	// HTTPAddr is the agent's HTTP address, put on the node so servers
	// can proxy log requests to it.
	HTTPAddr string
	// ServiceAddress is the node address that service instances in the
	// host's network are registered at; empty takes HTTPAddr's host when
	// it names one, else 127.0.0.1.
	ServiceAddress string
	// DNSAddr is where the node's DNS server answers for
	// <service>.service.drover (host:port); empty runs none. Once a
	// bridge exists it also answers on the bridge gateway, port 53.
	DNSAddr string

	// Servers returns the RPC addresses of the servers believed alive
	// (from gossip). It may change at any time and be empty for a while.
	Servers func() []string

	// Driver runs the tasks.
	Driver driver.Driver
	// Network sets up allocation networks (bridge mode); nil runs every
	// allocation in the host's network.
	Network Network

	CNIPluginDir string // default /usr/lib/cni; fingerprinted only
	// MinDynamicPort and MaxDynamicPort bound the host ports the
	// scheduler picks for this node's dynamic ports; zero takes the
	// fingerprint's defaults (20000-32000).
	MinDynamicPort int
	MaxDynamicPort int
	// Reserved is kept for the OS: the scheduler subtracts it from the
	// node's resources.
	Reserved *structs.NodeResources

	// LogMaxBytes is the size past which a task's log file is rotated;
	// LogMaxFiles how many rotated files are kept beside it.
	LogMaxBytes int64
	LogMaxFiles int
	// OtherLogs are more files rotated the same way while the client
	// runs, such as the managed containerd's log, which containerd
	// writes to directly.
	OtherLogs []string
	// GCMaxAllocs is how many allocations the client holds before it
	// destroys its oldest finished ones (their directories, logs and
	// local state); the servers keep their records.
	GCMaxAllocs int

	Logger hclog.Logger

	// Tuning, zero values take the defaults above.
	FingerprintInterval time.Duration // re-fingerprint drivers and CNI
	UpdateWindow        time.Duration // status updates within it share one RPC
	LogRotateInterval   time.Duration // how often log sizes are checked
	GCInterval          time.Duration // how often GCMaxAllocs is enforced
	// ShutdownWait bounds how long Shutdown waits for allocation runners
	// to let go: they do at once, unless a driver call hangs.
	ShutdownWait time.Duration
	// FingerprintPaths are the host files read; zero means the host's.
	FingerprintPaths fingerprint.Paths
}

func (c *Config) fill() error {
	if c.DataDir == "" {
		return structs.NewError(structs.ErrInvalid, "client config data_dir: required")
	}
	if c.Driver == nil {
		return structs.NewError(structs.ErrInvalid, "client config driver: required")
	}
	if c.Servers == nil {
		return structs.NewError(structs.ErrInvalid, "client config servers: required")
	}
	if c.LogMaxBytes < 0 {
		return structs.NewError(structs.ErrInvalid, "client config log_max_bytes: must be >= 0, got %d", c.LogMaxBytes)
	}
	if c.GCMaxAllocs < 0 {
		return structs.NewError(structs.ErrInvalid, "client config gc_max_allocs: must be >= 0, got %d", c.GCMaxAllocs)
	}
	if c.LogMaxFiles < 0 {
		return structs.NewError(structs.ErrInvalid, "client config log_max_files: must be >= 0, got %d", c.LogMaxFiles)
	}
	if c.MinDynamicPort == 0 && c.MaxDynamicPort == 0 {
		c.MinDynamicPort, c.MaxDynamicPort = fingerprint.MinDynamicPort, fingerprint.MaxDynamicPort
	}
	if c.MinDynamicPort < 1 || c.MaxDynamicPort > 65535 || c.MinDynamicPort > c.MaxDynamicPort {
		return structs.NewError(structs.ErrInvalid, "client config dynamic ports: need 1 <= min <= max <= 65535, got %d-%d",
			c.MinDynamicPort, c.MaxDynamicPort)
	}
	if r := c.Reserved; r != nil && (r.CPU < 0 || r.Memory < 0) {
		return structs.NewError(structs.ErrInvalid, "client config reserved: cpu and memory must be >= 0")
	}
	if c.Name == "" {
		name, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("client config name: none given and no hostname: %w", err)
		}
		c.Name = name
	}
	if c.Datacenter == "" {
		c.Datacenter = "dc1"
	}
	if c.CNIPluginDir == "" {
		c.CNIPluginDir = DefaultCNIPluginDir
	}
	if c.LogMaxBytes == 0 {
		c.LogMaxBytes = DefaultLogMaxBytes
	}
	if c.LogMaxFiles == 0 {
		c.LogMaxFiles = DefaultLogMaxFiles
	}
	if c.FingerprintInterval <= 0 {
		c.FingerprintInterval = DefaultFingerprintInterval
	}
	if c.UpdateWindow <= 0 {
		c.UpdateWindow = DefaultUpdateWindow
	}
	if c.LogRotateInterval <= 0 {
		c.LogRotateInterval = DefaultLogRotateInterval
	}
	if c.GCMaxAllocs == 0 {
		c.GCMaxAllocs = DefaultGCMaxAllocs
	}
	if c.GCInterval <= 0 {
		c.GCInterval = DefaultGCInterval
	}
	if c.ShutdownWait <= 0 {
		c.ShutdownWait = DefaultShutdownWait
	}
	if c.FingerprintPaths == (fingerprint.Paths{}) {
		c.FingerprintPaths = fingerprint.DefaultPaths()
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	return nil
}

// Client is a running node agent.
type Client struct {
	cfg      Config
	logger   hclog.Logger
	driver   driver.Driver
	db       *state.DB
	pool     *pool.Pool
	servers  *serverPicker
	host     *fingerprint.Host
	rotator  *logRotator
	updater  *updater
	services *serviceSync
	dns      *dns.Server // nil without DNSAddr

	// ctx ends at Shutdown: loops return and task runners let go of
	// their tasks without stopping them.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	nodeMu sync.RWMutex
	node   *structs.Node

	registered     chan struct{} // closed after the first registration
	reregister     chan struct{} // the fingerprint changed
	registerOnce   sync.Once
	heartbeatTTL   time.Duration // guarded by nodeMu
	shutdownOnce   sync.Once
	allocsMu       sync.RWMutex
	allocs         map[string]*allocRunner
	collected      map[string]bool // garbage-collected here, still on the servers
	gcKick         chan struct{}
	destroyWG      sync.WaitGroup // allocation runners being destroyed
	sweepPending   bool           // orphan sweep not yet done (watch loop only)
	firstWatchDone bool           // watch loop only
}

// New starts a client: it restores the allocations of an earlier run
// (reattaching to their tasks), then registers, heartbeats and watches in
// the background.
func New(cfg Config) (*Client, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	db, err := state.Open(filepath.Join(cfg.DataDir, "client", "state.db"))
	if err != nil {
		return nil, err
	}
	c := &Client{
		cfg:          cfg,
		logger:       cfg.Logger.Named("client"),
		driver:       cfg.Driver,
		db:           db,
		pool:         pool.New(5 * time.Second),
		registered:   make(chan struct{}),
		reregister:   make(chan struct{}, 1),
		allocs:       make(map[string]*allocRunner),
		collected:    make(map[string]bool),
		gcKick:       make(chan struct{}, 1),
		sweepPending: true,
	}
	c.servers = newServerPicker(cfg.Servers)
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if err := c.init(); err != nil {
		c.cancel()
		c.pool.Close()
		db.Close()
		return nil, err
	}
	c.rotator = newLogRotator(cfg.LogMaxBytes, cfg.LogMaxFiles, c.logger)
	c.rotator.add(cfg.OtherLogs...)
	c.updater = newUpdater(c)
	c.services = newServiceSync(c)
	if err := c.startDNS(); err != nil {
		c.cancel()
		c.pool.Close()
		db.Close()
		return nil, err
	}
	c.restore()

	c.wg.Add(7)
	go func() { defer c.wg.Done(); c.gcLoop(c.ctx) }()
	go func() { defer c.wg.Done(); c.services.run(c.ctx) }()
	go func() { defer c.wg.Done(); c.rotator.run(c.ctx, cfg.LogRotateInterval) }()
	go func() { defer c.wg.Done(); c.updater.run(c.ctx) }()
	go func() { defer c.wg.Done(); c.nodeLoop() }()
	go func() { defer c.wg.Done(); c.fingerprintLoop() }()
	go func() { defer c.wg.Done(); c.watchLoop() }()
	return c, nil
}

// init settles the node's ID and fingerprint.
func (c *Client) init() error {
	id := c.cfg.NodeID
	if id == "" {
		stored, err := c.db.GetMeta("node_id")
		if err != nil {
			return err
		}
		id = stored
	}
	if id == "" {
		id = structs.GenerateUUID()
	}
	if err := c.db.PutMeta("node_id", id); err != nil {
		return err
	}
	c.cfg.NodeID = id
	c.logger = c.logger.With("node_id", id)

	host, err := fingerprint.HostFacts(c.cfg.FingerprintPaths)
	if err != nil {
		return err
	}
	host.Resources.MinDynamicPort, host.Resources.MaxDynamicPort = c.cfg.MinDynamicPort, c.cfg.MaxDynamicPort
	c.host = host
	c.node = c.buildNode(c.fingerprintDrivers())
	c.logger.Info("node fingerprinted", "cpu_mhz", host.Resources.CPU, "memory_mb", host.Resources.Memory,
		"cores", host.Resources.Cores, "driver", c.driver.Name(), "driver_healthy", c.node.Drivers[c.driver.Name()].Healthy)
	return nil
}

// Shutdown stops the client without stopping its tasks: they keep
// running, and a client started later on the same data dir reattaches.
func (c *Client) Shutdown() error {
	c.shutdownOnce.Do(func() {
		c.logger.Info("client shutting down; tasks keep running")
		// Last states first, for at most a second: the servers may be
		// gone too.
		flushed := make(chan error, 1)
		go func() { flushed <- c.updater.flush() }()
		select {
		case err := <-flushed:
			if err != nil {
				c.logger.Warn("failed to send the last allocation states", "error", err)
			}
		case <-time.After(time.Second):
			c.logger.Warn("servers did not take the last allocation states within a second")
		}
		c.cancel()
		// Blocking queries wait on the servers for up to their max
		// time; closing the connections ends them now.
		c.pool.Close()
		c.wg.Wait()
		if c.dns != nil {
			c.dns.Close()
		}
		c.allocsMu.RLock()
		runners := make([]*allocRunner, 0, len(c.allocs))
		for _, ar := range c.allocs {
			runners = append(runners, ar)
		}
		c.allocsMu.RUnlock()
		stopped := make(chan struct{})
		go func() {
			for _, ar := range runners {
				<-ar.waitCh
			}
			c.destroyWG.Wait()
			close(stopped)
		}()
		select {
		case <-stopped:
		case <-time.After(c.cfg.ShutdownWait):
			// A containerd that stopped answering must not keep the
			// agent from exiting; the next start picks up where this
			// one left off (reattach, or destroy what is gone).
			c.logger.Warn("allocation runners did not stop in time; shutting down without them", "waited", c.cfg.ShutdownWait)
		}
		c.db.Close()
	})
	return nil
}

// Node returns a copy of the node as last registered (or about to be).
func (c *Client) Node() *structs.Node {
	c.nodeMu.RLock()
	defer c.nodeMu.RUnlock()
	return c.node.Copy()
}

// NodeID is the node's ID.
func (c *Client) NodeID() string { return c.cfg.NodeID }

// NumAllocs is how many allocations the client holds, terminal ones not
// yet garbage collected included.
func (c *Client) NumAllocs() int {
	c.allocsMu.RLock()
	defer c.allocsMu.RUnlock()
	return len(c.allocs)
}

// NumRunningAllocs is how many allocations have a task running.
func (c *Client) NumRunningAllocs() int {
	n := 0
	for _, a := range c.Allocs() {
		if a.ClientStatus == structs.AllocClientRunning {
			n++
		}
	}
	return n
}

// Registered is closed once the node has registered with a server.
func (c *Client) Registered() <-chan struct{} { return c.registered }

// allocRoot is the directory of one allocation.
func (c *Client) allocRoot(allocID string) string {
	return filepath.Join(c.cfg.DataDir, "client", "allocs", allocID)
}

// nodeAddr is the address tasks on the host's network are reached at:
// the agent's advertised address.
func (c *Client) nodeAddr() string {
	if host, _, err := net.SplitHostPort(c.cfg.HTTPAddr); err == nil && host != "" {
		if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
			return host
		}
	}
	return "127.0.0.1"
}

// getAlloc returns the runner of an allocation on this node, or a coded
// not-found error.
func (c *Client) getAlloc(allocID string) (*allocRunner, error) {
	c.allocsMu.RLock()
	ar := c.allocs[allocID]
	c.allocsMu.RUnlock()
	if ar == nil {
		return nil, c.notOnNode(allocID)
	}
	return ar, nil
}

// sleep waits d or until the client shuts down; false means shutdown.
func (c *Client) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// errShutdown is returned by calls cut short by Shutdown.
var errShutdown = errors.New("client is shutting down")
