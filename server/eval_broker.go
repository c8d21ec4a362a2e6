package server

import (
	"container/heap"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/drover-sh/drover/structs"
)

// Broker errors.
var (
	ErrBrokerDisabled = errors.New("eval broker disabled")
	ErrNotOutstanding = errors.New("evaluation is not outstanding")
	ErrTokenMismatch  = errors.New("evaluation token does not match")
)

// failedQueue is where evaluations go once they hit the delivery limit;
// the leader marks them failed.
const failedQueue = "_failed"

// EvalBroker hands evaluations to scheduler workers on the leader. It
// delivers at least once: a dequeued evaluation must be acked, or it comes
// back after the nack timeout. At most one evaluation per job is handed out
// (or ready) at a time, so two workers never plan the same job at once;
// later evaluations of that job wait, and when one is released the newest
// waiting one goes and the others are returned as superseded (to cancel).
type EvalBroker struct {
	nackTimeout   time.Duration
	deliveryLimit int
	// requeueDelay is how long a nacked evaluation waits, by attempt.
	requeueDelay func(attempt int) time.Duration

	mu      sync.Mutex
	enabled bool
	// ready holds the evaluations workers can take, per scheduler type.
	ready map[string]*evalHeap
	// unack holds handed-out evaluations by ID.
	unack map[string]*unackEval
	// jobEvals marks jobs with an evaluation ready or handed out.
	jobEvals map[jobKey]string
	// pending holds a job's further evaluations while one is in flight.
	pending map[jobKey]*evalHeap
	// superseded are evaluations made moot by newer ones of their job.
	superseded []*structs.Evaluation
	// delayed holds evaluations whose WaitUntil is in the future.
	delayed   *delayHeap
	delayWake chan struct{}
	// attempts counts deliveries per evaluation ID.
	attempts map[string]int
	// waiters are Dequeue calls blocked for work.
	waiters map[chan struct{}]struct{}

	stopDelay context.CancelFunc
}

type jobKey struct{ ns, id string }

type unackEval struct {
	eval  *structs.Evaluation
	token string
	timer *time.Timer
	// requeue is a newer write of the evaluation seen while it was handed
	// out (a reblocked evaluation unblocked before its worker acked): it
	// goes back to the queue once the worker lets go.
	requeue *structs.Evaluation
}

// BrokerStats are the broker's counters, for status output and tests.
type BrokerStats struct {
	Ready, Unacked, Pending, Delayed, Failed int
}

// NewEvalBroker returns a disabled broker.
func NewEvalBroker(nackTimeout time.Duration, deliveryLimit int) *EvalBroker {
	return &EvalBroker{
		nackTimeout:   nackTimeout,
		deliveryLimit: deliveryLimit,
		requeueDelay: func(attempt int) time.Duration {
			if attempt <= 1 {
				return time.Second
			}
			return 5 * time.Second
		},
	}
}

// SetEnabled turns the broker on (a new leader) or off, dropping all state
// (a lost leadership: the next leader rebuilds it from the store).
func (b *EvalBroker) SetEnabled(on bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if on == b.enabled {
		return
	}
	b.enabled = on
	if b.stopDelay != nil {
		b.stopDelay()
		b.stopDelay = nil
	}
	for _, u := range b.unack {
		u.timer.Stop()
	}
	b.ready = make(map[string]*evalHeap)
	b.unack = make(map[string]*unackEval)
	b.jobEvals = make(map[jobKey]string)
	b.pending = make(map[jobKey]*evalHeap)
	b.superseded = nil
	b.delayed = &delayHeap{}
	b.delayWake = make(chan struct{}, 1)
	b.attempts = make(map[string]int)
	for w := range b.waiters {
		close(w)
	}
	b.waiters = make(map[chan struct{}]struct{})
	if on {
		ctx, cancel := context.WithCancel(context.Background())
		b.stopDelay = cancel
		go b.runDelayed(ctx, b.delayed, b.delayWake)
	}
}

// Enabled reports whether the broker is on.
func (b *EvalBroker) Enabled() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.enabled
}

// Enqueue adds an evaluation. Terminal ones and ones already held are
// ignored, so the leader may enqueue liberally (restore, retries).
func (b *EvalBroker) Enqueue(eval *structs.Evaluation) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.enabled || eval.TerminalStatus() {
		return
	}
	if u, ok := b.unack[eval.ID]; ok {
		if eval.ModifyIndex > u.eval.ModifyIndex {
			u.requeue = eval
		}
		return
	}
	if eval.WaitUntil > 0 && time.Unix(0, eval.WaitUntil).After(time.Now()) {
		heap.Push(b.delayed, eval)
		select {
		case b.delayWake <- struct{}{}:
		default:
		}
		return
	}
	b.enqueueLocked(eval)
}

