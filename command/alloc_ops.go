package command

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/drover-sh/drover/api"
	"github.com/drover-sh/drover/structs"
)

func allocLogsCommand() *cli.Command {
	return &cli.Command{
		Name:      "logs",
		Usage:     "Print a task's output",
		UsageText: "drover alloc logs [options] <alloc id> [task]",
		Description: `Prints the stdout (or stderr) of a task of the allocation, read from the
client that runs it. The task may be omitted when the group has only one.

Examples:
  drover alloc logs 5bd1c0a2
  drover alloc logs -f -n 20 5bd1c0a2 server
  drover alloc logs -stderr 5bd1c0a2`,
		Flags: withCluster(
			&cli.BoolFlag{Name: "f", Aliases: []string{"follow"}, DisableDefaultText: true, Usage: "keep printing new output"},
			&cli.BoolFlag{Name: "stderr", DisableDefaultText: true, Usage: "print stderr instead of stdout"},
			&cli.BoolFlag{Name: "tail", DisableDefaultText: true, Usage: "start at the end (the last 10 lines unless -n says)"},
			&cli.IntFlag{Name: "n", Usage: "with -tail or alone: print the last N lines", Value: -1},
			&cli.StringFlag{Name: "task", Usage: "task name (or give it as the second argument)"},
		),
		Action: allocLogs,
	}
}

// allocAndTask reads the `<alloc id> [task]` arguments (the task may come
// from -task instead) and resolves the allocation.
func allocAndTask(c *cli.Context) (*api.Client, *structs.Allocation, string, error) {
	if c.NArg() < 1 || c.NArg() > 2 {
		return nil, nil, "", usageErrorf(c, "expected <alloc id> [task], got %d arguments", c.NArg())
	}
	client, err := apiClient(c)
	if err != nil {
		return nil, nil, "", err
	}
	alloc, err := resolveAlloc(c, client, c.Args().First())
	if err != nil {
		return nil, nil, "", err
	}
	task := c.String("task")
	if c.NArg() == 2 {
		task = c.Args().Get(1)
	}
	return client, alloc, task, nil
}

func allocLogs(c *cli.Context) error {
	client, alloc, task, err := allocAndTask(c)
	if err != nil {
		return err
	}
	opts := &api.LogOptions{Task: task, Stderr: c.Bool("stderr"), Follow: c.Bool("f")}
	switch n := c.Int("n"); {
	case n == 0:
		if !opts.Follow {
			return nil
		}
		opts.Origin = "end"
	case n > 0:
		opts.Lines = n
	case c.Bool("tail"):
		opts.Lines = 10
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	rc, err := client.Allocations().Logs(ctx, alloc.ID, opts)
	if err != nil {
		return fmt.Errorf("reading logs of allocation %s: %w", structs.ShortID(alloc.ID), err)
	}
	defer rc.Close()
	_, err = io.Copy(stdout, rc)
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("reading logs of allocation %s: %w", structs.ShortID(alloc.ID), err)
	}
	return nil
}

func allocExecCommand() *cli.Command {
	return &cli.Command{
		Name:      "exec",
		Usage:     "Run a command inside a running task",
		UsageText: "drover alloc exec [options] <alloc id> [--] <command> [args...]",
		Description: `Runs a command in the task's container on the client that runs the
allocation and exits with the command's exit code. -i passes standard
input; -t gives it a terminal (both default to on when stdin is a
terminal).

Examples:
  drover alloc exec 5bd1c0a2 -- cat /etc/hostname
  drover alloc exec -i -t -task server 5bd1c0a2 /bin/sh`,
		Flags: withCluster(
			&cli.StringFlag{Name: "task", Usage: "task name, when the group has several"},
			&cli.BoolFlag{Name: "i", DisableDefaultText: true, Usage: "pass standard input to the command"},
			&cli.BoolFlag{Name: "t", DisableDefaultText: true, Usage: "give the command a terminal"},
		),
		Action: allocExec,
	}
}

