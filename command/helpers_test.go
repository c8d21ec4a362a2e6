package command

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/api"
	"github.com/drover-sh/drover/structs"
)

func TestMain(m *testing.M) {
	// Fixed output for the times in tables.
	time.Local = time.UTC
	os.Exit(m.Run())
}

// request is one request as the fake API received it.
type request struct {
	Method string
	Path   string
	Query  map[string][]string
	Header http.Header
	Body   []byte
}

// fakeAPI stands in for an agent's HTTP API: handlers by "METHOD /path",
// every request recorded. Commands find it through $DROVER_ADDR.
type fakeAPI struct {
	t        *testing.T
	srv      *httptest.Server
	mu       sync.Mutex
	handlers map[string]http.HandlerFunc
	requests []request
}

func newFakeAPI(t *testing.T) *fakeAPI {
	f := &fakeAPI{t: t, handlers: map[string]http.HandlerFunc{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	t.Setenv(api.EnvAddress, f.srv.URL)
	t.Setenv(api.EnvToken, "")
	t.Setenv(api.EnvNamespace, "")
	// Jobs without deployments, unless a test says otherwise: job status
	// reads them.
	f.reply("GET /v1/deployments", []*structs.Deployment{})
	return f
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, request{
		Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), Body: body,
	})
	h := f.handlers[r.Method+" "+r.URL.Path]
	f.mu.Unlock()
	if h == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such endpoint: " + r.URL.Path, "code": "not_found"})
		return
	}
	h(w, r)
}

// reply answers route with obj as JSON.
func (f *fakeAPI) reply(route string, obj any) {
	f.handle(route, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(api.HeaderIndex, "100")
		w.Header().Set(api.HeaderKnownLeader, "true")
		writeJSON(w, http.StatusOK, obj)
	})
}

// fail answers route with an error body.
func (f *fakeAPI) fail(route string, status int, body map[string]any) {
	f.handle(route, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, status, body) })
}

func (f *fakeAPI) handle(route string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handlers[route] = h
}

// find returns the last request to route.
func (f *fakeAPI) find(route string) request {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.requests) - 1; i >= 0; i-- {
		if r := f.requests[i]; r.Method+" "+r.Path == route {
			return r
		}
	}
	f.t.Fatalf("no request to %s", route)
	return request{}
}

func writeJSON(w http.ResponseWriter, status int, obj any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(obj)
}

// result is what a command did.
type result struct {
	code   int
	stdout string
	stderr string
}

// run runs "drover args..." in-process with input on standard input.
func runWithInput(t *testing.T, input string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	oldOut, oldErr, oldIn := stdout, stderr, stdin
	stdout, stderr, stdin = &out, &errOut, strings.NewReader(input)
	defer func() { stdout, stderr, stdin = oldOut, oldErr, oldIn }()
	code := Run(append([]string{"drover"}, args...))
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

func run(t *testing.T, args ...string) result {
	t.Helper()
	return runWithInput(t, "", args...)
}

// requireOK checks a command succeeded and said nothing on stderr.
func requireOK(t *testing.T, r result) {
	t.Helper()
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	require.Empty(t, r.stderr)
}

// writeFile writes a file in a test directory and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	return path
}

// lines joins lines with a final newline, for expected outputs.
func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }
