package main_test

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/store/pgtest"
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
	pgtest.Stop()
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

// startServer starts `trellis serve` on dataDir, with extra flags if any.
// server is a running `trellis serve`.
type server struct {
	url  string
	cmd  *exec.Cmd
	logs *bytes.Buffer
	done chan error
}

// launch starts `trellis serve` on a free port (or on the --listen in flags) and waits until it is ready;
// the test's cleanup stops it (unless the test killed it).
func launch(t *testing.T, dataDir string, flags ...string) *server {
	addr := freeAddr(t)
	// A test that must know the address first (to register it elsewhere)
	// passes --listen itself; the later flag wins.
	if i := slices.Index(flags, "--listen"); i >= 0 && i+1 < len(flags) {
		addr = flags[i+1]
	}
	s := &server{url: "http://" + addr, logs: &bytes.Buffer{}, done: make(chan error, 1)}
	probe := http.DefaultClient
	if slices.Contains(flags, "--tls-auto") {
		// The server's certificate comes from a CA the test learns only
		// from the server; readiness does not depend on trusting it.
		s.url = "https://" + addr
		probe = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	}
	s.cmd = exec.Command(binary, append([]string{"serve", "--data-dir", dataDir, "--listen", addr}, flags...)...)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			t.Error("server did not stop on SIGINT")
		}
		if t.Failed() {
			t.Logf("server log:\n%s", s.logs.String())
		}
		if strings.Contains(s.logs.String(), "Bearer ") {
			t.Error("server log contains a bearer token")
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := probe.Get(s.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready: %v\n%s", err, s.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill ends the server at once, as a crash would.
func (s *server) kill(t *testing.T) {
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	err := <-s.done
	s.done <- err // for the cleanup
}

func startServer(t *testing.T, dataDir string, flags ...string) string {
	return launch(t, dataDir, flags...).url
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

// sshKeygen runs ssh-keygen, in UTC so that the times it prints compare.
func sshKeygen(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("ssh-keygen", args...)
	cmd.Env = append(os.Environ(), "TZ=UTC")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

var certValidity = regexp.MustCompile(`Valid: from (\S+) to (\S+)`)

// certWindow reads a certificate with ssh-keygen -L, as an operator would,
// checks it is a user certificate for principal signed by the CA whose
// fingerprint is caFP, and returns how long it is valid.
func certWindow(t *testing.T, path, principal, caFP string) time.Duration {
	t.Helper()
	out := sshKeygen(t, "-L", "-f", path)
	for _, want := range []string{
		"Type: ssh-ed25519-cert-v01@openssh.com user certificate",
		"Signing CA: ED25519 " + caFP,
		`Key ID: "trellis:` + principal + `:`,
		"Principals: \n                " + principal + "\n",
		"permit-pty",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("ssh-keygen -L does not show %q:\n%s", want, out)
		}
	}
	m := certValidity.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no validity in:\n%s", out)
	}
	from, err1 := time.Parse("2006-01-02T15:04:05", m[1])
	to, err2 := time.Parse("2006-01-02T15:04:05", m[2])
	if err1 != nil || err2 != nil {
		t.Fatalf("validity %q: %v %v", m[0], err1, err2)
	}
	if now := time.Now().UTC(); from.After(now) || to.Before(now) {
		t.Fatalf("certificate not valid now (%v): %s", now, m[0])
	}
	return to.Sub(from)
}

// fingerprint returns the SHA256 fingerprint ssh-keygen -l prints for a
// public key file.
func fingerprint(t *testing.T, path string) string {
	t.Helper()
	f := strings.Fields(sshKeygen(t, "-l", "-f", path))
	if len(f) < 2 || !strings.HasPrefix(f[1], "SHA256:") {
		t.Fatalf("ssh-keygen -l: %v", f)
	}
	return f[1]
}

func TestSSHEndToEnd(t *testing.T) {
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Fatal("ssh-keygen is missing: install openssh-client (scripts/test does)")
	}
	dataDir := t.TempDir()
	base := &cli{t: t}
	base.ok("sesame for the testbed admin\n", "admin", "bootstrap", "--uid", "ops", "--email", "ops@testbed.example.org", "--password-stdin", "--data-dir", dataDir)
	base.server = startServer(t, dataDir, "--ssh-cert-validity", "3h")
	admin := base.as("ops")
	admin.ok("sesame for the testbed admin\n", "login", "ops", "--password-stdin")

	carol := base.as("carol")
	carol.ok("through the looking glass\n", "user", "register", "--uid", "carol", "--email", "carol@uni.example.edu",
		"--name", "Carol", "--phone", "+44 1865 270001", "--password-stdin")
	var ob struct{ Messages []struct{ Body string } }
	if err := json.Unmarshal([]byte(admin.ok("", "admin", "outbox", "--to", "carol@uni.example.edu", "--output", "json")), &ob); err != nil || len(ob.Messages) == 0 {
		t.Fatalf("outbox: %v", err)
	}
	m := mailToken.FindStringSubmatch(ob.Messages[0].Body)
	if m == nil {
		t.Fatalf("no token in mail: %s", ob.Messages[0].Body)
	}
	carol.ok("", "user", "confirm", m[1])
	carol.ok("through the looking glass\n", "login", "carol", "--password-stdin")

	// The CA line, from the CLI (no login needed) and from the endpoint
	// sites fetch, is one and the same.
	caLine := base.as("anyone").ok("", "ssh", "ca")
	resp, err := http.Get(base.server + "/ssh/trusted-user-ca-keys")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != caLine || !strings.HasSuffix(caLine, " trellis-user-ca\n") {
		t.Fatalf("trellis ssh ca printed %q, GET /ssh/trusted-user-ca-keys %d %q", caLine, resp.StatusCode, body)
	}
	dir := t.TempDir()
	caFile := filepath.Join(dir, "trusted-user-ca-keys")
	if err := os.WriteFile(caFile, body, 0o644); err != nil {
		t.Fatal(err)
	}
	caFP := fingerprint(t, caFile)

	// A key made by ssh-keygen is registered; the listing shows the
	// fingerprint ssh-keygen computes.
	key := filepath.Join(dir, "id")
	sshKeygen(t, "-q", "-t", "ed25519", "-N", "", "-C", "carol@laptop", "-f", key)
	fp := fingerprint(t, key+".pub")
	if out := carol.ok("", "ssh", "key", "add", key+".pub"); !strings.Contains(out, fp) {
		t.Fatalf("ssh key add said %q, want the fingerprint %s", out, fp)
	}
	var keys struct {
		Keys []struct{ Fingerprint, Type, Comment string }
	}
	if err := json.Unmarshal([]byte(carol.ok("", "ssh", "key", "list", "--output", "json")), &keys); err != nil {
		t.Fatal(err)
	}
	if len(keys.Keys) != 1 || keys.Keys[0].Fingerprint != fp || keys.Keys[0].Type != "ssh-ed25519" || keys.Keys[0].Comment != "carol@laptop" {
		t.Fatalf("ssh key list: %+v", keys)
	}
	if r := carol.run("", "ssh", "key", "add", key+".pub"); r.code == 0 || !strings.Contains(r.err, "already registered") {
		t.Fatalf("adding the key twice: exit %d %s", r.code, r.err)
	}

	// The certificate lands beside the key, readable by ssh-keygen, for
	// carol, valid for the configured 3h (plus 5 minutes of clock skew).
	carol.ok("", "ssh", "cert", "--key", key)
	if got := certWindow(t, key+"-cert.pub", "carol", caFP); got != 3*time.Hour+5*time.Minute {
		t.Errorf("certificate valid for %v, want the configured 3h plus 5m", got)
	}
	// Named by its .pub, as OpenSSH does: id.pub gives id-cert.pub.
	out := carol.ok("", "ssh", "cert", "--key", key+".pub", "--validity", "1h")
	if !strings.Contains(out, key+"-cert.pub") {
		t.Errorf("ssh cert said %q", out)
	}
	if got := certWindow(t, key+"-cert.pub", "carol", caFP); got != time.Hour+5*time.Minute {
		t.Errorf("certificate valid for %v, want 1h plus 5m", got)
	}
	if r := carol.run("", "ssh", "cert", "--key", key, "--validity", "48h"); r.code == 0 || !strings.Contains(r.err, "validity.max") {
		t.Fatalf("48h certificate: exit %d %s", r.code, r.err)
	}

	// Refused with the field and the rule: a weak key, and a private key,
	// which the client does not even send.
	weak := filepath.Join(dir, "weak")
	sshKeygen(t, "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", weak)
	if r := carol.run("", "ssh", "key", "add", weak+".pub"); r.code == 0 || !strings.Contains(r.err, "public_key.weak") {
		t.Fatalf("RSA-2048 key: exit %d %s", r.code, r.err)
	}
	lone := filepath.Join(t.TempDir(), "lone")
	priv, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lone, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	if r := carol.run("", "ssh", "key", "add", lone); r.code == 0 || !strings.Contains(r.err, "private key") {
		t.Fatalf("private key: exit %d %s", r.code, r.err)
	}

	// Removed, the key gets no more certificates.
	carol.ok("", "ssh", "key", "rm", fp)
	if r := carol.run("", "ssh", "cert", "--key", key); r.code == 0 || !strings.Contains(r.err, "public_key.unregistered") {
		t.Fatalf("certificate after removal: exit %d %s", r.code, r.err)
	}
}