func allocExec(c *cli.Context) error {
	args := c.Args().Slice()
	if len(args) < 2 {
		return usageErrorf(c, "expected <alloc id> and a command")
	}
	cmd := args[1:]
	if cmd[0] == "--" {
		cmd = cmd[1:]
	}
	if len(cmd) == 0 {
		return usageErrorf(c, "expected a command after %q", "--")
	}
	client, err := apiClient(c)
	if err != nil {
		return err
	}
	alloc, err := resolveAlloc(c, client, args[0])
	if err != nil {
		return err
	}
	stdinFile, isFile := stdin.(*os.File)
	interactive := isFile && term.IsTerminal(int(stdinFile.Fd()))
	useStdin := c.Bool("i") || (!c.IsSet("i") && interactive)
	tty := c.Bool("t") || (!c.IsSet("t") && interactive)
	if tty && !interactive {
		return usageErrorf(c, "-t needs standard input to be a terminal")
	}
	opts := &api.ExecOptions{Task: c.String("task"), Command: cmd, TTY: tty, Stdout: stdout, Stderr: stderr}
	if useStdin {
		opts.Stdin = stdin
	}
	if tty {
		fd := int(stdinFile.Fd())
		state, err := term.MakeRaw(fd)
		if err != nil {
			return fmt.Errorf("setting the terminal to raw mode: %w", err)
		}
		defer term.Restore(fd, state)
		resize := make(chan [2]uint16, 1)
		sendSize := func() {
			if w, h, err := term.GetSize(fd); err == nil {
				select {
				case resize <- [2]uint16{uint16(w), uint16(h)}:
				default:
				}
			}
		}
		sendSize()
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, syscall.SIGWINCH)
		defer signal.Stop(winch)
		go func() {
			for range winch {
				sendSize()
			}
		}()
		opts.Resize = resize
	}
	code, err := client.Allocations().Exec(c.Context, alloc.ID, opts)
	if err != nil {
		return fmt.Errorf("exec in allocation %s: %w", structs.ShortID(alloc.ID), err)
	}
	if code != 0 {
		return exitWith(code, nil)
	}
	return nil
}

func allocRestartCommand() *cli.Command {
	return &cli.Command{
		Name:      "restart",
		Usage:     "Restart an allocation's tasks in place",
		UsageText: "drover alloc restart [options] <alloc id> [task]",
		Description: `Restarts the allocation's tasks (or the one named) on the node they run
on. A restart asked for this way does not count against the restart
policy's attempts.

Examples:
  drover alloc restart 5bd1c0a2
  drover alloc restart 5bd1c0a2 server`,
		Flags:  withCluster(&cli.StringFlag{Name: "task", Usage: "task name (or give it as the second argument)"}),
		Action: allocRestart,
	}
}

func allocRestart(c *cli.Context) error {
	client, alloc, task, err := allocAndTask(c)
	if err != nil {
		return err
	}
	if err := client.Allocations().Restart(c.Context, alloc.ID, task); err != nil {
		return fmt.Errorf("restarting allocation %s: %w", structs.ShortID(alloc.ID), err)
	}
	fmt.Fprintf(stdout, "Allocation %q restarted\n", structs.ShortID(alloc.ID))
	return nil
}

func allocStopCommand() *cli.Command {
	return &cli.Command{
		Name:      "stop",
		Usage:     "Stop an allocation; the scheduler places a replacement",
		UsageText: "drover alloc stop [options] <alloc id>",
		Description: `Stops the allocation and evaluates its job, so a service or batch job gets
a replacement placed, possibly on another node.

Examples:
  drover alloc stop 5bd1c0a2
  drover alloc stop -detach 5bd1c0a2`,
		Flags:  withCluster(&cli.BoolFlag{Name: "detach", DisableDefaultText: true, Usage: "print the evaluation ID only"}),
		Action: allocStop,
	}
}

func allocStop(c *cli.Context) error {
	if err := wantArgs(c, 1, "<alloc id>"); err != nil {
		return err
	}
	client, err := apiClient(c)
	if err != nil {
		return err
	}
	alloc, err := resolveAlloc(c, client, c.Args().First())
	if err != nil {
		return err
	}
	resp, err := client.Allocations().Stop(c.Context, alloc.ID)
	if err != nil {
		return fmt.Errorf("stopping allocation %s: %w", structs.ShortID(alloc.ID), err)
	}
	if c.Bool("detach") {
		fmt.Fprintln(stdout, resp.EvalID)
		return nil
	}
	fmt.Fprintf(stdout, "Allocation %q stopped; evaluation %q places its replacement\n", structs.ShortID(alloc.ID), structs.ShortID(resp.EvalID))
	return nil
}
