package command

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/drover-sh/drover/api"
	"github.com/drover-sh/drover/structs"
)

func deploymentCommand() *cli.Command {
	return &cli.Command{
		Name:      "deployment",
		Usage:     "Inspect and steer the rollouts of service jobs",
		UsageText: "drover deployment <command> [options] [args]",
		Description: `A deployment follows the rollout of one version of a service job: how
many allocations of each group are placed, healthy and unhealthy, until
it succeeds or fails (an unhealthy allocation, a missed progress
deadline); with auto_revert a failed one rolls the job back to its last
stable version.

Examples:
  drover deployment list
  drover deployment status 4e4c0f4e
  drover deployment fail 4e4c0f4e`,
		Subcommands: []*cli.Command{
			deploymentListCommand(),
			deploymentStatusCommand(),
			deploymentFailCommand(),
			deploymentPromoteCommand(),
		},
	}
}

func deploymentListCommand() *cli.Command {
	return &cli.Command{
		Name:      "list",
		Usage:     "List deployments, newest first",
		UsageText: "drover deployment list [options]",
		Description: `Lists the deployments of the namespace, optionally only those of one job.

Examples:
  drover deployment list
  drover deployment list -job web -json`,
		Flags: withCluster(jsonFlag(), verboseFlag(),
			&cli.StringFlag{Name: "job", Usage: "only the deployments of this job ID"},
		),
		Action: deploymentList,
	}
}

func deploymentList(c *cli.Context) error {
	if err := wantArgs(c, 0, ""); err != nil {
		return err
	}
	client, err := apiClient(c)
	if err != nil {
		return err
	}
	q := queryOptions(c)
	q.Params = api.DeploymentFilter(c.String("job"))
	deps, _, err := client.Deployments().List(c.Context, q)
	if err != nil {
		return fmt.Errorf("listing deployments: %w", err)
	}
	if c.Bool("json") {
		if deps == nil {
			deps = []*structs.Deployment{}
		}
		return printJSON(deps)
	}
	if len(deps) == 0 {
		fmt.Fprintln(stdout, "No deployments found")
		return nil
	}
	return printDeploymentList(stdout, deps, idFormatter(c.Bool("verbose")))
}

func printDeploymentList(w io.Writer, deps []*structs.Deployment, id func(string) string) error {
	t := newTable(w, "ID", "Job ID", "Job Version", "Status", "Description")
	for _, d := range deps {
		t.row(id(d.ID), d.JobID, strconv.FormatUint(d.JobVersion, 10), d.Status, d.StatusDescription)
	}
	return t.flush()
}

func deploymentStatusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "Show one deployment and the progress of each group",
		UsageText: "drover deployment status [options] <deployment id>",
		Description: `Shows the deployment (an ID or a unique prefix): its job version, status,
and per group the desired, placed, healthy and unhealthy allocations and
the progress deadline.

Examples:
  drover deployment status 4e4c0f4e
  drover deployment status -json 4e4c0f4e`,
		Flags:  withCluster(jsonFlag(), verboseFlag()),
		Action: deploymentStatus,
	}
}

func deploymentStatus(c *cli.Context) error {
	if err := wantArgs(c, 1, "<deployment id>"); err != nil {
		return err
	}
	client, err := apiClient(c)
	if err != nil {
		return err
	}
	d, err := resolveDeployment(c, client, c.Args().First())
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return printJSON(d)
	}
	id := idFormatter(c.Bool("verbose"))
	printKV(stdout,
		[2]string{"ID", id(d.ID)},
		[2]string{"Job ID", d.JobID},
		[2]string{"Job Version", strconv.FormatUint(d.JobVersion, 10)},
		[2]string{"Namespace", d.Namespace},
		[2]string{"Status", d.Status},
		[2]string{"Description", orNone(d.StatusDescription)},
	)
	fmt.Fprintln(stdout, "\nDeployed")
	return printDeploymentGroups(stdout, d)
}

// printDeploymentGroups prints the per-group table of a deployment, as
// `deployment status` and `job status` show it.
func printDeploymentGroups(w io.Writer, d *structs.Deployment) error {
	canaries := false
	for _, s := range d.TaskGroups {
		canaries = canaries || s.DesiredCanaries > 0
	}
	header := []string{"Task Group", "Auto Revert"}
	if canaries {
		header = append(header, "Promoted", "Desired Canaries", "Placed Canaries")
	}
	header = append(header, "Desired", "Placed", "Healthy", "Unhealthy", "Progress Deadline")
	t := newTable(w, header...)
	names := make([]string, 0, len(d.TaskGroups))
	for name := range d.TaskGroups {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		s := d.TaskGroups[name]
		row := []string{name, strconv.FormatBool(s.AutoRevert)}
		if canaries {
			row = append(row, strconv.FormatBool(s.Promoted), strconv.Itoa(s.DesiredCanaries), strconv.Itoa(len(s.PlacedCanaries)))
		}
		row = append(row, strconv.Itoa(s.DesiredTotal), strconv.Itoa(s.PlacedAllocs),
			strconv.Itoa(s.HealthyAllocs), strconv.Itoa(s.UnhealthyAllocs), progressDeadline(d, s))
		t.row(row...)
	}
	return t.flush()
}

// progressDeadline is when the group must next make progress, or its
// configured deadline once it is not counting down.
func progressDeadline(d *structs.Deployment, s *structs.DeploymentState) string {
	switch {
	case s.ProgressDeadline.D() <= 0:
		return "<none>"
	case d.Active() && s.RequireProgressBy > 0:
		return formatTime(s.RequireProgressBy)
	}
	return time.Duration(s.ProgressDeadline).String()
}

// resolveDeployment reads the deployment named by an ID or a unique
// prefix; an ambiguous prefix lists the matches on stderr and exits 1.
func resolveDeployment(c *cli.Context, client *api.Client, id string) (*structs.Deployment, error) {
	d, _, err := client.Deployments().Info(c.Context, id, queryOptions(c))
	if err == nil {
		return d, nil
	}
	if !isAmbiguousPrefix(err) {
		return nil, fmt.Errorf("reading deployment %q: %w", id, err)
	}
	q := allNamespaces(c)
	q.Prefix = id
	deps, _, lerr := client.Deployments().List(c.Context, q)
	if lerr != nil {
		return nil, fmt.Errorf("reading deployment %q: %w", id, err)
	}
	fmt.Fprintf(stderr, "Error: prefix %q matches %d deployments; use one of these IDs:\n\n", id, len(deps))
	printDeploymentList(stderr, deps, idFormatter(true))
	return nil, exitWith(1, nil)
}

func deploymentFailCommand() *cli.Command {
	return &cli.Command{
		Name:      "fail",
		Usage:     "Fail an active deployment (auto_revert applies)",
		UsageText: "drover deployment fail [options] <deployment id>",
		Description: `Marks the deployment (an ID or a unique prefix) failed: its rollout stops,
and with auto_revert the job goes back to its last stable version.

Examples:
  drover deployment fail 4e4c0f4e`,
		Flags: withCluster(jsonFlag()),
		Action: func(c *cli.Context) error {
			return deploymentAct(c, "fail", (*api.Deployments).Fail)
		},
	}
}

func deploymentPromoteCommand() *cli.Command {
	return &cli.Command{
		Name:      "promote",
		Usage:     "Promote the canaries of an active deployment",
		UsageText: "drover deployment promote [options] <deployment id>",
		Description: `Promotes the canaries of the deployment (an ID or a unique prefix): the
allocations of the old version they stand beside stop, and the rest of the
group is rolled out max_parallel at a time. Refused while some canary is
not healthy yet, and for a deployment without canaries.

Examples:
  drover deployment promote 4e4c0f4e`,
		Flags: withCluster(jsonFlag()),
		Action: func(c *cli.Context) error {
			return deploymentAct(c, "promote", (*api.Deployments).Promote)
		},
	}
}

type deploymentAction func(d *api.Deployments, ctx context.Context, id string, w *api.WriteOptions) (*structs.DeploymentUpdateResponse, error)

func deploymentAct(c *cli.Context, verb string, act deploymentAction) error {
	if err := wantArgs(c, 1, "<deployment id>"); err != nil {
		return err
	}
	client, err := apiClient(c)
	if err != nil {
		return err
	}
	d, err := resolveDeployment(c, client, c.Args().First())
	if err != nil {
		return err
	}
	resp, err := act(client.Deployments(), c.Context, d.ID, nil)
	if err != nil {
		return fmt.Errorf("%s deployment %s: %w", strings.TrimSuffix(verb, "e")+"ing", structs.ShortID(d.ID), err)
	}
	if c.Bool("json") {
		return printJSON(resp)
	}
	past := map[string]string{"fail": "failed", "promote": "promoted"}[verb]
	fmt.Fprintf(stdout, "Deployment %q %s; evaluation %q created\n", structs.ShortID(d.ID), past, structs.ShortID(resp.EvalID))
	if resp.Reverted {
		fmt.Fprintf(stdout, "Job %q rolled back to the spec of its stable version %d\n", d.JobID, resp.RevertedJobVersion)
	}
	return nil
}
