package client

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/drover-sh/drover/structs"
)

// logPollInterval is how often a followed log is checked for new output.
const logPollInterval = 100 * time.Millisecond

// StreamLogs writes a task's stdout or stderr to w, reading the rotated
// files (oldest first) and then the current one as one stream. offset
// skips that many bytes from the start of that stream, or with fromEnd
// starts that many bytes before its end. With follow it keeps writing
// what the task writes until ctx ends or the task has ended for good;
// after a copy-truncate rotation it sends the part of the new copy it
// had not read yet, then the current file from its start. w is flushed
// after each write when it is an http.Flusher.
func (c *Client) StreamLogs(ctx context.Context, allocID, task, typ string, offset int64, fromEnd, follow bool, w io.Writer) error {
	if typ != "stdout" && typ != "stderr" {
		return structs.NewError(structs.ErrInvalid, "type: must be stdout or stderr, got %q", typ)
	}
	if offset < 0 {
		return structs.NewError(structs.ErrInvalid, "offset: must be >= 0, got %d", offset)
	}
	ar, err := c.getAlloc(allocID)
	if err != nil {
		return err
	}
	tr, err := ar.task(task)
	if err != nil {
		return err
	}
	base := filepath.Join(ar.root, "alloc", "logs", task+"."+typ)
	var done func() bool
	if follow {
		done = tr.finished
	}
	return streamLogFiles(ctx, c.rotator, base, offset, fromEnd, done, w)
}

// maxLogChunk bounds what one read of a followed file holds in memory.
const maxLogChunk = 256 << 10

type logFile struct {
	f    *os.File
	size int64
}

// rotatedLogs opens base's rotated copies oldest first (highest number
// first). Open files keep their content even if a rotation renames or
// removes them while they are read.
func rotatedLogs(base string) []logFile {
	entries, err := os.ReadDir(filepath.Dir(base))
	if err != nil {
		return nil
	}
	prefix := filepath.Base(base) + "."
	type numbered struct {
		n    int
		path string
	}
	var found []numbered
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(rest); err == nil && n >= 1 {
			found = append(found, numbered{n, filepath.Join(filepath.Dir(base), e.Name())})
		}
	}
	slices.SortFunc(found, func(a, b numbered) int { return b.n - a.n })
	var out []logFile
	for _, nf := range found {
		f, err := os.Open(nf.path)
		if err != nil {
			continue
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			continue
		}
		out = append(out, logFile{f, fi.Size()})
	}
	return out
}

// streamLogFiles is StreamLogs on files: base and its rotated copies.
// The rotator's lock is held (shared) while the files are looked at, so
// a rotation is seen whole or not at all, and its generation count says
// how many rotations a follower slept through: the oldest of the copies
// made since holds the rest of what it was reading. done, when set, makes
// it follow base until done reports true (checked before a last read, so
// nothing written before the end is missed).
func streamLogFiles(ctx context.Context, r *logRotator, base string, offset int64, fromEnd bool, done func() bool, w io.Writer) error {
	r.rotating.RLock()
	files := rotatedLogs(base)
	gen := r.generation(base)
	cur, err := os.Open(base)
	r.rotating.RUnlock()
	defer func() {
		for _, f := range files {
			f.f.Close()
		}
		if cur != nil {
			cur.Close()
		}
	}()
	var curSize int64
	switch {
	case err == nil:
		fi, err := cur.Stat()
		if err != nil {
			return err
		}
		curSize = fi.Size()
	case errors.Is(err, fs.ErrNotExist):
		cur = nil
	default:
		return err
	}

	var total int64
	for _, f := range files {
		total += f.size
	}
	total += curSize
	pos := offset
	if fromEnd {
		pos = total - offset
	}
	pos = max(0, min(pos, total))

	out := &flushWriter{w: w}
	buf := make([]byte, 32<<10)
	for _, f := range files {
		if pos >= f.size {
			pos -= f.size
			continue
		}
		if _, err := copyFrom(ctx, io.NewSectionReader(f.f, 0, f.size), pos, out, buf); err != nil {
			return err
		}
		pos = 0
	}

	// pos is now an offset into the current file.
	chunk := make([]byte, maxLogChunk)
	for ctx.Err() == nil {
		finished := done != nil && done()
		r.rotating.RLock()
		var tail []byte
		var n int
		err := func() error {
			if cur == nil {
				f, err := os.Open(base)
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				if err != nil {
					return err
				}
				cur = f
			}
			if g := r.generation(base); g != gen {
				var err error
				tail, err = rotatedSince(base, g-gen, r.maxFiles, pos)
				if err != nil {
					return err
				}
				gen, pos = g, 0
			} else if fi, err := cur.Stat(); err != nil {
				return err
			} else if fi.Size() < pos {
				pos = 0 // truncated by someone else
			}
			var err error
			n, err = cur.ReadAt(chunk, pos)
			if err == io.EOF {
				err = nil
			}
			return err
		}()
		r.rotating.RUnlock()
		if err != nil {
			return err
		}
		if len(tail) > 0 {
			if _, err := out.Write(tail); err != nil {
				return err
			}
		}
		if n > 0 {
			if _, err := out.Write(chunk[:n]); err != nil {
				return err
			}
			pos += int64(n)
		}
		if n == len(chunk) {
			continue // more is there already
		}
		if done == nil || finished {
			return nil
		}
		t := time.NewTimer(logPollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
	return nil
}

// rotatedSince returns what a reader at pos of base missed over k
// rotations: the rest of copy .k (the file it was reading), then copies
// .k-1 .. .1 whole. Copies past keep are gone; what they held is lost to
// a reader that slow.
func rotatedSince(base string, k uint64, keep int, pos int64) ([]byte, error) {
	var out []byte
	from := pos
	if k > uint64(keep) {
		k, from = uint64(keep), 0
	}
	for i := int(k); i >= 1; i-- {
		path := rotatedName(base, i)
		fi, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			from = 0
			continue
		}
		if err != nil {
			return nil, err
		}
		if fi.Size() > from {
			b, err := readRange(path, from, fi.Size())
			if err != nil {
				return nil, err
			}
			out = append(out, b...)
		}
		from = 0
	}
	return out, nil
}

// readRange returns bytes [from, to) of path.
func readRange(path string, from, to int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, to-from)
	n, err := f.ReadAt(b, from)
	if err == io.EOF {
		err = nil
	}
	return b[:n], err
}

// copyFrom writes r from offset to its end and returns how many bytes it
// wrote.
func copyFrom(ctx context.Context, r io.ReaderAt, offset int64, w io.Writer, buf []byte) (int64, error) {
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, nil
		}
		k, err := r.ReadAt(buf, offset+n)
		if k > 0 {
			if _, werr := w.Write(buf[:k]); werr != nil {
				return n, werr
			}
			n += int64(k)
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// flushWriter flushes after every write when the writer can.
type flushWriter struct{ w io.Writer }

func (f *flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if fl, ok := f.w.(http.Flusher); ok && err == nil {
		fl.Flush()
	}
	return n, err
}
