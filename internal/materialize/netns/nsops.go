//go:build linux

package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// runDir is where named namespaces live, as for `ip netns`, so that an
// operator sees and can enter them with the usual tools.
const runDir = "/run/netns"

// nsfsMagic is the file system type of a namespace bind mount.
const nsfsMagic = 0x6e736673

func nsPath(name string) string { return filepath.Join(runDir, name) }

// nsExists reports whether name is a live namespace (a bind mount of one),
// not merely a file a crash left between its creation and the mount.
func nsExists(name string) bool {
	var st unix.Statfs_t
	return unix.Statfs(nsPath(name), &st) == nil && st.Type == nsfsMagic
}

// createNS makes the named namespace with its loopback up. A file of that
// name that is not a namespace (a crash between creating the mount point
// and mounting on it) is replaced.
func createNS(name string) error {
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", runDir, err)
	}
	p := nsPath(name)
	if _, err := os.Lstat(p); err == nil {
		if nsExists(name) {
			return nil
		}
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("remove stale %s: %w", p, err)
		}
	}
	// A fresh thread, never returned to the scheduler, enters the new
	// namespace, so no other goroutine ever runs inside it by accident.
	return onFreshThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare network namespace: %w", err)
		}
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
		if err != nil {
			return fmt.Errorf("create %s: %w", p, err)
		}
		f.Close()
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(self, p, "none", unix.MS_BIND, ""); err != nil {
			os.Remove(p)
			return fmt.Errorf("bind mount namespace on %s: %w", p, err)
		}
		// The loopback interface of a new namespace is down.
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		if err != nil {
			return fmt.Errorf("set lo up in %s: %w", name, err)
		}
		// Links are IPv4 only: without IPv6 no interface sends router
		// solicitations or duplicate address probes through the shaped
		// links. A kernel without IPv6 has nothing to turn off.
		for _, f := range []string{"all", "default"} {
			err := os.WriteFile("/proc/sys/net/ipv6/conf/"+f+"/disable_ipv6", []byte("1"), 0o644)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("disable IPv6 in %s: %w", name, err)
			}
		}
		return nil
	})
}

// deleteNS removes the named namespace; its interfaces (and so the other
// ends of its veths) go with it. A missing namespace is not an error.
func deleteNS(name string) error {
	p := nsPath(name)
	err := unix.Unmount(p, unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", p, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	return nil
}

// listNS returns the names in runDir that start with prefix.
func listNS(prefix string) ([]string, error) {
	entries, err := os.ReadDir(runDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// InNamespace runs fn on an OS thread that has entered the named
// namespace; the thread is discarded afterwards, never reused. Sockets
// fn opens stay in the namespace and may be used from any goroutine.
func InNamespace(name string, fn func() error) error {
	return onFreshThread(func() error {
		h, err := netns.GetFromPath(nsPath(name))
		if err != nil {
			return fmt.Errorf("open namespace %s: %w", name, err)
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			return fmt.Errorf("enter namespace %s: %w", name, err)
		}
		return fn()
	})
}

// onFreshThread runs fn on a goroutine locked to its OS thread that exits
// still locked, which makes the Go runtime end the thread: whatever fn did
// to the thread's namespaces dies with it.
func onFreshThread(fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		done <- fn()
	}()
	return <-done
}
