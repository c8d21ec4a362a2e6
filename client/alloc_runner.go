package client

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/drover-sh/drover/client/driver"
	"github.com/drover-sh/drover/client/state"
	"github.com/drover-sh/drover/structs"
)

// allocRunner runs one allocation: the alloc-level prerun hooks (dirs,
// network), one task runner per task of the group, and at the end (the
// servers garbage collected the allocation) the postrun hooks. Its client
// status is derived from the tasks' states.
type allocRunner struct {
	c      *Client
	id     string
	root   string // <data_dir>/client/allocs/<id>
	logger hclog.Logger

	// initialGroup is the group as first received: tasks are fixed for
	// an allocation's life (changing them replaces the allocation).
	initialGroup *structs.TaskGroup
	tasks        map[string]*taskRunner
	restored     *state.Alloc
	waitCh       chan struct{} // closed when every task runner returned
	// terminalSent: the servers acknowledged a terminal client status.
	terminalSent atomic.Bool

	prerunHooks  []allocPrerunHook
	postrunHooks []allocPostrunHook

	mu       sync.RWMutex
	alloc    *structs.Allocation
	network  *NetworkStatus
	setupErr error  // the allocation could not be set up
	netNote  string // why the allocation runs in the host network
	killed   bool   // siblings of a failed task were told to stop
	// health is the deployment health this client decided (nil while
	// undecided); healthCh wakes its watcher.
	health   *structs.AllocDeploymentStatus
	healthCh chan struct{}
}

// Network sets up and tears down the network of allocations whose group
// asks for one (bridge mode). Teardown must be idempotent: it is called
// again after a crash.
type Network interface {
	Setup(ctx context.Context, alloc *structs.Allocation) (*NetworkStatus, error)
	Teardown(ctx context.Context, alloc *structs.Allocation, status *NetworkStatus) error
}

// NetworkSweeper is a Network that can remove what it made for
// allocations that are gone (after a crash): the client calls Sweep once
// at start, before it runs new allocations. live reports the allocations
// the client still holds.
type NetworkSweeper interface {
	Sweep(ctx context.Context, live func(allocID string) bool) error
}

// NetworkStatus is what Network.Setup returns: the namespace the tasks
// join and whatever the implementation needs to tear it down later.
type NetworkStatus = state.NetworkState

func newAllocRunner(c *Client, alloc *structs.Allocation, restored *state.Alloc) *allocRunner {
	ar := &allocRunner{
		c:        c,
		id:       alloc.ID,
		root:     c.allocRoot(alloc.ID),
		logger:   c.logger.With("alloc_id", alloc.ID),
		alloc:    alloc,
		tasks:    make(map[string]*taskRunner),
		restored: restored,
		waitCh:   make(chan struct{}),
		healthCh: make(chan struct{}, 1),
	}
	if restored != nil {
		ar.network = restored.Network
	}
	if alloc.Job != nil {
		ar.initialGroup = alloc.Job.LookupGroup(alloc.TaskGroup)
	}
	if ar.initialGroup == nil {
		ar.setupErr = fmt.Errorf("allocation %s: job %q has no group %q", alloc.ID, alloc.JobID, alloc.TaskGroup)
		return ar
	}
	for _, t := range ar.initialGroup.Tasks {
		var rs *state.TaskState
		if restored != nil {
			rs = restored.Tasks[t.Name]
		}
		ar.tasks[t.Name] = newTaskRunner(ar, t, rs)
	}
	ar.prerunHooks = []allocPrerunHook{allocDirHook{}, networkHook{}}
	ar.postrunHooks = []allocPostrunHook{networkHook{}, allocDirHook{}}
	return ar
}

// finishedBeforeRestore reports whether the allocation was restored with
// every task dead: nothing of it will run again, so there is nothing to
// prepare (its network was torn down then, its bridge may be gone since);
// the postrun hooks still release whatever it held.
func (ar *allocRunner) finishedBeforeRestore() bool {
	if ar.restored == nil || len(ar.tasks) == 0 {
		return false
	}
	for name := range ar.tasks {
		ts := ar.restored.Tasks[name]
		if ts == nil || ts.State == nil || ts.State.State != structs.TaskStateDead {
			return false
		}
	}
	return true
}

// allocation returns the allocation as last received.
func (ar *allocRunner) allocation() *structs.Allocation {
	ar.mu.RLock()
	defer ar.mu.RUnlock()
	return ar.alloc
}

