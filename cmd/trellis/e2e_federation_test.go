package main_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/oidctest"
)

// TestOIDCBackendEndToEnd: a testbed whose users log in through their
// institution's identity provider, played by a second Trellis server.
// `trellis login --oidc` prints the address to open; a browser logs in at
// the provider and, this first time, links the identity to the testbed
// account with its password; the command then saves the session.
func TestOIDCBackendEndToEnd(t *testing.T) {
	const idpPW, tbPW = "institutional secret of the lecturer", "testbed secret of the operator"

	// The institution.
	idpDir := t.TempDir()
	idp := &cli{t: t}
	idp.ok(idpPW+"\n", "admin", "bootstrap", "--uid", "prof", "--email", "prof@uni.example.edu", "--password-stdin", "--data-dir", idpDir)
	idp.server = startServer(t, idpDir)
	idpAdmin := idp.as("prof")
	idpAdmin.ok(idpPW+"\n", "login", "prof", "--password-stdin")

	// The testbed, registered at the institution's provider.
	addr := freeAddr(t)
	secret := strings.TrimSpace(idpAdmin.ok("", "admin", "oidc-client", "add", "testbed", "--redirect-uri", "http://"+addr+"/auth/oidc/callback"))
	secretFile := filepath.Join(t.TempDir(), "oidc-secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tbDir := t.TempDir()
	tb := &cli{t: t}
	tb.ok(tbPW+"\n", "admin", "bootstrap", "--uid", "ops", "--email", "ops@testbed.example.org", "--password-stdin", "--data-dir", tbDir)
	tb.server = startServer(t, tbDir, "--listen", addr, "--auth-backends", "local,oidc",
		"--oidc-issuer", idp.server+"/oidc", "--oidc-client-id", "testbed", "--oidc-client-secret-file", secretFile)
	user := tb.as("ops")

	cmd := exec.Command(binary, "login", "--oidc")
	cmd.Env = append(os.Environ(), user.env...)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); strings.HasPrefix(line, "http") {
				urls <- line
			}
		}
	}()
	var authURL string
	select {
	case authURL = <-urls:
	case <-time.After(20 * time.Second):
		t.Fatal("trellis login --oidc printed no address")
	}

	b := oidctest.NewBrowser(t)
	back := b.Authorize(authURL, "prof", idpPW)
	resp, body := b.Get(back.String())
	if resp.StatusCode != 200 || !strings.Contains(body, "not linked to a Trellis account") {
		t.Fatalf("first use: status %d:\n%s", resp.StatusCode, body)
	}
	field := func(name string) string {
		m := regexp.MustCompile(`name="` + name + `" value="([^"]+)"`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no %s in the link form", name)
		}
		return m[1]
	}
	resp, body = b.Post(tb.server+"/auth/oidc/link", map[string][]string{"login": {field("login")}, "token": {field("token")}, "uid": {"ops"}, "password": {tbPW}})
	// Linked, the browser takes the finish code to the CLI's loopback
	// listener, which answers it.
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "http://127.0.0.1:") || !strings.Contains(loc, "/done?code=") {
		t.Fatalf("link: status %d, Location %q:\n%s", resp.StatusCode, loc, body)
	}
	if resp, body = b.Get(loc); resp.StatusCode != http.StatusOK || !strings.Contains(body, "handed to the terminal") {
		t.Fatalf("the CLI's listener: status %d: %s", resp.StatusCode, body)
	}

	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("trellis login --oidc: %v; stdout %q", err, stdout.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("trellis login --oidc did not finish")
	}
	if !strings.Contains(stdout.String(), "Logged in as ops") {
		t.Fatalf("login --oidc printed %q", stdout.String())
	}
	if who := user.ok("", "whoami"); !strings.Contains(who, "ops") {
		t.Fatalf("whoami after login --oidc: %s", who)
	}
	if list := user.ok("", "identity", "list"); !strings.Contains(list, idp.server+"/oidc") || !strings.Contains(list, "prof@uni.example.edu") {
		t.Fatalf("identity list:\n%s", list)
	}

	// Again with --paste (a browser on another machine): the identity is
	// linked now, so the page shows the code at once, and the user pastes
	// it into the command.
	other := tb.as("ops-elsewhere")
	cmd = exec.Command(binary, "login", "--oidc", "--paste")
	cmd.Env = append(os.Environ(), other.env...)
	stdout.Reset()
	cmd.Stdout = &stdout
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if stderr, err = cmd.StderrPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); strings.HasPrefix(line, "http") {
				urls <- line
			}
		}
	}()
	select {
	case authURL = <-urls:
	case <-time.After(20 * time.Second):
		t.Fatal("trellis login --oidc --paste printed no address")
	}
	back = oidctest.NewBrowser(t).Authorize(authURL, "prof", idpPW)
	resp, body = b.Get(back.String())
	m := regexp.MustCompile(`<code id="finish-code">([^<]+)</code>`).FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("second login: status %d:\n%s", resp.StatusCode, body)
	}
	fmt.Fprintln(stdin, m[1])
	if err := cmd.Wait(); err != nil || !strings.Contains(stdout.String(), "Logged in as ops") {
		t.Fatalf("trellis login --oidc --paste: %v; stdout %q", err, stdout.String())
	}
	// Refused without the backend's flags.
	r := tb.run("", "serve", "--data-dir", t.TempDir(), "--listen", freeAddr(t), "--auth-backends", "oidc")
	if r.code == 0 || !strings.Contains(r.err, "--oidc-issuer") {
		t.Fatalf("serve with oidc and no issuer: exit %d, stderr %q", r.code, r.err)
	}
}
