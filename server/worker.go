package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-memdb"

	"github.com/drover-sh/drover/fsm"
	"github.com/drover-sh/drover/scheduler"
	"github.com/drover-sh/drover/structs"
)

const (
	// dequeueTimeout bounds one wait on the broker, so a worker notices
	// the end of leadership even if nobody closes its wait.
	dequeueTimeout = time.Second
	// indexWaitTimeout bounds the wait for the local store to reach an
	// index a worker needs (the evaluation's, a plan's refresh index).
	indexWaitTimeout = 5 * time.Second
)

// worker takes evaluations from the broker and runs the scheduler of
// their type against a snapshot of the leader's store. One runs per
// configured scheduler slot; they run in parallel and only the plan
// applier serialises what they produce.
type worker struct {
	srv    *Server
	id     int
	logger hclog.Logger
}

func newWorker(s *Server, id int) *worker {
	return &worker{srv: s, id: id, logger: s.logger.Named("worker").With("worker_id", id)}
}

// run processes evaluations until ctx ends.
func (w *worker) run(ctx context.Context) {
	types := make([]string, 0, len(w.srv.schedulers))
	for t := range w.srv.schedulers {
		types = append(types, t)
	}
	slices.Sort(types)
	for ctx.Err() == nil {
		eval, token, err := w.srv.evalBroker.Dequeue(ctx, types, dequeueTimeout)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			// The broker is off between leaderships; wait for ctx.
			select {
			case <-ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		if eval == nil {
			continue
		}
		w.process(ctx, eval, token)
	}
}

// process runs one evaluation and acks it, or nacks it so the broker
// delivers it again (and, past the delivery limit, fails it).
func (w *worker) process(ctx context.Context, eval *structs.Evaluation, token string) {
	logger := w.logger.With("eval_id", eval.ID, "job_id", eval.JobID, "namespace", eval.Namespace)
	snap, err := w.srv.snapshotMinIndex(ctx, eval.ModifyIndex, indexWaitTimeout)
	if err != nil {
		logger.Error("store did not reach the evaluation's index", "index", eval.ModifyIndex, "error", err)
		w.srv.evalBroker.Nack(eval.ID, token)
		return
	}
	// The broker may hand out an evaluation that was finished meanwhile
	// (a redelivery after a slow ack); the store has the last word.
	current, err := snap.EvalByID(nil, eval.ID)
	if err != nil || current == nil || current.TerminalStatus() {
		w.srv.evalBroker.Ack(eval.ID, token)
		return
	}
	factory := w.srv.schedulers[current.Type]
	if factory == nil {
		logger.Error("no scheduler for evaluation type", "type", current.Type)
		w.srv.evalBroker.Nack(eval.ID, token)
		return
	}

	planner := &workerPlanner{srv: w.srv, ctx: ctx, evalID: eval.ID, token: token, snapIndex: snap.LatestIndex(),
		share: w.id, shares: w.srv.config.NumSchedulers}
	start := time.Now()
	sched := factory(logger, newSnapshotState(snap), planner, time.Now)
	if err := sched.Process(schedulerView(current)); err != nil {
		logger.Error("failed to process evaluation", "error", err)
		if err := w.srv.evalBroker.Nack(eval.ID, token); err != nil {
			logger.Debug("evaluation no longer outstanding", "error", err)
		}
		return
	}
	if err := w.srv.evalBroker.Ack(eval.ID, token); err != nil {
		logger.Warn("failed to ack evaluation", "error", err)
		return
	}
	logger.Debug("evaluation processed", "duration", time.Since(start))
}

// schedulerView is the evaluation as the scheduler gets it. A blocked
// evaluation woken by capacity is stored as pending (so a new leader
// finds it in the broker, not waiting for capacity it already had); the
// scheduler sees it as blocked again, so that if it still cannot place
// everything it reblocks this evaluation rather than creating another
// one at every wake-up.
func schedulerView(stored *structs.Evaluation) *structs.Evaluation {
	e := stored.Copy()
	if e.TriggeredBy == structs.EvalTriggerQueuedAllocs && e.Status == structs.EvalStatusPending {
		e.Status = structs.EvalStatusBlocked
	}
	return e
}

// workerPlanner is the scheduler's Planner for one evaluation. Every
// write first checks that the worker still holds the evaluation (and
// restarts its nack timer): a worker that lost it to a nack timeout or a
// leader change must not write for it, another worker owns it now.
type workerPlanner struct {
	srv    *Server
	ctx    context.Context
	evalID string
	token  string
	// snapIndex is the index of the state the scheduler works from.
	snapIndex uint64
	// blocked holds the blocked evaluation created for this one, written
	// with its final status (see CreateEval).
	blocked []*structs.Evaluation
	// share and shares are this worker's preferred nodes (see
	// scheduler.NodePartitioner).
	share, shares int
}

var (
	_ scheduler.Planner         = (*workerPlanner)(nil)
	_ scheduler.NodePartitioner = (*workerPlanner)(nil)
)

// NodePartition makes concurrent workers prefer different nodes, so their
// plans rarely compete for the same room.
func (p *workerPlanner) NodePartition() (int, int) { return p.share, p.shares }

func (p *workerPlanner) checkToken(what string) error {
	if err := p.srv.evalBroker.OutstandingReset(p.evalID, p.token); err != nil {
		return fmt.Errorf("%s for evaluation %s: %w", what, p.evalID, err)
	}
	return nil
}

// SubmitPlan hands the plan to the applier and waits for what it
// committed. After a partial commit it returns a state at least as new as
// the applier's refresh index, so the scheduler plans again against what
// made it refuse.
func (p *workerPlanner) SubmitPlan(plan *structs.Plan) (*structs.PlanResult, scheduler.State, error) {
	if err := p.checkToken("submitting plan"); err != nil {
		return nil, nil, err
	}
	plan.EvalID = p.evalID
	if plan.SnapshotIndex == 0 {
		plan.SnapshotIndex = p.snapIndex
	}
	pending, err := p.srv.planQueue.Enqueue(plan, p.token)
	if err != nil {
		return nil, nil, fmt.Errorf("submitting plan for evaluation %s: %w", p.evalID, err)
	}
	var resp planResponse
	select {
	case resp = <-pending.respCh:
	case <-p.ctx.Done():
		return nil, nil, fmt.Errorf("submitting plan for evaluation %s: %w", p.evalID, p.ctx.Err())
	}
	if resp.err != nil {
		return nil, nil, resp.err
	}
	result := resp.result
	if result.RefreshIndex == 0 {
		return result, nil, nil
	}
	snap, err := p.srv.snapshotMinIndex(p.ctx, result.RefreshIndex, indexWaitTimeout)
	if err != nil {
		return nil, nil, fmt.Errorf("refreshing state for evaluation %s: %w", p.evalID, err)
	}
	p.snapIndex = snap.LatestIndex()
	return result, newSnapshotState(snap), nil
}

// UpdateEval writes the evaluation's outcome, FailedTGAllocs included, so
// `eval status` can say why something was not placed.
func (p *workerPlanner) UpdateEval(eval *structs.Evaluation) error {
	return p.writeEval("updating evaluation", eval, "")
}

// CreateEval writes a follow-up: delayed reschedule, next rolling update
// step, or a blocked evaluation (which the store watcher then tracks).
//
// A blocked evaluation is the last thing the scheduler creates before it
// writes the final status of the one it processes, which names it: the
// two go in one entry, a Raft round trip and an apply fewer for every
// evaluation that could not place everything (and nothing is left
// waiting for capacity if the final write never happens: the evaluation
// is processed again). Follow-ups that plans refer to are written at
// once.
func (p *workerPlanner) CreateEval(eval *structs.Evaluation) error {
	if eval.Status == structs.EvalStatusBlocked {
		if err := p.checkToken("creating evaluation"); err != nil {
			return err
		}
		p.blocked = append(p.blocked, eval.Copy())
		return nil
	}
	return p.writeEval("creating evaluation", eval, "")
}

// ReblockEval writes a blocked evaluation back as blocked; the store
// watcher tracks it again. If capacity frees meanwhile, the watcher's
// unblock reaches the broker while this worker still holds the
// evaluation, and the broker delivers it again after the ack.
func (p *workerPlanner) ReblockEval(eval *structs.Evaluation) error {
	return p.writeEval("reblocking evaluation", eval, structs.EvalStatusBlocked)
}

func (p *workerPlanner) writeEval(what string, eval *structs.Evaluation, status string) error {
	if err := p.checkToken(what); err != nil {
		return err
	}
	e := eval.Copy()
	if status != "" {
		e.Status = status
	}
	evals := append(p.blocked, e)
	now := time.Now().UnixNano()
	for _, e := range evals {
		if e.CreateTime == 0 {
			e.CreateTime = now
		}
		e.ModifyTime = now
		// What the blocked evaluations compare capacity changes against.
		e.SnapshotIndex = p.snapIndex
	}
	if _, _, err := p.srv.raftApplyCtx(p.ctx, structs.EvalUpdateRequestType, &structs.EvalUpdateRequest{Evals: evals}); err != nil {
		return fmt.Errorf("%s %s: %w", what, e.ID, err)
	}
	p.blocked = nil
	return nil
}

// snapshotMinIndex returns a snapshot of the local store that includes
// every write up to index, waiting at most timeout for the store to get
// there.
func (s *Server) snapshotMinIndex(ctx context.Context, index uint64, timeout time.Duration) (*fsm.StateSnapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		store := s.fsm.State()
		ws := memdb.NewWatchSet()
		ws.Add(store.AbandonCh())
		snap := store.Snapshot()
		for _, t := range storeTables {
			snap.IndexWatch(ws, t)
		}
		if snap.LatestIndex() >= index {
			return snap, nil
		}
		if err := ws.WatchCtx(ctx); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return nil, fmt.Errorf("store at index %d did not reach %d within %s", snap.LatestIndex(), index, timeout)
			}
			return nil, err
		}
	}
}

// storeTables are the store's object tables: a write to any moves the
// store's latest index.
var storeTables = []string{"jobs", "job_version", "evals", "nodes", "allocs", "deployments"}
