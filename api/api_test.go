package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
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

// seen is one request as the fake agent received it.
type seen struct {
	Method      string
	Path        string
	RawPath     string
	Query       map[string][]string
	Header      http.Header
	Body        []byte
	ContentType string
}

// fakeAgent is an httptest server standing in for an agent: handlers by
// "METHOD /path", every request recorded.
type fakeAgent struct {
	t        *testing.T
	srv      *httptest.Server
	mu       sync.Mutex
	handlers map[string]http.HandlerFunc
	requests []seen
	conns    atomic.Int32 // connections accepted
}

func newFakeAgent(t *testing.T) *fakeAgent {
	f := &fakeAgent{t: t, handlers: map[string]http.HandlerFunc{}}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.conns.Add(1)
		}
	}
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAgent) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, seen{
		Method: r.Method, Path: r.URL.Path, RawPath: r.URL.EscapedPath(), Query: r.URL.Query(),
		Header: r.Header.Clone(), Body: body, ContentType: r.Header.Get("Content-Type"),
	})
	h := f.handlers[r.Method+" "+r.URL.Path]
	f.mu.Unlock()
	if h == nil {
		replyError(w, http.StatusNotFound, `{"error":"no such endpoint","code":"not_found"}`)
		return
	}
	h(w, r)
}

func (f *fakeAgent) handle(route string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handlers[route] = h
}

// reply answers route with obj as JSON and the given read metadata.
func (f *fakeAgent) reply(route string, obj any) {
	f.handle(route, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(HeaderIndex, "42")
		w.Header().Set(HeaderKnownLeader, "true")
		w.Header().Set(HeaderLastContact, "15")
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(obj)
	})
}

func (f *fakeAgent) last() seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	require.NotEmpty(f.t, f.requests, "no request reached the fake agent")
	return f.requests[len(f.requests)-1]
}

func (f *fakeAgent) client(cfg *Config) *Client {
	if cfg == nil {
		cfg = &Config{}
	}
	cfg.Address = f.srv.URL
	c, err := NewClient(cfg)
	require.NoError(f.t, err)
	return c
}

