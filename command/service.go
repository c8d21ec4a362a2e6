package command

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/drover-sh/drover/structs"
)

func serviceCommand() *cli.Command {
	return &cli.Command{
		Name:      "service",
		Usage:     "Inspect the service registry",
		UsageText: "drover service <command> [options] [args]",
		Description: `The registry holds the healthy instances of the services that job groups
declare: a client registers an instance while its checks pass and removes
it when they fail or the allocation stops. Clients answer DNS for
<service>.service.drover from it.

Examples:
  drover service list
  drover service info web`,
		Subcommands: []*cli.Command{
			serviceListCommand(),
			serviceInfoCommand(),
		},
	}
}

func serviceListCommand() *cli.Command {
	return &cli.Command{
		Name:      "list",
		Usage:     "List services with their healthy instance counts",
		UsageText: "drover service list [options]",
		Description: `Lists the services of the namespace (-namespace '*' for all) that have at
least one healthy instance, with the tags their instances carry.

Examples:
  drover service list
  drover service list -namespace '*' -json`,
		Flags:  withCluster(jsonFlag()),
		Action: serviceList,
	}
}

func serviceList(c *cli.Context) error {
	if err := wantArgs(c, 0, ""); err != nil {
		return err
	}
	client, err := apiClient(c)
	if err != nil {
		return err
	}
	stubs, _, err := client.Services().List(c.Context, queryOptions(c))
	if err != nil {
		return fmt.Errorf("listing services: %w", err)
	}
	if c.Bool("json") {
		if stubs == nil {
			stubs = []*structs.ServiceListStub{}
		}
		return printJSON(stubs)
	}
	if len(stubs) == 0 {
		fmt.Fprintln(stdout, "No services found")
		return nil
	}
	t := newTable(stdout, "Service Name", "Namespace", "Instances", "Tags")
	for _, s := range stubs {
		t.row(s.ServiceName, s.Namespace, strconv.Itoa(s.Instances), formatTags(s.Tags))
	}
	return t.flush()
}

func serviceInfoCommand() *cli.Command {
	return &cli.Command{
		Name:      "info",
		Usage:     "Show the healthy instances of one service",
		UsageText: "drover service info [options] <service name>",
		Description: `Shows each healthy instance of the service: its allocation and node, the
address and port it is reached at (the allocation's own address in bridge
mode), the node address and host port that reach it too, and its tags.

Examples:
  drover service info web
  drover service info -verbose -json web`,
		Flags:  withCluster(jsonFlag(), verboseFlag()),
		Action: serviceInfo,
	}
}

func serviceInfo(c *cli.Context) error {
	if err := wantArgs(c, 1, "<service name>"); err != nil {
		return err
	}
	client, err := apiClient(c)
	if err != nil {
		return err
	}
	name := c.Args().First()
	regs, _, err := client.Services().Get(c.Context, name, queryOptions(c))
	if err != nil {
		return fmt.Errorf("reading service %q: %w", name, err)
	}
	if c.Bool("json") {
		return printJSON(regs)
	}
	id := idFormatter(c.Bool("verbose"))
	t := newTable(stdout, "Alloc ID", "Node ID", "Job ID", "Address", "Host Address", "Tags")
	for _, r := range regs {
		host := "-"
		if r.HostPort > 0 {
			host = net.JoinHostPort(r.HostAddress, strconv.Itoa(r.HostPort))
		}
		t.row(id(r.AllocID), id(r.NodeID), r.JobID, net.JoinHostPort(r.Address, strconv.Itoa(r.Port)), host, formatTags(r.Tags))
	}
	return t.flush()
}

func formatTags(tags []string) string {
	if len(tags) == 0 {
		return "-"
	}
	return "[" + strings.Join(tags, ",") + "]"
}
