package command

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/drover-sh/drover/api"
	"github.com/drover-sh/drover/structs"
)

func nodeCommand() *cli.Command {
	return &cli.Command{
		Name:      "node",
		Usage:     "Inspect client nodes, drain them, set their eligibility",
		UsageText: "drover node <command> [options] [args]",
		Description: `Client nodes run allocations. IDs may be given as unique prefixes.

Examples:
  drover node status
  drover node drain -enable -deadline 30m 9f3c
  drover node eligibility -disable 9f3c`,
		Subcommands: []*cli.Command{
			nodeStatusCommand(),
			nodeDrainCommand(),
			nodeEligibilityCommand(),
		},
	}
}

func nodeStatusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "List nodes, or show one with its resources and allocations",
		UsageText: "drover node status [options] [node id]",
		Description: `With no ID, lists the nodes. With an ID (or a unique prefix), shows the
node, its resources and what its allocations use of them, and its
allocations; -verbose adds its attributes and meta.

Examples:
  drover node status
  drover node status 9f3c
  drover node status -self
  drover node status -verbose -json 9f3c`,
		Flags:  withCluster(jsonFlag(), verboseFlag(), selfFlag("show the node of the agent the CLI talks to")),
		Action: nodeStatus,
	}
}

func nodeStatus(c *cli.Context) error {
	if c.Bool("self") {
		if c.NArg() > 0 {
			return usageErrorf(c, "-self takes no node id")
		}
		client, err := apiClient(c)
		if err != nil {
			return err
		}
		id, err := selfNodeID(c, client)
		if err != nil {
			return err
		}
		return showNode(c, id)
	}
	switch c.NArg() {
	case 0:
		return listNodes(c)
	case 1:
		return showNode(c, c.Args().First())
	}
	return wantArgs(c, 1, "[node id]")
}

// selfFlag is -self of the node commands.
func selfFlag(usage string) cli.Flag {
	return &cli.BoolFlag{Name: "self", DisableDefaultText: true, Usage: usage}
}

// selfNodeID is the node ID of the agent the CLI talks to.
func selfNodeID(c *cli.Context, client *api.Client) (string, error) {
	self, err := client.Agent().Self(c.Context)
	if err != nil {
		return "", fmt.Errorf("asking the agent who it is: %w", err)
	}
	if !strings.Contains(self.Role, structs.RoleClient) {
		return "", fmt.Errorf("agent %s runs no client, so it is not a node (role %s)", self.Name, self.Role)
	}
	return self.NodeID, nil
}

// targetNode reads the node a command acts on: its one argument (an ID
// or a unique prefix), or with -self the node of the agent the CLI talks
// to.
func targetNode(c *cli.Context, client *api.Client) (*structs.Node, error) {
	if c.Bool("self") {
		if c.NArg() > 0 {
			return nil, usageErrorf(c, "-self takes no node id")
		}
		id, err := selfNodeID(c, client)
		if err != nil {
			return nil, err
		}
		return resolveNode(c, client, id)
	}
	if err := wantArgs(c, 1, "<node id>"); err != nil {
		return nil, err
	}
	return resolveNode(c, client, c.Args().First())
}

func listNodes(c *cli.Context) error {
	client, err := apiClient(c)
	if err != nil {
		return err
	}
	nodes, _, err := client.Nodes().List(c.Context, queryOptions(c))
	if err != nil {
		return fmt.Errorf("listing nodes: %w", err)
	}
	sortNodes(nodes)
	if c.Bool("json") {
		if nodes == nil {
			nodes = []*structs.NodeListStub{}
		}
		return printJSON(nodes)
	}
	if len(nodes) == 0 {
		fmt.Fprintln(stdout, "No nodes registered")
		return nil
	}
	return printNodeTable(stdout, nodes, idFormatter(c.Bool("verbose")))
}

func sortNodes(nodes []*structs.NodeListStub) {
	slices.SortFunc(nodes, func(a, b *structs.NodeListStub) int {
		if a.Name != b.Name {
			return strings.Compare(a.Name, b.Name)
		}
		return strings.Compare(a.ID, b.ID)
	})
}

func printNodeTable(w io.Writer, nodes []*structs.NodeListStub, id func(string) string) error {
	t := newTable(w, "ID", "Name", "DC", "Class", "Eligibility", "Drain", "Status")
	for _, n := range nodes {
		t.row(id(n.ID), n.Name, n.Datacenter, orNone(n.NodeClass), n.SchedulingEligibility,
			strconv.FormatBool(n.Drain), n.Status)
	}
	return t.flush()
}

