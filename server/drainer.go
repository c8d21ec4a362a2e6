package server

import (
	"context"
	"sort"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/drover-sh/drover/fsm"
	"github.com/drover-sh/drover/structs"
)

// drainerMinInterval spaces the drainer's passes: a burst of allocation
// updates during a drain costs one pass, not one per update.
const drainerMinInterval = 100 * time.Millisecond

// drainer is the leader's node drain controller. For every draining node
// it marks allocations for migration (DesiredTransition.Migrate) and
// writes an evaluation per job, so the scheduler stops them and places
// replacements elsewhere. It moves at most max_parallel allocations of a
// group at a time: a migrated allocation counts until its replacement
// runs. Batch allocations are left to finish until the deadline; system
// allocations go last (unless the drain ignores them). At the deadline
// everything left is migrated at once. A node with nothing left to move
// ends its drain and stays ineligible.
type drainer struct {
	srv *Server
	now func() time.Time
}

// run watches nodes and allocations until ctx ends.
func (d *drainer) run(ctx context.Context) {
	for {
		ws := memdb.NewWatchSet()
		store := d.srv.fsm.State()
		ws.Add(store.AbandonCh())
		next, err := d.pass(store.Snapshot(), ws)
		if err != nil {
			d.srv.logger.Error("node drain pass failed, retrying", "error", err)
			next = time.Second
		}
		waitCtx, cancel := context.WithTimeout(ctx, next)
		ws.WatchCtx(waitCtx)
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-time.After(drainerMinInterval):
		}
	}
}

// pass does one round over the draining nodes and returns how long to
// wait at most before the next one (the nearest deadline).
func (d *drainer) pass(snap *fsm.StateSnapshot, ws memdb.WatchSet) (time.Duration, error) {
	nodes, err := snap.NodesByPrefix(ws, "")
	if err != nil {
		return 0, err
	}
	now := d.now()
	wait := 5 * time.Minute
	transitions := map[string]*structs.DesiredTransition{}
	jobs := map[structs.NamespacedID]*structs.Job{}
	var done []string
	for _, node := range nodes {
		if node.Drain == nil {
			continue
		}
		if fd := node.Drain.ForceDeadline; fd > 0 && fd > now.UnixNano() {
			wait = min(wait, time.Duration(fd-now.UnixNano()))
		}
		finished, err := d.drainNode(snap, ws, node, now, transitions, jobs)
		if err != nil {
			return 0, err
		}
		if finished {
			done = append(done, node.ID)
		}
	}
	if len(transitions) > 0 {
		if err := d.migrate(transitions, jobs, now); err != nil {
			return 0, err
		}
	}
	for _, id := range done {
		req := &structs.NodeUpdateDrainRequest{NodeID: id, UpdatedAt: now.UnixNano()}
		if _, _, err := d.srv.raftApply(structs.NodeUpdateDrainRequestType, req); err != nil {
			return 0, err
		}
		d.srv.logger.Info("node drain complete", "node_id", id)
	}
	return wait, nil
}

// groupKey names one task group of one job.
type groupKey struct {
	job   structs.NamespacedID
	group string
}

