//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// staleLockAge: a refresh holds the lock for at most one round trip, so an
// older lock file belongs to a process that died holding it.
const staleLockAge = lockWait

// lockFile takes the lock by creating path exclusively, which works everywhere
// without flock; a lock file left by a dead process is broken once stale.
func lockFile(ctx context.Context, path string) (func(), error) {
	deadline := time.Now().Add(lockWait + time.Second)
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			f.Close()
			return func() { os.Remove(path) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		if fi, serr := os.Stat(path); serr == nil && time.Since(fi.ModTime()) > staleLockAge {
			os.Remove(path)
			continue
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("credentials are locked by another trellis process (remove %s if none is running)", path)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
