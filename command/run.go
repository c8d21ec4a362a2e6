package command

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// Run runs the CLI and returns the process exit code: 0 on success, 1 on
// an error (printed on stderr as "Error: ..."), or the code a command
// chose with exitWith.
func Run(args []string) int {
	return exitCode(newApp().RunContext(context.Background(), args))
}

func newApp() *cli.App {
	cli.FlagStringer = singleDashFlag
	app := &cli.App{
		Name:      "drover",
		Usage:     "a container orchestrator in one binary",
		UsageText: "drover <command> [options] [args]",
		Description: `Talks to a drover agent over its HTTP API (-address, $DROVER_ADDR), or
runs one (drover agent).

Examples:
  drover agent -dev
  drover job run web.yaml
  drover job status web
  drover server members`,
		Commands: []*cli.Command{
			agentCommand(),
			jobCommand(),
			nodeCommand(),
			allocCommand(),
			evalCommand(),
			deploymentCommand(),
			serviceCommand(),
			serverCommand(),
			operatorCommand(),
			systemCommand(),
			statusCommand(),
			versionCommand(),
			nodesimCommand(),
		},
		Writer:         stdout,
		ErrWriter:      stderr,
		Reader:         stdin,
		HideVersion:    true,
		OnUsageError:   onUsageError,
		Action:         parentAction,
		ExitErrHandler: func(*cli.Context, error) {}, // Run decides the exit code, never os.Exit
	}
	setUsageErrors(app.Commands)
	return app
}

// exitCode prints err the one way errors are printed and maps it to a code.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	code := 1
	var ee *exitError
	var coder cli.ExitCoder
	switch {
	case errors.As(err, &ee):
		code = ee.code
		if ee.err == nil {
			return code
		}
		err = ee.err
	case errors.As(err, &coder):
		code = coder.ExitCode()
		if err.Error() == "" {
			return code
		}
	}
	fmt.Fprintln(stderr, "Error:", err)
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "Run '%s -help' for usage.\n", ue.helpName)
	}
	return code
}

// urfaveFlagStringer is urfave's own help line of a flag.
var urfaveFlagStringer = cli.FlagStringer

// singleDashFlag shows flags in help as they are documented and typed,
// Nomad-style: -address, not --address (Go's flag parsing takes both).
func singleDashFlag(f cli.Flag) string {
	s := urfaveFlagStringer(f)
	names, rest, ok := strings.Cut(s, "\t")
	if !ok {
		return s
	}
	return strings.ReplaceAll(names, "--", "-") + "\t" + rest
}
