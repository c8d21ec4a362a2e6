package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// logRotator keeps task log files under a size. The runtime's shim holds
// each file open with O_APPEND and keeps writing while the agent is away,
// so a file cannot be renamed away from it: rotation copies the file to
// <file>.1 (shifting older copies up to <file>.N) and truncates it in
// place. Whatever the task writes between the copy and the truncate is
// lost; the window is one copy's length. One goroutine serves every task
// of the client with a stat per file per tick.
type logRotator struct {
	maxBytes int64
	maxFiles int
	logger   hclog.Logger

	// rotating is held for each rotation; log readers hold it shared
	// while they look, so they never see a copy without its truncate.
	rotating sync.RWMutex

	mu    sync.Mutex
	files map[string]int // path -> number of registrations

	rotations int64 // guarded by mu, for tests
}

func newLogRotator(maxBytes int64, maxFiles int, logger hclog.Logger) *logRotator {
	return &logRotator{maxBytes: maxBytes, maxFiles: maxFiles, logger: logger.Named("logs"), files: make(map[string]int)}
}

// add starts watching path.
func (r *logRotator) add(paths ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range paths {
		r.files[p]++
	}
}

// remove stops watching path once every add is matched.
func (r *logRotator) remove(paths ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range paths {
		if r.files[p] <= 1 {
			delete(r.files, p)
		} else {
			r.files[p]--
		}
	}
}

func (r *logRotator) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.check()
		}
	}
}

// check rotates every watched file past the limit.
func (r *logRotator) check() {
	r.mu.Lock()
	paths := make([]string, 0, len(r.files))
	for p := range r.files {
		paths = append(paths, p)
	}
	r.mu.Unlock()
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil || fi.Size() <= r.maxBytes {
			continue
		}
		r.rotating.Lock()
		err = rotateLog(p, r.maxFiles)
		r.rotating.Unlock()
		if err != nil {
			r.logger.Warn("rotating log failed", "path", p, "error", err)
			continue
		}
		r.mu.Lock()
		r.rotations++
		r.mu.Unlock()
	}
}

// rotateLog shifts path.1..path.(keep-1) up by one (dropping path.keep),
// copies path to path.1 and truncates path. keep 0 only truncates.
func rotateLog(path string, keep int) error {
	if keep > 0 {
		if err := os.Remove(rotatedName(path, keep)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		for i := keep - 1; i >= 1; i-- {
			err := os.Rename(rotatedName(path, i), rotatedName(path, i+1))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		if err := copyToRotated(path, rotatedName(path, 1)); err != nil {
			return err
		}
	}
	if err := os.Truncate(path, 0); err != nil {
		return fmt.Errorf("truncating %s: %w", path, err)
	}
	return nil
}

// copyToRotated copies src to dst through a temporary file, so a reader
// never sees a half-written dst.
func copyToRotated(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(tmp)
		return fmt.Errorf("copying %s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, dst)
}

func rotatedName(path string, i int) string { return path + "." + strconv.Itoa(i) }
