package command

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/drover-sh/drover/api"
)

// Where commands read and write; tests swap them to run commands in-process.
var (
	stdout io.Writer = os.Stdout
	stderr io.Writer = os.Stderr
	stdin  io.Reader = os.Stdin
)

// exitError ends a command with a given exit code. A nil err means the
// command has already said what went wrong.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// exitWith returns an error that makes Run exit with code, printing err (if
// any) as usual.
func exitWith(code int, err error) error { return &exitError{code: code, err: err} }

// usageError is a command called the wrong way: Run points at its help
// instead of printing all of it.
type usageError struct {
	helpName string
	msg      string
}

func (e *usageError) Error() string { return e.msg }

func usageErrorf(c *cli.Context, format string, args ...any) error {
	return &usageError{helpName: helpName(c), msg: fmt.Sprintf(format, args...)}
}

func helpName(c *cli.Context) string {
	if c.Command != nil && c.Command.HelpName != "" {
		return c.Command.HelpName
	}
	return c.App.HelpName
}

// onUsageError replaces urfave's "Incorrect Usage" plus the whole help text
// with one error line and a pointer to the help.
func onUsageError(c *cli.Context, err error, _ bool) error {
	return &usageError{helpName: helpName(c), msg: err.Error()}
}

// wantArgs checks the number of positional arguments; names describes them
// for the error ("<job id>").
func wantArgs(c *cli.Context, n int, names string) error {
	if c.NArg() == n {
		return nil
	}
	if n == 0 {
		return usageErrorf(c, "this command takes no arguments")
	}
	if c.NArg() < n {
		return usageErrorf(c, "missing argument: %s", names)
	}
	return usageErrorf(c, "too many arguments: want %s, got %q", names, strings.Join(c.Args().Slice(), " "))
}

// clusterFlags are the flags of every command that talks to an agent.
func clusterFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{
			Name: "address", Usage: "HTTP address of the drover agent to talk to",
			EnvVars: []string{api.EnvAddress}, Value: api.DefaultAddress,
		},
		&cli.StringFlag{
			Name: "token", Usage: "ACL token to send",
			EnvVars: []string{api.EnvToken},
		},
		&cli.StringFlag{
			Name: "namespace", Usage: `namespace to act in (default "default"; "*" reads all)`,
			EnvVars: []string{api.EnvNamespace},
		},
	}
}

// jsonFlag is on every command whose output is data.
func jsonFlag() cli.Flag {
	return &cli.BoolFlag{Name: "json", DisableDefaultText: true, Usage: "print JSON instead of a table"}
}

// withCluster appends the cluster flags to a command's own.
func withCluster(own ...cli.Flag) []cli.Flag {
	return append(own, clusterFlags()...)
}

// apiClient builds the client the cluster flags describe.
func apiClient(c *cli.Context) (*api.Client, error) {
	return api.NewClient(&api.Config{
		Address:   c.String("address"),
		Token:     c.String("token"),
		Namespace: c.String("namespace"),
	})
}

// queryOptions are the read options the flags describe.
func queryOptions(c *cli.Context) *api.QueryOptions {
	return &api.QueryOptions{Namespace: c.String("namespace")}
}

// printJSON writes v as indented JSON.
func printJSON(v any) error {
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// table writes aligned columns, two spaces apart. Lines lose their
// trailing blanks, which empty last cells would otherwise leave.
type table struct {
	w   io.Writer
	buf bytes.Buffer
	tw  *tabwriter.Writer
}

// cellReplacer keeps a tab or newline inside a cell from breaking the
// alignment.
var cellReplacer = strings.NewReplacer("\t", " ", "\n", " ")

func newTable(w io.Writer, header ...string) *table {
	t := &table{w: w}
	t.tw = tabwriter.NewWriter(&t.buf, 0, 0, 2, ' ', 0)
	t.row(header...)
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		if i > 0 {
			io.WriteString(t.tw, "\t")
		}
		io.WriteString(t.tw, cellReplacer.Replace(c))
	}
	io.WriteString(t.tw, "\n")
}

func (t *table) flush() error {
	if err := t.tw.Flush(); err != nil {
		return err
	}
	out := t.buf.Bytes()
	for len(out) > 0 {
		line, rest, _ := bytes.Cut(out, []byte("\n"))
		line = bytes.TrimRight(line, " ")
		if _, err := t.w.Write(append(line, '\n')); err != nil {
			return err
		}
		out = rest
	}
	return nil
}

// printKV writes "Key  = value" lines with the "=" aligned, as Nomad does.
func printKV(w io.Writer, pairs ...[2]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	for _, p := range pairs {
		fmt.Fprintf(tw, "%s\t= %s\n", p[0], p[1])
	}
	return tw.Flush()
}

// formatTime formats a Unix nanosecond timestamp in local time; zero is "-".
func formatTime(unixNano int64) string {
	if unixNano == 0 {
		return "-"
	}
	return time.Unix(0, unixNano).Local().Format(time.RFC3339)
}

// setUsageErrors installs onUsageError on a command tree and makes every
// command with subcommands reject unknown ones.
func setUsageErrors(cmds []*cli.Command) {
	for _, cmd := range cmds {
		cmd.OnUsageError = onUsageError
		if len(cmd.Subcommands) > 0 {
			if cmd.Action == nil {
				cmd.Action = parentAction
			}
			setUsageErrors(cmd.Subcommands)
		}
	}
}

// parentAction runs for "drover job" alone (help) or "drover job bogus".
func parentAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageErrorf(c, "unknown command %q", c.Args().First())
	}
	return cli.ShowSubcommandHelp(c)
}
