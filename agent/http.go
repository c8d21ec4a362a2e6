package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/drover-sh/drover/structs"
)

// Response headers of every read.
const (
	headerIndex       = "X-Drover-Index"
	headerKnownLeader = "X-Drover-KnownLeader"
	headerLastContact = "X-Drover-LastContact"
	headerToken       = "X-Drover-Token"
)

// handlerFunc returns the object to encode as JSON, or an error that
// writeError maps to a status.
type handlerFunc func(w http.ResponseWriter, r *http.Request) (any, error)

// methods maps HTTP methods to handlers for one path.
type methods map[string]handlerFunc

type httpHandler struct {
	agent  *Agent
	logger hclog.Logger
	mux    *http.ServeMux
}

func newHTTPHandler(a *Agent) http.Handler {
	h := &httpHandler{agent: a, logger: a.logger.Named("http"), mux: http.NewServeMux()}
	h.routes()
	return h
}

func (h *httpHandler) routes() {
	h.route("/v1/jobs", methods{"GET": h.jobList, "PUT": h.jobRegister, "POST": h.jobRegister})
	h.route("/v1/job/{id}", methods{"GET": h.jobGet, "DELETE": h.jobDeregister})
	h.route("/v1/job/{id}/versions", methods{"GET": h.jobVersions})
	h.route("/v1/job/{id}/allocations", methods{"GET": h.jobAllocations})
	h.route("/v1/job/{id}/plan", methods{"PUT": h.jobPlan, "POST": h.jobPlan})
	h.route("/v1/nodes", methods{"GET": h.nodeList})
	h.route("/v1/node/{id}", methods{"GET": h.nodeGet})
	h.route("/v1/node/{id}/allocations", methods{"GET": h.nodeAllocations})
	h.route("/v1/node/{id}/drain", methods{"PUT": h.nodeDrain, "POST": h.nodeDrain})
	h.route("/v1/node/{id}/eligibility", methods{"PUT": h.nodeEligibility, "POST": h.nodeEligibility})
	h.route("/v1/allocations", methods{"GET": h.allocList})
	h.route("/v1/allocation/{id}", methods{"GET": h.allocGet})
	h.route("/v1/allocation/{id}/stop", methods{"PUT": h.allocStop, "POST": h.allocStop})
	h.route("/v1/client/allocation/{id}/restart", methods{"PUT": h.allocRestart, "POST": h.allocRestart})
	h.route("/v1/client/allocation/{id}/exec", methods{"GET": h.allocExec})
	h.route("/v1/client/fs/logs/{id}", methods{"GET": h.allocLogs})
	h.route("/v1/services", methods{"GET": h.serviceList})
	h.route("/v1/service/{name}", methods{"GET": h.serviceGet})
	h.route("/v1/job/{id}/revert", methods{"PUT": h.jobRevert, "POST": h.jobRevert})
	h.route("/v1/deployments", methods{"GET": h.deploymentList})
	h.route("/v1/deployment/{id}", methods{"GET": h.deploymentGet})
	h.route("/v1/deployment/{id}/fail", methods{"PUT": h.deploymentFail, "POST": h.deploymentFail})
	h.route("/v1/deployment/{id}/promote", methods{"PUT": h.deploymentPromote, "POST": h.deploymentPromote})
	h.route("/v1/evaluations", methods{"GET": h.evalList})
	h.route("/v1/evaluation/{id}", methods{"GET": h.evalGet})
	h.route("/v1/status/leader", methods{"GET": h.statusLeader})
	h.route("/v1/status/peers", methods{"GET": h.statusPeers})
	h.route("/v1/agent/self", methods{"GET": h.agentSelf})
	h.route("/v1/agent/members", methods{"GET": h.agentMembers})
	h.route("/v1/agent/join", methods{"PUT": h.agentJoin, "POST": h.agentJoin})
	h.route("/v1/agent/force-leave", methods{"PUT": h.agentForceLeave, "POST": h.agentForceLeave})
	h.route("/v1/operator/raft/configuration", methods{"GET": h.operatorRaftConfiguration})
	h.route("/v1/operator/raft/peer", methods{"DELETE": h.operatorRaftRemovePeer})
	h.route("/v1/system/gc", methods{"PUT": h.systemGC, "POST": h.systemGC})
	if h.agent.config.EnableDebug {
		h.mux.HandleFunc("/debug/pprof/", pprof.Index)
		h.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		h.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.writeError(w, r, structs.NewError(structs.ErrNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path))
	})
}

