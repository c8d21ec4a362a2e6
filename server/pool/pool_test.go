package pool

import (
	"net"
	"net/rpc"
	"sync"
	"testing"
	"time"

	msgpackrpc "github.com/hashicorp/net-rpc-msgpackrpc/v2"
	"github.com/hashicorp/yamux"
	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
)

// Gate is a test endpoint whose calls wait until the test opens it, so a
// test can hold many streams open at once.
type Gate struct{ open chan struct{} }

func (g *Gate) Pass(args int, reply *int) error {
	<-g.open
	*reply = args + 1
	return nil
}

// serveMultiplex accepts connections the way the server's RPC port does
// (type byte, yamux session, net/rpc with msgpack on every stream).
func serveMultiplex(t *testing.T, srv *rpc.Server) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				b := make([]byte, 1)
				if _, err := c.Read(b); err != nil || b[0] != ConnMultiplex {
					c.Close()
					return
				}
				sess, err := yamux.Server(c, nil)
				if err != nil {
					c.Close()
					return
				}
				for {
					st, err := sess.Accept()
					if err != nil {
						return
					}
					go srv.ServeCodec(msgpackrpc.NewCodecFromHandle(true, true, st, structs.MsgpackHandle()))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// More calls at once than the pool keeps idle streams: the surplus
// clients are closed while their reader goroutines wait on the stream
// (a data race under -race before the pool owned the close), and their
// streams really end instead of leaking on the session.
func TestPool_SurplusStreamsClosed(t *testing.T) {
	gate := &Gate{open: make(chan struct{})}
	srv := rpc.NewServer()
	require.NoError(t, srv.Register(gate))
	addr := serveMultiplex(t, srv)

	p := New(time.Second)
	defer p.Close()
	// Few idle streams: closing a yamux v0.1.2 session makes every reader
	// still waiting on it spin until its stream is force-closed, which
	// takes seconds under -race with dozens of them.
	p.maxIdle = 4
	const calls = 12
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for i := 0; i < calls; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var out int
			if err := p.RPC(addr, "Gate.Pass", i, &out); err != nil {
				errs <- err
				return
			}
			if out != i+1 {
				errs <- rpc.ServerError("wrong reply")
			}
		}(i)
	}
	c, err := p.get(addr)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return c.sess.NumStreams() == calls },
		5*time.Second, 5*time.Millisecond, "all calls in flight on one session")
	close(gate.open)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return c.sess.NumStreams() == p.maxIdle },
		5*time.Second, 5*time.Millisecond, "only the idle streams stay open")

	var out int
	require.NoError(t, p.RPC(addr, "Gate.Pass", 41, &out), "an idle stream still works")
	require.Equal(t, 42, out)
}

// A closed pool refuses calls with a transport error that is safe to retry.
func TestPool_ClosedRefuses(t *testing.T) {
	srv := rpc.NewServer()
	require.NoError(t, srv.Register(&Gate{open: make(chan struct{})}))
	addr := serveMultiplex(t, srv)
	p := New(time.Second)
	p.Close()
	var out int
	err := p.RPC(addr, "Gate.Pass", 1, &out)
	require.Error(t, err)
	require.True(t, SafeToRetry(err))
}
