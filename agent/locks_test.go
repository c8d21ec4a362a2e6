package agent

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A second agent on a data dir in use fails at once, naming the agent
// that holds it, and binds nothing; once the first stops, it starts.
func TestAgent_DataDirInUse(t *testing.T) {
	prefix := loopbackBlock(t, 2)
	dir := t.TempDir()
	first := &testNode{t: t, name: "s1", ip: prefix + "1", dir: dir, expect: 1}
	first.start()
	t.Cleanup(first.stop)

	second := &testNode{t: t, name: "s2", ip: prefix + "2", dir: dir, expect: 1}
	start := time.Now()
	_, err := New(second.config(), nil)
	require.Error(t, err)
	require.Less(t, time.Since(start), 5*time.Second)
	require.ErrorContains(t, err, fmt.Sprintf("data dir %s is in use by another drover agent (pid %d)", dir, os.Getpid()))
	// Nothing of the second agent is listening.
	ln, err := net.Listen("tcp", net.JoinHostPort(prefix+"2", fmt.Sprint(DefaultHTTPPort)))
	require.NoError(t, err)
	ln.Close()

	first.stop()
	second.start()
	t.Cleanup(second.stop)
	b, err := os.ReadFile(filepath.Join(dir, lockFileName))
	require.NoError(t, err)
	require.Equal(t, fmt.Sprint(os.Getpid()), strings.TrimSpace(string(b)))
}

// A second client on a bridge in use is refused, naming the holder; the
// lock is free again once the holder closes it (or exits).
func TestLockBridge(t *testing.T) {
	bridgeLockDir = t.TempDir()
	t.Cleanup(func() { bridgeLockDir = "/run/drover" })
	first, err := lockBridge("drover7")
	require.NoError(t, err)
	_, err = lockBridge("drover7")
	require.EqualError(t, err, fmt.Sprintf("bridge drover7 is in use by the client of another drover agent (pid %d): "+
		"give each client on a machine its own -network-bridge, -network-subnet and -dns-addr", os.Getpid()))
	other, err := lockBridge("drover8")
	require.NoError(t, err, "another bridge is another lock")
	other.Close()

	// Let go with the file removed, as the agent does at shutdown: /run
	// keeps no file per bridge ever used, and the next lock works.
	path := first.Name()
	releaseLock(first, true)
	require.NoFileExists(t, path)
	again, err := lockBridge("drover7")
	require.NoError(t, err)
	_, err = lockBridge("drover7")
	require.Error(t, err, "the new file is locked")
	releaseLock(again, true)
	require.NoFileExists(t, path)
}

// A port in use names the flag that moves it; other errors pass as they
// are.
func TestPortHint(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	_, err = net.Listen("tcp", ln.Addr().String())
	require.Error(t, err)
	hinted := portHint(err, "-http-port")
	require.ErrorIs(t, hinted, syscall.EADDRINUSE)
	require.ErrorContains(t, hinted, "(another agent on this address? stop it, or give this one another -bind or -http-port)")
	// memberlist's own wording, not wrapped.
	require.ErrorContains(t, portHint(errors.New("failed to start TCP listener: bind: address already in use"), "-gossip-port"), "-gossip-port)")
	other := errors.New("permission denied")
	require.Equal(t, other, portHint(other, "-rpc-port"))
}
