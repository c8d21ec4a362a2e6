// Package pool is the client side of the servers' RPC port: a pool of
// multiplexed connections (one yamux session per server, many net/rpc
// streams on it) and the wire conventions both sides share (the connection
// type byte, coded errors). Servers use it to forward to the leader and
// clients to talk to servers.
package pool

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"strings"
	"sync"
	"time"

	msgpackrpc "github.com/hashicorp/net-rpc-msgpackrpc/v2"
	"github.com/hashicorp/yamux"

	"github.com/drover-sh/drover/structs"
)

// The first byte of every connection to the RPC port says what it carries.
const (
	ConnRaft      byte = 0x01 // a raft.NetworkTransport stream
	ConnMultiplex byte = 0x02 // a yamux session carrying net/rpc streams
)

// maxIdleStreams bounds the streams kept open per server between calls.
const maxIdleStreams = 64

// Pool keeps one multiplexed session per server address.
type Pool struct {
	dialTimeout time.Duration
	// localIP, when set, is the source address of every connection, so a
	// server bound to one address of a multi-address host is seen (and
	// firewalled) as that address by its peers.
	localIP net.IP
	// maxIdle is maxIdleStreams; tests lower it.
	maxIdle int
	mu      sync.Mutex
	conns   map[string]*conn
	closed  bool
}

// conn is one yamux session and its idle net/rpc clients (one per stream).
type conn struct {
	addr string
	sess *yamux.Session
	idle chan *rpc.Client
}

// New returns an empty pool.
func New(dialTimeout time.Duration) *Pool {
	if dialTimeout <= 0 {
		dialTimeout = 5 * time.Second
	}
	return &Pool{dialTimeout: dialTimeout, maxIdle: maxIdleStreams, conns: make(map[string]*conn)}
}

// SetLocalIP makes every later connection leave from ip (nil or an
// unspecified address: the kernel chooses). Call it before the first RPC.
func (p *Pool) SetLocalIP(ip net.IP) {
	if ip == nil || ip.IsUnspecified() {
		ip = nil
	}
	p.mu.Lock()
	p.localIP = ip
	p.mu.Unlock()
}

// RPC calls method on the server at addr. Coded errors come back as
// *structs.Error; transport failures are wrapped with the address and
// coded unavailable.
func (p *Pool) RPC(addr, method string, args, reply any) error {
	c, err := p.get(addr)
	if err != nil {
		return transportError(addr, method, false, err)
	}
	client, err := c.client()
	if err != nil {
		p.drop(c)
		return transportError(addr, method, false, err)
	}
	err = client.Call(method, args, reply)
	if err == nil {
		c.release(client)
		return nil
	}
	var serverErr rpc.ServerError
	if errors.As(err, &serverErr) {
		// The call itself failed on the server; the stream is fine.
		c.release(client)
		return DecodeError(err)
	}
	client.Close()
	p.drop(c)
	return transportError(addr, method, true, err)
}

// TransportError is a call that failed on the way, not on the server.
// Sent says whether the request may have reached the server: only calls
// that were not sent are safe to retry without knowing the outcome.
type TransportError struct {
	Sent bool
	err  *structs.Error
}

func transportError(addr, method string, sent bool, err error) *TransportError {
	msg := fmt.Sprintf("cannot reach server %s: %v", addr, err)
	if sent {
		msg = fmt.Sprintf("rpc %s to server %s failed: %v", method, addr, err)
	}
	return &TransportError{Sent: sent, err: &structs.Error{Code: structs.ErrUnavailable, Message: msg}}
}

func (e *TransportError) Error() string { return e.err.Message }

// Unwrap exposes the coded error (unavailable) to errors.As.
func (e *TransportError) Unwrap() error { return e.err }

// SafeToRetry reports whether err is a transport failure before sending.
func SafeToRetry(err error) bool {
	var te *TransportError
	return errors.As(err, &te) && !te.Sent
}

