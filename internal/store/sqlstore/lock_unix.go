//go:build unix

package sqlstore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// lockFile takes an exclusive lock on path (created if missing) for as long
// as the returned closer is open. The kernel drops it if the process dies.
func lockFile(path string) (io.Closer, bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("sqlstore: open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, fmt.Errorf("sqlstore: another process is using the store %s (stop it first, or use PostgreSQL to run several servers)", path[:len(path)-len(".lock")])
		}
		return nil, false, fmt.Errorf("sqlstore: lock %s: %w", path, err)
	}
	return f, true, nil
}
