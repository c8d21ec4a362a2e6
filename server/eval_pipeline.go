package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-memdb"

	"github.com/drover-sh/drover/fsm"
	"github.com/drover-sh/drover/scheduler"
	"github.com/drover-sh/drover/structs"
)

// Eval pipeline defaults.
const (
	defaultEvalNackTimeout   = time.Minute
	defaultEvalDeliveryLimit = 3
	// failedFollowupDelay is how long the follow-up of an evaluation that
	// failed (hit the delivery limit) waits: long enough that a fault that
	// made the scheduler fail has a chance to clear.
	failedFollowupDelay = time.Minute
	// reapInterval bounds how long superseded and failed evaluations wait
	// to be written as such.
	reapInterval = 200 * time.Millisecond
)

// runEvalPipeline is the leader service that turns evaluations into
// plans: it enables the broker, the blocked evaluations and the plan
// queue, and runs the store watcher, the scheduler workers, the plan
// applier and the reaper until leadership ends. Everything it holds is
// rebuilt from the store by the next leader; the broker and friends are
// emptied when it returns.
func (s *Server) runEvalPipeline(ctx context.Context) {
	s.evalBroker.SetEnabled(true)
	s.blockedEvals.SetEnabled(true)
	s.planQueue.SetEnabled(true)
	defer s.blockedEvals.SetEnabled(false)
	defer s.evalBroker.SetEnabled(false)
	defer s.planQueue.SetEnabled(false)

	var wg sync.WaitGroup
	start := func(f func(context.Context)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(ctx)
		}()
	}
	start(newEvalWatcher(s).run)
	start(s.newPlanApplier().run)
	start(s.reapEvals)
	for i := 0; i < s.config.NumSchedulers && len(s.schedulers) > 0; i++ {
		start(newWorker(s, i).run)
	}
	wg.Wait()
}

// evalWatcher follows the store on the leader. Evaluations written
// pending go to the broker; blocked ones to BlockedEvals; nodes that
// became ready and allocations that stopped wake blocked evaluations. The
// FSM never calls leader machinery (it must stay deterministic and run
// the same on followers), so this watcher is how writes reach it. Each
// pass reads only what was written since the last one, through the
// store's modify-index indexes, so it keeps up with thousands of
// evaluations a second; the first pass of a new leader reads everything,
// which is how the broker and blocked evaluations are restored.
type evalWatcher struct {
	srv    *Server
	logger hclog.Logger
	// last is the store index the previous pass saw everything up to.
	last uint64
}

func newEvalWatcher(s *Server) *evalWatcher {
	return &evalWatcher{srv: s, logger: s.logger.Named("eval_watcher")}
}