func (p *Pool) get(addr string) (*conn, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errors.New("pool closed")
	}
	if c, ok := p.conns[addr]; ok && !c.sess.IsClosed() {
		p.mu.Unlock()
		return c, nil
	}
	local, maxIdle := p.localIP, p.maxIdle
	p.mu.Unlock()

	// Dial outside the lock so one dead server does not stall calls to others.
	nc, err := Dial(addr, local, p.dialTimeout)
	if err != nil {
		return nil, err
	}
	if tcp, ok := nc.(*net.TCPConn); ok {
		tcp.SetNoDelay(true)
		tcp.SetKeepAlive(true)
	}
	if _, err := nc.Write([]byte{ConnMultiplex}); err != nil {
		nc.Close()
		return nil, err
	}
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	sess, err := yamux.Client(nc, cfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	c := &conn{addr: addr, sess: sess, idle: make(chan *rpc.Client, maxIdle)}

	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.conns[addr]; ok && !old.sess.IsClosed() {
		// Another caller dialed meanwhile: keep theirs.
		sess.Close()
		return old, nil
	}
	p.conns[addr] = c
	return c, nil
}

func (p *Pool) drop(c *conn) {
	p.mu.Lock()
	if p.conns[c.addr] == c {
		delete(p.conns, c.addr)
	}
	p.mu.Unlock()
	c.sess.Close()
}

func (c *conn) client() (*rpc.Client, error) {
	select {
	case cl := <-c.idle:
		return cl, nil
	default:
	}
	stream, err := c.sess.Open()
	if err != nil {
		return nil, err
	}
	codec := &clientCodec{
		ClientCodec: msgpackrpc.NewCodecFromHandle(true, true, stream, structs.MsgpackHandle()),
		stream:      stream,
	}
	return rpc.NewClientWithCodec(codec), nil
}

// clientCodec owns the stream under a net/rpc client. The msgpack codec's
// own Close sets an unguarded flag that the client's reader goroutine
// reads on every response, so closing a client while its reader waits
// was a data race. Here Close only closes the stream: the reader's
// blocked read fails, it ends, and nothing else of the codec is touched
// from two goroutines.
type clientCodec struct {
	rpc.ClientCodec
	stream io.Closer
	once   sync.Once
	err    error
}

func (c *clientCodec) Close() error {
	c.once.Do(func() { c.err = c.stream.Close() })
	return c.err
}

func (c *conn) release(cl *rpc.Client) {
	select {
	case c.idle <- cl:
	default:
		cl.Close()
	}
}

// Close closes every session. The sessions are closed outside the lock:
// closing one waits for its receive loop, and callers of get must not
// queue behind that.
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	conns := p.conns
	p.conns = map[string]*conn{}
	p.mu.Unlock()
	for _, c := range conns {
		c.sess.Close()
	}
}

// net/rpc carries errors as strings. Coded errors travel as this prefix
// followed by their JSON, so a forwarded call keeps its code and field
// problems end to end.
const wireErrorPrefix = "\x00drover-error:"

// wireError is the form an endpoint returns: net/rpc calls Error() on it.
type wireError struct{ e *structs.Error }

func (w wireError) Error() string {
	b, err := json.Marshal(w.e)
	if err != nil {
		return w.e.Message
	}
	return wireErrorPrefix + string(b)
}

// EncodeError prepares an endpoint's error for the wire.
func EncodeError(err error) error {
	if err == nil {
		return nil
	}
	return wireError{structs.AsAPIError(err)}
}

// DecodeError turns an error received from net/rpc back into the coded
// error it was; other errors pass through.
func DecodeError(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, wireErrorPrefix) {
		return err
	}
	var e structs.Error
	if jerr := json.Unmarshal([]byte(msg[len(wireErrorPrefix):]), &e); jerr != nil {
		return err
	}
	return &e
}

// Dial opens a TCP connection to addr from localIP (any address when nil).
func Dial(addr string, localIP net.IP, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	if localIP != nil && sameFamily(addr, localIP) {
		d.LocalAddr = &net.TCPAddr{IP: localIP}
	}
	return d.Dial("tcp", addr)
}

// sameFamily reports whether addr's host is an IP of ip's family (a
// source of the other family would make the dial fail) or a name.
func sameFamily(addr string, ip net.IP) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	dst := net.ParseIP(host)
	return dst == nil || (dst.To4() == nil) == (ip.To4() == nil)
}
