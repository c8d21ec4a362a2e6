package client

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
)

// Past GCMaxAllocs the client destroys its oldest finished allocations,
// once the servers know they finished; running ones are never touched.
func TestClient_GarbageCollectsFinishedAllocs(t *testing.T) {
	srv := testServer(t)
	n := newTestNode(t, srv)
	n.cb = func(c *Config) { c.GCMaxAllocs = 3; c.GCInterval = 20 * time.Millisecond }
	c := n.start()

	// Two long-running allocations, then finished ones one after another.
	svc := testJob(structs.JobTypeService, 2, map[string]string{"run_for": "1h"}, nil)
	registerJob(t, srv, svc)
	var finished []*structs.Allocation
	for i := 0; i < 4; i++ {
		job := testJob(structs.JobTypeBatch, 1, map[string]string{"run_for": "10ms"}, nil)
		registerJob(t, srv, job)
		a := waitAlloc(t, srv, job)
		waitServerStatus(t, srv, a.ID, structs.AllocClientComplete, 10*time.Second)
		finished = append(finished, a)
	}
	for _, a := range serverAllocs(t, srv, svc) {
		waitServerStatus(t, srv, a.ID, structs.AllocClientRunning, 10*time.Second)
	}

	// 6 held, limit 3: the three oldest finished go, the newest stays.
	require.Eventually(t, func() bool { return len(c.Allocs()) == 3 }, 10*time.Second, 10*time.Millisecond)
	held := map[string]bool{}
	for _, a := range c.Allocs() {
		held[a.ID] = true
	}
	for _, a := range serverAllocs(t, srv, svc) {
		require.True(t, held[a.ID], "a running allocation is never collected")
	}
	newest := finished[3]
	require.True(t, held[newest.ID], "the newest finished allocation stays")
	for _, a := range finished[:3] {
		require.False(t, held[a.ID])
		require.NoDirExists(t, c.allocRoot(a.ID))
		_, err := c.AllocDir(a.ID)
		require.True(t, structs.IsNotFound(err))
		require.ErrorContains(t, err, "garbage-collected")
		var b bytes.Buffer
		err = c.StreamLogs(context.Background(), a.ID, "work", "stdout", 0, false, false, &b)
		require.ErrorContains(t, err, "garbage-collected")
	}
	dir, err := c.AllocDir(newest.ID)
	require.NoError(t, err)
	require.DirExists(t, dir)

	// The servers keep their records; the local state is gone, so a
	// restarted client brings back only what it still held.
	for _, a := range finished {
		got, err := srv.State().Snapshot().AllocByID(nil, a.ID)
		require.NoError(t, err)
		require.Equal(t, structs.AllocClientComplete, got.ClientStatus)
	}
	require.NoError(t, c.Shutdown())
	c = n.start()
	require.Len(t, c.Allocs(), 3)
}

// A finished allocation whose terminal status the servers have not
// acknowledged yet is kept: collecting it would lose that status.
func TestClient_GCWaitsForTheServers(t *testing.T) {
	srv := testServer(t)
	n := newTestNode(t, srv)
	n.cb = func(c *Config) {
		c.GCMaxAllocs = 1
		c.GCInterval = time.Hour          // only acknowledgments trigger it
		c.UpdateWindow = 30 * time.Second // holds every status update back
	}
	c := n.start()
	for i := 0; i < 2; i++ {
		registerJob(t, srv, testJob(structs.JobTypeBatch, 1, map[string]string{"run_for": "10ms"}, nil))
	}
	require.Eventually(t, func() bool {
		c.allocsMu.RLock()
		defer c.allocsMu.RUnlock()
		if len(c.allocs) != 2 {
			return false
		}
		for _, ar := range c.allocs {
			select {
			case <-ar.waitCh:
			default:
				return false
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond, "both allocations finish")
	require.Zero(t, c.collectGarbage(), "nothing acknowledged, nothing collected")
	require.Len(t, c.Allocs(), 2)
	for _, a := range c.Allocs() {
		require.DirExists(t, c.allocRoot(a.ID))
	}

	// Acknowledged, the one over the limit goes at once, not at the next
	// GCInterval.
	require.NoError(t, c.updater.flush())
	require.Eventually(t, func() bool { return len(c.Allocs()) == 1 }, 5*time.Second, 10*time.Millisecond)
}
