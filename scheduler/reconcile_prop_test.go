package scheduler

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/drover-sh/drover/structs"
	"github.com/drover-sh/drover/structs/mock"
)

// Property tests of the reconcilers: random jobs and random allocation
// histories (any mix of statuses, versions, nodes, duplicates, reschedule
// trackers), with the result applied the way the scheduler and the store
// would apply it.

const propNodes = 6

// propWorld is one drawn situation.
type propWorld struct {
	nodes   []*structs.Node // nil entries are nodes that were removed
	tainted map[string]*structs.Node
	ready   []*structs.Node
}

func drawWorld(t *rapid.T) *propWorld {
	w := &propWorld{tainted: make(map[string]*structs.Node)}
	for i := range propNodes {
		n := mock.Node()
		n.ID = fmt.Sprintf("node-%d", i)
		switch rapid.IntRange(0, 5).Draw(t, fmt.Sprintf("node%d", i)) {
		case 0:
			n.Status = structs.NodeStatusDown
			w.tainted[n.ID] = n
		case 1:
			n.Drain = &structs.DrainStrategy{IgnoreSystemJobs: rapid.Bool().Draw(t, fmt.Sprintf("ignore%d", i))}
			n.SchedulingEligibility = structs.NodeIneligible
			w.tainted[n.ID] = n
		case 2:
			w.tainted[n.ID] = nil
			n = nil
		case 3:
			n.SchedulingEligibility = structs.NodeIneligible
		default:
		}
		w.nodes = append(w.nodes, n)
		if n != nil && n.Ready() {
			w.ready = append(w.ready, n)
		}
	}
	return w
}

func (w *propWorld) nodeID(i int) string { return fmt.Sprintf("node-%d", i) }

// drawJob returns the current version of a job and an older one, whose
// task differs (destructive) or not (in place).
func drawJob(t *rapid.T, kind string) (cur, old *structs.Job) {
	var job *structs.Job
	switch kind {
	case structs.JobTypeBatch:
		job = mock.BatchJob()
	case structs.JobTypeSystem:
		job = mock.SystemJob()
	default:
		job = mock.Job()
	}
	job.ID = "prop"
	job.Update = nil
	g := job.Groups[0]
	g.Name = "web"
	if kind != structs.JobTypeSystem {
		g.Count = rapid.IntRange(0, 6).Draw(t, "count")
		switch rapid.IntRange(0, 2).Draw(t, "policy") {
		case 0:
			g.Reschedule = nil
		case 1:
			g.Reschedule = &structs.ReschedulePolicy{Attempts: 2, Interval: structs.Duration(time.Hour),
				Delay: structs.Duration(time.Minute), DelayFunction: structs.DelayExponential}
		default:
			g.Reschedule = &structs.ReschedulePolicy{Unlimited: true, Delay: structs.Duration(30 * time.Second),
				DelayFunction: structs.DelayFibonacci, MaxDelay: structs.Duration(time.Hour)}
		}
	}
	if rapid.Bool().Draw(t, "two_groups") {
		g2 := g.Copy()
		g2.Name = "api"
		job.Groups = append(job.Groups, g2)
	}
	old = job.Copy()
	old.Version = 0
	job.Version = 1
	if rapid.Bool().Draw(t, "destructive") {
		old.Groups[0].Tasks[0].Image = "old"
	} else {
		old.Groups[0].Meta = map[string]string{"old": "yes"}
	}
	job.Stop = rapid.IntRange(0, 9).Draw(t, "stop") == 0
	return job, old
}

