package command

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/drover-sh/drover/api"
	"github.com/drover-sh/drover/structs"
)

func jobRevertCommand() *cli.Command {
	return &cli.Command{
		Name:      "revert",
		Usage:     "Register a kept version of a job again, as a new version",
		UsageText: "drover job revert [options] <job id> <version>",
		Description: `Registers the spec of one of the job's kept versions (see job history)
again; it becomes a new version, rolled out like any update.

Examples:
  drover job revert web 3
  drover job revert -json web 3`,
		Flags:  withCluster(jsonFlag()),
		Action: jobRevert,
	}
}

func jobRevert(c *cli.Context) error {
	if err := wantArgs(c, 2, "<job id> <version>"); err != nil {
		return err
	}
	version, err := strconv.ParseUint(c.Args().Get(1), 10, 64)
	if err != nil {
		return usageErrorf(c, "version must be a non-negative integer, got %q", c.Args().Get(1))
	}
	client, err := apiClient(c)
	if err != nil {
		return err
	}
	job, err := resolveJob(c, client, c.Args().First())
	if err != nil {
		return err
	}
	resp, err := client.Jobs().Revert(c.Context, job.ID, version, &api.WriteOptions{Namespace: job.Namespace})
	if err != nil {
		return fmt.Errorf("reverting job %q to version %d: %w", job.ID, version, err)
	}
	if c.Bool("json") {
		return printJSON(resp)
	}
	fmt.Fprintf(stdout, "Job %q reverted to the spec of version %d as version %d; evaluation %q created\n",
		job.ID, version, resp.JobVersion, structs.ShortID(resp.EvalID))
	return nil
}

// latestDeployment is the job's newest deployment, or nil.
func latestDeployment(ctx context.Context, client *api.Client, job *structs.Job) (*structs.Deployment, error) {
	q := &api.QueryOptions{Namespace: job.Namespace, Params: api.DeploymentFilter(job.ID)}
	deps, _, err := client.Deployments().List(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("listing deployments of job %q: %w", job.ID, err)
	}
	if len(deps) == 0 {
		return nil, nil
	}
	return deps[0], nil // newest first
}

// printLatestDeployment is job status's deployment section.
func printLatestDeployment(w io.Writer, d *structs.Deployment) error {
	if d == nil {
		return nil
	}
	fmt.Fprintln(w, "\nLatest Deployment")
	printKV(w,
		[2]string{"ID", structs.ShortID(d.ID)},
		[2]string{"Job Version", strconv.FormatUint(d.JobVersion, 10)},
		[2]string{"Status", d.Status},
		[2]string{"Description", orNone(d.StatusDescription)},
	)
	fmt.Fprintln(w, "\nDeployed")
	return printDeploymentGroups(w, d)
}
