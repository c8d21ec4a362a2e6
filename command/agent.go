package command

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/urfave/cli/v2"

	"github.com/drover-sh/drover/agent"
)

// agentCommand is `drover agent`: one long-running process that serves the
// HTTP API and runs a server (and later a client).
func agentCommand() *cli.Command {
	return &cli.Command{
		Name:      "agent",
		Usage:     "Run a drover agent: a control-plane server, a client node, or both",
		UsageText: "drover agent [options]",
		Description: `Runs a drover agent in the foreground until SIGINT or SIGTERM, which make
it leave the gossip pool and shut Raft down cleanly; started again on the
same -data-dir it recovers all state. A client node runs allocations in
containerd: its own managed containerd under the data dir unless
-containerd-socket names one; its tasks keep running across agent restarts.

Examples:
  drover agent -dev
  drover agent -server -bootstrap-expect 3 -data-dir /var/lib/drover \
      -bind 10.0.0.1 -join 10.0.0.2 -join 10.0.0.3
  drover agent -client -data-dir /var/lib/drover -join 10.0.0.1`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Usage: "YAML config file; flags override it"},
			&cli.BoolFlag{Name: "dev", Usage: "one server and client on 127.0.0.1 with a temporary data dir"},
			&cli.BoolFlag{Name: "server", Usage: "run a control-plane server"},
			&cli.BoolFlag{Name: "client", Usage: "run a client node that runs allocations"},
			&cli.StringFlag{Name: "containerd-socket", Usage: "use this containerd instead of a managed one"},
			&cli.StringFlag{Name: "containerd-namespace", Usage: "containerd namespace of this node's containers", Value: "drover"},
			&cli.StringFlag{Name: "node-class", Usage: "node class, for constraints"},
			&cli.StringSliceFlag{Name: "meta", Usage: "node metadata key=value (repeatable)"},
			&cli.StringFlag{Name: "image-dir", Usage: "directory of image archives (*.tar) imported when an image is missing"},
			&cli.StringSliceFlag{Name: "plain-http-registry", Usage: "registry host:port pulled over plain HTTP (repeatable)"},
			&cli.StringFlag{Name: "network-bridge", Usage: "bridge of the allocations' networks (default drover0); unique per client on a machine"},
			&cli.StringFlag{Name: "network-subnet", Usage: "IPv4 subnet of the bridge (default 172.26.64.0/20); unique per client on a machine"},
			&cli.StringFlag{Name: "dns-addr", Usage: "ip:port of the node's DNS server for <service>.service.drover (default 127.0.0.1:8600; \"\" for none); unique per client on a machine"},
			&cli.StringFlag{Name: "cni-conf-dir", Usage: "directory of user conflists: network mode cni/NAME loads NAME.conflist"},
			&cli.IntFlag{Name: "bootstrap-expect", Usage: "bootstrap Raft once this many servers see each other"},
			&cli.StringFlag{Name: "data-dir", Usage: "where the agent keeps its state"},
			&cli.StringFlag{Name: "bind", Usage: "address to listen on", Value: "0.0.0.0"},
			&cli.StringFlag{Name: "advertise", Usage: "address other agents reach this one at (default: -bind, or the first private IP)"},
			&cli.StringSliceFlag{Name: "join", Usage: "gossip address of an agent to join (repeatable); retried until it answers"},
			&cli.StringFlag{Name: "name", Usage: "node name, unique in the cluster (default: hostname, plus the bind address)"},
			&cli.StringFlag{Name: "region", Usage: "region", Value: "global"},
			&cli.StringFlag{Name: "dc", Aliases: []string{"datacenter"}, Usage: "datacenter", Value: "dc1"},
			&cli.IntFlag{Name: "http-port", Usage: "HTTP API port", Value: agent.DefaultHTTPPort},
			&cli.IntFlag{Name: "rpc-port", Usage: "RPC and Raft port", Value: agent.DefaultRPCPort},
			&cli.IntFlag{Name: "gossip-port", Usage: "gossip port (TCP and UDP)", Value: agent.DefaultGossipPort},
			&cli.IntFlag{Name: "raft-multiplier", Usage: "scale Raft timeouts (1 = LAN)", Value: 1},
			&cli.StringFlag{Name: "log-level", Usage: "trace, debug, info, warn or error", Value: "info"},
			&cli.BoolFlag{Name: "log-json", Usage: "log as JSON lines"},
			&cli.BoolFlag{Name: "enable-debug", Usage: "serve Go's profiler at /debug/pprof/"},
		},
		Action: runAgent,
	}
}