// group returns the allocation's current group.
func (ar *allocRunner) group() *structs.TaskGroup {
	a := ar.allocation()
	if a.Job != nil {
		if g := a.Job.LookupGroup(a.TaskGroup); g != nil {
			return g
		}
	}
	return ar.initialGroup
}

func (ar *allocRunner) jobType() string {
	if a := ar.allocation(); a.Job != nil {
		return a.Job.Type
	}
	return structs.JobTypeService
}

// taskDef returns a task's current definition.
func (ar *allocRunner) taskDef(name string) *structs.Task {
	if t := ar.group().LookupTask(name); t != nil {
		return t
	}
	return ar.initialGroup.LookupTask(name)
}

// task returns a task's runner, or a coded not-found error.
func (ar *allocRunner) task(name string) (*taskRunner, error) {
	tr := ar.tasks[name]
	if tr == nil {
		return nil, structs.NewError(structs.ErrNotFound, "task %q is not in allocation %s", name, ar.id)
	}
	return tr, nil
}

func (ar *allocRunner) killTimeout(name string) time.Duration {
	if d := ar.taskDef(name).KillTimeout.D(); d > 0 {
		return d
	}
	return structs.DefaultKillTimeout.D()
}

func (ar *allocRunner) taskLocalDir(task string) string {
	return filepath.Join(ar.root, task, "local")
}

func (ar *allocRunner) logPaths(task string) (stdout, stderr string) {
	logs := filepath.Join(ar.root, "alloc", "logs")
	return filepath.Join(logs, task+".stdout"), filepath.Join(logs, task+".stderr")
}

// baseTaskConfig is the task's definition as the driver sees it; the
// prestart hooks add dirs, env and the rest.
func (ar *allocRunner) baseTaskConfig(name string) *driver.TaskConfig {
	a := ar.allocation()
	t := ar.taskDef(name)
	cfg := &driver.TaskConfig{
		ID: driver.TaskID(a.ID, name), AllocID: a.ID, TaskName: name, JobID: a.JobID, NodeID: ar.c.cfg.NodeID,
		Image: t.Image, Command: t.Command, Args: slices.Clone(t.Args), Env: maps.Clone(t.Env),
		User: t.User, WorkDir: t.WorkDir,
	}
	if t.Resources != nil {
		cfg.CPU, cfg.MemoryMB = t.Resources.CPU, t.Resources.Memory
	}
	if a.Resources != nil {
		if r := a.Resources.Tasks[name]; r != nil {
			cfg.CPU, cfg.MemoryMB = r.CPU, r.Memory
		}
	}
	ar.mu.RLock()
	if ar.network != nil {
		cfg.NetNSPath = ar.network.NetNSPath
	}
	ar.mu.RUnlock()
	cfg.ResolvConfPath = ar.resolvConfPath()
	return cfg
}

func (ar *allocRunner) run() {
	defer close(ar.waitCh)
	if ar.restored == nil {
		if err := ar.c.db.PutAlloc(ar.allocation()); err != nil {
			ar.logger.Error("persisting allocation failed", "error", err)
		}
	}
	if ar.setupErr == nil && !ar.finishedBeforeRestore() {
		for _, h := range ar.prerunHooks {
			if err := h.prerun(ar.c.ctx, ar); err != nil {
				ar.mu.Lock()
				ar.setupErr = fmt.Errorf("%s: %w", h.name(), err)
				ar.mu.Unlock()
				break
			}
		}
	}
	if ar.c.ctx.Err() != nil {
		return
	}
	if ar.setupErr != nil {
		ar.logger.Error("allocation setup failed", "error", ar.setupErr)
		for _, tr := range ar.tasks {
			tr.finish(true, event(structs.TaskEventSetup, "allocation setup failed: "+ar.setupErr.Error()))
		}
		ar.taskUpdated()
		return
	}
	go ar.watchHealth()
	var wg sync.WaitGroup
	for _, tr := range ar.tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr.run()
		}()
	}
	wg.Wait()
	if ar.c.ctx.Err() != nil {
		return // the tasks outlive the agent, and so does their network
	}
	// The tasks are dead: release the network even if the agent is being
	// stopped meanwhile (Shutdown waits for this runner); a CNI DEL cut
	// short leaves a namespace and rules behind until the next start.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ar.c.ctx), networkTeardownTimeout)
	defer cancel()
	if err := ar.teardownNetwork(ctx); err != nil {
		ar.logger.Warn("releasing the network of the finished allocation failed; retried when it is removed", "error", err)
	}
}

