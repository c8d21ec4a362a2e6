//go:build e2e

package e2e

import (
	"context"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// startServers starts n real server processes and stops them at cleanup,
// printing their logs if the test failed.
func startServers(t *testing.T, n int) *Cluster {
	t.Helper()
	bin, err := Binary()
	require.NoError(t, err)
	c, err := NewServers(bin, t.TempDir(), n)
	require.NoError(t, err)
	require.NoError(t, c.Start())
	t.Cleanup(func() {
		c.Stop()
		if t.Failed() {
			for _, a := range c.Agents {
				t.Logf("---- log of %s ----\n%s", a.Name, a.LogTail(80))
			}
		}
	})
	return c
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func repoFile(parts ...string) string {
	_, here, _, _ := runtime.Caller(0)
	return filepath.Join(append([]string{filepath.Dir(here), ".."}, parts...)...)
}

func TestServers_ThreeJoinAndSurviveLeaderKill(t *testing.T) {
	c := startServers(t, 3)
	ctx := testCtx(t, 2*time.Minute)
	for _, a := range c.Agents {
		require.NoError(t, WaitHTTP(ctx, a))
	}
	leader, err := c.WaitLeader(ctx)
	require.NoError(t, err)

	// Three alive servers, one of them the leader.
	var out, errOut string
	var code int
	require.Eventually(t, func() bool {
		out, errOut, code = c.CLI(ctx, c.Agents[1], "server", "members")
		return code == 0 && strings.Count(out, "alive") == 3
	}, 20*time.Second, 100*time.Millisecond, "server members: %s %s", out, errOut)
	require.Equal(t, 1, strings.Count(out, "true"), out)

	// One leader and two followers in the Raft configuration.
	require.Eventually(t, func() bool {
		out, errOut, code = c.CLI(ctx, c.Agents[2], "operator", "raft", "list-peers")
		return code == 0 && strings.Count(out, "leader") == 1 && strings.Count(out, "follower") == 2
	}, 20*time.Second, 100*time.Millisecond, "list-peers: %s %s", out, errOut)

	// A job submitted through the CLI shows in job status.
	out, errOut, code = c.CLI(ctx, c.Agents[0], "job", "run", "-detach", repoFile("examples", "web.yaml"))
	require.Equal(t, 0, code, "job run: %s %s", out, errOut)
	out, errOut, code = c.CLI(ctx, c.Agents[1], "job", "status", "web")
	require.Equal(t, 0, code, "job status: %s %s", out, errOut)
	require.Contains(t, out, "web")
	require.Contains(t, out, "service")

	// kill -9 of the leader: the job is still served by the survivors.
	leader.Kill()
	newLeader, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	require.NotEqual(t, leader.Name, newLeader.Name)
	for _, a := range c.Running() {
		out, errOut, code = c.CLI(ctx, a, "job", "status", "web")
		require.Equal(t, 0, code, "job status on %s: %s %s", a.Name, out, errOut)
		require.Contains(t, out, "web")
	}

	// A bad job file is refused with its line and column, and nothing is written.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, writeFile(bad, "id: bad\ngroups:\n  - name: g\n    count: -1\n    tasks:\n      - name: t\n"))
	out, errOut, code = c.CLI(ctx, newLeader, "job", "run", bad)
	require.Equal(t, 1, code, out)
	require.Contains(t, errOut, "4:")
	require.Contains(t, errOut, "count")
	_, _, code = c.CLI(ctx, newLeader, "job", "status", "bad")
	require.NotEqual(t, 0, code)
}
