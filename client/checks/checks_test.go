package checks

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
)

// target is an HTTP server whose health the test switches.
type target struct {
	srv     *httptest.Server
	healthy atomic.Bool
	hits    atomic.Int64
}

func newTarget(t *testing.T) *target {
	tg := &target{}
	tg.healthy.Store(true)
	tg.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tg.hits.Add(1)
		if r.URL.Path != "/health" {
			http.NotFound(w, r)
			return
		}
		if !tg.healthy.Load() {
			http.Error(w, "sick", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok"))
	}))
	t.Cleanup(tg.srv.Close)
	return tg
}

func (tg *target) addr() string { return strings.TrimPrefix(tg.srv.URL, "http://") }

func TestRun_HTTP(t *testing.T) {
	tg := newTarget(t)
	c := &Check{Type: structs.CheckHTTP, Addr: tg.addr(), Path: "/health", Timeout: time.Second}
	client := &http.Client{}
	r := Run(context.Background(), c, client)
	require.True(t, r.OK, r.Output)
	require.Contains(t, r.Output, "200 OK")

	tg.healthy.Store(false)
	r = Run(context.Background(), c, client)
	require.False(t, r.OK)
	require.Contains(t, r.Output, "503")

	c.Path = "/missing"
	require.False(t, Run(context.Background(), c, client).OK, "404 fails")

	// A server that does not answer in time fails on the timeout.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	t.Cleanup(slow.Close)
	start := time.Now()
	r = Run(context.Background(), &Check{Type: structs.CheckHTTP, Addr: strings.TrimPrefix(slow.URL, "http://"), Timeout: 100 * time.Millisecond}, client)
	require.False(t, r.OK)
	require.Less(t, time.Since(start), 2*time.Second)
}

func TestRun_TCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	c := &Check{Type: structs.CheckTCP, Addr: addr, Timeout: time.Second}
	require.True(t, Run(context.Background(), c, nil).OK)
	ln.Close()
	r := Run(context.Background(), c, nil)
	require.False(t, r.OK)
	require.Contains(t, r.Output, "connection refused")
}

func TestRun_Script(t *testing.T) {
	code := 0
	c := &Check{Type: structs.CheckScript, Timeout: 100 * time.Millisecond, Exec: func(ctx context.Context) (int, error) { return code, nil }}
	require.True(t, Run(context.Background(), c, nil).OK)
	code = 2
	r := Run(context.Background(), c, nil)
	require.False(t, r.OK)
	require.Equal(t, "script exited with code 2", r.Output)
	c.Exec = func(ctx context.Context) (int, error) { return 0, errors.New("task not running") }
	require.Contains(t, Run(context.Background(), c, nil).Output, "task not running")
	c.Exec = func(ctx context.Context) (int, error) { <-ctx.Done(); return -1, ctx.Err() }
	require.Contains(t, Run(context.Background(), c, nil).Output, "timed out")
	require.False(t, Run(context.Background(), &Check{Type: "grpc"}, nil).OK)
}

// changes records OnChange calls.
type changes struct {
	mu  sync.Mutex
	got []Health
	at  []time.Time
}

func (c *changes) record(id string, h Health, _ string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, h)
	c.at = append(c.at, time.Now())
}

func (c *changes) list() []Health {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Health(nil), c.got...)
}

func (c *changes) last() (Health, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.got) == 0 {
		return Unknown, time.Time{}
	}
	return c.got[len(c.got)-1], c.at[len(c.at)-1]
}

// An instance turns healthy when its checks pass, unhealthy within two
// intervals of its check starting to fail, and healthy again after.
func TestSet_HealthTransitions(t *testing.T) {
	tg := newTarget(t)
	var ch changes
	s := NewSet(nil, ch.record)
	t.Cleanup(s.Close)
	const interval = 100 * time.Millisecond
	tcpOK := &Check{Name: "tcp", Type: structs.CheckTCP, Addr: tg.addr(), Interval: interval, Timeout: interval}
	httpCheck := &Check{Name: "http", Type: structs.CheckHTTP, Addr: tg.addr(), Path: "/health", Interval: interval, Timeout: interval}
	s.Watch("a/web/http", []*Check{tcpOK, httpCheck})
	require.Eventually(t, func() bool { return s.Health("a/web/http") == Healthy }, 2*time.Second, 5*time.Millisecond)
	require.Equal(t, []Health{Healthy}, ch.list())

	failedAt := time.Now()
	tg.healthy.Store(false)
	require.Eventually(t, func() bool { h, _ := ch.last(); return h == Unhealthy }, 2*time.Second, 5*time.Millisecond)
	_, at := ch.last()
	require.Less(t, at.Sub(failedAt), 2*interval, "unhealthy within two intervals")

	tg.healthy.Store(true)
	require.Eventually(t, func() bool { h, _ := ch.last(); return h == Healthy }, 2*time.Second, 5*time.Millisecond)
	require.Equal(t, []Health{Healthy, Unhealthy, Healthy}, ch.list())

	// The same checks again keep the watch (and its health); new ones
	// start over from unknown.
	s.Watch("a/web/http", []*Check{
		{Name: "tcp", Type: structs.CheckTCP, Addr: tg.addr(), Interval: interval, Timeout: interval},
		{Name: "http", Type: structs.CheckHTTP, Addr: tg.addr(), Path: "/health", Interval: interval, Timeout: interval},
	})
	require.Equal(t, Healthy, s.Health("a/web/http"))
	s.Watch("a/web/http", []*Check{{Name: "tcp", Type: structs.CheckTCP, Addr: tg.addr(), Interval: time.Hour, Timeout: interval}})
	require.Eventually(t, func() bool { return s.Health("a/web/http") == Healthy }, 2*time.Second, 5*time.Millisecond)

	// After Unwatch nothing more is reported or probed.
	s.Unwatch("a/web/http")
	require.Equal(t, Unknown, s.Health("a/web/http"))
	n := len(ch.list())
	hits := tg.hits.Load()
	tg.healthy.Store(false)
	require.Never(t, func() bool { return len(ch.list()) != n || tg.hits.Load() != hits }, 3*interval, 10*time.Millisecond)
}

// One failing check among passing ones makes the instance unhealthy,
// reported before the others have all run.
func TestSet_OneFailingCheckIsEnough(t *testing.T) {
	tg := newTarget(t)
	tg.healthy.Store(false)
	var ch changes
	s := NewSet(nil, ch.record)
	t.Cleanup(s.Close)
	s.Watch("x", []*Check{
		{Name: "slow", Type: structs.CheckScript, Interval: time.Hour, Timeout: time.Hour,
			Exec: func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, ctx.Err() }},
		{Name: "http", Type: structs.CheckHTTP, Addr: tg.addr(), Path: "/health", Interval: time.Second, Timeout: time.Second},
	})
	require.Eventually(t, func() bool { return s.Health("x") == Unhealthy }, 2*time.Second, 5*time.Millisecond)
	s.Watch("none", nil)
	require.Equal(t, Unknown, s.Health("none"), "an instance without checks is not watched")
}
