package command

import (
	"errors"
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

func evalCommand() *cli.Command {
	return &cli.Command{
		Name:      "eval",
		Usage:     "Inspect evaluations, the scheduler's units of work",
		UsageText: "drover eval <command> [options] [args]",
		Description: `An evaluation asks the scheduler to reconcile one job with the cluster;
one is made for each job change, node change and failed allocation.

Examples:
  drover eval list -job web
  drover eval status 4e4c0f4e`,
		Subcommands: []*cli.Command{
			evalStatusCommand(),
			evalListCommand(),
		},
	}
}

func evalStatusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "Show one evaluation and why its placements failed",
		UsageText: "drover eval status [options] <eval id>",
		Description: `Shows the evaluation (an ID or a unique prefix): its status, what
triggered it, its job, and, for task groups it could not place, the
reasons in plain words, with the blocked evaluation that waits for
capacity.

Examples:
  drover eval status 4e4c0f4e
  drover eval status -json 4e4c0f4e`,
		Flags:  withCluster(jsonFlag(), verboseFlag()),
		Action: evalStatus,
	}
}

func verboseFlag() cli.Flag {
	return &cli.BoolFlag{Name: "verbose", DisableDefaultText: true, Usage: "show full IDs and more detail"}
}

func evalStatus(c *cli.Context) error {
	if err := wantArgs(c, 1, "<eval id>"); err != nil {
		return err
	}
	client, err := apiClient(c)
	if err != nil {
		return err
	}
	eval, err := resolveEval(c, client, c.Args().First())
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return printJSON(eval)
	}
	id := idFormatter(c.Bool("verbose"))
	failed := len(eval.FailedTGAllocs) > 0
	pairs := [][2]string{
		{"ID", id(eval.ID)},
		{"Create Time", formatTime(eval.CreateTime)},
		{"Modify Time", formatTime(eval.ModifyTime)},
		{"Status", eval.Status},
		{"Status Description", orNone(eval.StatusDescription)},
		{"Type", eval.Type},
		{"Triggered By", eval.TriggeredBy},
		{"Job ID", eval.JobID},
		{"Namespace", eval.Namespace},
		{"Priority", strconv.Itoa(eval.Priority)},
		{"Placement Failures", strconv.FormatBool(failed)},
	}
	for _, p := range [][2]string{
		{"Node ID", eval.NodeID}, {"Previous Eval", eval.PreviousEval},
		{"Next Eval", eval.NextEval}, {"Blocked Eval", eval.BlockedEval},
	} {
		if p[1] != "" {
			pairs = append(pairs, [2]string{p[0], id(p[1])})
		}
	}
	printKV(stdout, pairs...)
	if !failed {
		return nil
	}
	fmt.Fprintln(stdout, "\nFailed Placements")
	printPlacementFailures(stdout, eval.FailedTGAllocs, "", true)
	if eval.BlockedEval != "" {
		fmt.Fprintf(stdout, "\nEvaluation %q waiting for additional capacity to place remainder\n", id(eval.BlockedEval))
	}
	return nil
}

// resolveEval reads the evaluation named by an ID or a unique prefix; an
// ambiguous prefix lists the matches on stderr and exits 1.
func resolveEval(c *cli.Context, client *api.Client, id string) (*structs.Evaluation, error) {
	eval, _, err := client.Evaluations().Info(c.Context, id, queryOptions(c))
	if err == nil {
		return eval, nil
	}
	if !isAmbiguousPrefix(err) {
		return nil, fmt.Errorf("reading evaluation %q: %w", id, err)
	}
	q := allNamespaces(c)
	q.Prefix = id
	evals, _, lerr := client.Evaluations().List(c.Context, q)
	if lerr != nil {
		return nil, fmt.Errorf("reading evaluation %q: %w", id, err)
	}
	fmt.Fprintf(stderr, "Error: prefix %q matches %d evaluations; use one of these IDs:\n\n", id, len(evals))
	printEvalTable(stderr, evals, idFormatter(true))
	return nil, exitWith(1, nil)
}

// isAmbiguousPrefix reports whether the agent refused an ID prefix that
// matches several objects.
func isAmbiguousPrefix(err error) bool {
	var e *api.Error
	return errors.As(err, &e) && e.Code == structs.ErrInvalid && e.Field == "id"
}

// allNamespaces reads every namespace unless the flag names one: IDs of
// evaluations, allocations and nodes are unique across namespaces.
func allNamespaces(c *cli.Context) *api.QueryOptions {
	q := queryOptions(c)
	if q.Namespace == "" {
		q.Namespace = "*"
	}
	return q
}

func evalListCommand() *cli.Command {
	return &cli.Command{
		Name:      "list",
		Usage:     "List evaluations, newest first",
		UsageText: "drover eval list [options]",
		Description: `Lists the evaluations of the namespace, optionally only those of one job
or with one status (pending, blocked, complete, failed, canceled).

Examples:
  drover eval list
  drover eval list -job web -status blocked
  drover eval list -json`,
		Flags: withCluster(jsonFlag(), verboseFlag(),
			&cli.StringFlag{Name: "job", Usage: "only the evaluations of this job ID"},
			&cli.StringFlag{Name: "status", Usage: "only the evaluations with this status"},
		),
		Action: evalList,
	}
}

