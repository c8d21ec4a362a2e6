package command

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/drover-sh/drover/structs"
)

func serverCommand() *cli.Command {
	return &cli.Command{
		Name:      "server",
		Usage:     "Inspect and manage the control-plane servers",
		UsageText: "drover server <command> [options] [args]",
		Description: `Examples:
  drover server members
  drover server join 10.0.0.2 10.0.0.3`,
		Subcommands: []*cli.Command{
			serverMembersCommand(),
			serverJoinCommand(),
			serverForceLeaveCommand(),
		},
	}
}

func serverMembersCommand() *cli.Command {
	return &cli.Command{
		Name:      "members",
		Usage:     "List the servers in the gossip pool",
		UsageText: "drover server members [options]",
		Description: `Lists the servers the agent sees in the gossip pool, with their status
and which of them leads Raft.

Examples:
  drover server members
  drover server members -json`,
		Flags:  withCluster(jsonFlag()),
		Action: serverMembers,
	}
}

// isServer accepts "server" and combined roles such as "server+client".
func isServer(m *structs.Member) bool {
	return m.IsServer() || slices.Contains(strings.Split(m.Role, "+"), structs.RoleServer)
}

func serverMembers(c *cli.Context) error {
	if err := wantArgs(c, 0, ""); err != nil {
		return err
	}
	client, err := apiClient(c)
	if err != nil {
		return err
	}
	resp, err := client.Agent().Members(c.Context)
	if err != nil {
		return fmt.Errorf("listing members: %w", err)
	}
	servers := make([]*structs.Member, 0, len(resp.Members))
	for _, m := range resp.Members {
		if isServer(m) {
			servers = append(servers, m)
		}
	}
	slices.SortFunc(servers, func(a, b *structs.Member) int { return strings.Compare(a.Name, b.Name) })
	if c.Bool("json") {
		return printJSON(servers)
	}
	t := newTable(stdout, "Name", "Address", "Port", "Status", "Leader", "Raft ID", "Region", "Datacenter", "Version")
	for _, m := range servers {
		leader := resp.Leader != "" && m.RPCAddr == resp.Leader
		t.row(m.Name, m.Addr, strconv.Itoa(m.Port), m.Status, strconv.FormatBool(leader), m.RaftID,
			m.Region, m.Datacenter, m.Version)
	}
	return t.flush()
}

func serverJoinCommand() *cli.Command {
	return &cli.Command{
		Name:      "join",
		Usage:     "Make the agent join other servers' gossip pool",
		UsageText: "drover server join [options] <address>...",
		Description: `Asks the agent to join the gossip pool through the given servers (host,
or host:port of their gossip port, 4752 by default).

Examples:
  drover server join 10.0.0.2
  drover -address http://10.0.0.4:4750 server join 10.0.0.1:4752 10.0.0.2:4752`,
		Flags:  withCluster(),
		Action: serverJoin,
	}
}

func serverJoin(c *cli.Context) error {
	if c.NArg() == 0 {
		return usageErrorf(c, "missing argument: <address>...")
	}
	client, err := apiClient(c)
	if err != nil {
		return err
	}
	n, err := client.Agent().Join(c.Context, c.Args().Slice()...)
	if err != nil {
		return fmt.Errorf("joining %s: %w", strings.Join(c.Args().Slice(), ", "), err)
	}
	fmt.Fprintf(stdout, "Joined %d servers\n", n)
	return nil
}

func serverForceLeaveCommand() *cli.Command {
	return &cli.Command{
		Name:      "force-leave",
		Usage:     "Remove a failed server from the cluster",
		UsageText: "drover server force-leave [options] <node name>",
		Description: `Marks a failed member as having left the gossip pool and removes it from
the Raft configuration, so a dead server stops counting toward quorum.

Examples:
  drover server force-leave s3`,
		Flags:  withCluster(),
		Action: serverForceLeave,
	}
}

func serverForceLeave(c *cli.Context) error {
	if err := wantArgs(c, 1, "<node name>"); err != nil {
		return err
	}
	client, err := apiClient(c)
	if err != nil {
		return err
	}
	node := c.Args().First()
	if err := client.Agent().ForceLeave(c.Context, node); err != nil {
		return fmt.Errorf("forcing %q to leave: %w", node, err)
	}
	fmt.Fprintf(stdout, "Member %q forced to leave\n", node)
	return nil
}
