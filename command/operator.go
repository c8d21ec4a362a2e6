package command

import (
	"fmt"
	"strconv"

	"github.com/urfave/cli/v2"
)

func operatorCommand() *cli.Command {
	return &cli.Command{
		Name:      "operator",
		Usage:     "Tools for cluster operators",
		UsageText: "drover operator <command> [options] [args]",
		Description: `Examples:
  drover operator raft list-peers`,
		Subcommands: []*cli.Command{
			{
				Name:      "raft",
				Usage:     "Inspect and change the Raft configuration",
				UsageText: "drover operator raft <command> [options]",
				Description: `Examples:
  drover operator raft list-peers
  drover operator raft remove-peer -peer-id 8f2c...`,
				Subcommands: []*cli.Command{
					raftListPeersCommand(),
					raftRemovePeerCommand(),
				},
			},
		},
	}
}

func raftListPeersCommand() *cli.Command {
	return &cli.Command{
		Name:      "list-peers",
		Usage:     "List the servers of the Raft configuration",
		UsageText: "drover operator raft list-peers [options]",
		Description: `Lists the Raft peers as the leader sees them (-stale: as the agent
answering sees them, which works without a leader).

Examples:
  drover operator raft list-peers
  drover operator raft list-peers -stale -json`,
		Flags: withCluster(
			jsonFlag(),
			&cli.BoolFlag{Name: "stale", DisableDefaultText: true, Usage: "let any server answer from its own state"},
		),
		Action: raftListPeers,
	}
}

func raftListPeers(c *cli.Context) error {
	if err := wantArgs(c, 0, ""); err != nil {
		return err
	}
	client, err := apiClient(c)
	if err != nil {
		return err
	}
	q := queryOptions(c)
	q.AllowStale = c.Bool("stale")
	resp, err := client.Operator().RaftConfiguration(c.Context, q)
	if err != nil {
		return fmt.Errorf("reading the Raft configuration: %w", err)
	}
	if c.Bool("json") {
		return printJSON(resp)
	}
	t := newTable(stdout, "Node", "ID", "Address", "State", "Voter")
	for _, s := range resp.Servers {
		state := "follower"
		if s.Leader {
			state = "leader"
		}
		t.row(s.Node, s.ID, s.Address, state, strconv.FormatBool(s.Voter))
	}
	return t.flush()
}

func raftRemovePeerCommand() *cli.Command {
	return &cli.Command{
		Name:      "remove-peer",
		Usage:     "Remove a server from the Raft configuration",
		UsageText: "drover operator raft remove-peer [options] -peer-id <id> | -peer-address <host:port>",
		Description: `Removes a server that is gone for good from the Raft configuration, by its
Raft ID or its RPC address (see "drover operator raft list-peers").

Examples:
  drover operator raft remove-peer -peer-id 8f2c3a1e-...
  drover operator raft remove-peer -peer-address 10.0.0.3:4751`,
		Flags: withCluster(
			&cli.StringFlag{Name: "peer-id", Usage: "Raft ID of the server to remove"},
			&cli.StringFlag{Name: "peer-address", Usage: "RPC address (host:port) of the server to remove"},
		),
		Action: raftRemovePeer,
	}
}

func raftRemovePeer(c *cli.Context) error {
	if err := wantArgs(c, 0, ""); err != nil {
		return err
	}
	id, addr := c.String("peer-id"), c.String("peer-address")
	if (id == "") == (addr == "") {
		return usageErrorf(c, "give exactly one of -peer-id and -peer-address")
	}
	client, err := apiClient(c)
	if err != nil {
		return err
	}
	if id != "" {
		if err := client.Operator().RaftRemovePeerByID(c.Context, id); err != nil {
			return fmt.Errorf("removing peer %q: %w", id, err)
		}
		fmt.Fprintf(stdout, "Removed peer with ID %q\n", id)
		return nil
	}
	if err := client.Operator().RaftRemovePeerByAddress(c.Context, addr); err != nil {
		return fmt.Errorf("removing peer %q: %w", addr, err)
	}
	fmt.Fprintf(stdout, "Removed peer with address %q\n", addr)
	return nil
}