// drainNode adds the migrations due on node to transitions and reports
// whether the node has nothing left to move.
func (d *drainer) drainNode(snap *fsm.StateSnapshot, ws memdb.WatchSet, node *structs.Node, now time.Time,
	transitions map[string]*structs.DesiredTransition, jobs map[structs.NamespacedID]*structs.Job) (bool, error) {
	allocs, err := snap.AllocsByNode(ws, node.ID)
	if err != nil {
		return false, err
	}
	forced := node.Drain.ForceDeadline > 0 && now.UnixNano() >= node.Drain.ForceDeadline
	var services, batch, system []*structs.Allocation
	for _, a := range allocs {
		if a.TerminalStatus() || a.Job == nil {
			continue
		}
		switch a.Job.Type {
		case structs.JobTypeSystem:
			if !node.Drain.IgnoreSystemJobs {
				system = append(system, a)
			}
		case structs.JobTypeBatch:
			batch = append(batch, a)
		default:
			services = append(services, a)
		}
	}
	if len(services)+len(batch)+len(system) == 0 {
		return true, nil
	}
	mark := func(a *structs.Allocation) {
		if a.DesiredTransition.Migrate {
			return
		}
		transitions[a.ID] = &structs.DesiredTransition{Migrate: true}
		id := structs.NamespacedID{Namespace: a.Namespace, ID: a.JobID}
		if jobs[id] == nil {
			jobs[id] = a.Job
		}
	}
	if forced {
		for _, list := range [][]*structs.Allocation{services, batch, system} {
			for _, a := range list {
				mark(a)
			}
		}
		return false, nil
	}

	// Services move max_parallel per group at a time, counting what is
	// already on its way.
	byGroup := map[groupKey][]*structs.Allocation{}
	for _, a := range services {
		k := groupKey{structs.NamespacedID{Namespace: a.Namespace, ID: a.JobID}, a.TaskGroup}
		byGroup[k] = append(byGroup[k], a)
	}
	keys := make([]groupKey, 0, len(byGroup))
	for k := range byGroup {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].job != keys[j].job {
			return keys[i].job.Namespace+"/"+keys[i].job.ID < keys[j].job.Namespace+"/"+keys[j].job.ID
		}
		return keys[i].group < keys[j].group
	})
	for _, k := range keys {
		group := byGroup[k]
		inFlight, err := migrationsInFlight(snap, ws, k, transitions)
		if err != nil {
			return false, err
		}
		budget := maxParallel(group[0].Job, k.group) - inFlight
		for _, a := range group {
			if budget <= 0 {
				break
			}
			if a.DesiredTransition.Migrate || transitions[a.ID] != nil {
				continue
			}
			mark(a)
			budget--
		}
	}
	// System allocations serve the node's other work: they go once the
	// rest has left.
	if len(services) == 0 && len(batch) == 0 {
		for _, a := range system {
			mark(a)
		}
	}
	return false, nil
}

// migrationsInFlight counts a group's allocations that are being moved:
// marked for migration but not yet stopped, or replacements of migrated
// allocations that are not running yet.
func migrationsInFlight(snap *fsm.StateSnapshot, ws memdb.WatchSet, k groupKey, pending map[string]*structs.DesiredTransition) (int, error) {
	allocs, err := snap.AllocsByJob(ws, k.job.Namespace, k.job.ID, false)
	if err != nil {
		return 0, err
	}
	byID := make(map[string]*structs.Allocation, len(allocs))
	for _, a := range allocs {
		byID[a.ID] = a
	}
	n := 0
	for _, a := range allocs {
		if a.TaskGroup != k.group || a.TerminalStatus() {
			continue
		}
		if a.DesiredTransition.Migrate || pending[a.ID] != nil {
			n++
			continue
		}
		if prev := byID[a.PreviousAllocation]; prev != nil && prev.DesiredTransition.Migrate && a.ClientStatus != structs.AllocClientRunning {
			n++
		}
	}
	return n, nil
}

// maxParallel is how many allocations of a group may move at once.
func maxParallel(job *structs.Job, group string) int {
	for _, g := range job.Groups {
		if g.Name == group && g.Update != nil && g.Update.MaxParallel > 0 {
			return g.Update.MaxParallel
		}
	}
	if job.Update != nil && job.Update.MaxParallel > 0 {
		return job.Update.MaxParallel
	}
	return 1
}

// migrate writes the transitions and one evaluation per job in one entry.
func (d *drainer) migrate(transitions map[string]*structs.DesiredTransition, jobs map[structs.NamespacedID]*structs.Job, now time.Time) error {
	ids := make([]structs.NamespacedID, 0, len(jobs))
	for id := range jobs {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].Namespace+"/"+ids[i].ID < ids[j].Namespace+"/"+ids[j].ID })
	req := &structs.AllocUpdateDesiredTransitionRequest{Allocs: transitions}
	for _, id := range ids {
		job := jobs[id]
		req.Evals = append(req.Evals, &structs.Evaluation{
			ID:          structs.GenerateUUID(),
			Namespace:   id.Namespace,
			Priority:    job.Priority,
			Type:        job.Type,
			TriggeredBy: structs.EvalTriggerNodeDrain,
			JobID:       id.ID,
			Status:      structs.EvalStatusPending,
			CreateTime:  now.UnixNano(),
			ModifyTime:  now.UnixNano(),
		})
	}
	if _, _, err := d.srv.raftApply(structs.AllocUpdateDesiredTransitionRequestType, req); err != nil {
		return err
	}
	d.srv.logger.Info("migrating allocations off draining nodes", "allocs", len(transitions), "jobs", len(ids))
	return nil
}
