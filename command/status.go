package command

import "github.com/urfave/cli/v2"

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "List jobs, or show one (same as job status)",
		UsageText: "drover status [options] [job id]",
		Description: `With no ID, lists the jobs of the namespace; with an ID (or a unique
prefix), shows that job. Same as "drover job status".

Examples:
  drover status
  drover status web`,
		Flags:  withCluster(jsonFlag()),
		Action: jobStatus,
	}
}