func drawAllocs(t *rapid.T, w *propWorld, cur, old *structs.Job) []*structs.Allocation {
	groups := []string{"web", "api", "gone"}
	n := rapid.IntRange(0, 12).Draw(t, "allocs")
	out := make([]*structs.Allocation, 0, n)
	for i := range n {
		l := func(s string) string { return fmt.Sprintf("%s%d", s, i) }
		a := mock.AllocFor(cur, w.nodeID(rapid.IntRange(0, propNodes-1).Draw(t, l("node"))), 0)
		a.ID = fmt.Sprintf("alloc-%d", i)
		a.TaskGroup = rapid.SampledFrom(groups).Draw(t, l("group"))
		a.Name = allocName(cur.ID, a.TaskGroup, rapid.IntRange(0, 7).Draw(t, l("index")))
		if rapid.Bool().Draw(t, l("old")) {
			a.Job = old
		}
		a.CreateIndex = uint64(i + 1)
		a.DesiredStatus = rapid.SampledFrom([]string{structs.AllocDesiredRun, structs.AllocDesiredRun, structs.AllocDesiredStop}).Draw(t, l("desired"))
		a.ClientStatus = rapid.SampledFrom([]string{structs.AllocClientPending, structs.AllocClientRunning,
			structs.AllocClientComplete, structs.AllocClientFailed, structs.AllocClientLost}).Draw(t, l("client"))
		a.DesiredTransition.Migrate = rapid.IntRange(0, 4).Draw(t, l("migrate")) == 0
		a.ModifyTime = testNow.Add(-time.Duration(rapid.IntRange(0, 7200).Draw(t, l("age"))) * time.Second).UnixNano()
		for k := range rapid.IntRange(0, 3).Draw(t, l("reschedules")) {
			if a.RescheduleTracker == nil {
				a.RescheduleTracker = &structs.RescheduleTracker{}
			}
			a.RescheduleTracker.Events = append(a.RescheduleTracker.Events, &structs.RescheduleEvent{
				RescheduleTime: testNow.Add(-time.Duration(k+1) * 10 * time.Minute).UnixNano(),
				Delay:          structs.Duration(time.Minute),
			})
		}
		if rapid.IntRange(0, 4).Draw(t, l("followup")) == 0 {
			a.FollowupEvalID = rapid.SampledFrom([]string{"prop-eval", "other-eval"}).Draw(t, l("followup_id"))
		}
		out = append(out, a)
	}
	return out
}

// applyResult applies a reconcile result the way a fully committed plan
// would, placing generic allocations round-robin on ready nodes.
func applyResult(allocs []*structs.Allocation, job *structs.Job, res *reconcileResult, ready []*structs.Node) []*structs.Allocation {
	byID := make(map[string]*structs.Allocation, len(allocs))
	order := make([]string, 0, len(allocs))
	for _, a := range allocs {
		byID[a.ID] = a.Copy()
		order = append(order, a.ID)
	}
	for _, s := range res.stop {
		a := byID[s.alloc.ID]
		a.DesiredStatus = structs.AllocDesiredStop
		if s.lost {
			a.ClientStatus = structs.AllocClientLost
		}
	}
	for _, u := range res.inplaceUpdate {
		byID[u.ID].Job = u.Job
	}
	for id, u := range res.attributeUpdates {
		byID[id].FollowupEvalID = u.FollowupEvalID
	}
	next := 0
	for _, list := range [][]*placement{res.place, res.destructiveUpdate} {
		for _, p := range list {
			node := p.node
			if node == nil {
				node = ready[next%len(ready)]
				next++
			}
			a := &structs.Allocation{
				ID: fmt.Sprintf("new-%d-%d", len(order), next), Namespace: job.Namespace, Name: p.name,
				NodeID: node.ID, JobID: job.ID, Job: job, TaskGroup: p.tg.Name,
				DesiredStatus: structs.AllocDesiredRun, ClientStatus: structs.AllocClientPending,
				CreateIndex: uint64(1000 + len(order)),
			}
			if p.canary {
				a.DeploymentID = res.deploymentID
				a.DeploymentStatus = &structs.AllocDeploymentStatus{Canary: true}
			}
			if p.previous != nil {
				a.PreviousAllocation = p.previous.ID
				prev := byID[p.previous.ID]
				prev.NextAllocation = a.ID
				if p.stopPrevious {
					prev.DesiredStatus = structs.AllocDesiredStop
				}
			}
			byID[a.ID] = a
			order = append(order, a.ID)
		}
	}
	out := make([]*structs.Allocation, 0, len(order))
	for _, id := range order {
		out = append(out, byID[id])
	}
	return out
}

// requireNoChanges checks a second reconcile of an applied result does
// nothing to allocations.
func requireNoChanges(t *rapid.T, res *reconcileResult) {
	require.Empty(t, res.place, "places again")
	require.Empty(t, res.destructiveUpdate, "updates again")
	require.Empty(t, res.stop, "stops again")
	require.Empty(t, res.inplaceUpdate, "updates in place again")
	require.Empty(t, res.attributeUpdates, "annotates again")
	for _, evals := range res.followupEvals {
		require.Empty(t, evals, "creates follow-ups again")
	}
}

func TestReconcileProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := drawWorld(t)
		if len(w.ready) == 0 {
			w.ready = []*structs.Node{mock.Node()}
		}
		kind := rapid.SampledFrom([]string{structs.JobTypeService, structs.JobTypeBatch}).Draw(t, "kind")
		job, old := drawJob(t, kind)
		var input *structs.Job
		if rapid.IntRange(0, 9).Draw(t, "purged") != 0 {
			input = job
		}
		allocs := drawAllocs(t, w, job, old)
		in := &reconcileInput{Job: input, Allocs: allocs, TaintedNodes: w.tainted, EvalID: "prop-eval",
			Batch: kind == structs.JobTypeBatch, Now: testNow}
		res := reconcile(in)
		applied := applyResult(allocs, job, res, w.ready)

		live := make(map[string]map[string]bool)
		for _, a := range applied {
			if a.TerminalStatus() {
				continue
			}
			if live[a.TaskGroup] == nil {
				live[a.TaskGroup] = make(map[string]bool)
			}
			require.False(t, live[a.TaskGroup][a.Name], "two live allocations named %s", a.Name)
			live[a.TaskGroup][a.Name] = true
			require.False(t, w.tainted[a.NodeID] == nil && isKey(w.tainted, a.NodeID), "live allocation on a removed node")
			if n := w.tainted[a.NodeID]; n != nil {
				require.NotEqual(t, structs.NodeStatusDown, n.Status, "live allocation on a down node")
			}
		}
		for group, names := range live {
			want := 0
			if input != nil && !input.Stop {
				if tg := input.LookupGroup(group); tg != nil {
					want = tg.Count
				}
			}
			require.LessOrEqual(t, len(names), want, "group %s runs more than its count", group)
		}

		in2 := *in
		in2.Allocs = applied
		in2.Deployment = res.deployment
		requireNoChanges(t, reconcile(&in2))
	})
}

func isKey(m map[string]*structs.Node, k string) bool {
	_, ok := m[k]
	return ok
}

func TestReconcileMaxParallelProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := drawWorld(t)
		job, old := drawJob(t, structs.JobTypeService)
		job.Stop = false
		parallel := rapid.IntRange(1, 3).Draw(t, "max_parallel")
		job.Update = &structs.UpdateStrategy{MaxParallel: parallel}
		allocs := drawAllocs(t, w, job, old)
		res := reconcile(&reconcileInput{Job: job, Allocs: allocs, TaintedNodes: w.tainted, EvalID: "prop-eval", Now: testNow})
		per := make(map[string]int)
		for _, p := range res.destructiveUpdate {
			per[p.tg.Name]++
		}
		for group, n := range per {
			require.LessOrEqual(t, n, parallel, "group %s", group)
		}
	})
}

func TestReconcileSystemProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := drawWorld(t)
		job, old := drawJob(t, structs.JobTypeSystem)
		allocs := drawAllocs(t, w, job, old)
		// Some ready nodes fail the job's constraints.
		eligible := make(map[string]map[string]*structs.Node)
		for _, tg := range job.Groups {
			m := make(map[string]*structs.Node)
			for _, n := range w.ready {
				if rapid.IntRange(0, 4).Draw(t, "feasible_"+tg.Name+n.ID) > 0 {
					m[n.ID] = n
				}
			}
			eligible[tg.Name] = m
		}
		in := &systemInput{Job: job, Allocs: allocs, Eligible: eligible, TaintedNodes: w.tainted, EvalID: "prop-eval", Now: testNow}
		res := reconcileSystem(in)
		applied := applyResult(allocs, job, res, nil)

		type key struct{ group, node string }
		seen := make(map[key]bool)
		for _, a := range applied {
			if a.TerminalStatus() {
				continue
			}
			k := key{a.TaskGroup, a.NodeID}
			require.False(t, seen[k], "two live allocations of group %s on node %s", a.TaskGroup, a.NodeID)
			seen[k] = true
			require.False(t, job.Stop, "live allocation of a stopped job")
			if eligible[a.TaskGroup][a.NodeID] == nil {
				n := w.tainted[a.NodeID]
				require.True(t, n != nil && n.Drain != nil && !a.DesiredTransition.Migrate,
					"live allocation on node %s, which is not eligible", a.NodeID)
			}
		}
		if !job.Stop {
			for _, tg := range job.Groups {
				for id := range eligible[tg.Name] {
					if !seen[key{tg.Name, id}] {
						// Only a failed or finished allocation of the
						// current version may hold an eligible node.
						held := false
						for _, a := range applied {
							if a.TaskGroup == tg.Name && a.NodeID == id && a.ClientTerminalStatus() &&
								a.DesiredStatus == structs.AllocDesiredRun && a.ClientStatus != structs.AllocClientLost && upToDate(a, job) {
								held = true
							}
						}
						require.True(t, held, "eligible node %s has no allocation of group %s", id, tg.Name)
					}
				}
			}
		}

		in2 := *in
		in2.Allocs = applied
		requireNoChanges(t, reconcileSystem(&in2))
	})
}

