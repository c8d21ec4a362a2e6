// Package testlog sends hclog output to a test's log, where it is shown
// when the test fails or runs with -v.
package testlog

import (
	"io"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// Writer returns a writer into t's log. After t and its cleanups have
// finished, writes are dropped: memberlist, Raft and HTTP servers can log
// from goroutines that outlive their Shutdown by a moment, and testing
// panics on a log after the test has completed.
func Writer(t testing.TB) io.Writer {
	w := &writer{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return w
}

// New returns a logger named name that writes to t's log at level and
// above.
func New(t testing.TB, name string, level hclog.Level) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: level, Output: Writer(t)})
}

type writer struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(string(p))
	}
	return len(p), nil
}