// resolveNode reads the node named by an ID or a unique prefix; an
// ambiguous prefix lists the matches on stderr and exits 1.
func resolveNode(c *cli.Context, client *api.Client, id string) (*structs.Node, error) {
	node, _, err := client.Nodes().Info(c.Context, id, queryOptions(c))
	if err == nil {
		return node, nil
	}
	if !isAmbiguousPrefix(err) {
		return nil, fmt.Errorf("reading node %q: %w", id, err)
	}
	q := queryOptions(c)
	q.Prefix = id
	nodes, _, lerr := client.Nodes().List(c.Context, q)
	if lerr != nil {
		return nil, fmt.Errorf("reading node %q: %w", id, err)
	}
	sortNodes(nodes)
	fmt.Fprintf(stderr, "Error: prefix %q matches %d nodes; use one of these IDs:\n\n", id, len(nodes))
	printNodeTable(stderr, nodes, idFormatter(true))
	return nil, exitWith(1, nil)
}

func showNode(c *cli.Context, id string) error {
	client, err := apiClient(c)
	if err != nil {
		return err
	}
	node, err := resolveNode(c, client, id)
	if err != nil {
		return err
	}
	allocs, _, err := client.Nodes().Allocations(c.Context, node.ID, nil)
	if err != nil {
		return fmt.Errorf("listing allocations of node %s: %w", node.ID, err)
	}
	slices.SortFunc(allocs, func(a, b *structs.Allocation) int {
		return compareNewestFirst(a.CreateIndex, b.CreateIndex, a.ID, b.ID)
	})
	if c.Bool("json") {
		if allocs == nil {
			allocs = []*structs.Allocation{}
		}
		return printJSON(struct {
			Node        *structs.Node         `json:"node"`
			Allocations []*structs.Allocation `json:"allocations"`
		}{node, allocs})
	}
	verbose := c.Bool("verbose")
	id8 := idFormatter(verbose)
	printKV(stdout,
		[2]string{"ID", id8(node.ID)},
		[2]string{"Name", node.Name},
		[2]string{"Class", orNone(node.NodeClass)},
		[2]string{"DC", node.Datacenter},
		[2]string{"HTTP Addr", orNone(node.HTTPAddr)},
		[2]string{"Drain", drainText(node.Drain)},
		[2]string{"Eligibility", node.SchedulingEligibility},
		[2]string{"Status", node.Status},
		[2]string{"Status Description", orNone(node.StatusDescription)},
		[2]string{"Drivers", driversText(node.Drivers)},
	)

	fmt.Fprintln(stdout, "\nAllocated Resources")
	used := allocatedOn(allocs)
	total := schedulable(node)
	t := newTable(stdout, "CPU", "Memory")
	t.row(fmt.Sprintf("%d/%d MHz", used.CPU, total.CPU), fmt.Sprintf("%d/%d MiB", used.Memory, total.Memory))
	t.flush()

	fmt.Fprintln(stdout, "\nAllocations")
	if len(allocs) == 0 {
		fmt.Fprintln(stdout, "No allocations placed")
	} else {
		t := newTable(stdout, "ID", "Job ID", "Task Group", "Version", "Desired", "Status", "Created")
		for _, a := range allocs {
			version := "-"
			if a.Job != nil {
				version = strconv.FormatUint(a.Job.Version, 10)
			}
			t.row(id8(a.ID), a.JobID, a.TaskGroup, version, a.DesiredStatus, a.ClientStatus, formatTime(a.CreateTime))
		}
		t.flush()
	}
	if verbose {
		fmt.Fprintln(stdout, "\nAttributes")
		printMap(stdout, node.Attributes)
		fmt.Fprintln(stdout, "\nMeta")
		printMap(stdout, node.Meta)
	}
	return nil
}

func compareNewestFirst(ai, bi uint64, aid, bid string) int {
	switch {
	case ai > bi:
		return -1
	case ai < bi:
		return 1
	}
	return strings.Compare(aid, bid)
}

// drainText is "false", or when draining since when and until when.
func drainText(d *structs.DrainStrategy) string {
	if d == nil {
		return "false"
	}
	switch {
	case d.ForceDeadline > 0:
		return "true; deadline " + formatTime(d.ForceDeadline)
	case d.Deadline < 0:
		return "true; forced"
	case d.Deadline == 0:
		return "true; no deadline"
	}
	return "true; deadline " + d.Deadline.String() + " after start"
}

func driversText(drivers map[string]*structs.DriverInfo) string {
	if len(drivers) == 0 {
		return "<none>"
	}
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(drivers)) {
		d := drivers[name]
		state := "healthy"
		switch {
		case !d.Detected:
			state = "not detected"
		case !d.Healthy:
			state = "unhealthy"
			if d.HealthDescription != "" {
				state += ": " + d.HealthDescription
			}
		}
		parts = append(parts, fmt.Sprintf("%s (%s)", name, state))
	}
	return strings.Join(parts, ", ")
}