func replyError(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestNewClient_Address(t *testing.T) {
	t.Setenv(EnvAddress, "")
	t.Setenv(EnvToken, "")
	t.Setenv(EnvNamespace, "")

	c, err := NewClient(nil)
	require.NoError(t, err)
	require.Equal(t, DefaultAddress, c.Address())

	t.Setenv(EnvAddress, "http://10.0.0.9:4750/")
	c, err = NewClient(&Config{})
	require.NoError(t, err)
	require.Equal(t, "http://10.0.0.9:4750", c.Address(), "env used, trailing slash dropped")

	c, err = NewClient(&Config{Address: "10.0.0.1:4750"})
	require.NoError(t, err)
	require.Equal(t, "http://10.0.0.1:4750", c.Address(), "a bare host:port means http")

	for _, bad := range []string{"ftp://x:1", "http://", "http://[::1"} {
		_, err = NewClient(&Config{Address: bad})
		require.Error(t, err, bad)
		require.Contains(t, err.Error(), bad)
	}
}

func TestNewClient_CopiesConfig(t *testing.T) {
	cfg := &Config{Address: "127.0.0.1:1"}
	_, err := NewClient(cfg)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:1", cfg.Address, "the caller's config is not modified")
}

func TestQuery_ParamsHeadersAndMeta(t *testing.T) {
	f := newFakeAgent(t)
	f.reply("GET /v1/jobs", []*structs.JobListStub{{ID: "web", Type: "service"}})
	c := f.client(&Config{Token: "secret", Namespace: "team-a"})

	jobs, meta, err := c.Jobs().List(ctx(t), &QueryOptions{
		Prefix: "we", WaitIndex: 41, WaitTime: 10 * time.Second, AllowStale: true,
		Params: map[string]string{"extra": "1"},
	})
	require.NoError(t, err)
	require.Len(t, jobs, 1)
	require.Equal(t, "web", jobs[0].ID)
	require.Equal(t, uint64(42), meta.LastIndex)
	require.True(t, meta.KnownLeader)
	require.Equal(t, 15*time.Millisecond, meta.LastContact)
	require.Positive(t, meta.RequestTime)

	req := f.last()
	require.Equal(t, map[string][]string{
		"namespace": {"team-a"}, "prefix": {"we"}, "index": {"41"}, "wait": {"10s"},
		"stale": {"true"}, "extra": {"1"},
	}, req.Query)
	require.Equal(t, "secret", req.Header.Get(HeaderToken))

	// The query's namespace wins over the client's; nothing else is sent
	// when nothing is asked.
	_, _, err = c.Jobs().List(ctx(t), &QueryOptions{Namespace: "*"})
	require.NoError(t, err)
	require.Equal(t, map[string][]string{"namespace": {"*"}}, f.last().Query)
}

func TestQuery_NoOptionsSendsNoParams(t *testing.T) {
	t.Setenv(EnvToken, "")
	t.Setenv(EnvNamespace, "")
	f := newFakeAgent(t)
	f.reply("GET /v1/jobs", []*structs.JobListStub{})
	_, _, err := f.client(nil).Jobs().List(ctx(t), nil)
	require.NoError(t, err)
	req := f.last()
	require.Empty(t, req.Query)
	require.Empty(t, req.Header.Get(HeaderToken))
}

func TestQuery_WaitTimeFormat(t *testing.T) {
	for d, want := range map[time.Duration]string{
		10 * time.Second: "10s", 1500 * time.Millisecond: "1.5s", 250 * time.Millisecond: "250ms",
		time.Microsecond: "1ms", 5 * time.Minute: "5m0s",
	} {
		require.Equal(t, want, formatWait(d), d)
		_, err := time.ParseDuration(formatWait(d))
		require.NoError(t, err)
	}
}

func TestQuery_BlockingQueryWaitsForTheAgent(t *testing.T) {
	f := newFakeAgent(t)
	release := make(chan struct{})
	f.handle("GET /v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("index") == "7" {
			<-release // the index has not moved yet
		}
		w.Header().Set(HeaderIndex, "8")
		io.WriteString(w, "[]")
	})
	c := f.client(nil)
	done := make(chan *QueryMeta, 1)
	go func() {
		_, meta, err := c.Jobs().List(context.Background(), &QueryOptions{WaitIndex: 7, WaitTime: time.Minute})
		if err == nil {
			done <- meta
		}
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("blocking query returned before the agent answered")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	select {
	case meta := <-done:
		require.NotNil(t, meta)
		require.Equal(t, uint64(8), meta.LastIndex)
	case <-time.After(5 * time.Second):
		t.Fatal("blocking query did not return")
	}
}