func (b *EvalBroker) enqueueLocked(eval *structs.Evaluation) {
	key := jobKey{eval.Namespace, eval.JobID}
	held, ok := b.jobEvals[key]
	if ok && held != eval.ID {
		h := b.pending[key]
		if h == nil {
			h = &evalHeap{}
			b.pending[key] = h
		}
		for _, e := range *h {
			if e.ID == eval.ID {
				return
			}
		}
		heap.Push(h, eval)
		return
	}
	if ok {
		// Held by this very evaluation: it is ready already (or waits
		// for its redelivery). A map lookup, not a scan of the queue:
		// the leader enqueues thousands a second into deep queues.
		return
	}
	b.jobEvals[key] = eval.ID
	q := b.ready[eval.Type]
	if q == nil {
		q = &evalHeap{}
		b.ready[eval.Type] = q
	}
	heap.Push(q, eval)
	for w := range b.waiters {
		close(w)
		delete(b.waiters, w)
	}
}

// Dequeue waits up to timeout (or ctx) for an evaluation of one of the
// given scheduler types and hands it out with a token for Ack/Nack.
// It returns nil, "", nil on timeout.
func (b *EvalBroker) Dequeue(ctx context.Context, types []string, timeout time.Duration) (*structs.Evaluation, string, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		b.mu.Lock()
		if !b.enabled {
			b.mu.Unlock()
			return nil, "", ErrBrokerDisabled
		}
		if eval := b.popReadyLocked(types); eval != nil {
			token := structs.GenerateUUID()
			b.attempts[eval.ID]++
			id := eval.ID
			u := &unackEval{eval: eval, token: token}
			u.timer = time.AfterFunc(b.nackTimeout, func() { b.Nack(id, token) })
			b.unack[id] = u
			b.mu.Unlock()
			return eval, token, nil
		}
		wake := make(chan struct{})
		b.waiters[wake] = struct{}{}
		b.mu.Unlock()

		select {
		case <-wake:
		case <-ctx.Done():
			b.dropWaiter(wake)
			return nil, "", ctx.Err()
		case <-deadline.C:
			b.dropWaiter(wake)
			return nil, "", nil
		}
	}
}

func (b *EvalBroker) dropWaiter(w chan struct{}) {
	b.mu.Lock()
	delete(b.waiters, w)
	b.mu.Unlock()
}

// popReadyLocked takes the highest-priority ready evaluation among types.
func (b *EvalBroker) popReadyLocked(types []string) *structs.Evaluation {
	var best *evalHeap
	for _, t := range types {
		q := b.ready[t]
		if q == nil || q.Len() == 0 {
			continue
		}
		if best == nil || q.less((*q)[0], (*best)[0]) {
			best = q
		}
	}
	if best == nil {
		return nil
	}
	return heap.Pop(best).(*structs.Evaluation)
}

// Ack marks a handed-out evaluation done and releases its job.
func (b *EvalBroker) Ack(evalID, token string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	u, err := b.outstandingLocked(evalID, token)
	if err != nil {
		return err
	}
	u.timer.Stop()
	delete(b.unack, evalID)
	delete(b.attempts, evalID)
	b.releaseJobLocked(u.eval)
	if u.requeue != nil {
		b.enqueueLocked(u.requeue)
	}
	return nil
}

// Nack returns a handed-out evaluation: it is delivered again after a
// delay, or moved to the failed queue once it reaches the delivery limit.
func (b *EvalBroker) Nack(evalID, token string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	u, err := b.outstandingLocked(evalID, token)
	if err != nil {
		return err
	}
	u.timer.Stop()
	delete(b.unack, evalID)
	key := jobKey{u.eval.Namespace, u.eval.JobID}
	attempts := b.attempts[evalID]
	if attempts >= b.deliveryLimit {
		delete(b.attempts, evalID)
		b.releaseJobLocked(u.eval)
		failed := u.eval.Copy()
		failed.Type = failedQueue
		delete(b.jobEvals, key)
		b.enqueueFailedLocked(failed)
		return nil
	}
	// Keep the job held while the evaluation waits to be redelivered.
	delete(b.jobEvals, key)
	retry := u.eval.Copy()
	if u.requeue != nil {
		retry = u.requeue.Copy()
	}
	retry.WaitUntil = time.Now().Add(b.requeueDelay(attempts)).UnixNano()
	b.jobEvals[key] = retry.ID
	heap.Push(b.delayed, retry)
	select {
	case b.delayWake <- struct{}{}:
	default:
	}
	return nil
}