func evalList(c *cli.Context) error {
	if err := wantArgs(c, 0, ""); err != nil {
		return err
	}
	client, err := apiClient(c)
	if err != nil {
		return err
	}
	q := queryOptions(c)
	q.Params = api.EvalFilter(c.String("job"), c.String("status"))
	evals, _, err := client.Evaluations().List(c.Context, q)
	if err != nil {
		return fmt.Errorf("listing evaluations: %w", err)
	}
	sortEvals(evals)
	if c.Bool("json") {
		if evals == nil {
			evals = []*structs.Evaluation{}
		}
		return printJSON(evals)
	}
	if len(evals) == 0 {
		fmt.Fprintln(stdout, "No evaluations found")
		return nil
	}
	return printEvalTable(stdout, evals, idFormatter(c.Bool("verbose")))
}

// sortEvals orders evaluations newest first.
func sortEvals(evals []*structs.Evaluation) {
	slices.SortFunc(evals, func(a, b *structs.Evaluation) int {
		switch {
		case a.CreateIndex > b.CreateIndex:
			return -1
		case a.CreateIndex < b.CreateIndex:
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
}

func printEvalTable(w io.Writer, evals []*structs.Evaluation, id func(string) string) error {
	t := newTable(w, "ID", "Priority", "Triggered By", "Job ID", "Namespace", "Status", "Placement Failures")
	for _, e := range evals {
		t.row(id(e.ID), strconv.Itoa(e.Priority), e.TriggeredBy, e.JobID, e.Namespace, e.Status,
			strconv.FormatBool(len(e.FailedTGAllocs) > 0))
	}
	return t.flush()
}

// idFormatter shortens IDs to 8 characters unless verbose.
func idFormatter(verbose bool) func(string) string {
	if verbose {
		return func(id string) string { return id }
	}
	return structs.ShortID
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// printPlacementFailures explains, group by group, why allocations found
// no node: one "Task Group" line each, then the reasons as bullets.
// withCount adds how many allocations failed (1 plus the coalesced ones).
func printPlacementFailures(w io.Writer, failed map[string]*structs.AllocMetric, indent string, withCount bool) {
	for _, group := range slices.Sorted(maps.Keys(failed)) {
		m := failed[group]
		if withCount && m != nil {
			fmt.Fprintf(w, "%sTask Group %q (failed to place %s):\n", indent, group, plural(1+m.CoalescedFailures, "allocation"))
		} else {
			fmt.Fprintf(w, "%sTask Group %q:\n", indent, group)
		}
		for _, reason := range placementReasons(m) {
			fmt.Fprintf(w, "%s  * %s\n", indent, reason)
		}
	}
}

// placementReasons says in plain words what an AllocMetric recorded.
func placementReasons(m *structs.AllocMetric) []string {
	if m == nil {
		return []string{"No reason was recorded"}
	}
	var out []string
	if m.NodesEvaluated == 0 {
		out = append(out, "No nodes were eligible for evaluation")
	}
	for _, dc := range slices.Sorted(maps.Keys(m.NodesAvailable)) {
		if m.NodesAvailable[dc] == 0 {
			out = append(out, fmt.Sprintf("No nodes are available in datacenter %q", dc))
		}
	}
	for _, class := range slices.Sorted(maps.Keys(m.ClassFiltered)) {
		out = append(out, fmt.Sprintf("Class %q: %s filtered", class, plural(m.ClassFiltered[class], "node")))
	}
	for _, cons := range slices.Sorted(maps.Keys(m.ConstraintFiltered)) {
		out = append(out, fmt.Sprintf("Constraint %q: %s filtered", cons, plural(m.ConstraintFiltered[cons], "node")))
	}
	dims := make([]string, 0, len(m.DimensionExhausted))
	for _, dim := range slices.Sorted(maps.Keys(m.DimensionExhausted)) {
		dims = append(dims, fmt.Sprintf("%s exhausted on %s", dim, plural(m.DimensionExhausted[dim], "node")))
	}
	switch {
	case m.NodesExhausted > 0 && len(dims) > 0:
		out = append(out, fmt.Sprintf("Resources exhausted on %s: %s", plural(m.NodesExhausted, "node"), strings.Join(dims, ", ")))
	case m.NodesExhausted > 0:
		out = append(out, fmt.Sprintf("Resources exhausted on %s", plural(m.NodesExhausted, "node")))
	default:
		for _, d := range dims {
			out = append(out, capitalize(d))
		}
	}
	if len(out) == 0 {
		out = append(out, fmt.Sprintf("%s evaluated, none could take the allocation", plural(m.NodesEvaluated, "node")))
	}
	return out
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
