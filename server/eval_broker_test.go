package server

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
)

func testEval(job string, priority int, index uint64) *structs.Evaluation {
	return &structs.Evaluation{ID: structs.GenerateUUID(), Namespace: "default", JobID: job,
		Type: structs.JobTypeService, Priority: priority, Status: structs.EvalStatusPending, CreateIndex: index}
}

func dequeue(t *testing.T, b *EvalBroker, timeout time.Duration) (*structs.Evaluation, string) {
	t.Helper()
	e, tok, err := b.Dequeue(context.Background(), []string{structs.JobTypeService, structs.JobTypeBatch}, timeout)
	require.NoError(t, err)
	return e, tok
}

func TestEvalBroker_PriorityThenAge(t *testing.T) {
	b := NewEvalBroker(time.Minute, 3)
	b.SetEnabled(true)
	defer b.SetEnabled(false)
	low, high, older := testEval("a", 10, 5), testEval("b", 90, 6), testEval("c", 90, 4)
	b.Enqueue(low)
	b.Enqueue(high)
	b.Enqueue(older)
	for _, want := range []*structs.Evaluation{older, high, low} {
		got, tok := dequeue(t, b, time.Second)
		require.Equal(t, want.ID, got.ID)
		require.NoError(t, b.Ack(got.ID, tok))
	}
	got, _ := dequeue(t, b, 20*time.Millisecond)
	require.Nil(t, got, "empty broker times out with nothing")
}

func TestEvalBroker_OnePerJobAndSuperseded(t *testing.T) {
	b := NewEvalBroker(time.Minute, 3)
	b.SetEnabled(true)
	defer b.SetEnabled(false)
	first, second, third := testEval("web", 50, 1), testEval("web", 50, 2), testEval("web", 50, 3)
	b.Enqueue(first)
	b.Enqueue(second)
	b.Enqueue(third)

	got, tok := dequeue(t, b, time.Second)
	require.Equal(t, first.ID, got.ID)
	none, _ := dequeue(t, b, 20*time.Millisecond)
	require.Nil(t, none, "a second evaluation of a job in flight must wait")
	require.Equal(t, 2, b.Stats().Pending)

	require.NoError(t, b.Ack(got.ID, tok))
	got, _ = dequeue(t, b, time.Second)
	require.Equal(t, third.ID, got.ID, "the newest pending evaluation goes next")
	sup := b.Superseded()
	require.Len(t, sup, 1)
	require.Equal(t, second.ID, sup[0].ID)
}

func TestEvalBroker_NackRedeliversThenFails(t *testing.T) {
	b := NewEvalBroker(time.Minute, 2)
	b.requeueDelay = func(int) time.Duration { return 10 * time.Millisecond }
	b.SetEnabled(true)
	defer b.SetEnabled(false)
	e := testEval("web", 50, 1)
	b.Enqueue(e)

	got, tok := dequeue(t, b, time.Second)
	require.ErrorIs(t, b.Ack(got.ID, "wrong-token"), ErrTokenMismatch)
	require.NoError(t, b.Nack(got.ID, tok))
	got, tok = dequeue(t, b, time.Second)
	require.Equal(t, e.ID, got.ID, "redelivered after the delay")
	require.NoError(t, b.Nack(got.ID, tok))

	// The delivery limit is reached: it goes to the failed queue.
	failed, _, err := b.Dequeue(context.Background(), []string{failedQueue}, time.Second)
	require.NoError(t, err)
	require.Equal(t, e.ID, failed.ID)
}

func TestEvalBroker_NackTimeoutAndDelayed(t *testing.T) {
	b := NewEvalBroker(30*time.Millisecond, 3)
	b.requeueDelay = func(int) time.Duration { return 0 }
	b.SetEnabled(true)
	defer b.SetEnabled(false)
	e := testEval("web", 50, 1)
	b.Enqueue(e)
	got, _ := dequeue(t, b, time.Second)
	// Not acked: it comes back by itself after the nack timeout.
	again, tok := dequeue(t, b, 2*time.Second)
	require.Equal(t, got.ID, again.ID)
	require.NoError(t, b.Ack(again.ID, tok))

	later := testEval("batch", 50, 2)
	later.WaitUntil = time.Now().Add(100 * time.Millisecond).UnixNano()
	b.Enqueue(later)
	start := time.Now()
	got, _ = dequeue(t, b, 2*time.Second)
	require.Equal(t, later.ID, got.ID)
	require.GreaterOrEqual(t, time.Since(start), 80*time.Millisecond)
}

func TestEvalBroker_DisableDropsAndWakesWaiters(t *testing.T) {
	b := NewEvalBroker(time.Minute, 3)
	b.SetEnabled(true)
	done := make(chan error, 1)
	go func() {
		_, _, err := b.Dequeue(context.Background(), []string{structs.JobTypeService}, 10*time.Second)
		done <- err
	}()
	require.Eventually(t, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.waiters) == 1
	}, time.Second, time.Millisecond)
	b.SetEnabled(false)
	select {
	case err := <-done:
		require.ErrorIs(t, err, ErrBrokerDisabled)
	case <-time.After(2 * time.Second):
		t.Fatal("waiter not woken by disable")
	}
}

func TestEvalBroker_NewerWriteWhileOutstandingIsRequeuedOnAck(t *testing.T) {
	b := NewEvalBroker(time.Minute, 3)
	b.SetEnabled(true)
	defer b.SetEnabled(false)
	e := testEval("web", 50, 1)
	e.ModifyIndex = 1
	b.Enqueue(e)
	got, tok := dequeue(t, b, time.Second)

	same := e.Copy()
	b.Enqueue(same)
	newer := e.Copy()
	newer.ModifyIndex = 7
	b.Enqueue(newer)
	require.Equal(t, 0, b.Stats().Ready, "an outstanding evaluation is not queued twice")

	require.NoError(t, b.Ack(got.ID, tok))
	again, tok := dequeue(t, b, time.Second)
	require.Equal(t, uint64(7), again.ModifyIndex, "the write seen while outstanding comes back after the ack")
	require.NoError(t, b.Ack(again.ID, tok))
	none, _ := dequeue(t, b, 20*time.Millisecond)
	require.Nil(t, none)
}
