package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/drover-sh/drover/api"
	"github.com/drover-sh/drover/client/driver"
	"github.com/drover-sh/drover/structs"
)

// headerForwarded marks a request one agent proxied to the client that
// runs the allocation; that client must serve it or fail, never proxy on.
const headerForwarded = "X-Drover-Forwarded-For-Alloc"

// allocClient is what the client-side endpoints need from the local
// client; *client.Client implements it.
type allocClient interface {
	NodeID() string
	StreamLogs(ctx context.Context, allocID, task, typ string, offset int64, fromEnd, follow bool, w io.Writer) error
	Exec(ctx context.Context, allocID, task string, opts *driver.ExecOptions) (int, error)
	RestartAlloc(allocID, task string) error
}

// resolveAlloc finds an allocation by ID or unique prefix, without
// blocking: the client endpoints act on it at once.
func (h *httpHandler) resolveAlloc(r *http.Request, id string) (*structs.Allocation, error) {
	var q structs.QueryOptions
	if err := parseQuery(r, &q); err != nil {
		return nil, err
	}
	q.MinQueryIndex, q.MaxQueryTime = 0, 0
	alloc, _, err := h.findAlloc(id, q)
	return alloc, err
}

// allocStop is PUT /v1/allocation/:id/stop.
func (h *httpHandler) allocStop(w http.ResponseWriter, r *http.Request) (any, error) {
	alloc, err := h.resolveAlloc(r, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	var reply structs.AllocStopResponse
	if err := h.agent.rpc("Alloc.Stop", &structs.AllocStopRequest{AllocID: alloc.ID}, &reply); err != nil {
		return nil, err
	}
	setIndex(w, reply.Index)
	return &reply, nil
}

// taskOf picks the task a client endpoint acts on: the one named, or the
// group's only task.
func taskOf(alloc *structs.Allocation, name string) (string, error) {
	var names []string
	if alloc.Job != nil {
		if g := alloc.Job.LookupGroup(alloc.TaskGroup); g != nil {
			for _, t := range g.Tasks {
				names = append(names, t.Name)
			}
		}
	}
	if name != "" {
		if len(names) > 0 && !slices.Contains(names, name) {
			return "", invalidParam("task", "allocation %s has no task %q (tasks: %s)", structs.ShortID(alloc.ID), name, strings.Join(names, ", "))
		}
		return name, nil
	}
	if len(names) == 1 {
		return names[0], nil
	}
	return "", invalidParam("task", "allocation %s runs %d tasks, name one of: %s", structs.ShortID(alloc.ID), len(names), strings.Join(names, ", "))
}

// clientRoute decides where a client endpoint is served: here, when this
// agent's client runs the allocation, or by proxy on the agent that does.
// It returns the local client, or nil after it has proxied or failed.
func (h *httpHandler) clientRoute(w http.ResponseWriter, r *http.Request, alloc *structs.Allocation) allocClient {
	if c := h.agent.allocClient(); c != nil && c.NodeID() == alloc.NodeID {
		return c
	}
	if r.Header.Get(headerForwarded) != "" {
		h.writeError(w, r, structs.NewError(structs.ErrNotFound,
			"allocation %s is not on this agent's node; it runs on node %s", structs.ShortID(alloc.ID), structs.ShortID(alloc.NodeID)))
		return nil
	}
	var reply structs.SingleNodeResponse
	if err := h.agent.rpc("Node.GetNode", &structs.NodeSpecificRequest{NodeID: alloc.NodeID}, &reply); err != nil {
		h.writeError(w, r, err)
		return nil
	}
	if reply.Node == nil || reply.Node.HTTPAddr == "" {
		h.writeError(w, r, structs.NewError(structs.ErrUnavailable,
			"node %s that runs allocation %s is gone or has no HTTP address", structs.ShortID(alloc.NodeID), structs.ShortID(alloc.ID)))
		return nil
	}
	if reply.Node.Status == structs.NodeStatusDown {
		h.writeError(w, r, structs.NewError(structs.ErrUnavailable,
			"node %s that runs allocation %s is down", reply.Node.Name, structs.ShortID(alloc.ID)))
		return nil
	}
	target := &url.URL{Scheme: "http", Host: reply.Node.HTTPAddr}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			// The target resolves the prefix again; give it the full ID.
			pr.Out.URL.Path = strings.Replace(pr.Out.URL.Path, r.PathValue("id"), alloc.ID, 1)
			pr.Out.URL.RawPath = ""
			pr.Out.Header.Set(headerForwarded, alloc.ID)
		},
		// Logs stream: pass every chunk on at once.
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			h.writeError(w, r, structs.NewError(structs.ErrUnavailable,
				"cannot reach node %s at %s that runs allocation %s: %v", reply.Node.Name, reply.Node.HTTPAddr, structs.ShortID(alloc.ID), err))
		},
	}
	proxy.ServeHTTP(w, r)
	return nil
}

