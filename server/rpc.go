package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/rpc"
	"reflect"
	"strings"
	"time"

	msgpackrpc "github.com/hashicorp/net-rpc-msgpackrpc/v2"
	"github.com/hashicorp/yamux"

	"github.com/drover-sh/drover/server/pool"
	"github.com/drover-sh/drover/structs"
)

// rpcHandshakeTimeout bounds how long a new connection may take to say
// what it carries.
const rpcHandshakeTimeout = 5 * time.Second

// listen accepts connections on the RPC port until the listener closes.
func (s *Server) listen() {
	for {
		conn, err := s.listener.Accept()
		if err != nil {
			if s.isShutdown() {
				return
			}
			s.logger.Error("failed to accept rpc connection", "error", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		go s.handleConn(conn)
	}
}

// handleConn reads the connection type byte and hands the connection on.
func (s *Server) handleConn(conn net.Conn) {
	conn.SetReadDeadline(time.Now().Add(rpcHandshakeTimeout))
	var b [1]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		if err != io.EOF {
			s.logger.Debug("failed to read connection type", "remote", conn.RemoteAddr(), "error", err)
		}
		conn.Close()
		return
	}
	conn.SetReadDeadline(time.Time{})
	switch b[0] {
	case pool.ConnRaft:
		if err := s.raftLayer.handoff(conn); err != nil {
			conn.Close()
		}
	case pool.ConnMultiplex:
		s.handleMultiplex(conn)
	default:
		s.logger.Warn("unknown connection type", "remote", conn.RemoteAddr(), "type", b[0])
		conn.Close()
	}
}

// handleMultiplex serves net/rpc on every stream of a yamux session.
func (s *Server) handleMultiplex(conn net.Conn) {
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	sess, err := yamux.Server(conn, cfg)
	if err != nil {
		s.logger.Error("failed to start yamux session", "error", err)
		conn.Close()
		return
	}
	defer sess.Close()
	// Closing the listener does not end accepted sessions: without this a
	// server that shut down would keep answering on them (with errors)
	// and clients pinned to it would never fail over.
	stop := context.AfterFunc(s.shutdownCtx, func() { sess.Close() })
	defer stop()
	for {
		stream, err := sess.Accept()
		if err != nil {
			return
		}
		go s.serveStream(stream)
	}
}

// serveStream answers the calls of one stream in order, on one goroutine.
// net/rpc's ServeCodec starts a goroutine per call instead: its stack
// starts small and msgpack's recursive encoding of the reply grows it,
// copying it several times per call (5-7% of the CPU of the server the
// e2e bench's 5,000 simulated nodes read from). Here the stream's
// goroutine keeps its grown stack from call to call. Calls on one stream
// need no concurrency of their own: the pool checks a stream out for
// each call, and a caller that does pipeline calls on one stream is
// still answered, in order.
func (s *Server) serveStream(stream net.Conn) {
	codec := msgpackrpc.NewCodecFromHandle(true, true, stream, structs.MsgpackHandle())
	defer codec.Close()
	for {
		if err := s.rpcServer.ServeRequest(codec); err != nil && streamEnded(err) {
			return
		}
	}
}

// streamEnded reports whether an error of rpc.Server.ServeRequest means
// the stream can carry no more requests. The others (an unknown method, a
// body that does not decode) were answered, and the next request follows;
// a stream that broke meanwhile fails on the next header.
func streamEnded(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		strings.HasPrefix(err.Error(), "rpc: server cannot decode request")
}

// RPC calls an endpoint in this process ("Job.Register"), going through
// net/rpc with an in-memory codec so local and remote calls behave alike.
// Coded errors come back as *structs.Error.
func (s *Server) RPC(method string, args, reply any) error {
	codec := &inmemCodec{method: method, args: args, reply: reply}
	if err := s.rpcServer.ServeRequest(codec); err != nil {
		return err
	}
	return pool.DecodeError(codec.err)
}

// inmemCodec is a rpc.ServerCodec that passes pointers instead of bytes.
type inmemCodec struct {
	method string
	args   any
	reply  any
	err    error
}

func (c *inmemCodec) ReadRequestHeader(req *rpc.Request) error {
	req.ServiceMethod = c.method
	return nil
}

func (c *inmemCodec) ReadRequestBody(args any) error {
	if args == nil {
		return nil
	}
	src := reflect.Indirect(reflect.ValueOf(c.args))
	dst := reflect.Indirect(reflect.ValueOf(args))
	dst.Set(src)
	return nil
}

func (c *inmemCodec) WriteResponse(resp *rpc.Response, reply any) error {
	if resp.Error != "" {
		c.err = errors.New(resp.Error)
		return nil
	}
	src := reflect.Indirect(reflect.ValueOf(reply))
	dst := reflect.Indirect(reflect.ValueOf(c.reply))
	dst.Set(src)
	return nil
}

func (c *inmemCodec) Close() error { return nil }
