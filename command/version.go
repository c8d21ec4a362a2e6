package command

import (
	"fmt"
	"runtime"

	"github.com/urfave/cli/v2"

	"github.com/drover-sh/drover/structs"
)

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:      "version",
		Usage:     "Print drover's version",
		UsageText: "drover version",
		Description: `Prints the version of this binary and the Go toolchain that built it.

Examples:
  drover version`,
		Action: func(c *cli.Context) error {
			if err := wantArgs(c, 0, ""); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "drover v%s\n", structs.Version)
			fmt.Fprintf(stdout, "%s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}
