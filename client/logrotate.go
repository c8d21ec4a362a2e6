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
// place. Output written between the copy's last catch-up and the
// truncate (microseconds) is lost; that is the price of copy-truncate.
// One goroutine serves every task of the client with a stat per file
// per tick.
type logRotator struct {
	maxBytes int64
	maxFiles int
	logger   hclog.Logger

	// rotating is held for each rotation; log readers hold it shared
	// while they look, so they never see a copy without its truncate.
	rotating sync.RWMutex

	mu    sync.Mutex
	files map[string]int // path -> number of registrations
	// gens counts each path's rotations in this process, so a log
	// reader that slept through several knows which copies are new.
	gens map[string]uint64
}

func newLogRotator(maxBytes int64, maxFiles int, logger hclog.Logger) *logRotator {
	return &logRotator{maxBytes: maxBytes, maxFiles: maxFiles, logger: logger.Named("logs"),
		files: make(map[string]int), gens: make(map[string]uint64)}
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
		if err := r.rotate(p); err != nil {
			r.logger.Warn("rotating log failed", "path", p, "error", err)
		}
	}
}

// rotate rotates one file now.
func (r *logRotator) rotate(path string) error {
	r.rotating.Lock()
	defer r.rotating.Unlock()
	if err := rotateLog(path, r.maxFiles); err != nil {
		return err
	}
	r.mu.Lock()
	r.gens[path]++
	r.mu.Unlock()
	return nil
}

// generation is how many times path was rotated by this process.
func (r *logRotator) generation(path string) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gens[path]
}

// rotateLog shifts path.1..path.(keep-1) up by one (dropping path.keep),
// copies path to path.1 and truncates path. keep 0 only truncates.
func rotateLog(path string, keep int) error {
	if keep == 0 {
		if err := os.Truncate(path, 0); err != nil {
			return fmt.Errorf("truncating %s: %w", path, err)
		}
		return nil
	}
	if err := os.Remove(rotatedName(path, keep)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for i := keep - 1; i >= 1; i-- {
		err := os.Rename(rotatedName(path, i), rotatedName(path, i+1))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return copyTruncate(path, rotatedName(path, 1))
}

// copyTruncate copies src to dst and truncates src. Output appended
// while the copy runs is caught up before the truncate, so only what
// lands between the last size check and the truncate itself is lost.
// dst is written under a temporary name and renamed last, so a reader
// never sees it half-written.
func copyTruncate(src, dst string) error {
	in, err := os.OpenFile(src, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		out.Close()
		os.Remove(tmp)
		return fmt.Errorf("rotating %s: %w", src, err)
	}
	copied, err := io.Copy(out, in)
	if err != nil {
		return fail(err)
	}
	for range 3 {
		fi, err := in.Stat()
		if err != nil {
			return fail(err)
		}
		if fi.Size() <= copied {
			break
		}
		n, err := io.Copy(out, io.NewSectionReader(in, copied, fi.Size()-copied))
		copied += n
		if err != nil {
			return fail(err)
		}
	}
	if err := in.Truncate(0); err != nil {
		return fail(err)
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("rotating %s: %w", src, err)
	}
	return os.Rename(tmp, dst)
}

func rotatedName(path string, i int) string { return path + "." + strconv.Itoa(i) }