func TestError_ValidationBodyDecoded(t *testing.T) {
	f := newFakeAgent(t)
	f.handle("PUT /v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		replyError(w, http.StatusBadRequest, `{"error":"2 problems: ...","code":"invalid",
			"field":"id","line":1,"column":5,
			"errors":[{"field":"id","message":"must be lowercase","line":1,"column":5},
			          {"field":"groups[0].count","message":"must be >= 0","line":4,"column":12}]}`)
	})
	_, err := f.client(nil).Jobs().Register(ctx(t), []byte("id: WEB\n"), ContentTypeYAML, nil)
	require.Error(t, err)
	var apiErr *Error
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, http.StatusBadRequest, apiErr.StatusCode)
	require.Equal(t, structs.ErrInvalid, apiErr.Code)
	require.Equal(t, "2 problems: ...", apiErr.Error())
	require.Equal(t, "id", apiErr.Field)
	require.Equal(t, 1, apiErr.Line)
	require.Equal(t, 5, apiErr.Column)
	require.Equal(t, []*structs.FieldError{
		{Field: "id", Message: "must be lowercase", Line: 1, Column: 5},
		{Field: "groups[0].count", Message: "must be >= 0", Line: 4, Column: 12},
	}, apiErr.Problems)
	require.False(t, IsNotFound(err))
	require.Equal(t, structs.ErrInvalid, CodeOf(err))
}

func TestError_TopLevelFieldBecomesAProblem(t *testing.T) {
	f := newFakeAgent(t)
	f.handle("GET /v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		replyError(w, http.StatusBadRequest, `{"error":"query parameter wait: bad","code":"invalid","field":"wait"}`)
	})
	_, _, err := f.client(nil).Jobs().List(ctx(t), nil)
	var apiErr *Error
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, []*structs.FieldError{{Field: "wait", Message: "query parameter wait: bad"}}, apiErr.Problems)
}

func TestError_NotFound(t *testing.T) {
	f := newFakeAgent(t)
	f.handle("GET /v1/job/nope", func(w http.ResponseWriter, r *http.Request) {
		replyError(w, http.StatusNotFound, `{"error":"job \"nope\" not found","code":"not_found"}`)
	})
	_, _, err := f.client(nil).Jobs().Info(ctx(t), "nope", nil)
	require.True(t, IsNotFound(err))
	require.EqualError(t, err, `job "nope" not found`)
	require.False(t, IsNotFound(errors.New("not found")))
	require.False(t, IsNotFound(nil))
}

func TestError_NotOurBody(t *testing.T) {
	f := newFakeAgent(t)
	f.handle("GET /v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "upstream down\n")
	})
	f.handle("GET /v1/evaluations", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	_, _, err := f.client(nil).Jobs().List(ctx(t), nil)
	require.EqualError(t, err, "HTTP 502: upstream down")
	_, _, err = f.client(nil).Evaluations().List(ctx(t), nil)
	require.EqualError(t, err, "unexpected response: HTTP 503 Service Unavailable")
	var apiErr *Error
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, http.StatusServiceUnavailable, apiErr.StatusCode)
}

func TestError_BadSuccessBody(t *testing.T) {
	f := newFakeAgent(t)
	f.handle("GET /v1/jobs", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "{not json") })
	_, _, err := f.client(nil).Jobs().List(ctx(t), nil)
	require.ErrorContains(t, err, "decoding the answer to GET /v1/jobs")
}

func TestTransportError_NamesTheAgent(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := "http://" + l.Addr().String()
	l.Close() // nothing listens there now

	c, err := NewClient(&Config{Address: addr})
	require.NoError(t, err)
	_, err = c.Status().Leader(ctx(t))
	require.Error(t, err)
	require.True(t, strings.HasPrefix(err.Error(), "cannot reach drover agent at "+addr+": "), err.Error())
	require.Contains(t, err.Error(), "connection refused")
	var apiErr *Error
	require.False(t, errors.As(err, &apiErr))
}

func TestTransportError_CanceledContext(t *testing.T) {
	f := newFakeAgent(t)
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	f.handle("GET /v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	})
	c, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, _, err := f.client(nil).Jobs().List(c, &QueryOptions{WaitIndex: 1, WaitTime: time.Minute})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NotContains(t, err.Error(), "cannot reach")
}

func TestClients_ShareConnections(t *testing.T) {
	f := newFakeAgent(t)
	f.reply("GET /v1/status/leader", "10.0.0.1:4751")
	for i := 0; i < 20; i++ {
		// A new Client per call, as the CLI and tests do.
		leader, err := f.client(nil).Status().Leader(ctx(t))
		require.NoError(t, err)
		require.Equal(t, "10.0.0.1:4751", leader)
	}
	require.Equal(t, int32(1), f.conns.Load(), "every request reused one keep-alive connection")
}

func TestClient_OwnHTTPClient(t *testing.T) {
	f := newFakeAgent(t)
	f.reply("GET /v1/status/peers", []string{"a:1", "b:1"})
	var used atomic.Bool
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		used.Store(true)
		return http.DefaultTransport.RoundTrip(r)
	})}
	peers, err := f.client(&Config{HTTPClient: hc}).Status().Peers(ctx(t))
	require.NoError(t, err)
	require.Equal(t, []string{"a:1", "b:1"}, peers)
	require.True(t, used.Load())
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
