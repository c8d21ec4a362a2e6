package server

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/drover-sh/drover/server/pool"
)

// raftLayer is the raft.StreamLayer over the shared RPC port: the RPC
// listener hands it connections that start with connRaft, and Dial writes
// that byte before giving the connection to Raft.
type raftLayer struct {
	addr net.Addr
	// localIP is the source of dialled connections (nil: any), the
	// server's bind address, so peers see one address per server.
	localIP net.IP
	connCh  chan net.Conn
	closeCh chan struct{}
	once    sync.Once
}

func newRaftLayer(addr net.Addr, localIP net.IP) *raftLayer {
	if localIP != nil && localIP.IsUnspecified() {
		localIP = nil
	}
	return &raftLayer{addr: addr, localIP: localIP, connCh: make(chan net.Conn), closeCh: make(chan struct{})}
}

// handoff gives an accepted Raft connection to the transport.
func (l *raftLayer) handoff(c net.Conn) error {
	select {
	case l.connCh <- c:
		return nil
	case <-l.closeCh:
		return errors.New("raft layer closed")
	}
}

func (l *raftLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.connCh:
		return c, nil
	case <-l.closeCh:
		return nil, errors.New("raft layer closed")
	}
}

func (l *raftLayer) Close() error {
	l.once.Do(func() { close(l.closeCh) })
	return nil
}

func (l *raftLayer) Addr() net.Addr { return l.addr }

func (l *raftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := pool.Dial(string(address), l.localIP, timeout)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write([]byte{pool.ConnRaft}); err != nil {
		c.Close()
		return nil, fmt.Errorf("writing raft connection header to %s: %w", address, err)
	}
	return c, nil
}
