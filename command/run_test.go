package command

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"

	"github.com/drover-sh/drover/structs"
)

func TestVersion(t *testing.T) {
	r := run(t, "version")
	requireOK(t, r)
	require.Equal(t, lines(
		"drover v"+structs.Version,
		fmt.Sprintf("%s %s/%s", runtime.Version(), runtime.GOOS, runtime.GOARCH),
	), r.stdout)
}

func TestUsageErrors_OneLineAndAPointerToHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"job", "stop"}, "Error: missing argument: <job id>\nRun 'drover job stop -help' for usage.\n"},
		{[]string{"job", "inspect", "a", "b"}, "Error: too many arguments: want <job id>, got \"a b\"\nRun 'drover job inspect -help' for usage.\n"},
		{[]string{"job", "status", "-bogus"}, "Error: flag provided but not defined: -bogus\nRun 'drover job status -help' for usage.\n"},
		{[]string{"job", "bogus"}, "Error: unknown command \"bogus\"\nRun 'drover job -help' for usage.\n"},
		{[]string{"bogus"}, "Error: unknown command \"bogus\"\nRun 'drover -help' for usage.\n"},
		{[]string{"server", "members", "extra"}, "Error: this command takes no arguments\nRun 'drover server members -help' for usage.\n"},
	} {
		r := run(t, tc.args...)
		require.Equal(t, 1, r.code, tc.args)
		require.Empty(t, r.stdout, tc.args)
		require.Equal(t, tc.want, r.stderr, tc.args)
	}
}

func TestHelp_GoesToStdout(t *testing.T) {
	r := run(t, "job", "run", "-help")
	requireOK(t, r)
	require.Contains(t, r.stdout, "drover job run [options] <file|->")
	require.Contains(t, r.stdout, "-address value")
	require.NotContains(t, r.stdout, "--address", "flags are shown single-dash, as typed")

	r = run(t, "job")
	requireOK(t, r)
	require.Contains(t, r.stdout, "validate")
}

// Every command documents its usage, a synopsis and an example.
func TestHelp_EveryCommandHasUsageAndExample(t *testing.T) {
	var walk func(prefix string, cmds []*cli.Command)
	walk = func(prefix string, cmds []*cli.Command) {
		for _, c := range cmds {
			name := prefix + " " + c.Name
			require.NotEmpty(t, c.Usage, name)
			require.False(t, strings.HasSuffix(c.Usage, "."), "%s: synopsis is one line without a period", name)
			require.True(t, strings.HasPrefix(c.UsageText, name), "%s: usage line %q", name, c.UsageText)
			require.Contains(t, c.Description, "Examples:\n  "+prefix, name)
			walk(name, c.Subcommands)
		}
	}
	walk("drover", newApp().Commands)
}

func TestClusterCommands_HaveTheClusterFlags(t *testing.T) {
	// These do not talk to an agent's HTTP API: they run one, work
	// offline, or (nodesim) speak the servers' RPC like a client node.
	offline := map[string]bool{"drover agent": true, "drover version": true, "drover job validate": true, "drover nodesim": true}
	var walk func(prefix string, cmds []*cli.Command)
	walk = func(prefix string, cmds []*cli.Command) {
		for _, c := range cmds {
			name := prefix + " " + c.Name
			if len(c.Subcommands) > 0 {
				walk(name, c.Subcommands)
				continue
			}
			if offline[name] {
				continue
			}
			var names []string
			for _, f := range c.Flags {
				names = append(names, f.Names()...)
			}
			for _, want := range []string{"address", "token", "namespace"} {
				require.Contains(t, names, want, name)
			}
		}
	}
	walk("drover", newApp().Commands)
}

func TestExitCode(t *testing.T) {
	var buf strings.Builder
	old := stderr
	stderr = &buf
	defer func() { stderr = old }()

	require.Equal(t, 0, exitCode(nil))
	require.Equal(t, 2, exitCode(exitWith(2, errors.New("changes pending"))))
	require.Equal(t, 3, exitCode(exitWith(3, nil)))
	require.Equal(t, 1, exitCode(fmt.Errorf("wrapped: %w", errors.New("boom"))))
	require.Equal(t, 4, exitCode(cli.Exit("from urfave", 4)))
	require.Equal(t, "Error: changes pending\nError: wrapped: boom\nError: from urfave\n", buf.String())
}

func TestNamespaceAndTokenFromEnvironment(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /v1/jobs", stubs())
	t.Setenv("DROVER_NAMESPACE", "prod")
	t.Setenv("DROVER_TOKEN", "from-env")
	requireOK(t, run(t, "job", "status"))
	req := f.find("GET /v1/jobs")
	require.Equal(t, []string{"prod"}, req.Query["namespace"])
	require.Equal(t, "from-env", req.Header.Get("X-Drover-Token"))

	// Flags win over the environment.
	requireOK(t, run(t, "job", "status", "-namespace", "dev", "-token", "flag"))
	req = f.find("GET /v1/jobs")
	require.Equal(t, []string{"dev"}, req.Query["namespace"])
	require.Equal(t, "flag", req.Header.Get("X-Drover-Token"))
}
