package main_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// waitFile waits until path exists.
func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBootstrapThroughRunningServer: a server started on an empty store
// writes a one-time bootstrap token, readable by its account only, and
// `admin bootstrap` creates the first administrator through it while the
// server holds the embedded store; the token is then spent.
func TestBootstrapThroughRunningServer(t *testing.T) {
	dataDir := t.TempDir()
	srv := launch(t, dataDir)
	file := filepath.Join(dataDir, "bootstrap.json")
	waitFile(t, file)
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("bootstrap file: %v %v, want mode 0600", fi.Mode(), err)
	}
	var f struct{ Server, Token string }
	b, err := os.ReadFile(file)
	if err != nil || json.Unmarshal(b, &f) != nil || f.Server != srv.url || len(f.Token) < 43 {
		t.Fatalf("bootstrap file %s: %v", b, err)
	}

	base := &cli{t: t}
	out := base.ok("sesame for the testbed admin\n", "admin", "bootstrap", "--uid", "ops", "--email", "ops@testbed.example.org", "--password-stdin", "--data-dir", dataDir)
	want := "Using the server at " + srv.url + " (one-time token from " + file + ").\nCreated administrator ops <ops@testbed.example.org>.\n"
	if out != want {
		t.Errorf("bootstrap said %q, want %q", out, want)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("the bootstrap file outlived its token: %v", err)
	}
	base.server = srv.url
	admin := base.as("ops")
	admin.ok("sesame for the testbed admin\n", "login", "ops", "--password-stdin")
	if who := admin.ok("", "whoami"); !strings.Contains(who, "ops") {
		t.Fatalf("whoami: %s", who)
	}

	// Spent: the token is refused by the server, and without a file the
	// store is the running server's.
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	r := base.run("", "admin", "bootstrap", "--uid", "ops2", "--email", "ops2@testbed.example.org", "--data-dir", dataDir)
	if r.code == 0 || !strings.Contains(r.err, "no bootstrap token") {
		t.Errorf("bootstrap with a spent token: exit %d, %q", r.code, r.err)
	}
	os.Remove(file)
	r = base.run("", "admin", "bootstrap", "--uid", "ops2", "--email", "ops2@testbed.example.org", "--data-dir", dataDir)
	if r.code == 0 || !strings.Contains(r.err, "another process") {
		t.Errorf("bootstrap on a held store: exit %d, %q", r.code, r.err)
	}
}

// TestBootstrapStaleFile: a server killed before anyone used its token
// leaves the file; bootstrap finds nobody answering and uses the store.
func TestBootstrapStaleFile(t *testing.T) {
	dataDir := t.TempDir()
	srv := launch(t, dataDir)
	file := filepath.Join(dataDir, "bootstrap.json")
	waitFile(t, file)
	srv.kill(t)
	token, _ := os.ReadFile(file)
	var f struct{ Token string }
	if json.Unmarshal(token, &f) != nil || f.Token == "" || strings.Contains(srv.logs.String(), f.Token) {
		t.Errorf("the token is in the server's log, or the file holds none")
	}
	base := &cli{t: t}
	r := base.run("sesame for the testbed admin\n", "admin", "bootstrap", "--uid", "ops", "--email", "ops@testbed.example.org", "--password-stdin", "--data-dir", dataDir)
	abs, _ := filepath.Abs(dataDir)
	if r.code != 0 || !strings.Contains(r.err, "does not answer; using the store directly") ||
		r.out != "Using the embedded store in "+abs+".\nCreated administrator ops <ops@testbed.example.org>.\n" {
		t.Errorf("exit %d, out %q, err %q", r.code, r.out, r.err)
	}
}

// TestBootstrapNamesItsStore: bootstrap never makes a new embedded store in
// a directory nobody named; it says which store it would have used.
func TestBootstrapNamesItsStore(t *testing.T) {
	cwd := t.TempDir()
	cmd := exec.Command(binary, "admin", "bootstrap", "--uid", "ops", "--email", "ops@testbed.example.org")
	cmd.Dir = cwd
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TRELLIS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.CombinedOutput()
	abs, _ := filepath.EvalSymlinks(cwd)
	if err == nil || !regexp.MustCompile(`no Trellis store in \S*`+regexp.QuoteMeta(filepath.Base(abs))+`/trellis-data \(the default --data-dir\)`).Match(out) {
		t.Errorf("bootstrap in an empty directory: %v, %s", err, out)
	}
	if _, err := os.Stat(filepath.Join(cwd, "trellis-data")); !os.IsNotExist(err) {
		t.Errorf("bootstrap made a store nobody named: %v", err)
	}
}
