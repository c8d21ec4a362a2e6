package gossip

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/internal/testlog"
	"github.com/drover-sh/drover/structs"
)

func testPool(t *testing.T, name, role, peersPath string, port int) *Pool {
	t.Helper()
	p, err := New(Config{
		Name:      name,
		BindAddr:  "127.0.0.1",
		BindPort:  port,
		Meta:      structs.Member{Role: role},
		Fast:      true,
		PeersPath: peersPath,
		Logger:    testlog.New(t, name, hclog.Warn),
	})
	require.NoError(t, err)
	t.Cleanup(p.Shutdown)
	return p
}

// freePort returns a port free for both TCP and UDP on 127.0.0.1.
func freePort(t *testing.T) int {
	t.Helper()
	for i := 0; i < 20; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", ln.Addr().String())
		ln.Close()
		if err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

func addr(p *Pool) string {
	n := p.list.LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

func TestPeers_SavedAndRestored(t *testing.T) {
	dir := t.TempDir()
	pathA := filepath.Join(dir, "a", "peers.json")
	pathB := filepath.Join(dir, "b", "peers.json")
	pathC := filepath.Join(dir, "c", "peers.json")
	aPort := freePort(t)
	a := testPool(t, "a", structs.RoleServer, pathA, aPort)
	b := testPool(t, "b", structs.RoleServer, pathB, 0)
	c := testPool(t, "c", structs.RoleClient, pathC, 0)
	for _, p := range []*Pool{b, c} {
		_, err := p.Join([]string{addr(a)})
		require.NoError(t, err)
	}

	// Servers only: any one of them brings back the whole pool.
	saved := func(path string, want ...peer) func() bool {
		return func() bool {
			peers, err := loadPeers(path)
			return err == nil && slices.Equal(peers, want)
		}
	}
	require.Eventually(t, saved(pathA, peer{Name: "b", Addr: addr(b), Alive: true}),
		10*time.Second, 20*time.Millisecond, "a saves b, not the client c")
	require.Eventually(t, saved(pathC, peer{Name: "a", Addr: addr(a), Alive: true}, peer{Name: "b", Addr: addr(b), Alive: true}),
		10*time.Second, 20*time.Millisecond, "c saves both servers")

	// A crash keeps the file; the next start offers b to rejoin.
	a.Shutdown()
	again := testPool(t, "a", structs.RoleServer, pathA, aPort)
	require.Equal(t, []string{addr(b)}, again.Previous())
	n, err := again.Join(again.Previous())
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Eventually(t, func() bool { return again.NumAlive() == 3 },
		10*time.Second, 20*time.Millisecond, "a knows b and c again")

	// Leaving keeps the peers: a server that left is still a voter, and
	// its restart rejoins as after a crash.
	require.NoError(t, b.Leave(time.Second))
	peers, err := loadPeers(pathB)
	require.NoError(t, err)
	require.Equal(t, []peer{{Name: "a", Addr: addr(again), Alive: true}}, peers, "b still lists a")
}

// A damaged peers file is ignored with a warning: the agent still starts.
func TestPeers_DamagedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "peers.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"peers": [`), 0o600))
	p := testPool(t, "a", structs.RoleServer, path, 0)
	require.Empty(t, p.Previous())
}

func TestPeers_PreviousAliveFirst(t *testing.T) {
	p := &Pool{previous: []peer{
		{Name: "s1", Addr: "10.0.0.1:4752", Alive: true},
		{Name: "s2", Addr: "10.0.0.2:4752"},
		{Name: "s3", Addr: "10.0.0.3:4752", Alive: true},
	}}
	for i := 0; i < 20; i++ {
		got := p.Previous()
		require.Len(t, got, 3)
		require.ElementsMatch(t, []string{"10.0.0.1:4752", "10.0.0.3:4752"}, got[:2], "alive ones first")
		require.Equal(t, "10.0.0.2:4752", got[2])
	}
}
