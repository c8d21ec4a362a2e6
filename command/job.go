package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/drover-sh/drover/api"
	"github.com/drover-sh/drover/structs"
)

func jobCommand() *cli.Command {
	return &cli.Command{
		Name:      "job",
		Usage:     "Submit, inspect and stop jobs",
		UsageText: "drover job <command> [options] [args]",
		Description: `Jobs are YAML (or JSON) files declaring what should run; see
"drover job run -help".

Examples:
  drover job validate web.yaml
  drover job run web.yaml
  drover job status web`,
		Subcommands: []*cli.Command{
			jobRunCommand(),
			jobPlanCommand(),
			jobValidateCommand(),
			jobStatusCommand(),
			jobStopCommand(),
			jobInspectCommand(),
			jobHistoryCommand(),
			jobRevertCommand(),
		},
	}
}

func jobRunCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "Submit a job file, creating or updating the job it declares",
		UsageText: "drover job run [options] <file|->",
		Description: `Sends the job file ("-" reads standard input) to the agent, which
registers a new version of the job and creates an evaluation to place it,
then waits for the scheduler to finish that evaluation and prints what it
placed (-detach prints the evaluation ID and returns at once). Files
ending in .json are sent as JSON, others as YAML. Problems with the file
are printed as FILE:LINE:COLUMN: field: message.

When the evaluation starts a deployment (a service job's rollout), job
run then follows it: a table of each group's desired, placed, healthy and
unhealthy allocations, redrawn in place on a terminal (plain lines
otherwise), until the deployment succeeds or fails.

Exit codes: 0 when every allocation was placed (and the deployment, if
any, succeeded), 2 when some could not be (the reasons are printed; a
blocked evaluation places them when capacity appears) or the deployment
failed, 1 on any other error.

Examples:
  drover job run web.yaml
  drover job run -detach web.yaml
  drover job run -check-index 42 web.yaml
  cat web.json | drover job run -`,
		Flags: withCluster(
			&cli.BoolFlag{Name: "detach", DisableDefaultText: true, Usage: "print only the evaluation ID, do not wait"},
			&cli.Uint64Flag{Name: "check-index", Usage: "register only if the job's modify index is still this (0: only if the job is new); see job plan"},
		),
		Action: jobRun,
	}
}

func jobRun(c *cli.Context) error {
	if err := wantArgs(c, 1, "<file|->"); err != nil {
		return err
	}
	data, name, err := readJobFile(c.Args().First())
	if err != nil {
		return err
	}
	client, err := apiClient(c)
	if err != nil {
		return err
	}
	var w *api.WriteOptions
	if c.IsSet("check-index") {
		w = &api.WriteOptions{Params: map[string]string{"enforce_index": strconv.FormatUint(c.Uint64("check-index"), 10)}}
	}
	resp, err := client.Jobs().Register(c.Context, data, jobContentType(name, data), w)
	if err != nil {
		var apiErr *api.Error
		if errors.As(err, &apiErr) && len(apiErr.Problems) > 0 {
			printProblems(name, apiErr.Problems)
			return exitWith(1, nil)
		}
		return fmt.Errorf("submitting %s: %w", name, err)
	}
	for _, w := range resp.Warnings {
		fmt.Fprintf(stderr, "Warning: %s\n", w)
	}
	if c.Bool("detach") {
		fmt.Fprintln(stdout, resp.EvalID)
		return nil
	}
	// The answer does not repeat the job's ID: read it from the file. A file
	// this CLI cannot parse but the agent took still gets a message.
	what := "Job"
	if job, err := structs.ParseJob(data); err == nil && job.ID != "" {
		what = fmt.Sprintf("Job %q", job.ID)
	}
	fmt.Fprintf(stdout, "%s registered: version %d, evaluation %s\n", what, resp.JobVersion, resp.EvalID)
	if resp.EvalID == "" {
		return nil
	}
	code, eval, err := monitorEvalDone(c.Context, client, resp.EvalID)
	if err != nil {
		return err
	}
	if code != 0 {
		return exitWith(code, nil)
	}
	d, err := jobDeployment(c.Context, client, eval, resp.JobModifyIndex)
	if err != nil || d == nil {
		return err
	}
	if code, err = monitorDeployment(c.Context, client, d); err != nil {
		return err
	}
	if code != 0 {
		return exitWith(code, nil)
	}
	return nil
}

