package server

import (
	"context"
	"time"

	"github.com/drover-sh/drover/fsm"
	"github.com/drover-sh/drover/structs"
)

// gcBatchSize bounds the IDs one garbage collection entry removes.
const gcBatchSize = 1000

// gcThresholds say how old finished objects must be before the collector
// removes them. Zero removes everything finished (a forced collection).
type gcThresholds struct {
	Eval, Job, Node time.Duration
}

// collector is the leader's garbage collector: it removes evaluations
// and allocations that finished long ago, stopped or finished batch jobs
// with nothing left running, and nodes that have been down for long.
type collector struct {
	srv *Server
}

// run collects every GCInterval until ctx ends.
func (c *collector) run(ctx context.Context) {
	tick := time.NewTicker(c.srv.config.GCInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		cfg := c.srv.config
		if _, err := c.collect(time.Now(), gcThresholds{Eval: cfg.EvalGCThreshold, Job: cfg.JobGCThreshold, Node: cfg.NodeGCThreshold}); err != nil {
			c.srv.logger.Error("garbage collection failed", "error", err)
		}
	}
}

// gcResult counts what one collection removed.
type gcResult struct {
	Evals, Allocs, Jobs, Nodes int
}

// collect runs one pass against the newest state.
func (c *collector) collect(now time.Time, th gcThresholds) (gcResult, error) {
	snap := c.srv.fsm.State().Snapshot()
	before := func(d time.Duration) int64 { return now.Add(-d).UnixNano() }
	var res gcResult

	// Jobs first: a purged job takes its evaluations and allocations.
	jobs, err := snap.JobsByPrefix(nil, "*", "")
	if err != nil {
		return res, err
	}
	var purge []structs.NamespacedID
	var evalIDs, allocIDs []string
	gone := map[structs.NamespacedID]bool{}
	for _, job := range jobs {
		if !job.Stop && !(job.Type == structs.JobTypeBatch && job.Status == structs.JobStatusDead) {
			continue
		}
		if job.SubmitTime > before(th.Job) {
			continue
		}
		evals, allocs, ok, err := finishedBefore(snap, job, before(th.Job))
		if err != nil {
			return res, err
		}
		if !ok {
			continue
		}
		id := structs.NamespacedID{Namespace: job.Namespace, ID: job.ID}
		purge = append(purge, id)
		gone[id] = true
		evalIDs = append(evalIDs, evals...)
		allocIDs = append(allocIDs, allocs...)
	}

	// Then evaluations of jobs that stay, with their allocations, once
	// every one of them finished long enough ago. Batch jobs keep theirs
	// while the job is there: they are its history.
	evals, err := snap.EvalsByPrefix(nil, "*", "")
	if err != nil {
		return res, err
	}
	// The allocations of each job with an old evaluation, by evaluation:
	// the store keeps no index by evaluation (every allocation write
	// would pay for it), and a job is read once per pass.
	byEval := map[structs.NamespacedID]map[string][]*structs.Allocation{}
	allocsOf := func(e *structs.Evaluation) ([]*structs.Allocation, error) {
		id := structs.NamespacedID{Namespace: e.Namespace, ID: e.JobID}
		m, ok := byEval[id]
		if !ok {
			all, err := snap.AllocsByJob(nil, e.Namespace, e.JobID, true)
			if err != nil {
				return nil, err
			}
			m = map[string][]*structs.Allocation{}
			for _, a := range all {
				m[a.EvalID] = append(m[a.EvalID], a)
			}
			byEval[id] = m
		}
		return m[e.ID], nil
	}
	for _, e := range evals {
		if !e.TerminalStatus() || e.ModifyTime > before(th.Eval) || gone[structs.NamespacedID{Namespace: e.Namespace, ID: e.JobID}] {
			continue
		}
		job, err := snap.JobByID(nil, e.Namespace, e.JobID)
		if err != nil {
			return res, err
		}
		if job != nil && job.Type == structs.JobTypeBatch {
			continue
		}
		allocs, err := allocsOf(e)
		if err != nil {
			return res, err
		}
		old := true
		for _, a := range allocs {
			if !a.TerminalStatus() || a.ModifyTime > before(th.Eval) {
				old = false
				break
			}
		}
		if !old {
			continue
		}
		evalIDs = append(evalIDs, e.ID)
		for _, a := range allocs {
			allocIDs = append(allocIDs, a.ID)
		}
	}

	// Nodes down for long with nothing left on them.
	nodes, err := snap.NodesByPrefix(nil, "")
	if err != nil {
		return res, err
	}
	var nodeIDs []string
	for _, n := range nodes {
		if n.Status != structs.NodeStatusDown || n.StatusUpdatedAt > before(th.Node) {
			continue
		}
		allocs, err := snap.AllocsByNode(nil, n.ID)
		if err != nil {
			return res, err
		}
		busy := false
		for _, a := range allocs {
			if !a.TerminalStatus() {
				busy = true
				break
			}
		}
		if !busy {
			nodeIDs = append(nodeIDs, n.ID)
		}
	}

	// Allocations go before their evaluations, so an allocation never
	// points at an evaluation that is gone while it is still listed.
	for _, ids := range chunks(allocIDs) {
		if _, _, err := c.srv.raftApply(structs.AllocGCRequestType, &structs.AllocGCRequest{AllocIDs: ids}); err != nil {
			return res, err
		}
		res.Allocs += len(ids)
	}
	for _, ids := range chunks(evalIDs) {
		if _, _, err := c.srv.raftApply(structs.EvalDeleteRequestType, &structs.EvalDeleteRequest{EvalIDs: ids}); err != nil {
			return res, err
		}
		res.Evals += len(ids)
	}
	for i := 0; i < len(purge); i += gcBatchSize {
		batch := purge[i:min(i+gcBatchSize, len(purge))]
		if _, _, err := c.srv.raftApply(structs.JobBatchDeregisterRequestType, &structs.JobBatchDeregisterRequest{Jobs: batch}); err != nil {
			return res, err
		}
		res.Jobs += len(batch)
	}
	for _, ids := range chunks(nodeIDs) {
		if _, _, err := c.srv.raftApply(structs.NodeDeregisterRequestType, &structs.NodeDeregisterRequest{NodeIDs: ids}); err != nil {
			return res, err
		}
		for _, id := range ids {
			c.srv.heartbeats.clear(id)
		}
		res.Nodes += len(ids)
	}
	if res != (gcResult{}) {
		c.srv.logger.Info("garbage collected", "evals", res.Evals, "allocs", res.Allocs, "jobs", res.Jobs, "nodes", res.Nodes)
	}
	return res, nil
}

// finishedBefore returns a job's evaluations and allocations when all of
// them are terminal and last changed before cutoff.
func finishedBefore(snap *fsm.StateSnapshot, job *structs.Job, cutoff int64) ([]string, []string, bool, error) {
	evals, err := snap.EvalsByJob(nil, job.Namespace, job.ID)
	if err != nil {
		return nil, nil, false, err
	}
	allocs, err := snap.AllocsByJob(nil, job.Namespace, job.ID, true)
	if err != nil {
		return nil, nil, false, err
	}
	var evalIDs, allocIDs []string
	for _, e := range evals {
		if !e.TerminalStatus() || e.ModifyTime > cutoff {
			return nil, nil, false, nil
		}
		evalIDs = append(evalIDs, e.ID)
	}
	for _, a := range allocs {
		if !a.TerminalStatus() || a.ModifyTime > cutoff {
			return nil, nil, false, nil
		}
		allocIDs = append(allocIDs, a.ID)
	}
	return evalIDs, allocIDs, true, nil
}

func chunks(ids []string) [][]string {
	var out [][]string
	for i := 0; i < len(ids); i += gcBatchSize {
		out = append(out, ids[i:min(i+gcBatchSize, len(ids))])
	}
	return out
}
