// Command drover is a container orchestrator in one binary: control-plane
// servers replicate the cluster store with Raft, clients run containers
// through containerd. Everything it does is reached through the CLI.
package main

import (
	"os"

	"github.com/drover-sh/drover/command"
)

func main() {
	os.Exit(command.Run(os.Args))
}
