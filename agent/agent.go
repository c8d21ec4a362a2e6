// Package agent is one drover process: it loads the config, sets up
// logging, runs the gossip pool and the HTTP API, and starts a server
// (and later a client), shutting them down in order.
package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/drover-sh/drover/agent/gossip"
	"github.com/drover-sh/drover/client"
	"github.com/drover-sh/drover/client/containerd"
	"github.com/drover-sh/drover/server"
	"github.com/drover-sh/drover/structs"
)

// Agent is a running drover agent.
type Agent struct {
	config *Config
	logger hclog.Logger

	nodeID string
	gossip *gossip.Pool
	server *server.Server
	client *client.Client
	// serverAddrs are the servers' RPC addresses the client uses, kept
	// current from gossip (refreshServerAddrs).
	serversMu   sync.RWMutex
	serverAddrs []string
	// local is the client as the HTTP endpoints see it.
	local allocClient
	// driver and containerd are the client's runtime: the containerd
	// driver, and the containerd the agent runs itself (nil when the
	// config names a socket).
	driver     *containerd.Driver
	containerd *containerd.Managed

	httpListener net.Listener
	httpServer   *http.Server

	devDataDir string
	// dataDirLock is held while the agent runs (lockDataDir), bridgeLock
	// while its client does (lockBridge).
	dataDirLock, bridgeLock *os.File

	joinCancel   context.CancelFunc
	gcCancel     context.CancelFunc
	shutdownOnce sync.Once
	wg           sync.WaitGroup
}

// New starts an agent from a validated config.
func New(config *Config, logger hclog.Logger) (*Agent, error) {
	if err := config.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	a := &Agent{config: config, logger: logger}
	if config.Server.Enabled {
		var ctx context.Context
		ctx, a.gcCancel = context.WithCancel(context.Background())
		tuneGC(ctx)
	}
	// From here a failure undoes what was done with Shutdown.
	fail := func(err error) (*Agent, error) {
		a.shutdown(false, false)
		return nil, err
	}
	if config.Dev && config.DataDir == "" {
		dir, err := os.MkdirTemp("", "drover-dev-")
		if err != nil {
			return fail(err)
		}
		a.devDataDir = dir
		config.DataDir = dir
	}
	if err := os.MkdirAll(config.DataDir, 0o700); err != nil {
		return fail(fmt.Errorf("creating data dir: %w", err))
	}
	lock, err := lockDataDir(config.DataDir)
	if err != nil {
		return fail(err)
	}
	a.dataDirLock = lock
	id, err := loadOrCreateNodeID(config.DataDir)
	if err != nil {
		return fail(err)
	}
	a.nodeID = id
	if config.Name == "" {
		config.Name = defaultName(config)
	}

	if err := a.start(); err != nil {
		return fail(err)
	}
	return a, nil
}

