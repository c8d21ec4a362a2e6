package command

import (
	"context"
	"fmt"
	"os/signal"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/urfave/cli/v2"

	"github.com/drover-sh/drover/client/nodesim"
)

// nodesimCommand is `drover nodesim`: hollow client nodes for testing and
// benchmarking the servers at scale without containers.
func nodesimCommand() *cli.Command {
	return &cli.Command{
		Name:      "nodesim",
		Usage:     "Simulate client nodes against real servers (testing and benchmarks)",
		UsageText: "drover nodesim -server ADDR [-server ADDR ...] [-nodes N] [options]",
		Description: `Registers N simulated nodes through the servers' RPC port, heartbeats them
at the TTL the servers ask for, and reports every allocation placed on them
as running (and complete once stopped), without running anything. Stats are
printed every -stats-interval until SIGINT or SIGTERM.

Examples:
  drover nodesim -server 127.0.0.1:4751 -nodes 100
  drover nodesim -server 10.0.0.1:4751 -server 10.0.0.2:4751 -nodes 5000 -cpu 8000 -memory 16384`,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "server", Usage: "RPC address of a server (repeatable)", Required: true},
			&cli.IntFlag{Name: "nodes", Usage: "how many nodes to simulate", Value: 10},
			&cli.StringFlag{Name: "name", Usage: "node name prefix (names are PREFIX-i)", Value: "sim"},
			&cli.StringFlag{Name: "dc", Aliases: []string{"datacenter"}, Usage: "datacenter of the nodes", Value: "dc1"},
			&cli.StringFlag{Name: "node-class", Usage: "node class of the nodes"},
			&cli.IntFlag{Name: "cpu", Usage: "CPU of each node, MHz", Value: 4000},
			&cli.IntFlag{Name: "memory", Usage: "memory of each node, MiB", Value: 8192},
			&cli.DurationFlag{Name: "stats-interval", Usage: "how often to print counters", Value: 10 * time.Second},
			&cli.StringFlag{Name: "log-level", Usage: "trace, debug, info, warn or error", Value: "warn"},
		},
		Action: runNodesim,
	}
}

func runNodesim(c *cli.Context) error {
	if c.Int("nodes") <= 0 {
		return fmt.Errorf("-nodes must be positive, got %d", c.Int("nodes"))
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "nodesim", Level: hclog.LevelFromString(c.String("log-level")), Output: c.App.ErrWriter})
	sim, err := nodesim.New(nodesim.Config{
		Servers: c.StringSlice("server"), Nodes: c.Int("nodes"), Name: c.String("name"),
		Datacenter: c.String("dc"), NodeClass: c.String("node-class"),
		CPU: c.Int("cpu"), Memory: c.Int("memory"), Logger: logger,
	})
	if err != nil {
		return err
	}
	defer sim.Close()
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	start := time.Now()
	if err := sim.Register(ctx); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "==> %d nodes registered in %s\n", c.Int("nodes"), time.Since(start).Round(time.Millisecond))
	go printSimStats(ctx, c, sim)
	return sim.Run(ctx)
}

func printSimStats(ctx context.Context, c *cli.Context, sim *nodesim.Sim) {
	tick := time.NewTicker(c.Duration("stats-interval"))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		st := sim.Stats()
		fmt.Fprintf(c.App.Writer, "heartbeats %d, allocations seen %d, running %d, stopped %d, update calls %d, rpc errors %d\n",
			st.Heartbeats, st.AllocsSeen, st.Running, st.Stopped, st.UpdateCalls, st.RPCErrors)
	}
}