// route registers a path; a method it does not list gets a JSON 405.
func (h *httpHandler) route(path string, m methods) {
	allowed := make([]string, 0, len(m))
	for k := range m {
		allowed = append(allowed, k)
	}
	h.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		fn, ok := m[r.Method]
		if !ok {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			writeJSON(w, http.StatusMethodNotAllowed, map[string]any{
				"error": fmt.Sprintf("method %s not allowed on %s", r.Method, path), "code": "method_not_allowed"})
			return
		}
		obj, err := fn(w, r)
		if err == errHandled {
			return
		}
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, obj)
	})
}

func (h *httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The one place every request passes: ACL tokens will be checked here.
	start := time.Now()
	h.mux.ServeHTTP(w, r)
	h.logger.Trace("request", "method", r.Method, "path", r.URL.Path, "duration", time.Since(start))
}

// statusOf maps error codes to HTTP statuses: the only place that does.
func statusOf(code structs.ErrorCode) int {
	switch code {
	case structs.ErrInvalid:
		return http.StatusBadRequest
	case structs.ErrNotFound:
		return http.StatusNotFound
	case structs.ErrConflict:
		return http.StatusConflict
	case structs.ErrTooLarge:
		return http.StatusRequestEntityTooLarge
	case structs.ErrUnsupported:
		return http.StatusUnsupportedMediaType
	case structs.ErrPermission:
		return http.StatusForbidden
	case structs.ErrNoLeader, structs.ErrUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// errorBody is the JSON of every error response. The first problem's
// field and position are repeated at the top for simple clients.
type errorBody struct {
	Error  string                `json:"error"`
	Code   structs.ErrorCode     `json:"code"`
	Field  string                `json:"field,omitempty"`
	Line   int                   `json:"line,omitempty"`
	Column int                   `json:"column,omitempty"`
	Errors []*structs.FieldError `json:"errors,omitempty"`
}

func (h *httpHandler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := structs.AsAPIError(err)
	status := statusOf(e.Code)
	if status >= 500 {
		h.logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	body := errorBody{Error: e.Message, Code: e.Code, Errors: e.Problems}
	if len(e.Problems) > 0 {
		body.Field, body.Line, body.Column = e.Problems[0].Field, e.Problems[0].Line, e.Problems[0].Column
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, obj any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if obj == nil {
		obj = struct{}{}
	}
	enc := json.NewEncoder(w)
	enc.Encode(obj)
}

// parseQuery reads the options every read endpoint accepts.
func parseQuery(r *http.Request, q *structs.QueryOptions) error {
	v := r.URL.Query()
	if s := v.Get("index"); s != "" {
		idx, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return invalidParam("index", "must be a non-negative integer, got %q", s)
		}
		q.MinQueryIndex = idx
	}
	if s := v.Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return invalidParam("wait", "must be a duration like 10s, got %q", s)
		}
		q.MaxQueryTime = min(d, structs.MaxQueryTime)
	}
	if s := v.Get("stale"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return invalidParam("stale", "must be true or false, got %q", s)
		}
		q.AllowStale = b
	} else if _, ok := v["stale"]; ok {
		q.AllowStale = true
	}
	q.Namespace = v.Get("namespace")
	q.Prefix = v.Get("prefix")
	q.AuthToken = r.Header.Get(headerToken)
	return nil
}

func invalidParam(name, format string, args ...any) error {
	e := structs.NewError(structs.ErrInvalid, "query parameter %s: %s", name, fmt.Sprintf(format, args...))
	e.Problems = []*structs.FieldError{{Field: name, Message: fmt.Sprintf(format, args...)}}
	return e
}

// setMeta writes the read metadata headers.
func setMeta(w http.ResponseWriter, m *structs.QueryMeta) {
	w.Header().Set(headerIndex, strconv.FormatUint(m.Index, 10))
	w.Header().Set(headerKnownLeader, strconv.FormatBool(m.KnownLeader))
	w.Header().Set(headerLastContact, strconv.FormatInt(m.LastContact.Milliseconds(), 10))
}

// setIndex writes the index header of a write.
func setIndex(w http.ResponseWriter, index uint64) {
	w.Header().Set(headerIndex, strconv.FormatUint(index, 10))
}

// readBody reads a request body up to the configured limit (413 beyond).
func (h *httpHandler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	limit := h.agent.config.MaxRequestBytes
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, structs.NewError(structs.ErrTooLarge, "request body is larger than %d bytes", limit)
		}
		return nil, structs.NewError(structs.ErrInvalid, "reading request body: %v", err)
	}
	return body, nil
}

// checkJobContentType accepts YAML and JSON job bodies (and none: the
// decoder reads both).
func checkJobContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return structs.NewError(structs.ErrUnsupported, "bad Content-Type %q", ct)
	}
	switch mt {
	case "application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml",
		"application/json", "text/plain", "application/octet-stream":
		return nil
	}
	return structs.NewError(structs.ErrUnsupported, "unsupported Content-Type %q: send the job as application/yaml or application/json", mt)
}