func jobValidateCommand() *cli.Command {
	return &cli.Command{
		Name:      "validate",
		Usage:     "Check a job file without submitting it",
		UsageText: "drover job validate <file|->",
		Description: `Parses and validates the job file ("-" reads standard input) offline,
with no agent involved, and prints every problem as
FILE:LINE:COLUMN: field: message. Exits 1 if there is any.

Examples:
  drover job validate web.yaml`,
		Action: jobValidate,
	}
}

func jobValidate(c *cli.Context) error {
	if err := wantArgs(c, 1, "<file|->"); err != nil {
		return err
	}
	data, name, err := readJobFile(c.Args().First())
	if err != nil {
		return err
	}
	if _, err := structs.ParseJob(data); err != nil {
		var verr *structs.ValidationError
		if errors.As(err, &verr) && len(verr.Errors) > 0 {
			printProblems(name, verr.Errors)
			return exitWith(1, nil)
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	fmt.Fprintln(stdout, "Job validation successful")
	return nil
}

// readJobFile reads path, or standard input for "-"; name is what problems
// are reported against.
func readJobFile(path string) (data []byte, name string, err error) {
	if path == "-" {
		data, err = io.ReadAll(stdin)
		if err != nil {
			return nil, "", fmt.Errorf("reading the job from standard input: %w", err)
		}
		return data, "<stdin>", nil
	}
	data, err = os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("reading job file: %w", err)
	}
	return data, path, nil
}

// jobContentType is JSON for .json files and for standard input that looks
// like a JSON object; YAML otherwise.
func jobContentType(name string, data []byte) string {
	if strings.EqualFold(filepath.Ext(name), ".json") {
		return api.ContentTypeJSON
	}
	if name == "<stdin>" && bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
		return api.ContentTypeJSON
	}
	return api.ContentTypeYAML
}

// printProblems prints one problem per line, as compilers do, so editors
// can jump to them.
func printProblems(name string, problems []*structs.FieldError) {
	for _, p := range problems {
		var b strings.Builder
		b.WriteString(name)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", p.Line, p.Column)
		}
		b.WriteString(": ")
		if p.Field != "" {
			b.WriteString(p.Field)
			b.WriteString(": ")
		}
		b.WriteString(p.Message)
		fmt.Fprintln(stderr, b.String())
	}
}

func jobStatusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "List jobs, or show one job and its latest evaluations",
		UsageText: "drover job status [options] [job id]",
		Description: `With no ID, lists the jobs of the namespace. With an ID (or a unique
prefix of one), shows the job and its five latest evaluations.

Examples:
  drover job status
  drover job status -namespace '*'
  drover job status web
  drover job status -json web`,
		Flags:  withCluster(jsonFlag()),
		Action: jobStatus,
	}
}

func jobStatus(c *cli.Context) error {
	switch c.NArg() {
	case 0:
		return listJobs(c)
	case 1:
		return showJob(c, c.Args().First())
	}
	return wantArgs(c, 1, "[job id]")
}

func listJobs(c *cli.Context) error {
	client, err := apiClient(c)
	if err != nil {
		return err
	}
	jobs, _, err := client.Jobs().List(c.Context, queryOptions(c))
	if err != nil {
		return fmt.Errorf("listing jobs: %w", err)
	}
	sortJobs(jobs)
	if c.Bool("json") {
		if jobs == nil {
			jobs = []*structs.JobListStub{}
		}
		return printJSON(jobs)
	}
	if len(jobs) == 0 {
		fmt.Fprintln(stdout, "No running jobs")
		return nil
	}
	return printJobTable(stdout, jobs, c.String("namespace") == "*")
}

func sortJobs(jobs []*structs.JobListStub) {
	slices.SortFunc(jobs, func(a, b *structs.JobListStub) int {
		if a.Namespace != b.Namespace {
			return strings.Compare(a.Namespace, b.Namespace)
		}
		return strings.Compare(a.ID, b.ID)
	})
}

