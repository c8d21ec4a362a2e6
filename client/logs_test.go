package client

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"
)

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(t, err)
	_, err = f.WriteString(s)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

func TestRotateLog(t *testing.T) {
	base := filepath.Join(t.TempDir(), "web.stdout")
	for _, gen := range []string{"first\n", "second\n", "third\n"} {
		appendFile(t, base, gen)
		require.NoError(t, rotateLog(base, 2))
	}
	require.Equal(t, "", readFile(t, base), "the current file is truncated in place")
	require.Equal(t, "third\n", readFile(t, base+".1"), ".1 is the newest copy")
	require.Equal(t, "second\n", readFile(t, base+".2"))
	require.NoFileExists(t, base+".3", "only LogMaxFiles copies are kept")
	require.NoFileExists(t, base+".1.tmp")

	// keep 0 only truncates.
	other := filepath.Join(t.TempDir(), "x.stderr")
	appendFile(t, other, "data")
	require.NoError(t, rotateLog(other, 0))
	require.Equal(t, "", readFile(t, other))
	require.NoFileExists(t, other+".1")
}

func TestLogRotator_RotatesOnlyPastTheLimit(t *testing.T) {
	dir := t.TempDir()
	big, small := filepath.Join(dir, "big.stdout"), filepath.Join(dir, "small.stdout")
	appendFile(t, big, strings.Repeat("x", 101))
	appendFile(t, small, strings.Repeat("y", 100))
	r := newLogRotator(100, 1, hclog.NewNullLogger())
	r.add(big, small)
	r.check()
	require.Equal(t, "", readFile(t, big))
	require.Len(t, readFile(t, big+".1"), 101)
	require.Len(t, readFile(t, small), 100)
	require.NoFileExists(t, small+".1")

	// Unwatched files are left alone.
	r.remove(big, small)
	appendFile(t, big, strings.Repeat("x", 200))
	r.check()
	require.Len(t, readFile(t, big), 200)
}

func TestStreamLogFiles_AcrossRotatedFiles(t *testing.T) {
	base := filepath.Join(t.TempDir(), "web.stdout")
	require.NoError(t, os.WriteFile(base+".2", []byte("aaaa\n"), 0o644))
	require.NoError(t, os.WriteFile(base+".1", []byte("bbbb\n"), 0o644))
	require.NoError(t, os.WriteFile(base, []byte("cccc\n"), 0o644))
	require.NoError(t, os.WriteFile(base+".1.tmp", []byte("junk"), 0o644))
	r := newLogRotator(100, 2, hclog.NewNullLogger())
	read := func(offset int64, fromEnd bool) string {
		var b bytes.Buffer
		require.NoError(t, streamLogFiles(context.Background(), r, base, offset, fromEnd, nil, &b))
		return b.String()
	}
	require.Equal(t, "aaaa\nbbbb\ncccc\n", read(0, false), "oldest first")
	require.Equal(t, "bb\ncccc\n", read(7, false))
	require.Equal(t, "cccc\n", read(10, false))
	require.Equal(t, "c\n", read(2, true))
	require.Equal(t, "b\ncccc\n", read(7, true))
	require.Equal(t, "aaaa\nbbbb\ncccc\n", read(1000, true), "an offset past the start starts at the start")
	require.Equal(t, "", read(1000, false))

	missing := filepath.Join(t.TempDir(), "none.stdout")
	var b bytes.Buffer
	require.NoError(t, streamLogFiles(context.Background(), r, missing, 0, false, nil, &b))
	require.Empty(t, b.String())
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestStreamLogFiles_FollowAcrossRotation(t *testing.T) {
	base := filepath.Join(t.TempDir(), "web.stdout")
	r := newLogRotator(10, 2, hclog.NewNullLogger())
	r.add(base)
	var done atomic.Bool
	var out syncBuffer
	errCh := make(chan error, 1)
	go func() {
		errCh <- streamLogFiles(context.Background(), r, base, 0, false, done.Load, &out)
	}()
	waitFor := func(want string) {
		t.Helper()
		require.Eventually(t, func() bool { return out.String() == want }, 5*time.Second, 10*time.Millisecond, "have %q", out.String())
	}

	// The file does not exist yet: the follower waits for it.
	appendFile(t, base, "one\n")
	waitFor("one\n")

	// Output written just before a rotation is not lost: the follower
	// reads it from the copy, then the truncated file from its start,
	// even when more than it had read arrives before it looks again.
	appendFile(t, base, "two-two-two\n")
	r.check()
	require.Equal(t, "", readFile(t, base))
	appendFile(t, base, "three-three-three\n")
	waitFor("one\ntwo-two-two\nthree-three-three\n")

	// Twice more, with reads in between.
	r.check()
	appendFile(t, base, "four\n")
	waitFor("one\ntwo-two-two\nthree-three-three\nfour\n")

	// The end: whatever came before done is still sent.
	appendFile(t, base, "last\n")
	done.Store(true)
	select {
	case err := <-errCh:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not end once the task finished")
	}
	require.Equal(t, "one\ntwo-two-two\nthree-three-three\nfour\nlast\n", out.String())
}

func TestStreamLogFiles_FollowEndsWithContext(t *testing.T) {
	base := filepath.Join(t.TempDir(), "web.stderr")
	appendFile(t, base, "x\n")
	ctx, cancel := context.WithCancel(context.Background())
	r := newLogRotator(100, 2, hclog.NewNullLogger())
	errCh := make(chan error, 1)
	var out syncBuffer
	go func() { errCh <- streamLogFiles(ctx, r, base, 0, false, func() bool { return false }, &out) }()
	require.Eventually(t, func() bool { return out.String() == "x\n" }, 5*time.Second, 10*time.Millisecond)
	cancel()
	select {
	case err := <-errCh:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not end with its context")
	}
}

func TestRotatedSince(t *testing.T) {
	base := filepath.Join(t.TempDir(), "web.stdout")
	require.NoError(t, os.WriteFile(base+".3", []byte("oldest"), 0o644))
	require.NoError(t, os.WriteFile(base+".2", []byte("middle"), 0o644))
	require.NoError(t, os.WriteFile(base+".1", []byte("newest"), 0o644))

	got, err := rotatedSince(base, 1, 3, 3)
	require.NoError(t, err)
	require.Equal(t, "est", string(got), "one rotation: the rest of the newest copy")

	got, err = rotatedSince(base, 2, 3, 2)
	require.NoError(t, err)
	require.Equal(t, "ddlenewest", string(got), "two: the rest of .2, then .1 whole")

	got, err = rotatedSince(base, 5, 3, 4)
	require.NoError(t, err)
	require.Equal(t, "oldestmiddlenewest", string(got), "more than kept: what is left, whole")
}