func runAgent(c *cli.Context) error {
	cfg, err := agentConfig(c)
	if err != nil {
		return err
	}
	logger := hclog.New(&hclog.LoggerOptions{
		Name:       "agent",
		Level:      hclog.LevelFromString(cfg.LogLevel),
		JSONFormat: cfg.LogJSON,
		Output:     os.Stderr,
	})
	if logger.GetLevel() == hclog.NoLevel {
		return fmt.Errorf("-log-level %q is not one of trace, debug, info, warn, error", cfg.LogLevel)
	}
	a, err := agent.New(cfg, logger)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "==> drover agent running: name %s, http %s, data dir %s\n", cfg.Name, a.HTTPAddr(), cfg.DataDir)

	sigCh := make(chan os.Signal, 2)
	signal.Notify(sigCh, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	for sig := range sigCh {
		if sig == syscall.SIGHUP {
			logger.Info("ignoring SIGHUP: configuration reload is not supported yet")
			continue
		}
		logger.Info("caught signal, shutting down", "signal", sig)
		go func() {
			// A second signal gives up on a clean shutdown.
			<-sigCh
			os.Exit(1)
		}()
		if err := a.Shutdown(true); err != nil {
			return fmt.Errorf("shutdown: %w", err)
		}
		return nil
	}
	return nil
}

// agentConfig layers defaults, the -config file and explicitly set flags.
func agentConfig(c *cli.Context) (*agent.Config, error) {
	cfg := agent.DefaultConfig()
	if path := c.String("config"); path != "" {
		if err := agent.LoadConfigFile(cfg, path); err != nil {
			return nil, err
		}
	}
	if c.Bool("dev") {
		cfg.Dev = true
		cfg.Server.Enabled = true
		cfg.Client.Enabled = true
		cfg.BindAddr = "127.0.0.1"
		cfg.Server.BootstrapExpect = 1
		cfg.LogLevel = "info"
	}
	set := func(name string, apply func()) {
		if c.IsSet(name) {
			apply()
		}
	}
	set("server", func() { cfg.Server.Enabled = c.Bool("server") })
	set("client", func() { cfg.Client.Enabled = c.Bool("client") })
	set("dns-addr", func() { cfg.Client.DNS.Addr = c.String("dns-addr") })
	set("containerd-socket", func() { cfg.Client.Containerd.Address = c.String("containerd-socket") })
	set("containerd-namespace", func() { cfg.Client.Containerd.Namespace = c.String("containerd-namespace") })
	set("node-class", func() { cfg.Client.NodeClass = c.String("node-class") })
	set("image-dir", func() { cfg.Client.ImageDir = c.String("image-dir") })
	set("network-bridge", func() { cfg.Client.Network.BridgeName = c.String("network-bridge") })
	set("network-subnet", func() { cfg.Client.Network.Subnet = c.String("network-subnet") })
	set("cni-conf-dir", func() { cfg.Client.Network.CNIConfDir = c.String("cni-conf-dir") })
	set("plain-http-registry", func() {
		cfg.Client.PlainHTTPRegistries = append(cfg.Client.PlainHTTPRegistries, c.StringSlice("plain-http-registry")...)
	})
	var metaErr error
	set("meta", func() {
		for _, kv := range c.StringSlice("meta") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				metaErr = fmt.Errorf("-meta %q: want key=value", kv)
				return
			}
			if cfg.Client.Meta == nil {
				cfg.Client.Meta = map[string]string{}
			}
			cfg.Client.Meta[k] = v
		}
	})
	if metaErr != nil {
		return nil, metaErr
	}
	set("bootstrap-expect", func() { cfg.Server.BootstrapExpect = c.Int("bootstrap-expect") })
	set("data-dir", func() { cfg.DataDir = c.String("data-dir") })
	set("bind", func() { cfg.BindAddr = c.String("bind") })
	set("advertise", func() { cfg.Advertise = c.String("advertise") })
	set("join", func() { cfg.Join = append(cfg.Join, c.StringSlice("join")...) })
	set("name", func() { cfg.Name = c.String("name") })
	set("region", func() { cfg.Region = c.String("region") })
	set("dc", func() { cfg.Datacenter = c.String("dc") })
	set("http-port", func() { cfg.Ports.HTTP = c.Int("http-port") })
	set("rpc-port", func() { cfg.Ports.RPC = c.Int("rpc-port") })
	set("gossip-port", func() { cfg.Ports.Gossip = c.Int("gossip-port") })
	set("raft-multiplier", func() { cfg.Server.RaftMultiplier = c.Int("raft-multiplier") })
	set("log-level", func() { cfg.LogLevel = c.String("log-level") })
	set("log-json", func() { cfg.LogJSON = c.Bool("log-json") })
	set("enable-debug", func() { cfg.EnableDebug = c.Bool("enable-debug") })
	if cfg.Server.Enabled && cfg.Server.BootstrapExpect == 0 && !cfg.Dev && len(cfg.Join) == 0 {
		return nil, fmt.Errorf("a server needs -bootstrap-expect N to form a cluster, or -join to join one")
	}
	return cfg, nil
}