func printJobTable(w io.Writer, jobs []*structs.JobListStub, withNamespace bool) error {
	header := []string{"ID", "Type", "Priority", "Status", "Submit Date"}
	if withNamespace {
		header = slices.Insert(header, 1, "Namespace")
	}
	t := newTable(w, header...)
	for _, j := range jobs {
		row := []string{j.ID, j.Type, strconv.Itoa(j.Priority), jobStatusText(j.Status, j.Stop), formatTime(j.SubmitTime)}
		if withNamespace {
			row = slices.Insert(row, 1, j.Namespace)
		}
		t.row(row...)
	}
	return t.flush()
}

// jobStatusText marks a stopped job that is still winding down.
func jobStatusText(status string, stop bool) string {
	if stop && status != structs.JobStatusDead {
		return status + " (stopped)"
	}
	if stop {
		return "dead (stopped)"
	}
	return status
}

// latestEvals is how many evaluations job status shows in its table.
const latestEvals = 5

func showJob(c *cli.Context, id string) error {
	client, err := apiClient(c)
	if err != nil {
		return err
	}
	job, err := resolveJob(c, client, id)
	if err != nil {
		return err
	}
	q := &api.QueryOptions{Namespace: job.Namespace}
	evals, _, err := client.Jobs().Evaluations(c.Context, job.ID, q)
	if err != nil {
		return fmt.Errorf("listing evaluations of job %q: %w", job.ID, err)
	}
	sortEvals(evals)
	allocs, _, err := client.Jobs().Allocations(c.Context, job.ID, q)
	if err != nil {
		return fmt.Errorf("listing allocations of job %q: %w", job.ID, err)
	}
	deployment, err := latestDeployment(c.Context, client, job)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		if evals == nil {
			evals = []*structs.Evaluation{}
		}
		if allocs == nil {
			allocs = []*structs.AllocListStub{}
		}
		return printJSON(struct {
			Job              *structs.Job             `json:"job"`
			Evaluations      []*structs.Evaluation    `json:"evaluations"`
			Allocations      []*structs.AllocListStub `json:"allocations"`
			LatestDeployment *structs.Deployment      `json:"latest_deployment"`
		}{job, evals, allocs, deployment})
	}

	printKV(stdout,
		[2]string{"ID", job.ID},
		[2]string{"Namespace", job.Namespace},
		[2]string{"Type", job.Type},
		[2]string{"Priority", strconv.Itoa(job.Priority)},
		[2]string{"Datacenters", strings.Join(job.Datacenters, ",")},
		[2]string{"Status", jobStatusText(job.Status, job.Stop)},
		[2]string{"Version", strconv.FormatUint(job.Version, 10)},
		[2]string{"Submit Date", formatTime(job.SubmitTime)},
	)
	if failed := latestFailures(evals); failed != nil {
		fmt.Fprintln(stdout, "\nPlacement Failure")
		printPlacementFailures(stdout, failed.FailedTGAllocs, "", true)
		if failed.BlockedEval != "" {
			fmt.Fprintf(stdout, "Evaluation %q waiting for additional capacity to place remainder\n", structs.ShortID(failed.BlockedEval))
		}
	}

	if err := printLatestDeployment(stdout, deployment); err != nil {
		return err
	}

	fmt.Fprintln(stdout, "\nLatest Evaluations")
	if len(evals) == 0 {
		fmt.Fprintln(stdout, "No evaluations")
	} else {
		t := newTable(stdout, "ID", "Priority", "Triggered By", "Status", "Created")
		for _, e := range evals[:min(len(evals), latestEvals)] {
			t.row(structs.ShortID(e.ID), strconv.Itoa(e.Priority), e.TriggeredBy, e.Status, formatTime(e.CreateTime))
		}
		if err := t.flush(); err != nil {
			return err
		}
		if n := len(evals) - latestEvals; n > 0 {
			fmt.Fprintf(stdout, "(%d older not shown; -json lists all)\n", n)
		}
	}

	fmt.Fprintln(stdout, "\nAllocations")
	if len(allocs) == 0 {
		fmt.Fprintln(stdout, "No allocations placed")
		return nil
	}
	return printAllocTable(stdout, allocs, structs.ShortID)
}

// latestFailures returns the newest evaluation the scheduler finished,
// when it could not place everything; nil when that evaluation placed all
// (or none finished yet). Pending and blocked evaluations have not
// decided anything, so they are passed over.
func latestFailures(newestFirst []*structs.Evaluation) *structs.Evaluation {
	for _, e := range newestFirst {
		if !e.TerminalStatus() {
			continue
		}
		if len(e.FailedTGAllocs) > 0 {
			return e
		}
		return nil
	}
	return nil
}

// resolveJob reads the job named by id, or by a unique prefix of its ID.
// Several matches are listed on stderr and end the command with exit 1.
func resolveJob(c *cli.Context, client *api.Client, id string) (*structs.Job, error) {
	ctx := c.Context
	job, _, err := client.Jobs().Info(ctx, id, queryOptions(c))
	if err == nil {
		return job, nil
	}
	if !api.IsNotFound(err) {
		return nil, fmt.Errorf("reading job %q: %w", id, err)
	}
	q := queryOptions(c)
	q.Prefix = id
	stubs, _, err := client.Jobs().List(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("listing jobs with prefix %q: %w", id, err)
	}
	switch len(stubs) {
	case 0:
		return nil, fmt.Errorf("no job with ID or ID prefix %q", id)
	case 1:
		return readStub(ctx, client, stubs[0])
	}
	sortJobs(stubs)
	fmt.Fprintf(stderr, "Error: prefix %q matches %d jobs; use one of these IDs:\n\n", id, len(stubs))
	printJobTable(stderr, stubs, true)
	return nil, exitWith(1, nil)
}

func readStub(ctx context.Context, client *api.Client, s *structs.JobListStub) (*structs.Job, error) {
	job, _, err := client.Jobs().Info(ctx, s.ID, &api.QueryOptions{Namespace: s.Namespace})
	if err != nil {
		return nil, fmt.Errorf("reading job %q: %w", s.ID, err)
	}
	return job, nil
}

// namespacedClient returns a client acting in the job's namespace, which
// differs from the flag's when that was "*".
func namespacedClient(c *cli.Context, namespace string) (*api.Client, error) {
	return api.NewClient(&api.Config{
		Address:   c.String("address"),
		Token:     c.String("token"),
		Namespace: namespace,
	})
}

func jobStopCommand() *cli.Command {
	return &cli.Command{
		Name:      "stop",
		Usage:     "Stop a job, or purge it",
		UsageText: "drover job stop [options] <job id>",
		Description: `Stops every allocation of the job (an ID or a unique prefix). The stopped
job stays visible, with its history, until garbage collection; -purge
removes it at once.

Examples:
  drover job stop web
  drover job stop -purge web`,
		Flags: withCluster(
			&cli.BoolFlag{Name: "purge", DisableDefaultText: true, Usage: "remove the job and its history now"},
		),
		Action: jobStop,
	}
}

func jobStop(c *cli.Context) error {
	if err := wantArgs(c, 1, "<job id>"); err != nil {
		return err
	}
	client, err := apiClient(c)
	if err != nil {
		return err
	}
	job, err := resolveJob(c, client, c.Args().First())
	if err != nil {
		return err
	}
	if client, err = namespacedClient(c, job.Namespace); err != nil {
		return err
	}
	purge := c.Bool("purge")
	resp, err := client.Jobs().Deregister(c.Context, job.ID, purge)
	if err != nil {
		return fmt.Errorf("stopping job %q: %w", job.ID, err)
	}
	verb := "stopped"
	if purge {
		verb = "purged"
	}
	if resp.EvalID == "" {
		fmt.Fprintf(stdout, "Job %q %s\n", job.ID, verb)
		return nil
	}
	fmt.Fprintf(stdout, "Job %q %s: evaluation %s\n", job.ID, verb, resp.EvalID)
	return nil
}

func jobInspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "Print a job as JSON",
		UsageText: "drover job inspect [options] <job id>",
		Description: `Prints the job (an ID or a unique prefix) as the cluster stores it, as
indented JSON that "drover job run" accepts back.

Examples:
  drover job inspect web
  drover job inspect web > web.json && drover job run web.json`,
		Flags:  withCluster(),
		Action: jobInspect,
	}
}

func jobInspect(c *cli.Context) error {
	if err := wantArgs(c, 1, "<job id>"); err != nil {
		return err
	}
	client, err := apiClient(c)
	if err != nil {
		return err
	}
	job, err := resolveJob(c, client, c.Args().First())
	if err != nil {
		return err
	}
	return printJSON(job)
}