// allocatedOn sums what the node's running allocations set aside.
func allocatedOn(allocs []*structs.Allocation) structs.Resources {
	var sum structs.Resources
	for _, a := range allocs {
		if a.TerminalStatus() || a.Resources == nil {
			continue
		}
		for _, r := range a.Resources.Tasks {
			sum.Add(r)
		}
	}
	return sum
}

// schedulable is what the node offers less what it keeps for itself.
func schedulable(n *structs.Node) structs.Resources {
	var r structs.Resources
	if n.Resources != nil {
		r.CPU, r.Memory = n.Resources.CPU, n.Resources.Memory
	}
	if n.Reserved != nil {
		r.CPU -= n.Reserved.CPU
		r.Memory -= n.Reserved.Memory
	}
	return r
}

func printMap(w io.Writer, m map[string]string) {
	if len(m) == 0 {
		fmt.Fprintln(w, "<none>")
		return
	}
	pairs := make([][2]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		pairs = append(pairs, [2]string{k, m[k]})
	}
	printKV(w, pairs...)
}

func nodeDrainCommand() *cli.Command {
	return &cli.Command{
		Name:      "drain",
		Usage:     "Move allocations off a node, or stop doing so",
		UsageText: "drover node drain [options] -enable|-disable|-monitor <node id> | -self",
		Description: `-enable marks the node (an ID or a unique prefix) ineligible for new
allocations and migrates its allocations to other nodes, each group at its
own max_parallel pace; those left at the deadline are stopped. -disable
cancels a drain and makes the node eligible again (unless
-keep-ineligible). -monitor waits until the drain is complete; it may be
given alone to watch a drain already running.

Examples:
  drover node drain -enable -yes 9f3c
  drover node drain -enable -yes -self
  drover node drain -enable -deadline 30m -ignore-system -monitor 9f3c
  drover node drain -disable 9f3c`,
		Flags: withCluster(
			&cli.BoolFlag{Name: "enable", DisableDefaultText: true, Usage: "start draining the node"},
			&cli.BoolFlag{Name: "disable", DisableDefaultText: true, Usage: "cancel the node's drain"},
			&cli.DurationFlag{Name: "deadline", Value: time.Hour, Usage: "stop what is left on the node after this long"},
			&cli.BoolFlag{Name: "no-deadline", DisableDefaultText: true, Usage: "no deadline: migrate at the jobs' pace however long it takes"},
			&cli.BoolFlag{Name: "force", DisableDefaultText: true, Usage: "stop every allocation on the node now"},
			&cli.BoolFlag{Name: "ignore-system", DisableDefaultText: true, Usage: "leave system jobs' allocations running"},
			&cli.BoolFlag{Name: "keep-ineligible", DisableDefaultText: true, Usage: "with -disable: leave the node ineligible"},
			&cli.BoolFlag{Name: "monitor", DisableDefaultText: true, Usage: "wait until the drain is complete"},
			&cli.BoolFlag{Name: "yes", DisableDefaultText: true, Usage: "do not ask for confirmation"},
			selfFlag("drain the node of the agent the CLI talks to"),
		),
		Action: nodeDrain,
	}
}

func nodeDrain(c *cli.Context) error {
	enable, disable, monitor := c.Bool("enable"), c.Bool("disable"), c.Bool("monitor")
	if enable == disable && !(monitor && !enable) {
		return usageErrorf(c, "give exactly one of -enable and -disable (or -monitor alone)")
	}
	if disable && monitor {
		return usageErrorf(c, "-monitor watches a drain: it goes with -enable, or alone")
	}
	modes := 0
	for _, f := range []string{"deadline", "no-deadline", "force"} {
		if c.IsSet(f) {
			modes++
		}
	}
	if modes > 1 {
		return usageErrorf(c, "give at most one of -deadline, -no-deadline and -force")
	}
	if c.Duration("deadline") <= 0 && c.IsSet("deadline") {
		return usageErrorf(c, "-deadline must be positive (use -no-deadline or -force)")
	}
	client, err := apiClient(c)
	if err != nil {
		return err
	}
	node, err := targetNode(c, client)
	if err != nil {
		return err
	}
	if !enable && !disable {
		return monitorDrain(c, client, node)
	}
	if !c.Bool("yes") {
		verb := "enable"
		if disable {
			verb = "disable"
		}
		ok, err := confirm(fmt.Sprintf("Are you sure you want to %s drain mode for node %q (%s)? [y/N] ", verb, node.Name, structs.ShortID(node.ID)))
		if err != nil {
			return err
		}
		if !ok {
			fmt.Fprintln(stdout, "Canceled: nothing changed")
			return exitWith(1, nil)
		}
	}
	var spec *api.DrainSpec
	if enable {
		spec = &api.DrainSpec{Deadline: c.Duration("deadline"), IgnoreSystemJobs: c.Bool("ignore-system")}
		switch {
		case c.Bool("no-deadline"):
			spec.Deadline = 0
		case c.Bool("force"):
			spec.Deadline = -time.Second
		}
	}
	if _, err := client.Nodes().UpdateDrain(c.Context, node.ID, spec, disable && !c.Bool("keep-ineligible"), nil); err != nil {
		return fmt.Errorf("updating the drain of node %s: %w", node.ID, err)
	}
	if disable {
		fmt.Fprintf(stdout, "Node %q drain strategy unset\n", structs.ShortID(node.ID))
		return nil
	}
	fmt.Fprintf(stdout, "Node %q drain strategy set\n", structs.ShortID(node.ID))
	if monitor {
		return monitorDrain(c, client, node)
	}
	return nil
}