// networkTeardownTimeout bounds releasing a finished allocation's network.
const networkTeardownTimeout = 30 * time.Second

// update takes a newer version of the allocation from the servers.
func (ar *allocRunner) update(a *structs.Allocation) {
	ar.mu.Lock()
	ar.alloc = a
	ar.mu.Unlock()
	if err := ar.c.db.PutAlloc(a); err != nil {
		ar.logger.Error("persisting allocation failed", "error", err)
	}
	// Deregister before the tasks get their stop signal.
	ar.c.services.allocChanged(ar)
	if a.DesiredStatus != structs.AllocDesiredRun {
		reason := "allocation stopped by the servers"
		if a.DesiredDescription != "" {
			reason += ": " + a.DesiredDescription
		}
		ar.stop(reason)
	}
}

// stop kills every task; it returns at once.
func (ar *allocRunner) stop(reason string) {
	for _, tr := range ar.tasks {
		tr.kill(reason)
	}
}

// taskUpdated is called after every task state change: it fails the
// whole allocation when one task failed (the others are stopped) and
// queues the new state for the servers.
func (ar *allocRunner) taskUpdated() {
	var failed string
	for name, tr := range ar.tasks {
		if s := tr.taskState(); s.State == structs.TaskStateDead && s.Failed {
			failed = name
			break
		}
	}
	if failed != "" {
		ar.mu.Lock()
		first := !ar.killed
		ar.killed = true
		ar.mu.Unlock()
		if first {
			for name, tr := range ar.tasks {
				if name != failed {
					tr.kill(fmt.Sprintf("sibling task %s failed", failed))
				}
			}
		}
	}
	ar.c.updater.mark(ar)
	ar.c.services.allocChanged(ar)
	ar.kickHealth()
}

// clientStatus derives the allocation's status from its tasks.
func (ar *allocRunner) clientStatus() (status, desc string, states map[string]*structs.TaskState) {
	states = make(map[string]*structs.TaskState, len(ar.tasks))
	for name, tr := range ar.tasks {
		states[name] = tr.taskState()
	}
	ar.mu.RLock()
	setupErr := ar.setupErr
	ar.mu.RUnlock()
	if setupErr != nil {
		return structs.AllocClientFailed, "setup failed: " + setupErr.Error(), states
	}
	status, desc = allocClientStatus(states)
	return status, desc, states
}

// clientUpdate is the client-owned part of the allocation, for the
// servers.
func (ar *allocRunner) clientUpdate() *structs.Allocation {
	a := ar.allocation()
	status, desc, states := ar.clientStatus()
	return &structs.Allocation{
		ID: a.ID, NodeID: a.NodeID, Namespace: a.Namespace, JobID: a.JobID, TaskGroup: a.TaskGroup,
		ClientStatus: status, ClientDescription: desc, TaskStates: states, ModifyTime: time.Now().UnixNano(),
		DeploymentStatus: ar.deploymentHealth(),
	}
}

// snapshot is the allocation as this client sees it.
func (ar *allocRunner) snapshot() *structs.Allocation {
	a := ar.allocation().Copy()
	a.ClientStatus, a.ClientDescription, a.TaskStates = ar.clientStatus()
	if h := ar.deploymentHealth(); h != nil {
		a.DeploymentStatus = h
	}
	return a
}

// destroy stops the allocation and removes everything it left on the
// node: containers, network, directories and its local state.
func (ar *allocRunner) destroy(reason string) {
	ar.c.services.removeAlloc(ar.id)
	ar.stop(reason)
	<-ar.waitCh
	ctx := ar.c.ctx
	if ctx.Err() != nil {
		return // the next client start sees the allocation gone and ends this
	}
	for _, tr := range ar.tasks {
		if err := ar.c.driver.DestroyTask(ctx, tr.id); err != nil {
			ar.logger.Warn("removing container failed", "task_id", tr.id, "error", err)
		}
	}
	for _, h := range ar.postrunHooks {
		if err := h.postrun(ctx, ar); err != nil {
			ar.logger.Warn("allocation cleanup failed", "hook", h.name(), "error", err)
		}
	}
	if err := ar.c.db.DeleteAlloc(ar.id); err != nil {
		ar.logger.Error("deleting allocation state failed", "error", err)
	}
	ar.logger.Debug("allocation destroyed")
}