// Canaries: whatever the history and the state of the deployment, the
// canaries waiting for promotion are at most update.canary with distinct
// names, nothing of the old version is replaced before the promotion,
// the rest of a group never runs more than count, and reconciling the
// applied result again changes nothing.
func TestReconcileCanaryProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := drawWorld(t)
		if len(w.ready) == 0 {
			w.ready = []*structs.Node{mock.Node()}
		}
		job, old := drawJob(t, structs.JobTypeService)
		job.Stop = false
		for _, tg := range job.Groups {
			tg.Count = max(tg.Count, 1)
		}
		minCount := job.Groups[0].Count
		for _, tg := range job.Groups {
			minCount = min(minCount, tg.Count)
		}
		canaries := rapid.IntRange(1, minCount).Draw(t, "canary")
		job.Update = &structs.UpdateStrategy{MaxParallel: rapid.IntRange(1, 3).Draw(t, "max_parallel"), Canary: canaries}
		allocs := drawAllocs(t, w, job, old)

		var d *structs.Deployment
		state := rapid.SampledFrom([]string{"none", "waiting", "promoted", "failed", "older"}).Draw(t, "deployment")
		if state != "none" {
			d = &structs.Deployment{ID: "dep", Namespace: job.Namespace, JobID: job.ID, JobVersion: job.Version,
				Status: structs.DeploymentStatusRunning, TaskGroups: make(map[string]*structs.DeploymentState)}
			for _, tg := range job.Groups {
				d.TaskGroups[tg.Name] = &structs.DeploymentState{DesiredTotal: tg.Count, DesiredCanaries: canaries, Promoted: state == "promoted"}
			}
			switch state {
			case "failed":
				d.Status = structs.DeploymentStatusFailed
			case "older":
				d.JobVersion = old.Version
			}
			for i, a := range allocs {
				if upToDate(a, job) && rapid.Bool().Draw(t, fmt.Sprintf("canary%d", i)) {
					a.DeploymentID = d.ID
					a.DeploymentStatus = &structs.AllocDeploymentStatus{Canary: true}
				}
			}
		}
		in := &reconcileInput{Job: job, Allocs: allocs, TaintedNodes: w.tainted, Deployment: d, EvalID: "prop-eval", Now: testNow}
		res := reconcile(in)
		applied := applyResult(allocs, job, res, w.ready)

		cur := res.deployment
		if cur == nil {
			cur = d
		}
		gated := cur == nil || cur.JobVersion != job.Version || !cur.TaskGroups["web"].Promoted
		if gated {
			require.Empty(t, res.destructiveUpdate, "an old allocation is replaced before the promotion")
		}
		for _, st := range res.stop {
			if gated && !st.lost && st.alloc.DesiredStatus == structs.AllocDesiredRun && !upToDate(st.alloc, job) {
				require.NotEqual(t, descUpdating, st.desc, "an old allocation is replaced before the promotion")
			}
		}
		waiting := make(map[string]map[string]bool)
		rest := make(map[string]map[string]bool)
		for _, a := range applied {
			if a.TerminalStatus() {
				continue
			}
			set := rest
			if cur != nil && a.DeploymentID == cur.ID && a.IsCanary() && cur.Active() && cur.JobVersion == job.Version && !cur.TaskGroups[a.TaskGroup].Promoted {
				set = waiting
			}
			if set[a.TaskGroup] == nil {
				set[a.TaskGroup] = make(map[string]bool)
			}
			require.False(t, set[a.TaskGroup][a.Name], "two live allocations named %s", a.Name)
			set[a.TaskGroup][a.Name] = true
		}
		for group, names := range waiting {
			require.LessOrEqual(t, len(names), canaries, "group %s has more canaries than asked", group)
		}
		for group, names := range rest {
			want := 0
			if tg := job.LookupGroup(group); tg != nil {
				want = tg.Count
			}
			require.LessOrEqual(t, len(names), want, "group %s runs more than its count besides its canaries", group)
		}
		if len(res.deploymentUpdates) == 0 {
			// Again: nothing more is placed, replaced or stopped (a
			// follow-up to look at allocations in flight may come again).
			in2 := *in
			in2.Allocs = applied
			in2.Deployment = cur
			again := reconcile(&in2)
			require.Empty(t, again.place, "places again")
			require.Empty(t, again.destructiveUpdate, "updates again")
			require.Empty(t, again.stop, "stops again")
		}
	})
}