// confirm asks a yes/no question on stdout and reads the answer.
func confirm(question string) (bool, error) {
	fmt.Fprint(stdout, question)
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && err != io.EOF {
		return false, fmt.Errorf("reading the answer: %w", err)
	}
	if err == io.EOF {
		fmt.Fprintln(stdout)
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}

// drainWait is how long each blocking query of the drain monitor waits.
var drainWait = 30 * time.Second

// monitorDrain waits, with blocking queries, until the node's drain
// strategy is gone (the drain finished or was cancelled), reporting how
// many allocations are left on it as they move.
func monitorDrain(c *cli.Context, client *api.Client, node *structs.Node) error {
	short := structs.ShortID(node.ID)
	if node.Drain == nil {
		fmt.Fprintf(stdout, "Node %q is not draining\n", short)
		return nil
	}
	fmt.Fprintf(stdout, "==> Monitoring the drain of node %q\n", short)
	var index uint64
	left := -1
	for {
		n, meta, err := client.Nodes().Info(c.Context, node.ID, &api.QueryOptions{WaitIndex: index, WaitTime: drainWait})
		if err != nil {
			return fmt.Errorf("watching node %s: %w", node.ID, err)
		}
		index = meta.LastIndex
		allocs, _, err := client.Nodes().Allocations(c.Context, node.ID, nil)
		if err != nil {
			return fmt.Errorf("listing allocations of node %s: %w", node.ID, err)
		}
		running := 0
		for _, a := range allocs {
			if !a.TerminalStatus() {
				running++
			}
		}
		if running != left {
			fmt.Fprintf(stdout, "    %s left on node %q\n", plural(running, "allocation"), short)
			left = running
		}
		if n.Drain == nil {
			fmt.Fprintf(stdout, "==> Drain of node %q complete\n", short)
			return nil
		}
	}
}

func nodeEligibilityCommand() *cli.Command {
	return &cli.Command{
		Name:      "eligibility",
		Usage:     "Let a node take new allocations, or not",
		UsageText: "drover node eligibility [options] -enable|-disable <node id> | -self",
		Description: `An ineligible node (an ID or a unique prefix) keeps what runs on it but
gets no new allocations.

Examples:
  drover node eligibility -disable 9f3c
  drover node eligibility -enable 9f3c
  drover node eligibility -disable -self`,
		Flags: withCluster(
			&cli.BoolFlag{Name: "enable", DisableDefaultText: true, Usage: "make the node eligible"},
			&cli.BoolFlag{Name: "disable", DisableDefaultText: true, Usage: "make the node ineligible"},
			selfFlag("act on the node of the agent the CLI talks to"),
		),
		Action: nodeEligibility,
	}
}

func nodeEligibility(c *cli.Context) error {
	enable, disable := c.Bool("enable"), c.Bool("disable")
	if enable == disable {
		return usageErrorf(c, "give exactly one of -enable and -disable")
	}
	client, err := apiClient(c)
	if err != nil {
		return err
	}
	node, err := targetNode(c, client)
	if err != nil {
		return err
	}
	if _, err := client.Nodes().UpdateEligibility(c.Context, node.ID, enable, nil); err != nil {
		return fmt.Errorf("updating the eligibility of node %s: %w", node.ID, err)
	}
	state := "eligible"
	if disable {
		state = "ineligible"
	}
	fmt.Fprintf(stdout, "Node %q scheduling eligibility set: %s for scheduling\n", structs.ShortID(node.ID), state)
	return nil
}
