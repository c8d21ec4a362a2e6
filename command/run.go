package command

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

// Run runs the CLI and returns the process exit code.
func Run(args []string) int {
	app := &cli.App{Name: "drover", Commands: []*cli.Command{agentCommand()}}
	if err := app.Run(args); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		return 1
	}
	return 0
}
