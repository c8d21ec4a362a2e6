package command

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/drover-sh/drover/api"
	"github.com/drover-sh/drover/structs"
)

// Exit codes of job plan, as Nomad's.
const (
	planNoChanges = 0
	planChanges   = 1
	planError     = 255
)

func jobPlanCommand() *cli.Command {
	return &cli.Command{
		Name:      "plan",
		Usage:     "Show what submitting a job file would change, without changing it",
		UsageText: "drover job plan [options] <file|->",
		Description: `Sends the job file to the scheduler for a dry run. Prints what changes
from the running version of the job (+ added, - removed, ~ edited, by
field, group and task, with whether a task's allocations are updated in
place or replaced), what the scheduler would do to each group's
allocations, and why any of them could not be placed.

Exit codes: 0 when nothing would change, 1 when the job or its
allocations would change, 255 on an error.

Examples:
  drover job plan web.yaml
  drover job plan -verbose web.yaml
  drover job plan -json web.yaml`,
		Flags: withCluster(jsonFlag(), verboseFlag(),
			&cli.BoolFlag{Name: "diff", Value: true, Usage: "show the differences from the running version"},
		),
		Action: jobPlan,
	}
}

func jobPlan(c *cli.Context) error {
	if err := planJob(c); err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			return err
		}
		return exitWith(planError, err)
	}
	return nil
}

func planJob(c *cli.Context) error {
	if err := wantArgs(c, 1, "<file|->"); err != nil {
		return err
	}
	data, name, err := readJobFile(c.Args().First())
	if err != nil {
		return err
	}
	// The path names the job: read its ID from the file here, so problems
	// with the file are reported by line and column like job run's.
	job, err := structs.ParseJob(data)
	if err != nil {
		var verr *structs.ValidationError
		if errors.As(err, &verr) && len(verr.Errors) > 0 {
			printProblems(name, verr.Errors)
			return exitWith(planError, nil)
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	client, err := apiClient(c)
	if err != nil {
		return err
	}
	resp, err := client.Jobs().Plan(c.Context, job.ID, data, jobContentType(name, data), c.Bool("diff"), nil)
	if err != nil {
		var apiErr *api.Error
		if errors.As(err, &apiErr) && len(apiErr.Problems) > 0 && apiErr.Field != "id" {
			printProblems(name, apiErr.Problems)
			return exitWith(planError, nil)
		}
		return fmt.Errorf("planning %s: %w", name, err)
	}
	code := planExitCode(resp)
	if c.Bool("json") {
		if err := printJSON(resp); err != nil {
			return err
		}
		return exitWith(code, nil)
	}
	for _, w := range resp.Warnings {
		fmt.Fprintf(stderr, "Warning: %s\n", w)
	}
	if resp.Diff != nil {
		resp.Diff.Annotate(resp.Annotations)
		printJobDiff(stdout, resp.Diff, c.Bool("verbose"))
		fmt.Fprintln(stdout)
	}
	fmt.Fprintln(stdout, "Scheduler dry-run:")
	if len(resp.FailedTGAllocs) == 0 {
		fmt.Fprintln(stdout, "- All tasks successfully allocated.")
	} else {
		fmt.Fprintln(stdout, "- WARNING: Failed to place all allocations.")
		printPlacementFailures(stdout, resp.FailedTGAllocs, "  ", true)
	}
	fmt.Fprintf(stdout, "\nJob Modify Index: %d\n", resp.JobModifyIndex)
	fmt.Fprintf(stdout, "To submit the job with version verification run:\n\n")
	fmt.Fprintf(stdout, "drover job run -check-index %d %s\n", resp.JobModifyIndex, name)
	return exitWith(code, nil)
}

// planExitCode is 1 when the job would change or the scheduler would
// place, stop, migrate or update allocations, 0 otherwise.
func planExitCode(resp *structs.JobPlanResponse) int {
	if resp.Diff != nil && resp.Diff.Type != structs.DiffTypeNone {
		return planChanges
	}
	if a := resp.Annotations; a != nil {
		for _, u := range a.DesiredTGUpdates {
			if u.Place+u.Stop+u.Migrate+u.InPlaceUpdate+u.DestructiveUpdate+u.Canary+u.Reschedule > 0 {
				return planChanges
			}
		}
	}
	return planNoChanges
}

// diffMarker is the sign of a change.
func diffMarker(typ string) string {
	switch typ {
	case structs.DiffTypeAdded:
		return "+"
	case structs.DiffTypeDeleted:
		return "-"
	case structs.DiffTypeEdited:
		return "~"
	}
	return " "
}

// updateOrder is the order counts are printed in.
var updateOrder = []string{
	structs.UpdateTypeCreate, structs.UpdateTypeDestructiveUpdate, structs.UpdateTypeCanary, structs.UpdateTypeInPlaceUpdate,
	structs.UpdateTypeMigrate, structs.UpdateTypeReschedule, structs.UpdateTypeStop, structs.UpdateTypeIgnore,
}

// printJobDiff prints a job diff as Nomad does: one line per job, group,
// task, block and field, each with its change's sign, nested by two
// spaces. Unchanged groups and tasks are shown by name, so the counts of
// what the scheduler does have a line to go on.
func printJobDiff(w io.Writer, d *structs.JobDiff, verbose bool) {
	fmt.Fprintf(w, "%s Job: %q\n", diffMarker(d.Type), d.ID)
	printFields(w, "", d.Fields)
	printObjects(w, "", d.Objects)
	for _, g := range d.Groups {
		line := fmt.Sprintf("%s Task Group: %q", diffMarker(g.Type), g.Name)
		var counts []string
		for _, u := range updateOrder {
			if n := g.Updates[u]; n > 0 {
				counts = append(counts, fmt.Sprintf("%d %s", n, u))
			}
		}
		if len(counts) > 0 {
			line += " (" + strings.Join(counts, ", ") + ")"
		}
		fmt.Fprintln(w, line)
		printFields(w, "  ", g.Fields)
		printObjects(w, "  ", g.Objects)
		for _, t := range g.Tasks {
			if t.Type == structs.DiffTypeNone && !verbose && g.Type == structs.DiffTypeNone {
				continue
			}
			line := fmt.Sprintf("  %s Task: %q", diffMarker(t.Type), t.Name)
			if len(t.Annotations) > 0 {
				line += " (" + strings.Join(t.Annotations, ", ") + ")"
			}
			fmt.Fprintln(w, line)
			printFields(w, "    ", t.Fields)
			printObjects(w, "    ", t.Objects)
		}
	}
}

func printFields(w io.Writer, indent string, fields []*structs.FieldDiff) {
	for _, f := range fields {
		switch f.Type {
		case structs.DiffTypeAdded:
			fmt.Fprintf(w, "%s+ %s: %q\n", indent, f.Name, f.New)
		case structs.DiffTypeDeleted:
			fmt.Fprintf(w, "%s- %s: %q\n", indent, f.Name, f.Old)
		case structs.DiffTypeEdited:
			fmt.Fprintf(w, "%s~ %s: %q => %q\n", indent, f.Name, f.Old, f.New)
		default:
			fmt.Fprintf(w, "%s  %s: %q\n", indent, f.Name, f.New)
		}
	}
}

func printObjects(w io.Writer, indent string, objects []*structs.ObjectDiff) {
	for _, o := range objects {
		fmt.Fprintf(w, "%s%s %s {\n", indent, diffMarker(o.Type), o.Name)
		printFields(w, indent+"  ", o.Fields)
		printObjects(w, indent+"  ", o.Objects)
		fmt.Fprintf(w, "%s  }\n", indent)
	}
}