// allocRestart is PUT /v1/client/allocation/:id/restart[?task=].
func (h *httpHandler) allocRestart(w http.ResponseWriter, r *http.Request) (any, error) {
	alloc, err := h.resolveAlloc(r, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	// No task named restarts all of them.
	task := r.URL.Query().Get("task")
	if task != "" {
		if _, err := taskOf(alloc, task); err != nil {
			return nil, err
		}
	}
	c := h.clientRoute(w, r, alloc)
	if c == nil {
		return nil, errHandled
	}
	if err := c.RestartAlloc(alloc.ID, task); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

// errHandled tells route that the handler already wrote the response.
var errHandled = errors.New("response already written")

// allocLogs is GET /v1/client/fs/logs/:id: the task's output as plain
// bytes, streamed while follow=true.
func (h *httpHandler) allocLogs(w http.ResponseWriter, r *http.Request) (any, error) {
	q := r.URL.Query()
	typ := q.Get("type")
	if typ == "" {
		typ = "stdout"
	}
	if typ != "stdout" && typ != "stderr" {
		return nil, invalidParam("type", "must be stdout or stderr, got %q", typ)
	}
	follow, err := boolParam(q, "follow")
	if err != nil {
		return nil, err
	}
	origin := q.Get("origin")
	if origin == "" {
		origin = "start"
	}
	if origin != "start" && origin != "end" {
		return nil, invalidParam("origin", "must be start or end, got %q", origin)
	}
	var offset int64
	if s := q.Get("offset"); s != "" {
		offset, err = strconv.ParseInt(s, 10, 64)
		if err != nil || offset < 0 {
			return nil, invalidParam("offset", "must be a non-negative integer, got %q", s)
		}
	}
	lines := 0
	if s := q.Get("lines"); s != "" {
		lines, err = strconv.Atoi(s)
		if err != nil || lines < 0 {
			return nil, invalidParam("lines", "must be a non-negative integer, got %q", s)
		}
	}
	alloc, err := h.resolveAlloc(r, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	task, err := taskOf(alloc, q.Get("task"))
	if err != nil {
		return nil, err
	}
	c := h.clientRoute(w, r, alloc)
	if c == nil {
		return nil, errHandled
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	fw := &flushWriter{w: w, rc: http.NewResponseController(w)}
	if lines > 0 {
		// The last lines: read a window back from the end, send what
		// follows the N-th newline from its end, then follow from the end.
		var tail tailBuffer
		if err := c.StreamLogs(r.Context(), alloc.ID, task, typ, int64(lines)*logLineWindow, true, false, &tail); err != nil {
			return nil, err
		}
		if _, err := fw.Write(tail.last(lines)); err != nil || !follow {
			return nil, errHandled
		}
		origin, offset = "end", 0
	}
	if err := c.StreamLogs(r.Context(), alloc.ID, task, typ, offset, origin == "end", follow, fw); err != nil {
		if !fw.wrote {
			return nil, err
		}
		// Mid-stream: the status is sent; end the body.
		h.logger.Debug("log stream ended", "alloc_id", alloc.ID, "error", err)
	}
	return nil, errHandled
}

// logLineWindow is how many bytes per wanted line `lines=N` reads back.
const logLineWindow = 1024

func boolParam(q url.Values, name string) (bool, error) {
	s := q.Get(name)
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, invalidParam(name, "must be true or false, got %q", s)
	}
	return b, nil
}

// flushWriter sends every write to the client at once.
type flushWriter struct {
	w     io.Writer
	rc    *http.ResponseController
	wrote bool
}

func (f *flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	f.wrote = true
	if err == nil {
		err = f.rc.Flush()
	}
	return n, err
}

// tailBuffer collects a window of output and returns its last lines.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	return len(p), nil
}

func (t *tailBuffer) last(lines int) []byte {
	b := t.b
	end := len(b)
	if end > 0 && b[end-1] == '\n' {
		end--
	}
	n := 0
	for i := end - 1; i >= 0; i-- {
		if b[i] == '\n' {
			n++
			if n == lines {
				return b[i+1:]
			}
		}
	}
	return b
}

// allocExec is GET /v1/client/allocation/:id/exec, upgraded to the exec
// frame protocol (api.ExecProtocol).
func (h *httpHandler) allocExec(w http.ResponseWriter, r *http.Request) (any, error) {
	q := r.URL.Query()
	if !strings.EqualFold(r.Header.Get("Upgrade"), api.ExecProtocol) {
		return nil, structs.NewError(structs.ErrInvalid, "exec needs a connection upgrade to %s (use drover alloc exec)", api.ExecProtocol)
	}
	var command []string
	if err := json.Unmarshal([]byte(q.Get("command")), &command); err != nil || len(command) == 0 {
		return nil, invalidParam("command", "must be a non-empty JSON array of strings, got %q", q.Get("command"))
	}
	tty, err := boolParam(q, "tty")
	if err != nil {
		return nil, err
	}
	alloc, err := h.resolveAlloc(r, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	if alloc.ClientTerminalStatus() {
		return nil, structs.NewError(structs.ErrConflict, "allocation %s is %s: nothing runs to exec in", structs.ShortID(alloc.ID), alloc.ClientStatus)
	}
	task, err := taskOf(alloc, q.Get("task"))
	if err != nil {
		return nil, err
	}
	c := h.clientRoute(w, r, alloc)
	if c == nil {
		return nil, errHandled
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, fmt.Errorf("exec: hijacking the connection: %w", err)
	}
	defer conn.Close()
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: %s\r\nConnection: Upgrade\r\n\r\n", api.ExecProtocol)
	if err := brw.Flush(); err != nil {
		return nil, errHandled
	}
	h.serveExec(r.Context(), conn, brw.Reader, c, alloc.ID, task, command, tty)
	return nil, errHandled
}

// serveExec runs one exec session on an upgraded connection.
func (h *httpHandler) serveExec(ctx context.Context, conn net.Conn, br *bufio.Reader, c allocClient, allocID, task string, command []string, tty bool) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wmu sync.Mutex
	send := func(typ byte, p []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		return api.WriteExecFrame(conn, typ, p)
	}
	stdinR, stdinW := io.Pipe()
	resize := make(chan driver.TerminalSize, 4)
	go func() {
		// Frames from the user; the connection closing ends the session.
		defer cancel()
		var buf []byte
		for {
			typ, p, err := api.ReadExecFrame(br, buf)
			if err != nil {
				stdinW.CloseWithError(io.EOF)
				return
			}
			buf = p[:0]
			switch typ {
			case api.ExecStdin:
				if _, err := stdinW.Write(p); err != nil {
					// The command stopped reading; drop input.
					continue
				}
			case api.ExecStdinClose:
				stdinW.Close()
			case api.ExecResize:
				if wd, ht, err := api.DecodeResize(p); err == nil {
					select {
					case resize <- driver.TerminalSize{Width: wd, Height: ht}:
					default:
					}
				}
			}
		}
	}()
	opts := &driver.ExecOptions{
		Command: command,
		TTY:     tty,
		Stdin:   stdinR,
		Stdout:  frameWriter{send, api.ExecStdout},
		Stderr:  frameWriter{send, api.ExecStderr},
		Resize:  resize,
	}
	code, err := c.Exec(ctx, allocID, task, opts)
	res := api.ExecResult{ExitCode: code}
	if err != nil {
		res.Error = err.Error()
	}
	b, _ := json.Marshal(res)
	send(api.ExecExit, b)
	stdinR.Close()
}

// frameWriter writes output as frames of one type.
type frameWriter struct {
	send func(byte, []byte) error
	typ  byte
}

func (f frameWriter) Write(p []byte) (int, error) {
	written := 0
	for written < len(p) {
		n := min(len(p)-written, 32<<10)
		if err := f.send(f.typ, p[written:written+n]); err != nil {
			return written, err
		}
		written += n
	}
	return written, nil
}
