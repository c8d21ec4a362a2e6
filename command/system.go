package command

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

func systemCommand() *cli.Command {
	return &cli.Command{
		Name:      "system",
		Usage:     "Cluster-wide maintenance",
		UsageText: "drover system <command> [options]",
		Description: `Examples:
  drover system gc`,
		Subcommands: []*cli.Command{{
			Name:      "gc",
			Usage:     "Garbage collect finished evaluations, allocations, stopped jobs and dead nodes now",
			UsageText: "drover system gc [options]",
			Description: `The leader removes these on its own once they are old enough (1h for
evaluations, 4h for stopped jobs, 24h for down nodes); this does it now.

Examples:
  drover system gc`,
			Flags: withCluster(),
			Action: func(c *cli.Context) error {
				if err := wantArgs(c, 0, ""); err != nil {
					return err
				}
				client, err := apiClient(c)
				if err != nil {
					return err
				}
				if err := client.System().GarbageCollect(c.Context); err != nil {
					return fmt.Errorf("garbage collecting: %w", err)
				}
				fmt.Fprintln(stdout, "Garbage collection done")
				return nil
			},
		}},
	}
}
