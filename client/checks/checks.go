// Package checks runs the health checks of service instances on a client
// node: http (a GET whose status is 2xx), tcp (a connection that opens)
// and script (a command run inside a task, exit code 0). It knows nothing
// about allocations or servers: the client resolves each check to an
// address or an exec function, hands the checks of an instance to a Set,
// and hears back when the instance's health changes.
package checks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/drover-sh/drover/structs"
)

// Check is one check, resolved to what it probes.
type Check struct {
	Name     string
	Type     string // structs.CheckHTTP, CheckTCP or CheckScript
	Addr     string // host:port, for http and tcp
	Path     string // http only; "/" when empty
	Interval time.Duration
	Timeout  time.Duration
	// Exec runs a script check's command in its task and returns the
	// exit code. The context carries the timeout.
	Exec func(ctx context.Context) (int, error)
}

// Same reports whether two checks probe the same thing the same way, so
// an unchanged definition keeps its running watch.
func (c *Check) Same(o *Check) bool {
	return c.Name == o.Name && c.Type == o.Type && c.Addr == o.Addr && c.Path == o.Path &&
		c.Interval == o.Interval && c.Timeout == o.Timeout && (c.Exec == nil) == (o.Exec == nil)
}

// Result is the outcome of one run of a check.
type Result struct {
	OK     bool
	Output string // why it failed, or the status it got
}

// maxBody is how much of an http check's body is read: enough to keep the
// connection reusable for small health pages, never a whole download.
const maxBody = 4 << 10

// Run runs c once, bounded by its timeout.
func Run(ctx context.Context, c *Check, client *http.Client) Result {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = structs.DefaultCheckTimeout.D()
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch c.Type {
	case structs.CheckHTTP:
		return runHTTP(ctx, c, client)
	case structs.CheckTCP:
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", c.Addr)
		if err != nil {
			return Result{Output: fmt.Sprintf("tcp connect to %s: %v", c.Addr, err)}
		}
		conn.Close()
		return Result{OK: true, Output: "tcp connect to " + c.Addr + " succeeded"}
	case structs.CheckScript:
		if c.Exec == nil {
			return Result{Output: "script check has nothing to run"}
		}
		code, err := c.Exec(ctx)
		switch {
		case err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
			return Result{Output: fmt.Sprintf("script timed out after %s", timeout)}
		case err != nil:
			return Result{Output: "script: " + err.Error()}
		case code != 0:
			return Result{Output: fmt.Sprintf("script exited with code %d", code)}
		}
		return Result{OK: true, Output: "script exited with code 0"}
	}
	return Result{Output: fmt.Sprintf("unknown check type %q", c.Type)}
}

func runHTTP(ctx context.Context, c *Check, client *http.Client) Result {
	path := c.Path
	if path == "" {
		path = "/"
	}
	url := "http://" + c.Addr + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Result{Output: fmt.Sprintf("http check %s: %v", url, err)}
	}
	req.Header.Set("User-Agent", "drover health check")
	resp, err := client.Do(req)
	if err != nil {
		return Result{Output: fmt.Sprintf("http GET %s: %v", url, err)}
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	out := fmt.Sprintf("http GET %s: %s", url, resp.Status)
	return Result{OK: resp.StatusCode >= 200 && resp.StatusCode < 300, Output: out}
}
