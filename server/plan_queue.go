package server

import (
	"container/heap"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/drover-sh/drover/structs"
)

// errPlanQueueDisabled is returned to plans submitted to, or waiting in,
// the queue of a server that is not (or no longer) the leader.
var errPlanQueueDisabled = errors.New("plan queue disabled: this server is not the leader")

// pendingPlan is a plan waiting for the applier, with the token of the
// evaluation it belongs to and where to send the answer.
type pendingPlan struct {
	plan     *structs.Plan
	token    string
	enqueued time.Time
	seq      uint64
	respCh   chan planResponse
}

type planResponse struct {
	result *structs.PlanResult
	err    error
}

// respond sends the answer; respCh has room for exactly one.
func (p *pendingPlan) respond(result *structs.PlanResult, err error) {
	p.respCh <- planResponse{result: result, err: err}
}

// planQueue orders plans for the single applier: by the job's priority,
// then first come first served.
type planQueue struct {
	mu      sync.Mutex
	enabled bool
	heap    planHeap
	seq     uint64
	// ready wakes the applier; it holds at most one token.
	ready chan struct{}
}

func newPlanQueue() *planQueue {
	return &planQueue{ready: make(chan struct{}, 1)}
}

// SetEnabled turns the queue on for a new leader, or off: plans still
// waiting are answered with errPlanQueueDisabled.
func (q *planQueue) SetEnabled(on bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.enabled = on
	if on {
		return
	}
	for _, p := range q.heap {
		p.respond(nil, errPlanQueueDisabled)
	}
	q.heap = nil
}

// Enqueue adds a plan and returns the pending entry whose respCh gets the
// answer.
func (q *planQueue) Enqueue(plan *structs.Plan, token string) (*pendingPlan, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.enabled {
		return nil, errPlanQueueDisabled
	}
	q.seq++
	p := &pendingPlan{plan: plan, token: token, enqueued: time.Now(), seq: q.seq, respCh: make(chan planResponse, 1)}
	heap.Push(&q.heap, p)
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return p, nil
}

// Dequeue waits for the next plan until ctx ends.
func (q *planQueue) Dequeue(ctx context.Context) (*pendingPlan, error) {
	for {
		q.mu.Lock()
		if !q.enabled {
			q.mu.Unlock()
			return nil, errPlanQueueDisabled
		}
		if len(q.heap) > 0 {
			p := heap.Pop(&q.heap).(*pendingPlan)
			q.mu.Unlock()
			return p, nil
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-q.ready:
		}
	}
}

// Len is the number of waiting plans.
func (q *planQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.heap)
}

type planHeap []*pendingPlan

func (h planHeap) Len() int { return len(h) }
func (h planHeap) Less(i, j int) bool {
	if h[i].plan.Priority != h[j].plan.Priority {
		return h[i].plan.Priority > h[j].plan.Priority
	}
	return h[i].seq < h[j].seq
}
func (h planHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *planHeap) Push(x any)   { *h = append(*h, x.(*pendingPlan)) }
func (h *planHeap) Pop() any {
	old := *h
	n := len(old)
	p := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	return p
}
