package command

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/drover-sh/drover/api"
	"github.com/drover-sh/drover/structs"
)

func allocCommand() *cli.Command {
	return &cli.Command{
		Name:      "alloc",
		Usage:     "Inspect allocations, the instances of task groups on nodes",
		UsageText: "drover alloc <command> [options] [args]",
		Description: `An allocation is one instance of a job's task group placed on a node.
IDs may be given as unique prefixes.

Examples:
  drover alloc status 5bd1c0a2
  drover alloc logs -f 5bd1c0a2
  drover alloc exec 5bd1c0a2 -- cat /etc/hostname`,
		Subcommands: []*cli.Command{
			allocStatusCommand(),
			allocLogsCommand(),
			allocExecCommand(),
			allocRestartCommand(),
			allocStopCommand(),
		},
	}
}

func allocStatusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "Show one allocation, its tasks and their events",
		UsageText: "drover alloc status [options] <alloc id>",
		Description: `Shows the allocation (an ID or a unique prefix): where it runs, what the
servers want of it and what its node reports, its ports and resources,
and each task's state and recent events.

Examples:
  drover alloc status 5bd1c0a2
  drover alloc status -verbose 5bd1c0a2
  drover alloc status -json 5bd1c0a2`,
		Flags:  withCluster(jsonFlag(), verboseFlag()),
		Action: allocStatus,
	}
}

func allocStatus(c *cli.Context) error {
	if err := wantArgs(c, 1, "<alloc id>"); err != nil {
		return err
	}
	client, err := apiClient(c)
	if err != nil {
		return err
	}
	alloc, err := resolveAlloc(c, client, c.Args().First())
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return printJSON(alloc)
	}
	verbose := c.Bool("verbose")
	id := idFormatter(verbose)
	version := "-"
	if alloc.Job != nil {
		version = strconv.FormatUint(alloc.Job.Version, 10)
	}
	pairs := [][2]string{
		{"ID", id(alloc.ID)},
		{"Eval ID", id(alloc.EvalID)},
		{"Name", alloc.Name},
		{"Node ID", id(alloc.NodeID)},
		{"Node Name", orNone(alloc.NodeName)},
		{"Job ID", alloc.JobID},
		{"Namespace", alloc.Namespace},
		{"Job Version", version},
		{"Task Group", alloc.TaskGroup},
		{"Client Status", alloc.ClientStatus},
		{"Client Description", orNone(alloc.ClientDescription)},
		{"Desired Status", alloc.DesiredStatus},
		{"Desired Description", orNone(alloc.DesiredDescription)},
		{"Created", formatTime(alloc.CreateTime)},
		{"Modified", formatTime(alloc.ModifyTime)},
	}
	for _, p := range [][2]string{
		{"Deployment ID", alloc.DeploymentID}, {"Previous Allocation", alloc.PreviousAllocation},
		{"Next Allocation", alloc.NextAllocation}, {"Follow-up Evaluation", alloc.FollowupEvalID},
	} {
		if p[1] != "" {
			pairs = append(pairs, [2]string{p[0], id(p[1])})
		}
	}
	if ds := alloc.DeploymentStatus; ds != nil && ds.Healthy != nil {
		pairs = append(pairs, [2]string{"Deployment Health", healthText(*ds.Healthy)})
	}
	if ds := alloc.DeploymentStatus; ds != nil && ds.Canary {
		pairs = append(pairs, [2]string{"Canary", "true"})
	}
	if rt := alloc.RescheduleTracker; rt != nil && len(rt.Events) > 0 {
		pairs = append(pairs, [2]string{"Reschedule Attempts", strconv.Itoa(len(rt.Events))})
	}
	printKV(stdout, pairs...)

	if alloc.Resources != nil && len(alloc.Resources.Ports) > 0 {
		fmt.Fprintln(stdout, "\nAllocation Addresses")
		t := newTable(stdout, "Label", "Host Port", "To")
		for _, p := range alloc.Resources.Ports {
			to := "-"
			if p.To != 0 {
				to = strconv.Itoa(p.To)
			}
			t.row(p.Label, strconv.Itoa(p.Value), to)
		}
		t.flush()
	}
	printTasks(stdout, alloc, verbose)
	return nil
}

func healthText(healthy bool) string {
	if healthy {
		return "healthy"
	}
	return "unhealthy"
}