func (a *Agent) start() error {
	c := a.config
	adv := c.advertiseIP()

	// Listen for HTTP first: with port 0 the real port goes into gossip.
	ln, err := net.Listen("tcp", net.JoinHostPort(c.BindAddr, strconv.Itoa(c.Ports.HTTP)))
	if err != nil {
		return portHint(fmt.Errorf("listening for http: %w", err), "-http-port")
	}
	a.httpListener = ln
	httpPort := ln.Addr().(*net.TCPAddr).Port

	if c.Server.Enabled {
		scfg := server.DefaultConfig()
		scfg.NodeName = c.Name
		scfg.NodeID = a.nodeID
		scfg.Region = c.Region
		scfg.Datacenter = c.Datacenter
		scfg.DataDir = filepath.Join(c.DataDir, "server")
		scfg.RPCAddr = &net.TCPAddr{IP: net.ParseIP(c.BindAddr), Port: c.Ports.RPC}
		scfg.RPCAdvertise = &net.TCPAddr{IP: net.ParseIP(adv), Port: c.Ports.RPC}
		scfg.BootstrapExpect = c.Server.BootstrapExpect
		if c.Dev {
			scfg.BootstrapExpect = 1
		}
		scfg.RaftMultiplier = c.Server.RaftMultiplier
		scfg.Logger = a.logger
		// The server starts before gossip so that gossip can carry its
		// real RPC port; membership is resolved lazily.
		srv, err := server.New(scfg, (*lazyMembership)(a))
		if err != nil {
			return portHint(err, "-rpc-port")
		}
		a.server = srv
	}

	meta := structs.Member{
		Region:     c.Region,
		Datacenter: c.Datacenter,
		HTTPAddr:   net.JoinHostPort(adv, strconv.Itoa(httpPort)),
		Version:    structs.Version,
		Role:       structs.RoleClient,
	}
	if a.server != nil {
		meta.Role = structs.RoleServer
		meta.RPCAddr = a.server.RPCAddr().String()
		meta.RaftID = a.nodeID
		meta.BootstrapExpect = c.Server.BootstrapExpect
	}
	if c.Client.Enabled {
		meta.NodeID = a.nodeID
	}
	pool, err := gossip.New(gossip.Config{
		Name:          c.Name,
		BindAddr:      c.BindAddr,
		BindPort:      c.Ports.Gossip,
		AdvertiseAddr: adv,
		AdvertisePort: c.Ports.Gossip,
		Meta:          meta,
		Fast:          c.Dev || c.FastGossip,
		PeersPath:     filepath.Join(c.DataDir, "gossip", "peers.json"),
		Logger:        a.logger,
	})
	if err != nil {
		return portHint(err, "-gossip-port")
	}
	a.gossip = pool
	if a.server != nil {
		pool.Subscribe(a.server.HandleMemberEvent)
		// Our own join event may have fired before subscribing.
		a.server.HandleMemberEvent(structs.MemberEvent{Type: structs.MemberEventJoin, Member: pool.LocalMember()})
	}

	if c.Client.Enabled {
		if err := a.startClient(meta.HTTPAddr); err != nil {
			return err
		}
	}

	a.httpServer = &http.Server{
		Handler:           newHTTPHandler(a),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          a.logger.Named("http").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := a.httpServer.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.logger.Error("http server failed", "error", err)
		}
	}()

	ctx, cancel := context.WithCancel(context.Background())
	a.joinCancel = cancel
	// -join, and the servers this agent knew when it last ran: a restart
	// then needs no -join, and does not depend on -join targets that
	// moved or died since.
	if targets := append(slices.Clone(c.Join), pool.Previous()...); len(targets) > 0 {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.retryJoin(ctx, targets)
		}()
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.reconnect(ctx)
	}()
	a.logger.Info("agent started", "name", c.Name, "http", a.HTTPAddr(), "node_id", a.nodeID,
		"server", c.Server.Enabled, "data_dir", c.DataDir)
	return nil
}

// retryJoin joins the given gossip addresses, retrying until one answers
// or another member finds this agent first: the agents of a new cluster
// start in any order.
func (a *Agent) retryJoin(ctx context.Context, addrs []string) {
	full := make([]string, len(addrs))
	for i, addr := range addrs {
		full[i] = gossip.JoinAddr(addr, DefaultGossipPort)
	}
	backoff := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		if a.gossip.NumAlive() > 1 {
			return
		}
		n, err := a.gossip.Join(full)
		if err == nil && n > 0 {
			a.logger.Info("joined gossip pool", "contacted", n)
			return
		}
		if attempt == 1 || attempt%10 == 0 {
			a.logger.Warn("join failed, retrying", "addresses", full, "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		if backoff < 5*time.Second {
			backoff *= 2
		}
	}
}

// Join joins gossip addresses now (PUT /v1/agent/join).
func (a *Agent) Join(addrs []string) (int, error) {
	full := make([]string, len(addrs))
	for i, addr := range addrs {
		full[i] = gossip.JoinAddr(addr, DefaultGossipPort)
	}
	return a.gossip.Join(full)
}

// Shutdown stops the agent. With leave, it first tells the gossip pool it
// is leaving, so others see "left" at once rather than a failure later.
func (a *Agent) Shutdown(leave bool) error { return a.shutdown(leave, true) }