func (b *EvalBroker) enqueueFailedLocked(eval *structs.Evaluation) {
	q := b.ready[failedQueue]
	if q == nil {
		q = &evalHeap{}
		b.ready[failedQueue] = q
	}
	heap.Push(q, eval)
	for w := range b.waiters {
		close(w)
		delete(b.waiters, w)
	}
}

// OutstandingReset restarts the nack timer of a handed-out evaluation;
// workers call it while a long plan is being applied.
func (b *EvalBroker) OutstandingReset(evalID, token string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	u, err := b.outstandingLocked(evalID, token)
	if err != nil {
		return err
	}
	u.timer.Reset(b.nackTimeout)
	return nil
}

func (b *EvalBroker) outstandingLocked(evalID, token string) (*unackEval, error) {
	if !b.enabled {
		return nil, ErrBrokerDisabled
	}
	u, ok := b.unack[evalID]
	if !ok {
		return nil, ErrNotOutstanding
	}
	if u.token != token {
		return nil, ErrTokenMismatch
	}
	return u, nil
}

// releaseJobLocked frees the job of a finished evaluation and promotes the
// newest pending evaluation of the job; older pending ones are superseded.
func (b *EvalBroker) releaseJobLocked(eval *structs.Evaluation) {
	key := jobKey{eval.Namespace, eval.JobID}
	if b.jobEvals[key] == eval.ID {
		delete(b.jobEvals, key)
	}
	h := b.pending[key]
	if h == nil || h.Len() == 0 {
		delete(b.pending, key)
		return
	}
	delete(b.pending, key)
	newest := (*h)[0]
	for _, e := range *h {
		if e.CreateIndex > newest.CreateIndex {
			newest = e
		}
	}
	for _, e := range *h {
		if e != newest {
			b.superseded = append(b.superseded, e)
		}
	}
	b.enqueueLocked(newest)
}

// Superseded returns and forgets the evaluations made moot by newer ones;
// the leader writes them as canceled.
func (b *EvalBroker) Superseded() []*structs.Evaluation {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.superseded
	b.superseded = nil
	return out
}

// Stats returns the broker's counters.
func (b *EvalBroker) Stats() BrokerStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	var s BrokerStats
	for t, q := range b.ready {
		if t == failedQueue {
			s.Failed += q.Len()
		} else {
			s.Ready += q.Len()
		}
	}
	s.Unacked = len(b.unack)
	for _, h := range b.pending {
		s.Pending += h.Len()
	}
	if b.delayed != nil {
		s.Delayed = b.delayed.Len()
	}
	return s
}

// runDelayed moves delayed evaluations to the ready queues when due.
func (b *EvalBroker) runDelayed(ctx context.Context, delayed *delayHeap, wakeCh chan struct{}) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		b.mu.Lock()
		now := time.Now()
		for delayed.Len() > 0 && !time.Unix(0, (*delayed)[0].WaitUntil).After(now) {
			eval := heap.Pop(delayed).(*structs.Evaluation)
			key := jobKey{eval.Namespace, eval.JobID}
			// A nacked evaluation kept its job held: let it through.
			if b.jobEvals[key] == eval.ID {
				delete(b.jobEvals, key)
			}
			b.enqueueLocked(eval)
		}
		next := time.Hour
		if delayed.Len() > 0 {
			next = time.Until(time.Unix(0, (*delayed)[0].WaitUntil))
		}
		b.mu.Unlock()
		timer.Reset(next)
		select {
		case <-ctx.Done():
			return
		case <-wakeCh:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// evalHeap orders evaluations by priority (high first), then by age.
type evalHeap []*structs.Evaluation

func (h evalHeap) less(a, b *structs.Evaluation) bool {
	if a.Priority != b.Priority {
		return a.Priority > b.Priority
	}
	return a.CreateIndex < b.CreateIndex
}
func (h evalHeap) Len() int           { return len(h) }
func (h evalHeap) Less(i, j int) bool { return h.less(h[i], h[j]) }
func (h evalHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *evalHeap) Push(x any)        { *h = append(*h, x.(*structs.Evaluation)) }
func (h *evalHeap) Pop() any {
	old := *h
	n := len(old)
	e := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	return e
}

// delayHeap orders evaluations by WaitUntil.
type delayHeap []*structs.Evaluation

func (h delayHeap) Len() int           { return len(h) }
func (h delayHeap) Less(i, j int) bool { return h[i].WaitUntil < h[j].WaitUntil }
func (h delayHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *delayHeap) Push(x any)        { *h = append(*h, x.(*structs.Evaluation)) }
func (h *delayHeap) Pop() any {
	old := *h
	n := len(old)
	e := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	return e
}