// resolveAlloc reads the allocation named by an ID or a unique prefix; an
// ambiguous prefix lists the matches on stderr and exits 1.
func resolveAlloc(c *cli.Context, client *api.Client, id string) (*structs.Allocation, error) {
	alloc, _, err := client.Allocations().Info(c.Context, id, queryOptions(c))
	if err == nil {
		return alloc, nil
	}
	if !isAmbiguousPrefix(err) {
		return nil, fmt.Errorf("reading allocation %q: %w", id, err)
	}
	q := allNamespaces(c)
	q.Prefix = id
	allocs, _, lerr := client.Allocations().List(c.Context, q)
	if lerr != nil {
		return nil, fmt.Errorf("reading allocation %q: %w", id, err)
	}
	fmt.Fprintf(stderr, "Error: prefix %q matches %d allocations; use one of these IDs:\n\n", id, len(allocs))
	printAllocTable(stderr, allocs, idFormatter(true))
	return nil, exitWith(1, nil)
}

// printAllocTable lists allocations newest first.
func printAllocTable(w io.Writer, allocs []*structs.AllocListStub, id func(string) string) error {
	slices.SortFunc(allocs, func(a, b *structs.AllocListStub) int {
		return compareNewestFirst(a.CreateIndex, b.CreateIndex, a.ID, b.ID)
	})
	t := newTable(w, "ID", "Node ID", "Task Group", "Version", "Desired", "Status", "Created")
	for _, a := range allocs {
		t.row(id(a.ID), id(a.NodeID), a.TaskGroup, strconv.FormatUint(a.JobVersion, 10),
			a.DesiredStatus, a.ClientStatus, formatTime(a.CreateTime))
	}
	return t.flush()
}

// printTasks shows each task of the allocation's group: its state, the
// resources set aside for it, and its recent events.
func printTasks(w io.Writer, alloc *structs.Allocation, verbose bool) {
	names := taskNames(alloc)
	for _, name := range names {
		state := alloc.TaskStates[name]
		status := structs.TaskStatePending
		if state != nil && state.State != "" {
			status = state.State
		}
		fmt.Fprintf(w, "\nTask %q is %q\n", name, status)
		if alloc.Resources != nil {
			if r := alloc.Resources.Tasks[name]; r != nil {
				t := newTable(w, "CPU", "Memory")
				t.row(fmt.Sprintf("%d MHz", r.CPU), fmt.Sprintf("%d MiB", r.Memory))
				t.flush()
			}
		}
		if state == nil {
			continue
		}
		fmt.Fprintln(w)
		printKV(w,
			[2]string{"Started At", formatTime(state.StartedAt)},
			[2]string{"Finished At", formatTime(state.FinishedAt)},
			[2]string{"Total Restarts", strconv.Itoa(state.Restarts)},
			[2]string{"Last Restart", formatTime(state.LastRestart)},
			[2]string{"Failed", strconv.FormatBool(state.Failed)},
		)
		fmt.Fprintln(w, "\nRecent Events:")
		if len(state.Events) == 0 {
			fmt.Fprintln(w, "No events")
			continue
		}
		events := slices.Clone(state.Events)
		slices.SortStableFunc(events, func(a, b *structs.TaskEvent) int {
			switch {
			case a.Time > b.Time:
				return -1
			case a.Time < b.Time:
				return 1
			}
			return 0
		})
		if !verbose && len(events) > recentEvents {
			events = events[:recentEvents]
		}
		t := newTable(w, "Time", "Type", "Description")
		for _, e := range events {
			t.row(formatTime(e.Time), e.Type, eventText(e))
		}
		t.flush()
	}
}

// recentEvents is how many events per task alloc status shows without
// -verbose.
const recentEvents = 10

// taskNames lists the allocation's tasks in the job's order, then any the
// client reported that the job no longer names.
func taskNames(alloc *structs.Allocation) []string {
	var names []string
	seen := map[string]bool{}
	if alloc.Job != nil {
		if g := alloc.Job.LookupGroup(alloc.TaskGroup); g != nil {
			for _, t := range g.Tasks {
				names = append(names, t.Name)
				seen[t.Name] = true
			}
		}
	}
	extra := slices.Collect(maps.Keys(alloc.TaskStates))
	if alloc.Resources != nil {
		extra = append(extra, slices.Collect(maps.Keys(alloc.Resources.Tasks))...)
	}
	slices.Sort(extra)
	for _, n := range extra {
		if !seen[n] {
			names = append(names, n)
			seen[n] = true
		}
	}
	return names
}

// eventText is an event's message with its exit details.
func eventText(e *structs.TaskEvent) string {
	parts := []string{}
	if e.Message != "" {
		parts = append(parts, e.Message)
	}
	if e.ExitCode != 0 {
		parts = append(parts, fmt.Sprintf("exit code %d", e.ExitCode))
	}
	if e.Signal != 0 {
		parts = append(parts, fmt.Sprintf("signal %d", e.Signal))
	}
	if e.OOMKilled {
		parts = append(parts, "OOM killed")
	}
	return strings.Join(parts, "; ")
}
