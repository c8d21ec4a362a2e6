// Package api is the Go client of drover's HTTP API. The CLI and the e2e
// tests talk to a cluster only through it. Objects are the structs
// package's types, decoded from the same snake_case JSON the agents serve.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Environment variables read by DefaultConfig.
const (
	EnvAddress   = "DROVER_ADDR"
	EnvToken     = "DROVER_TOKEN"
	EnvNamespace = "DROVER_NAMESPACE"
)

// DefaultAddress is the HTTP API of a local agent.
const DefaultAddress = "http://127.0.0.1:4750"

// Headers of the HTTP contract.
const (
	HeaderIndex       = "X-Drover-Index"
	HeaderKnownLeader = "X-Drover-KnownLeader"
	HeaderLastContact = "X-Drover-LastContact"
	HeaderToken       = "X-Drover-Token"
)

// Config says which agent to talk to and as whom.
type Config struct {
	// Address is the agent's HTTP API, e.g. http://10.0.0.1:4750. A bare
	// host:port means http. Empty: $DROVER_ADDR, else DefaultAddress.
	Address string
	// Token is sent as X-Drover-Token. Empty: $DROVER_TOKEN.
	Token string
	// Namespace applies to every request that names none itself. Empty:
	// $DROVER_NAMESPACE, else the agent's default namespace.
	Namespace string
	// HTTPClient replaces the shared client; nil is right for nearly
	// everyone. Timeouts belong in the request contexts, not here: a
	// client-wide timeout would cut blocking queries short.
	HTTPClient *http.Client
}

// DefaultConfig returns a configuration filled from the environment.
func DefaultConfig() *Config {
	c := &Config{}
	c.fillFromEnv()
	return c
}

func (c *Config) fillFromEnv() {
	if c.Address == "" {
		c.Address = os.Getenv(EnvAddress)
	}
	if c.Address == "" {
		c.Address = DefaultAddress
	}
	if c.Token == "" {
		c.Token = os.Getenv(EnvToken)
	}
	if c.Namespace == "" {
		c.Namespace = os.Getenv(EnvNamespace)
	}
}

// sharedHTTPClient is used by every Client without its own, so all of them
// share one connection pool: a CLI or test that builds a Client per call
// still reuses its keep-alive connections.
var sharedHTTPClient = &http.Client{Transport: newTransport()}

func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	// Few agents, many requests each (tests, blocking-query watchers).
	t.MaxIdleConnsPerHost = 32
	return t
}

// Client talks to one agent. It is safe for concurrent use.
type Client struct {
	config Config // Address normalized: scheme, host, optional path prefix
	http   *http.Client
}

