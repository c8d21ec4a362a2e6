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

// lockDataDir takes the data dir for this process. Two agents on one data
// dir would otherwise meet first at the Raft or client store, where bolt
// waits for its file lock forever without a word; here the second one is
// told at once which process holds the dir. The kernel drops the lock
// when the process exits, however it exits, so a crash leaves nothing to
// clean up. The file holds the holder's pid, for the message.
func lockDataDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening data dir lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder := "another process"
			if b, rerr := os.ReadFile(path); rerr == nil {
				if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
					holder = fmt.Sprintf("another drover agent (pid %d)", pid)
				}
			}
			return nil, fmt.Errorf("data dir %s is in use by %s: stop it, or give this agent its own -data-dir", dir, holder)
		}
		return nil, fmt.Errorf("locking data dir %s: %w", dir, err)
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}
