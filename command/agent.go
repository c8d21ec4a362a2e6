package command

import "github.com/urfave/cli/v2"

// agentCommand is `drover agent`. Owned by the agent work; placeholder so
// the CLI compiles until it lands.
func agentCommand() *cli.Command {
	return &cli.Command{
		Name:  "agent",
		Usage: "run a drover agent (server and/or client)",
		Action: func(c *cli.Context) error {
			return cli.Exit("agent: not built yet", 1)
		},
	}
}