// NewClient returns a client for the configured agent; a nil config means
// DefaultConfig. The configuration is copied.
func NewClient(config *Config) (*Client, error) {
	var cfg Config
	if config != nil {
		cfg = *config
	}
	cfg.fillFromEnv()
	addr := cfg.Address
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return nil, fmt.Errorf("invalid agent address %q: %w", cfg.Address, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("invalid agent address %q: scheme must be http or https", cfg.Address)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("invalid agent address %q: no host", cfg.Address)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	cfg.Address = u.String()
	c := &Client{config: cfg, http: cfg.HTTPClient}
	if c.http == nil {
		c.http = sharedHTTPClient
	}
	return c, nil
}

// Address is the agent's address as the client uses it.
func (c *Client) Address() string { return c.config.Address }

// QueryOptions tune a read.
type QueryOptions struct {
	// Namespace overrides the client's; "*" reads every namespace.
	Namespace string
	// Prefix filters list endpoints by ID prefix.
	Prefix string
	// WaitIndex makes the read a blocking query: the agent answers once
	// its index passes WaitIndex, or after WaitTime.
	WaitIndex uint64
	WaitTime  time.Duration
	// AllowStale lets any server answer from its local store.
	AllowStale bool
	// Params are extra query parameters, set last.
	Params map[string]string
}

// WriteOptions tune a write.
type WriteOptions struct {
	// Namespace overrides the client's.
	Namespace string
	// Params are extra query parameters (e.g. enforce_index), set last.
	Params map[string]string
}

// QueryMeta comes back with every read.
type QueryMeta struct {
	// LastIndex is the store index of the answer: pass it as WaitIndex to
	// wait for the next change.
	LastIndex   uint64
	KnownLeader bool
	LastContact time.Duration
	// RequestTime is how long the round trip took.
	RequestTime time.Duration
}

// request is one call, built by the typed methods.
type request struct {
	method      string
	path        string // under /v1, already escaped
	params      url.Values
	body        []byte
	contentType string
}

func (c *Client) newRequest(method, path string) *request {
	return &request{method: method, path: path, params: url.Values{}}
}

func (r *request) setQuery(q *QueryOptions, defaultNamespace string) {
	ns := defaultNamespace
	if q != nil && q.Namespace != "" {
		ns = q.Namespace
	}
	if ns != "" {
		r.params.Set("namespace", ns)
	}
	if q == nil {
		return
	}
	if q.Prefix != "" {
		r.params.Set("prefix", q.Prefix)
	}
	if q.WaitIndex > 0 {
		r.params.Set("index", strconv.FormatUint(q.WaitIndex, 10))
	}
	if q.WaitTime > 0 {
		r.params.Set("wait", formatWait(q.WaitTime))
	}
	if q.AllowStale {
		r.params.Set("stale", "true")
	}
	for k, v := range q.Params {
		r.params.Set(k, v)
	}
}

func (r *request) setWrite(w *WriteOptions, defaultNamespace string) {
	ns := defaultNamespace
	if w != nil && w.Namespace != "" {
		ns = w.Namespace
	}
	if ns != "" {
		r.params.Set("namespace", ns)
	}
	if w != nil {
		for k, v := range w.Params {
			r.params.Set(k, v)
		}
	}
}

// formatWait writes a wait time the agent parses with time.ParseDuration,
// rounded to milliseconds so it stays short ("10s", "1.5s", "250ms").
func formatWait(d time.Duration) string {
	if d < time.Millisecond {
		d = time.Millisecond
	}
	return d.Round(time.Millisecond).String()
}

func (c *Client) url(r *request) string {
	var b strings.Builder
	q := ""
	if len(r.params) > 0 {
		q = r.params.Encode()
	}
	b.Grow(len(c.config.Address) + 3 + len(r.path) + 1 + len(q))
	b.WriteString(c.config.Address) // normalized: no trailing slash
	b.WriteString("/v1")
	b.WriteString(r.path)
	if q != "" {
		b.WriteByte('?')
		b.WriteString(q)
	}
	return b.String()
}

// do sends the request and returns the response of a 2xx status; any other
// status becomes an *Error. The caller closes the body.
func (c *Client) do(ctx context.Context, r *request) (*http.Response, time.Duration, error) {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, c.url(r), body)
	if err != nil {
		return nil, 0, fmt.Errorf("%s /v1%s: %w", r.method, r.path, err)
	}
	req.Header.Set("Accept", "application/json")
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	if c.config.Token != "" {
		req.Header.Set(HeaderToken, c.config.Token)
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	rtt := time.Since(start)
	if err != nil {
		return nil, rtt, c.transportError(ctx, r, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer closeBody(resp)
		return nil, rtt, decodeError(resp)
	}
	return resp, rtt, nil
}

// transportError says which agent could not be reached; a canceled or
// expired context is reported as such, not as an unreachable agent.
func (c *Client) transportError(ctx context.Context, r *request, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s /v1%s: %w", r.method, r.path, ctxErr)
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err // it repeats the method and URL
	}
	return fmt.Errorf("cannot reach drover agent at %s: %w", c.config.Address, err)
}

// closeBody drains what is left of a small body so the connection can be
// reused, then closes it.
func closeBody(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// query runs a GET and decodes its JSON into out.
func (c *Client) query(ctx context.Context, path string, q *QueryOptions, out any) (*QueryMeta, error) {
	r := c.newRequest(http.MethodGet, path)
	r.setQuery(q, c.config.Namespace)
	resp, rtt, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	defer closeBody(resp)
	meta := parseMeta(resp.Header)
	meta.RequestTime = rtt
	if err := decodeBody(resp, r, out); err != nil {
		return nil, err
	}
	return meta, nil
}

// write runs a write and decodes its JSON answer into out (nil: ignored).
func (c *Client) write(ctx context.Context, r *request, w *WriteOptions, out any) error {
	r.setWrite(w, c.config.Namespace)
	resp, _, err := c.do(ctx, r)
	if err != nil {
		return err
	}
	defer closeBody(resp)
	if out == nil {
		return nil
	}
	return decodeBody(resp, r, out)
}

func decodeBody(resp *http.Response, r *request, out any) error {
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decoding the answer to %s /v1%s: %w", r.method, r.path, err)
	}
	return nil
}

func parseMeta(h http.Header) *QueryMeta {
	m := &QueryMeta{}
	if v := h.Get(HeaderIndex); v != "" {
		m.LastIndex, _ = strconv.ParseUint(v, 10, 64)
	}
	m.KnownLeader = h.Get(HeaderKnownLeader) == "true"
	if v := h.Get(HeaderLastContact); v != "" {
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
			m.LastContact = time.Duration(ms) * time.Millisecond
		}
	}
	return m
}

// escape escapes one path segment (an ID).
func escape(s string) string { return url.PathEscape(s) }
