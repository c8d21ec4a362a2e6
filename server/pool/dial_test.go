package pool

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Connections leave from the given source address, so a peer (or a
// firewall rule) sees the server's own address, not the kernel's choice.
func TestDial_FromLocalIP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Addr, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c.RemoteAddr()
			c.Close()
		}
	}()
	c, err := Dial(ln.Addr().String(), net.ParseIP("127.0.0.9"), time.Second)
	require.NoError(t, err)
	defer c.Close()
	select {
	case from := <-accepted:
		require.Equal(t, "127.0.0.9", from.(*net.TCPAddr).IP.String())
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted")
	}
	require.True(t, sameFamily("10.0.0.1:1", net.ParseIP("127.0.0.1")))
	require.False(t, sameFamily("[::1]:1", net.ParseIP("127.0.0.1")), "no v4 source for a v6 peer")
	require.True(t, sameFamily("server.example:1", net.ParseIP("127.0.0.1")))
}
