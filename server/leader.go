package server

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/drover-sh/drover/structs"
)

// barrierTimeout bounds the barrier a new leader writes before serving.
const barrierTimeout = time.Minute

// monitorLeadership runs the leader loop while this server leads.
func (s *Server) monitorLeadership() {
	var stopCh chan struct{}
	var done chan struct{}
	for {
		select {
		case <-s.shutdownCtx.Done():
			if stopCh != nil {
				close(stopCh)
				<-done
			}
			return
		case isLeader := <-s.raftNotifyCh:
			switch {
			case isLeader && stopCh == nil:
				stopCh, done = make(chan struct{}), make(chan struct{})
				go func(stop, done chan struct{}) {
					defer close(done)
					s.leaderLoop(stop)
				}(stopCh, done)
			case !isLeader && stopCh != nil:
				close(stopCh)
				<-done
				stopCh, done = nil, nil
			}
		}
	}
}

// leaderLoop establishes leadership, then keeps the Raft configuration in
// line with gossip until leadership ends.
func (s *Server) leaderLoop(stopCh chan struct{}) {
	s.logger.Info("cluster leadership acquired")
	defer s.logger.Info("cluster leadership lost")
	defer s.leaderReady.Store(false)

	// The barrier makes the FSM apply every entry of earlier terms, so
	// reads served by this leader see every write acknowledged before.
	for {
		err := s.raft.Barrier(barrierTimeout).Error()
		if err == nil {
			break
		}
		s.logger.Error("failed to wait for barrier", "error", err)
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return
		}
		select {
		case <-stopCh:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	s.leaderReady.Store(true)
	s.reconcile()

	// Leader services (eval broker, workers, plan applier, heartbeat
	// timers, controllers) run until leadership ends; the loop returns
	// only after all of them have stopped, so a server that regains
	// leadership never runs two copies.
	ctx, cancel := context.WithCancel(s.shutdownCtx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for _, svc := range s.leaderServices() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			svc.run(ctx)
		}()
	}

	tick := time.NewTicker(s.config.ReconcileInterval)
	defer tick.Stop()
	for {
		select {
		case <-stopCh:
			return
		case <-s.shutdownCtx.Done():
			return
		case <-tick.C:
			s.reconcile()
		}
	}
}

// raftApply commits one typed entry and returns the FSM's response and
// the entry's index.
func (s *Server) raftApply(t structs.MessageType, msg any) (any, uint64, error) {
	buf, err := structs.Encode(t, msg)
	if err != nil {
		return nil, 0, err
	}
	future := s.raft.Apply(buf, 30*time.Second)
	if err := s.awaitFuture(future); err != nil {
		return nil, 0, raftError(err)
	}
	resp := future.Response()
	if rerr, ok := resp.(error); ok {
		return nil, future.Index(), rerr
	}
	return resp, future.Index(), nil
}

// raftError codes Raft's errors for callers.
func raftError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader):
		return structs.NewError(structs.ErrNoLeader, "this server is no longer the leader; retry")
	case errors.Is(err, raft.ErrLeadershipLost):
		// The entry may or may not commit: say so rather than retry.
		return structs.NewError(structs.ErrUnavailable, "leadership lost while committing; the write may or may not have been applied")
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return structs.NewError(structs.ErrUnavailable, "timed out queueing the write; the cluster is overloaded or has lost quorum")
	case errors.Is(err, raft.ErrRaftShutdown):
		return structs.NewError(structs.ErrUnavailable, "server is shutting down")
	}
	return err
}

// awaitFuture waits for a Raft future, or for this server to shut down.
// With BatchApplyCh a future can sit in Raft's buffered apply channel when
// Raft stops, and then nothing ever answers it: without this a server
// shutting down would wait forever on its own leader services.
func (s *Server) awaitFuture(f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-s.shutdownCtx.Done():
		return raft.ErrRaftShutdown
	}
}