func jobHistoryCommand() *cli.Command {
	return &cli.Command{
		Name:      "history",
		Usage:     "List the versions of a job, with what changed between them",
		UsageText: "drover job history [options] <job id>",
		Description: `Lists the versions of the job (an ID or a unique prefix) the cluster
keeps, newest first. With -p each version is shown with its changes from
the version before it (or, with -diff-version, from that version), as
job plan shows them.

Examples:
  drover job history web
  drover job history -p web
  drover job history -p -version 3 -diff-version 1 web`,
		Flags: withCluster(jsonFlag(),
			&cli.BoolFlag{Name: "p", DisableDefaultText: true, Usage: "show each version's changes"},
			&cli.Int64Flag{Name: "version", Value: -1, DefaultText: "all", Usage: "show only this version"},
			&cli.Int64Flag{Name: "diff-version", Value: -1, DefaultText: "the one before", Usage: "with -p, compare with this version"},
		),
		Action: jobHistory,
	}
}

func jobHistory(c *cli.Context) error {
	if err := wantArgs(c, 1, "<job id>"); err != nil {
		return err
	}
	client, err := apiClient(c)
	if err != nil {
		return err
	}
	job, err := resolveJob(c, client, c.Args().First())
	if err != nil {
		return err
	}
	versions, _, err := client.Jobs().Versions(c.Context, job.ID, &api.QueryOptions{Namespace: job.Namespace})
	if err != nil {
		return fmt.Errorf("reading versions of job %q: %w", job.ID, err)
	}
	slices.SortStableFunc(versions, func(a, b *structs.Job) int {
		switch {
		case a.Version > b.Version:
			return -1
		case a.Version < b.Version:
			return 1
		}
		return 0
	})
	byVersion := make(map[int64]*structs.Job, len(versions))
	for _, v := range versions {
		byVersion[int64(v.Version)] = v
	}
	kept := keptVersions(versions)
	if want := c.Int64("version"); want >= 0 {
		v := byVersion[want]
		if v == nil {
			return fmt.Errorf("-version: job %q has no version %d kept (kept: %s)", job.ID, want, kept)
		}
		versions = []*structs.Job{v}
	}
	against := c.Int64("diff-version")
	if against >= 0 && byVersion[against] == nil {
		return fmt.Errorf("-diff-version: job %q has no version %d kept (kept: %s)", job.ID, against, kept)
	}
	if c.Bool("json") {
		if versions == nil {
			versions = []*structs.Job{}
		}
		return printJSON(versions)
	}
	if c.Bool("p") {
		for i, v := range versions {
			if i > 0 {
				fmt.Fprintln(stdout)
			}
			base := byVersion[against]
			if against < 0 {
				base = byVersion[int64(v.Version)-1]
			}
			printVersion(v, base)
		}
		return nil
	}
	t := newTable(stdout, "Version", "Stable", "Stop", "Submit Date", "Modify Index")
	for _, v := range versions {
		t.row(strconv.FormatUint(v.Version, 10), strconv.FormatBool(v.Stable), strconv.FormatBool(v.Stop), formatTime(v.SubmitTime),
			strconv.FormatUint(v.ModifyIndex, 10))
	}
	return t.flush()
}

// printVersion prints one version of a job and, when base is given, what
// changed from base to it.
func printVersion(v, base *structs.Job) {
	printKV(stdout,
		[2]string{"Version", strconv.FormatUint(v.Version, 10)},
		[2]string{"Stable", strconv.FormatBool(v.Stable)},
		[2]string{"Submit Date", formatTime(v.SubmitTime)},
	)
	if base == nil {
		return
	}
	d := structs.DiffJobs(base, v)
	if d == nil || d.Type == structs.DiffTypeNone {
		fmt.Fprintf(stdout, "Diff        = none from version %d\n", base.Version)
		return
	}
	fmt.Fprintf(stdout, "Diff        = from version %d\n", base.Version)
	printJobDiff(stdout, d, false)
}

// keptVersions lists the version numbers, for an error message.
func keptVersions(versions []*structs.Job) string {
	parts := make([]string, len(versions))
	for i, v := range versions {
		parts[i] = strconv.FormatUint(v.Version, 10)
	}
	return strings.Join(parts, ", ")
}
