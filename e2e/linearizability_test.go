//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"
)

// regInput is one operation on a job used as a register: a write
// registers the job with meta v=Value, a read is a consistent job read.
type regInput struct {
	Write bool
	Key   string
	Value string
}

// regModel is a register per job ID; "" is a job that does not exist.
var regModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(regInput).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		in := input.(regInput)
		if in.Write {
			return true, in.Value
		}
		return output.(string) == state.(string), state
	},
	DescribeOperation: func(input, output any) string {
		in := input.(regInput)
		if in.Write {
			return fmt.Sprintf("put(%s, %q)", in.Key, in.Value)
		}
		return fmt.Sprintf("get(%s) -> %q", in.Key, output)
	},
}

// history records operations from several goroutines.
type history struct {
	mu    sync.Mutex
	start time.Time
	ops   []porcupine.Operation
	// acked counts acknowledged writes, unknown writes whose outcome was
	// not known (recorded as possibly applied: no return time).
	acked, unknown, reads atomic.Int64
}

func (h *history) add(op porcupine.Operation) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

func (h *history) now() int64 { return int64(time.Since(h.start)) }

// do runs one operation against server a and records it: a failed read
// tells nothing and is dropped; a write that never reached the agent is
// dropped; any other failed write may have been applied and is recorded
// without a return (porcupine's convention for an unknown outcome).
func (h *history) do(ctx context.Context, client int, a *Agent, in regInput) error {
	opCtx, cancel := context.WithTimeout(ctx, 4*time.Second)
	defer cancel()
	call := h.now()
	if in.Write {
		_, _, err := RegisterYAML(opCtx, a, JobYAML(in.Key, in.Value, 1))
		ret := h.now()
		switch {
		case err == nil:
			h.acked.Add(1)
		case NotSent(err):
			return err
		default:
			h.unknown.Add(1)
			ret = math.MaxInt64
		}
		h.add(porcupine.Operation{ClientId: client, Input: in, Call: call, Output: "", Return: ret})
		return err
	}
	j, _, err := a.Client().Jobs().Info(opCtx, in.Key, nil)
	ret := h.now()
	out := ""
	switch {
	case err == nil:
		out = j.Meta["v"]
	case IsNotFound(err):
	default:
		return err
	}
	h.reads.Add(1)
	h.add(porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
	return nil
}

// (e) Four clients register and read three jobs through the HTTP APIs of
// different servers while the leader is killed with -9 and restarted and
// while the (new) leader is partitioned from the other two and healed.
// Every operation is recorded with its start and end; the history must
// be linearizable (porcupine, a register per job) and end with a read of
// every job from every server, so an acknowledged write that was lost
// would show as a violation.
func TestFaults_Linearizability(t *testing.T) {
	requireIptables(t)
	c := startServers(t, 3)
	ctx := testCtx(t, 100*time.Second)
	leader, err := c.WaitLeader(ctx)
	require.NoError(t, err)

	h := &history{start: time.Now()}
	keys := []string{"lin-a", "lin-b", "lin-c"}
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	const clients = 4
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for n := 0; wctx.Err() == nil; n++ {
				a := c.Agents[(w+n)%len(c.Agents)]
				in := regInput{Key: keys[rng.IntN(len(keys))]}
				if rng.IntN(2) == 0 {
					in.Write, in.Value = true, fmt.Sprintf("w%d-%d", w, n)
				}
				if err := h.do(wctx, w, a, in); err != nil {
					select {
					case <-wctx.Done():
					case <-time.After(50 * time.Millisecond):
					}
				}
			}
		}()
	}
	t.Cleanup(func() { stop(); wg.Wait() })
	pause := func(d time.Duration) {
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}

	// Steady state, then kill -9 of the leader and its restart.
	pause(2 * time.Second)
	leader.Kill()
	pause(3 * time.Second)
	require.NoError(t, leader.Start())
	leader, err = c.WaitLeader(testCtx(t, 30*time.Second))
	require.NoError(t, err)
	pause(2 * time.Second)

	// The leader cut off from the other two, then healed.
	var others []*Agent
	for _, a := range c.Agents {
		if a != leader {
			others = append(others, a)
		}
	}
	p := partitionFor(t, leader, others...)
	require.Eventually(t, func() bool { return AgreedLeader(ctx, others) != nil },
		20*time.Second, 50*time.Millisecond, "the majority elects a leader")
	pause(3 * time.Second)
	require.NoError(t, p.Heal())
	_, err = c.WaitLeader(testCtx(t, 30*time.Second))
	require.NoError(t, err)
	pause(2 * time.Second)
	stop()
	wg.Wait()

	// Final reads of every key from every server, after all writes.
	for _, a := range c.Agents {
		for _, k := range keys {
			require.NoError(t, h.do(ctx, clients, a, regInput{Key: k}), "final read of %s from %s", k, a.Name)
		}
	}

	res, info := porcupine.CheckOperationsVerbose(regModel, h.ops, 60*time.Second)
	if res != porcupine.Ok {
		path := filepath.Join(os.TempDir(), fmt.Sprintf("drover-linearizability-%d.html", time.Now().Unix()))
		if f, err := os.Create(path); err == nil {
			porcupine.Visualize(regModel, info, f)
			f.Close()
		}
		t.Fatalf("history of %d operations is %s (visualization: %s)", len(h.ops), res, path)
	}
	require.Greater(t, h.acked.Load(), int64(20), "enough acknowledged writes to mean something")
	t.Logf("linearizable: 1 history of %d operations (%d acknowledged writes, %d writes of unknown outcome, %d reads) over %d keys",
		len(h.ops), h.acked.Load(), h.unknown.Load(), h.reads.Load(), len(keys))
}

// The model rejects what the cluster test must never show: a read that
// misses an acknowledged write, and a read of a value never written.
func TestFaults_RegisterModelCatchesLostWrites(t *testing.T) {
	w := func(c int, v string, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: c, Input: regInput{Write: true, Key: "k", Value: v}, Call: call, Return: ret}
	}
	r := func(c int, out string, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: c, Input: regInput{Key: "k"}, Output: out, Call: call, Return: ret}
	}
	require.True(t, porcupine.CheckOperations(regModel, []porcupine.Operation{
		w(0, "x", 0, 10), r(1, "x", 5, 15), w(0, "y", 20, math.MaxInt64), r(1, "x", 25, 30), r(1, "y", 35, 40),
	}), "an unknown write may apply late")
	require.False(t, porcupine.CheckOperations(regModel, []porcupine.Operation{
		w(0, "x", 0, 10), r(1, "", 20, 30),
	}), "an acknowledged write lost")
	require.False(t, porcupine.CheckOperations(regModel, []porcupine.Operation{
		w(0, "x", 0, 10), w(0, "y", 20, 30), r(1, "x", 40, 50),
	}), "a stale read after a newer acknowledged write")
	require.False(t, porcupine.CheckOperations(regModel, []porcupine.Operation{
		r(1, "z", 0, 10),
	}), "a value never written")
}
