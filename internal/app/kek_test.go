package app_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/spf13/cobra"

	"github.com/trellis-testbed/trellis/internal/app"
	"github.com/trellis-testbed/trellis/internal/store"
)

// serveLog collects a server's log and says when it is serving.
type serveLog struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	serving chan struct{}
	once    sync.Once
}

func (l *serveLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	if strings.Contains(l.buf.String(), "trellis serving") {
		l.once.Do(func() { close(l.serving) })
	}
	return len(p), nil
}

func (l *serveLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// serveOnce runs `trellis serve args...` until it serves, then stops it; it
// returns the log and the command's error (a refusal to start).
func serveOnce(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root, admin := &cobra.Command{Use: "trellis"}, &cobra.Command{Use: "admin"}
	root.AddCommand(admin)
	app.AddCommands(root, admin)
	log := &serveLog{serving: make(chan struct{})}
	root.SetArgs(append([]string{"serve", "--listen", "127.0.0.1:0", "--log-level", "info"}, args...))
	root.SetOut(log)
	root.SetErr(log)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	select {
	case <-log.serving:
		cancel()
		return log.String(), <-done
	case err := <-done:
		return log.String(), err
	}
}

// TestServeSealsKeysByDefault: `trellis serve` without --kek-file makes a
// key-encryption key (mode 0600) in the data directory on first start, seals
// every private key with it, uses it on later starts, warns that it shares
// the store's directory, and refuses a key file others may read.
func TestServeSealsKeysByDefault(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	kekFile := filepath.Join(data, "trellis.kek")

	out, err := serveOnce(t, "--data-dir", data)
	if err != nil {
		t.Fatalf("first start: %v\n%s", err, out)
	}
	fi, err := os.Stat(kekFile)
	if err != nil {
		t.Fatalf("no key-encryption key made on first start: %v\n%s", err, out)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode %04o, want 0600", perm)
	}
	for _, want := range []string{"created a new key-encryption key", "THE KEY-ENCRYPTION KEY IS IN THE STORE'S DIRECTORY"} {
		if !strings.Contains(out, want) {
			t.Errorf("first start's log lacks %q:\n%s", want, out)
		}
	}
	first, _ := os.ReadFile(kekFile)

	// Every private key in the store is sealed.
	ctx := context.Background()
	st, err := app.OpenStore(ctx, app.StoreConfig{DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	err = st.View(ctx, func(tx store.Tx) error {
		sks, err := tx.SigningKeys().List(ctx)
		if err != nil {
			return err
		}
		if len(sks) == 0 {
			t.Error("no signing key in the store")
		}
		for _, k := range sks {
			if !bytes.HasPrefix(k.PrivateKey, []byte("aesgcm1:")) {
				t.Errorf("signing key %s stored as %.8q, want it sealed", k.ID, k.PrivateKey)
			}
		}
		return nil
	})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}

	// A later start uses the same key.
	out, err = serveOnce(t, "--data-dir", data)
	if err != nil {
		t.Fatalf("second start: %v\n%s", err, out)
	}
	if again, _ := os.ReadFile(kekFile); !bytes.Equal(again, first) || strings.Contains(out, "created a new key-encryption key") {
		t.Errorf("second start made a new key-encryption key:\n%s", out)
	}

	// A key file elsewhere, for a store sealed with another: refused with a
	// diagnosis, and the key made for nothing is not left behind.
	other := filepath.Join(t.TempDir(), "elsewhere.kek")
	out, err = serveOnce(t, "--data-dir", data, "--kek-file", other)
	if err == nil || !strings.Contains(err.Error(), "give the original with --kek-file") {
		t.Errorf("start with another key: %v, want a diagnosis\n%s", err, out)
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Errorf("the key made for a store sealed with another stays behind (%v)", err)
	}

	// Group or others may read it: refused.
	if err := os.Chmod(kekFile, 0o640); err != nil {
		t.Fatal(err)
	}
	if out, err = serveOnce(t, "--data-dir", data); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("start with a group-readable key file: %v, want a refusal naming chmod 600\n%s", err, out)
	}

	// A key kept apart from the store draws no warning.
	fresh := filepath.Join(t.TempDir(), "data")
	apart := filepath.Join(t.TempDir(), "keys", "trellis.kek")
	out, err = serveOnce(t, "--data-dir", fresh, "--kek-file", apart)
	if err != nil {
		t.Fatalf("start with the key apart: %v\n%s", err, out)
	}
	if strings.Contains(out, "STORE'S DIRECTORY") {
		t.Errorf("a key apart from the store drew the warning:\n%s", out)
	}
	if _, err := os.Stat(apart); err != nil {
		t.Errorf("no key made at the configured path: %v", err)
	}
}

// runAdmin runs `trellis admin args...` and returns its output.
func runAdmin(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root, admin := &cobra.Command{Use: "trellis"}, &cobra.Command{Use: "admin"}
	root.AddCommand(admin)
	app.AddCommands(root, admin)
	var out bytes.Buffer
	root.SetArgs(append([]string{"admin"}, args...))
	root.SetOut(&out)
	root.SetErr(&out)
	err := root.Execute()
	return out.String(), err
}

// TestRotateSigningKeyCommand: the command docs/operations.md gives makes a
// new sealed key and retires the old, which stays published unless revoked.
func TestRotateSigningKeyCommand(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	if out, err := runAdmin(t, "rotate-signing-key", "--data-dir", data); err == nil || !strings.Contains(err.Error(), "no key-encryption key") {
		t.Fatalf("rotation before serve made a key: %v\n%s", err, out)
	}
	if out, err := serveOnce(t, "--data-dir", data); err != nil {
		t.Fatalf("serve: %v\n%s", err, out)
	}
	signing := func() (all []*store.SigningKey) {
		t.Helper()
		ctx := context.Background()
		st, err := app.OpenStore(ctx, app.StoreConfig{DataDir: data})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if err := st.View(ctx, func(tx store.Tx) error {
			all, err = tx.SigningKeys().List(ctx)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return all
	}
	before := signing()
	out, err := runAdmin(t, "rotate-signing-key", "--data-dir", data)
	if err != nil {
		t.Fatalf("rotate: %v\n%s", err, out)
	}
	after := signing()
	if len(after) != len(before)+1 {
		t.Fatalf("after rotation %d keys, want %d (the old ones stay published)", len(after), len(before)+1)
	}
	newest := after[0]
	if !strings.Contains(out, newest.ID) || !bytes.HasPrefix(newest.PrivateKey, []byte("aesgcm1:")) {
		t.Errorf("new key %s (%.8q) not reported or not sealed:\n%s", newest.ID, newest.PrivateKey, out)
	}
	for _, k := range after[1:] {
		if k.NotAfter.After(newest.CreatedAt) {
			t.Errorf("key %s still signs until %v after the rotation", k.ID, k.NotAfter)
		}
	}
	if out, err = runAdmin(t, "rotate-signing-key", "--data-dir", data, "--revoke-old"); err != nil {
		t.Fatalf("rotate --revoke-old: %v\n%s", err, out)
	}
	if left := signing(); len(left) != 1 || left[0].ID == newest.ID {
		t.Errorf("after --revoke-old: %d keys, want only a new one", len(left))
	}
	// Servers start on the rotated store.
	if out, err := serveOnce(t, "--data-dir", data); err != nil {
		t.Fatalf("serve after rotation: %v\n%s", err, out)
	}
}
