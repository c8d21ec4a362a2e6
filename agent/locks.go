package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockFileName is the file in the data dir whose exclusive flock the
// agent holds while it runs.
const lockFileName = "agent.lock"

// bridgeLockDir holds one lock file per bridge that a client agent on this
// machine uses (a var for tests).
var bridgeLockDir = "/run/drover"

// lockDataDir takes the data dir for this process. Two agents on one data
// dir would otherwise meet first at the Raft or client store, where bolt
// waits for its file lock forever without a word; here the second one is
// told at once which process holds the dir.
func lockDataDir(dir string) (*os.File, error) {
	f, holder, err := takeLock(filepath.Join(dir, lockFileName))
	switch {
	case err != nil:
		return nil, fmt.Errorf("locking data dir %s: %w", dir, err)
	case f == nil:
		return nil, fmt.Errorf("data dir %s is in use by %s: stop it, or give this agent its own -data-dir", dir, holder)
	}
	return f, nil
}

// BridgeLockPath is the lock file of a client's allocation bridge. The
// agent removes it at shutdown; one killed leaves it behind, harmless to
// the next lock but cleaned up by tests.
func BridgeLockPath(bridge string) string {
	return filepath.Join(bridgeLockDir, "bridge-"+bridge+".lock")
}

// lockBridge takes the allocation bridge for this process. Two clients on
// one bridge would each take the other's allocations for leftovers of a
// crash and sweep their port forwarding away at start; here the second
// one is refused.
func lockBridge(bridge string) (*os.File, error) {
	if err := os.MkdirAll(bridgeLockDir, 0o755); err != nil {
		return nil, fmt.Errorf("locking bridge %s: %w", bridge, err)
	}
	f, holder, err := takeLock(BridgeLockPath(bridge))
	switch {
	case err != nil:
		return nil, fmt.Errorf("locking bridge %s: %w", bridge, err)
	case f == nil:
		return nil, fmt.Errorf("bridge %s is in use by the client of %s: give each client on a machine its own -network-bridge, -network-subnet and -dns-addr", bridge, holder)
	}
	return f, nil
}

// takeLock takes an exclusive flock on path and writes this process's pid
// into it. The kernel drops the lock when the process exits, however it
// exits, so a crash leaves nothing to clean up; closing the file releases
// it too. A lock held elsewhere returns a nil file and who holds it.
func takeLock(path string) (f *os.File, holder string, err error) {
	for {
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, "", err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			if !errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, "", err
			}
			holder = "another process"
			if b, rerr := os.ReadFile(path); rerr == nil {
				if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
					holder = fmt.Sprintf("another drover agent (pid %d)", pid)
				}
			}
			return nil, holder, nil
		}
		// The holder before us may have removed the file as it let go
		// (releaseLock); a lock on a file no longer at path guards
		// nothing, so take the one that is there now.
		var held, named syscall.Stat_t
		if err := syscall.Fstat(int(f.Fd()), &held); err != nil {
			f.Close()
			return nil, "", err
		}
		if err := syscall.Stat(path, &named); err == nil && named.Ino == held.Ino && named.Dev == held.Dev {
			break
		}
		f.Close()
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, "", nil
}

// releaseLock lets go of a lock from takeLock. With remove, the file goes
// first, while still held, so that no one locks it in between; takeLock
// sees a lock on a removed file and tries again.
func releaseLock(f *os.File, remove bool) {
	if f == nil {
		return
	}
	if remove {
		os.Remove(f.Name())
	}
	f.Close()
}
