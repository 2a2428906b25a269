package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestVersionFromBuildInfo: the built binary's --version, `version` and
// the server's GetVersion all say the module version the Go toolchain
// recorded in it, as `go version -m` reads it.
func TestVersionFromBuildInfo(t *testing.T) {
	out, err := exec.Command("go", "version", "-m", binary).Output()
	if err != nil {
		t.Fatal(err)
	}
	var want string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "mod" && f[1] == "github.com/trellis-testbed/trellis" {
			want = f[2]
		}
	}
	if want == "" {
		t.Fatalf("go version -m names no module version:\n%s", out)
	}
	base := &cli{t: t}
	if got := base.ok("", "--version"); !strings.HasPrefix(got, "trellis "+want) {
		t.Errorf("--version: %q, want trellis %s", got, want)
	}
	dataDir := t.TempDir()
	base.server = startServer(t, dataDir)
	c := base.as("anyone")
	got := c.ok("", "version")
	for _, line := range []string{"client version: " + want, "server version: " + want} {
		if !strings.Contains(strings.Join(strings.Fields(got), " "), line) {
			t.Errorf("version lacks %q:\n%s", line, got)
		}
	}
}

// TestBackupRestoreCommands: `trellis admin backup` copies the embedded
// store while the server runs; `admin restore` refuses the store in use
// and fills a fresh data directory, where a server answers as the first.
func TestBackupRestoreCommands(t *testing.T) {
	const pw = "sesame for the testbed admin"
	dataDir, freshDir := t.TempDir(), t.TempDir()
	file := filepath.Join(t.TempDir(), "trellis.backup")
	base := &cli{t: t}
	base.ok(pw+"\n", "admin", "bootstrap", "--uid", "ops", "--email", "ops@testbed.example.org", "--password-stdin", "--data-dir", dataDir)
	base.server = startServer(t, dataDir)
	admin := base.as("ops")
	admin.ok(pw+"\n", "login", "ops", "--password-stdin")
	admin.ok("", "admin", "provider", "add", "site1", "--url", "https://site1.example.org:7800")
	admin.ok("", "resource", "add", "node001", "--kind", "node", "--provider", "site1", "--attr", "cores=16")
	users, resources := admin.ok("", "user", "list"), admin.ok("", "resource", "list")

	if out := base.ok("", "admin", "backup", "--data-dir", dataDir, file); !strings.Contains(out, "Backed up") {
		t.Errorf("backup said %q", out)
	}
	if r := base.run("", "admin", "restore", "--data-dir", dataDir, file); r.code == 0 {
		t.Errorf("restore over the store in use succeeded: %s", r.out)
	}
	if out := base.ok("", "admin", "restore", "--data-dir", freshDir, file); !strings.Contains(out, "Restored") {
		t.Errorf("restore said %q", out)
	}
	// The keys in the store open only with the original's key-encryption
	// key, which the operator keeps apart from the backups.
	kek, err := os.ReadFile(filepath.Join(dataDir, "trellis.kek"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(freshDir, "trellis.kek"), kek, 0o600); err != nil {
		t.Fatal(err)
	}
	base.server = startServer(t, freshDir)
	restored := base.as("ops-again")
	restored.ok(pw+"\n", "login", "ops", "--password-stdin")
	if got := restored.ok("", "user", "list"); got != users {
		t.Errorf("users after restore:\n%s\nwant\n%s", got, users)
	}
	if got := restored.ok("", "resource", "list"); got != resources {
		t.Errorf("resources after restore:\n%s\nwant\n%s", got, resources)
	}
}
