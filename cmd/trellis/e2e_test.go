package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The end-to-end test builds the real binary, starts the real server on an
// embedded store and drives it with the real CLI, as an operator and a
// researcher would.

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "trellis-e2e-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "trellis")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building trellis:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type cli struct {
	t      *testing.T
	env    []string
	server string
}

type result struct {
	out, err string
	code     int
}

// run runs the binary with stdin and returns its output and exit code.
func (c *cli) run(stdin string, args ...string) result {
	c.t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatalf("run %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

// ok runs and fails the test unless the command succeeded.
func (c *cli) ok(stdin string, args ...string) string {
	c.t.Helper()
	r := c.run(stdin, args...)
	if r.code != 0 {
		c.t.Fatalf("trellis %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.out, r.err)
	}
	return r.out
}

// as returns a client with its own config dir: one person's credentials.
func (c *cli) as(name string) *cli {
	dir := filepath.Join(c.t.TempDir(), name)
	return &cli{t: c.t, server: c.server, env: []string{"TRELLIS_SERVER=" + c.server, "TRELLIS_CONFIG_DIR=" + dir}}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startServer(t *testing.T, dataDir string) string {
	addr := freeAddr(t)
	cmd := exec.Command(binary, "serve", "--data-dir", dataDir, "--listen", addr)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("server did not stop on SIGINT")
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
		if strings.Contains(logs.String(), "Bearer ") {
			t.Error("server log contains a bearer token")
		}
	})
	url := "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var mailToken = regexp.MustCompile(`user confirm ([A-Za-z0-9_-]{43})`)

func TestEndToEnd(t *testing.T) {
	dataDir := t.TempDir()
	base := &cli{t: t}

	// The operator bootstraps the first admin on the store directly; a
	// second bootstrap is refused.
	out := base.ok("sesame for the testbed admin\n", "admin", "bootstrap", "--uid", "ops", "--email", "ops@testbed.example.org", "--password-stdin", "--data-dir", dataDir)
	if !strings.Contains(out, "ops") {
		t.Fatalf("bootstrap said %q", out)
	}
	if r := base.run("", "admin", "bootstrap", "--uid", "ops2", "--email", "ops2@testbed.example.org", "--data-dir", dataDir); r.code == 0 || !strings.Contains(r.err, "already exists") {
		t.Fatalf("second bootstrap: exit %d, %s", r.code, r.err)
	}

	base.server = startServer(t, dataDir)
	admin := base.as("ops")
	admin.ok("sesame for the testbed admin\n", "login", "ops", "--password-stdin")
	if who := admin.ok("", "whoami"); !strings.Contains(who, "ops") {
		t.Fatalf("whoami: %s", who)
	}

	// A researcher registers and confirms through the mail in the outbox.
	alice := base.as("alice")
	alice.ok("white rabbit first passphrase\n", "user", "register", "--uid", "alice", "--email", "alice@uni.example.edu",
		"--name", "Alice Liddell", "--phone", "+44 1865 270000", "--password-stdin")
	if r := alice.run("white rabbit first passphrase\n", "login", "alice", "--password-stdin"); r.code == 0 || !strings.Contains(r.err, "confirm") {
		t.Fatalf("login before confirming: exit %d %s", r.code, r.err)
	}
	outbox := admin.ok("", "admin", "outbox", "--to", "alice@uni.example.edu", "--output", "json")
	var ob struct{ Messages []struct{ Body string } }
	if err := json.Unmarshal([]byte(outbox), &ob); err != nil || len(ob.Messages) == 0 {
		t.Fatalf("outbox json: %v\n%s", err, outbox)
	}
	m := mailToken.FindStringSubmatch(ob.Messages[0].Body)
	if m == nil {
		t.Fatalf("no token in mail: %s", ob.Messages[0].Body)
	}
	alice.ok("", "user", "confirm", m[1])
	alice.ok("white rabbit first passphrase\n", "login", "alice", "--password-stdin")

	// Credentials are private to the user.
	credFile := filepath.Join(strings.TrimPrefix(alice.env[1], "TRELLIS_CONFIG_DIR="), "credentials.json")
	st, err := os.Stat(credFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v %v", st, err)
	}

	// Profile: read, then a set where one attribute fails.
	if prof := alice.ok("", "user", "profile"); !strings.Contains(prof, "Alice Liddell") {
		t.Fatalf("profile: %s", prof)
	}
	r := alice.run("", "user", "profile", "set", "title=Dr", "phone=call-me-maybe")
	if r.code == 0 || !strings.Contains(r.out+r.err, "title: changed") || !strings.Contains(r.out+r.err, "phone: failed") {
		t.Fatalf("profile set: exit %d\n%s%s", r.code, r.out, r.err)
	}
	var prof struct {
		Attributes []struct{ Name, Value string }
	}
	if err := json.Unmarshal([]byte(alice.ok("", "user", "profile", "--output", "json")), &prof); err != nil {
		t.Fatal(err)
	}
	vals := map[string]string{}
	for _, a := range prof.Attributes {
		vals[a.Name] = a.Value
	}
	if vals["title"] != "Dr" || vals["phone"] != "+44 1865 270000" {
		t.Fatalf("profile after set: %v", vals)
	}

	// Password change, then the new password logs in.
	alice.ok("white rabbit first passphrase\nwhite rabbit second passphrase\n", "user", "passwd", "--password-stdin")
	alice.ok("white rabbit second passphrase\n", "login", "alice", "--password-stdin")

	// Logout; the session's token is refused afterwards.
	var creds struct {
		AccessToken string `json:"access_token"`
	}
	b, _ := os.ReadFile(credFile)
	if err := json.Unmarshal(b, &creds); err != nil || creds.AccessToken == "" {
		t.Fatalf("credentials file layout: %v %s", err, b)
	}
	alice.ok("", "logout")
	if r := alice.run("", "whoami"); r.code == 0 {
		t.Fatalf("whoami after logout succeeded: %s", r.out)
	}
	stale := &cli{t: t, env: append(alice.env, "TRELLIS_TOKEN="+creds.AccessToken)}
	if r := stale.run("", "whoami"); r.code == 0 || !strings.Contains(r.err, "revoked") {
		t.Fatalf("old token after logout: exit %d %s", r.code, r.err)
	}

	// The operator sees it all in the audit record, and can lock accounts.
	if aud := admin.ok("", "admin", "audit", "--object", "user:alice"); !strings.Contains(aud, "trellis.v1.Users/ChangePassword") {
		t.Fatalf("audit: %s", aud)
	}
	admin.ok("", "admin", "user-state", "alice", "locked")
	if r := alice.run("white rabbit second passphrase\n", "login", "alice", "--password-stdin"); r.code == 0 || !strings.Contains(r.err, "locked") {
		t.Fatalf("locked login: exit %d %s", r.code, r.err)
	}
}
