package client

import (
	"context"
	"sync"
	"time"

	"github.com/drover-sh/drover/structs"
)

// allocClientStatus derives an allocation's client status from its
// tasks: failed as soon as one task failed, else running while one runs,
// else pending while one has yet to start (or waits to restart), else
// complete.
func allocClientStatus(states map[string]*structs.TaskState) (status, description string) {
	var failed, running, pending, dead int
	for _, s := range states {
		switch {
		case s == nil || s.State == structs.TaskStatePending || s.State == "":
			pending++
		case s.State == structs.TaskStateRunning:
			running++
		case s.Failed:
			failed++
		default:
			dead++
		}
	}
	switch {
	case failed > 0:
		return structs.AllocClientFailed, "failed tasks"
	case running > 0:
		return structs.AllocClientRunning, "tasks are running"
	case pending > 0 || dead == 0:
		return structs.AllocClientPending, "no tasks have started"
	default:
		return structs.AllocClientComplete, "all tasks have completed"
	}
}

// updater sends allocation states to the servers. Runners mark their
// allocation dirty; the first mark opens a window (UpdateWindow) and
// every allocation marked by its end goes in one Node.UpdateAllocs. The
// state sent is read when the batch is built, so a retry after a failure
// always carries the newest state, never a stale one.
type updater struct {
	c    *Client
	kick chan struct{}

	mu    sync.Mutex
	dirty map[string]*allocRunner

	// Counters for tests and metrics.
	calls, failures int64
}

func newUpdater(c *Client) *updater {
	return &updater{c: c, kick: make(chan struct{}, 1), dirty: make(map[string]*allocRunner)}
}

// mark queues an allocation's state to be sent.
func (u *updater) mark(ar *allocRunner) {
	u.mu.Lock()
	u.dirty[ar.id] = ar
	u.mu.Unlock()
	select {
	case u.kick <- struct{}{}:
	default:
	}
}

// stats returns how many update calls were made and how many failed.
func (u *updater) stats() (calls, failures int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.calls, u.failures
}

// flush sends what is queued, once: a client shutting down (an agent
// being stopped right after its tasks were) tells the servers the last
// states instead of leaving them to the next start.
func (u *updater) flush() error {
	if batch := u.take(); len(batch) > 0 {
		return u.send(batch)
	}
	return nil
}

// take empties the queue and returns what was in it.
func (u *updater) take() map[string]*allocRunner {
	u.mu.Lock()
	defer u.mu.Unlock()
	batch := u.dirty
	u.dirty = make(map[string]*allocRunner)
	return batch
}

// send sends the newest state of every runner in batch in one
// Node.UpdateAllocs. On success it records which runners the servers now
// know as terminal, and has the garbage collector look.
func (u *updater) send(batch map[string]*allocRunner) error {
	updates := make([]*structs.Allocation, 0, len(batch))
	for _, ar := range batch {
		updates = append(updates, ar.clientUpdate())
	}
	var resp structs.GenericResponse
	if err := u.c.rpc("Node.UpdateAllocs", &structs.AllocUpdateRequest{Alloc: updates}, &resp); err != nil {
		return err
	}
	terminal := false
	for _, up := range updates {
		if up.ClientTerminalStatus() {
			batch[up.ID].terminalSent.Store(true)
			terminal = true
		}
	}
	if terminal {
		u.c.kickGC()
	}
	return nil
}

func (u *updater) run(ctx context.Context) {
	retry := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-u.kick:
		}
		// Let the burst that woke us finish.
		if !u.c.sleep(u.c.cfg.UpdateWindow) {
			return
		}
		batch := u.take()
		if len(batch) == 0 {
			continue
		}
		err := u.send(batch)
		u.mu.Lock()
		u.calls++
		if err != nil {
			u.failures++
			// Requeue what did not go through unless marked again
			// meanwhile (the newer mark is the same runner).
			for id, ar := range batch {
				if _, ok := u.dirty[id]; !ok {
					u.dirty[id] = ar
				}
			}
		}
		u.mu.Unlock()
		if err == nil {
			retry = 0
			continue
		}
		if err == errShutdown {
			return
		}
		retry = backoff(retry, 250*time.Millisecond, 5*time.Second)
		u.c.logger.Warn("sending allocation updates failed; retrying", "allocs", len(batch), "retry_in", retry, "error", err)
		if !u.c.sleep(retry) {
			return
		}
		select {
		case u.kick <- struct{}{}:
		default:
		}
	}
}
