package server

import (
	"math/rand/v2"
	"time"

	"github.com/drover-sh/drover/server/pool"
	"github.com/drover-sh/drover/structs"
)

// rpcHoldTimeout is how long a request waits for a leader to appear (an
// election in progress) before it fails with no_leader.
const rpcHoldTimeout = 7 * time.Second

// forwardWrite runs a write here if this server is the leader, otherwise
// sends it to the leader. done=false means "handle it locally".
func (s *Server) forwardWrite(method string, args, reply any) (done bool, err error) {
	return s.forward(method, false, args, reply)
}

// forwardRead serves a stale read locally; any other read goes to the
// leader, which checks it still leads before answering (consistentRead).
func (s *Server) forwardRead(method string, q *structs.QueryOptions, args, reply any) (done bool, err error) {
	if q.AllowStale {
		return false, nil
	}
	return s.forward(method, true, args, reply)
}

func (s *Server) forward(method string, read bool, args, reply any) (bool, error) {
	deadline := time.Now().Add(rpcHoldTimeout)
	backoff := 10 * time.Millisecond
	for {
		if s.leaderReady.Load() {
			if read {
				if err := s.consistentRead(); err != nil {
					return true, err
				}
			}
			return false, nil
		}
		leader := s.Leader()
		if leader != "" && leader != s.config.RPCAdvertise.String() {
			err := s.pool.RPC(leader, method, args, reply)
			if err == nil || !retryable(err) {
				return true, err
			}
			s.logger.Debug("forward to leader failed, retrying", "leader", leader, "method", method, "error", err)
		}
		if time.Now().After(deadline) {
			return true, structs.NewError(structs.ErrNoLeader, "no cluster leader (waited %s)", rpcHoldTimeout)
		}
		select {
		case <-s.shutdownCtx.Done():
			return true, structs.NewError(structs.ErrUnavailable, "server is shutting down")
		case <-time.After(backoff + rand.N(backoff)):
		}
		if backoff < 200*time.Millisecond {
			backoff *= 2
		}
	}
}

// retryable reports whether a forwarded call failed before reaching a
// leader that could act on it, so sending it again is safe. A call that
// reached the leader and lost leadership mid-commit says so and stops.
func retryable(err error) bool {
	return structs.CodeOf(err) == structs.ErrNoLeader || pool.SafeToRetry(err)
}

// consistentRead checks, on the leader, that this server still leads: a
// quorum answered after the read began. Every write acknowledged before
// the read was applied here already (by this leader, or by the barrier it
// ran on election), so the local store is then linearizable.
func (s *Server) consistentRead() error {
	if err := s.raft.VerifyLeader().Error(); err != nil {
		return structs.NewError(structs.ErrNoLeader, "this server could not confirm it is still the leader: %v", err)
	}
	return nil
}

// setQueryMeta fills the read metadata every response carries.
func (s *Server) setQueryMeta(m *structs.QueryMeta) {
	if s.IsLeader() {
		m.LastContact = 0
		m.KnownLeader = true
		return
	}
	m.LastContact = time.Since(s.raft.LastContact())
	m.KnownLeader = s.Leader() != ""
}