func (w *evalWatcher) run(ctx context.Context) {
	for ctx.Err() == nil {
		store := w.srv.fsm.State()
		ws := memdb.NewWatchSet()
		ws.Add(store.AbandonCh())
		if err := w.pass(ctx, store.Snapshot(), ws); err != nil {
			w.logger.Error("failed to process store changes; reading everything again", "error", err)
			w.last = 0
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		if err := ws.WatchCtx(ctx); err != nil {
			return
		}
		select {
		case <-store.AbandonCh():
			// A restore replaced the store: indexes may have gone back.
			w.last = 0
		default:
		}
	}
}

// pass handles everything written after w.last and up to snap.
func (w *evalWatcher) pass(ctx context.Context, snap *fsm.StateSnapshot, ws memdb.WatchSet) error {
	latest := snap.LatestIndex()
	blocked := w.srv.blockedEvals
	var unblock, cancel []*structs.Evaluation

	evals, err := snap.EvalsModifiedSince(ws, w.last)
	if err != nil {
		return err
	}
	for _, e := range evals {
		switch e.Status {
		case structs.EvalStatusPending:
			blocked.Remove(e.ID)
			w.srv.evalBroker.Enqueue(e)
		case structs.EvalStatusBlocked:
			job, err := snap.JobByID(nil, e.Namespace, e.JobID)
			if err != nil {
				return err
			}
			if job == nil {
				// Nothing left to wait for: the scheduler will stop
				// what remains of the job.
				unblock = append(unblock, e)
				continue
			}
			if blocked.Block(e, job.Datacenters) {
				unblock = append(unblock, e)
			}
		default:
			if !e.TerminalStatus() {
				continue
			}
			blocked.Remove(e.ID)
			if e.Status == structs.EvalStatusComplete && len(e.FailedTGAllocs) == 0 && e.BlockedEval == "" {
				if old := blocked.JobSatisfied(e.Namespace, e.JobID, e.SnapshotIndex); old != nil {
					cancel = append(cancel, canceledEval(old, fmt.Sprintf("evaluation %s placed everything", e.ID)))
				}
			}
		}
	}
	// Capacity after the evaluations: one blocked in this pass and woken
	// by a change in it is unblocked once, not tracked again.
	if w.last == 0 {
		// A new leader cannot tell which capacity its blocked evaluations
		// already saw: each gets one more try.
		snap.IndexWatch(ws, "nodes")
		snap.IndexWatch(ws, "allocs")
		unblock = append(unblock, blocked.CapacityAll(latest)...)
	} else {
		dcs, err := w.capacityChanges(snap, ws)
		if err != nil {
			return err
		}
		for dc := range dcs {
			unblock = append(unblock, blocked.Capacity(dc, latest)...)
		}
	}
	for _, d := range blocked.Duplicates() {
		cancel = append(cancel, canceledEval(d, "replaced by a newer blocked evaluation of the job"))
	}

	if err := w.write(ctx, unblock, cancel); err != nil {
		return err
	}
	w.last = latest
	return nil
}

// capacityChanges returns the datacenters where capacity may have
// appeared after w.last: a node written ready and eligible (registered,
// back up, drain or ineligibility ended), or an allocation written
// terminal.
func (w *evalWatcher) capacityChanges(snap *fsm.StateSnapshot, ws memdb.WatchSet) (map[string]struct{}, error) {
	dcs := make(map[string]struct{})
	if snap.IndexWatch(ws, "nodes") > w.last {
		// Node writes are rare (heartbeats do not write), so a scan of
		// the table on each is cheap next to an index on it.
		nodes, err := snap.NodesByPrefix(nil, "")
		if err != nil {
			return nil, err
		}
		for _, n := range nodes {
			if n.ModifyIndex > w.last && n.Ready() {
				dcs[n.Datacenter] = struct{}{}
			}
		}
	}
	var nodeErr error
	err := snap.AllocsStoppedSince(ws, w.last, func(a *structs.Allocation) bool {
		n, err := snap.NodeByID(nil, a.NodeID)
		if err != nil {
			nodeErr = err
			return false
		}
		if n != nil {
			dcs[n.Datacenter] = struct{}{}
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	return dcs, nodeErr
}

// write commits unblocked evaluations (back to pending, so the broker
// gets them through this same watcher and a new leader finds them
// pending) and canceled ones in one entry.
func (w *evalWatcher) write(ctx context.Context, unblock, cancel []*structs.Evaluation) error {
	if len(unblock) == 0 && len(cancel) == 0 {
		return nil
	}
	now := time.Now().UnixNano()
	evals := make([]*structs.Evaluation, 0, len(unblock)+len(cancel))
	for _, e := range unblock {
		c := e.Copy()
		c.Status = structs.EvalStatusPending
		c.StatusDescription = "unblocked: capacity may have appeared"
		c.ModifyTime = now
		evals = append(evals, c)
	}
	for _, e := range cancel {
		e.ModifyTime = now
		evals = append(evals, e)
	}
	if _, _, err := w.srv.raftApplyCtx(ctx, structs.EvalUpdateRequestType, &structs.EvalUpdateRequest{Evals: evals}); err != nil {
		return fmt.Errorf("writing %d unblocked and %d canceled evaluations: %w", len(unblock), len(cancel), err)
	}
	w.logger.Debug("evaluations unblocked and canceled", "unblocked", len(unblock), "canceled", len(cancel))
	return nil
}

func canceledEval(e *structs.Evaluation, why string) *structs.Evaluation {
	c := e.Copy()
	c.Status = structs.EvalStatusCanceled
	c.StatusDescription = why
	return c
}

// reapEvals writes what the broker gave up on: evaluations that reached
// the delivery limit become failed, each with a delayed follow-up so the
// job is looked at again; evaluations superseded by newer ones of their
// job become canceled.
func (s *Server) reapEvals(ctx context.Context) {
	logger := s.logger.Named("eval_reaper")
	var retry []*structs.Evaluation
	for ctx.Err() == nil {
		eval, token, err := s.evalBroker.Dequeue(ctx, []string{failedQueue}, reapInterval)
		if err != nil {
			return
		}
		var evals []*structs.Evaluation
		now := time.Now()
		if eval != nil {
			failed := eval.Copy()
			failed.Type = typeOfFailed(s.fsm.State(), eval)
			failed.Status = structs.EvalStatusFailed
			failed.StatusDescription = fmt.Sprintf("evaluation reached the delivery limit (%d)", s.config.EvalDeliveryLimit)
			failed.ModifyTime = now.UnixNano()
			followup := &structs.Evaluation{
				ID:           structs.GenerateUUID(),
				Namespace:    eval.Namespace,
				Priority:     eval.Priority,
				Type:         failed.Type,
				TriggeredBy:  structs.EvalTriggerFailedFollowUp,
				JobID:        eval.JobID,
				Status:       structs.EvalStatusPending,
				WaitUntil:    now.Add(failedFollowupDelay).UnixNano(),
				PreviousEval: eval.ID,
				CreateTime:   now.UnixNano(),
				ModifyTime:   now.UnixNano(),
			}
			failed.NextEval = followup.ID
			evals = append(evals, failed, followup)
		}
		for _, e := range s.evalBroker.Superseded() {
			c := canceledEval(e, "superseded by a newer evaluation of the job")
			c.ModifyTime = now.UnixNano()
			evals = append(evals, c)
		}
		evals = append(evals, retry...)
		retry = nil
		if len(evals) == 0 {
			continue
		}
		if _, _, err := s.raftApplyCtx(ctx, structs.EvalUpdateRequestType, &structs.EvalUpdateRequest{Evals: evals}); err != nil {
			// Not acked: the broker hands the failed evaluation out
			// again after the nack timeout. Superseded ones are kept.
			logger.Error("failed to write failed and superseded evaluations", "error", err)
			for _, e := range evals {
				if e.Status == structs.EvalStatusCanceled {
					retry = append(retry, e)
				}
			}
			continue
		}
		if eval != nil {
			s.evalBroker.Ack(eval.ID, token)
		}
	}
}

// typeOfFailed recovers the scheduler type of an evaluation the broker
// moved to its failed queue (which reuses Type as the queue name).
func typeOfFailed(store *fsm.StateStore, eval *structs.Evaluation) string {
	if e, err := store.EvalByID(nil, eval.ID); err == nil && e != nil {
		return e.Type
	}
	return eval.Type
}

// raftApplyCtx is raftApply for leader services: it stops waiting when
// ctx ends. Raft does not answer an entry still queued when it shuts
// down, and a leader service that waited for it would keep the leader
// loop, and so Server.Shutdown, from ever returning.
func (s *Server) raftApplyCtx(ctx context.Context, t structs.MessageType, msg any) (any, uint64, error) {
	future, err := s.raftApplyAsync(t, msg)
	if err != nil {
		return nil, 0, err
	}
	done := make(chan error, 1)
	go func() { done <- future.Error() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		return nil, 0, structs.NewError(structs.ErrUnavailable, "leadership ended while committing; the write may or may not have been applied")
	}
	if err != nil {
		return nil, 0, raftError(err)
	}
	if rerr, ok := future.Response().(error); ok {
		return nil, future.Index(), rerr
	}
	return future.Response(), future.Index(), nil
}

// builtinSchedulers are the schedulers a server runs unless its config
// names others.
func builtinSchedulers() map[string]scheduler.Factory {
	return scheduler.Builtin(scheduler.Options{})
}