// shutdown is Shutdown; after a failed start it is quiet, since a log
// line would only stand between the user and the error.
func (a *Agent) shutdown(leave, logIt bool) error {
	var err error
	a.shutdownOnce.Do(func() {
		if logIt {
			a.logger.Info("agent shutting down", "leave", leave)
		}
		if a.joinCancel != nil {
			a.joinCancel()
		}
		if a.gcCancel != nil {
			a.gcCancel()
		}
		if a.gossip != nil {
			if leave {
				if lerr := a.gossip.Leave(5 * time.Second); lerr != nil {
					a.logger.Warn("failed to leave gossip pool", "error", lerr)
				}
			} else {
				a.gossip.Shutdown()
			}
		}
		if a.httpServer != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			a.httpServer.Shutdown(ctx)
			cancel()
		} else if a.httpListener != nil {
			a.httpListener.Close()
		}
		a.stopClient()
		if a.server != nil {
			err = a.server.Shutdown()
		}
		a.wg.Wait()
		// The bridge's lock file under /run goes with its lock; the data
		// dir's stays in the data dir.
		releaseLock(a.bridgeLock, true)
		releaseLock(a.dataDirLock, false)
		if a.devDataDir != "" {
			os.RemoveAll(a.devDataDir)
		}
	})
	return err
}

// HTTPAddr is the address the HTTP API listens on.
func (a *Agent) HTTPAddr() string {
	if a.httpListener == nil {
		return ""
	}
	return a.httpListener.Addr().String()
}

// Server returns the agent's server, or nil.
func (a *Agent) Server() *server.Server { return a.server }

// Gossip returns the agent's gossip pool.
func (a *Agent) Gossip() *gossip.Pool { return a.gossip }

// NodeID is the agent's persistent ID.
func (a *Agent) NodeID() string { return a.nodeID }

// rpc calls an endpoint on this agent's server, or, on an agent that
// runs only a client, through the client on one of the servers gossip
// knows.
func (a *Agent) rpc(method string, args, reply any) error {
	switch {
	case a.server != nil:
		return a.server.RPC(method, args, reply)
	case a.client != nil:
		return a.client.RPC(method, args, reply)
	}
	return structs.NewError(structs.ErrUnavailable, "this agent runs neither a server nor a client")
}

// allocClient is the local client for the client-side HTTP endpoints, nil
// when this agent runs none.
func (a *Agent) allocClient() allocClient { return a.local }

// lazyMembership lets the server be built before the gossip pool.
type lazyMembership Agent

func (l *lazyMembership) Members() []structs.Member {
	if l.gossip == nil {
		return nil
	}
	return l.gossip.Members()
}

func (l *lazyMembership) Join(addrs []string) (int, error) {
	if l.gossip == nil {
		return 0, errors.New("gossip not started")
	}
	return (*Agent)(l).Join(addrs)
}

// loadOrCreateNodeID returns the node ID kept in the data dir, making one
// the first time. It is the Raft server ID, so it must survive restarts.
func loadOrCreateNodeID(dir string) (string, error) {
	path := filepath.Join(dir, "node-id")
	b, err := os.ReadFile(path)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if len(id) == 36 {
			return id, nil
		}
		return "", fmt.Errorf("%s holds %q, not a node id", path, id)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	id := structs.GenerateUUID()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o600); err != nil {
		return "", err
	}
	return id, os.Rename(tmp, path)
}

// defaultName is the hostname, made unique per address when several
// agents share a machine (127.0.0.1/2/3).
func defaultName(c *Config) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "drover"
	}
	if ip := net.ParseIP(c.BindAddr); ip != nil && !ip.IsUnspecified() {
		host += "-" + c.BindAddr
	}
	if c.Ports.Gossip != DefaultGossipPort {
		host += "-" + strconv.Itoa(c.Ports.Gossip)
	}
	return host
}

// portHint adds to a port already in use what the user can do about it:
// another agent on the address usually holds it.
func portHint(err error, flag string) error {
	// memberlist formats the listener's error rather than wrapping it.
	if !errors.Is(err, syscall.EADDRINUSE) && !strings.Contains(err.Error(), "address already in use") {
		return err
	}
	return fmt.Errorf("%w (another agent on this address? stop it, or give this one another -bind or %s)", err, flag)
}
