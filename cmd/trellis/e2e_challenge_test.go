package main_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestChallengeLoginEndToEnd logs in through the real CLI with
// `trellis login UID --challenge`: a scram-argon2id exchange in which the
// password never crosses the wire, against the real server with production
// Argon2id parameters.
func TestChallengeLoginEndToEnd(t *testing.T) {
	const pw = "sesame for the testbed admin"
	dataDir := t.TempDir()
	base := &cli{t: t}
	base.ok(pw+"\n", "admin", "bootstrap", "--uid", "ops", "--email", "ops@testbed.example.org", "--password-stdin", "--data-dir", dataDir)
	base.server = startServer(t, dataDir)

	admin := base.as("ops")
	if out := admin.ok(pw+"\n", "login", "ops", "--challenge", "--password-stdin"); !strings.Contains(out, "Logged in as ops") {
		t.Fatalf("login --challenge said %q", out)
	}
	if who := admin.ok("", "whoami"); !strings.Contains(who, "ops") {
		t.Fatalf("whoami: %s", who)
	}

	// A wrong password and an unknown uid are refused alike, and nothing
	// is saved.
	stranger := base.as("stranger")
	wrong := stranger.run("not the password\n", "login", "ops", "--challenge", "--password-stdin")
	ghost := stranger.run(pw+"\n", "login", "ghost", "--challenge", "--password-stdin")
	for _, r := range []result{wrong, ghost} {
		if r.code == 0 || !strings.Contains(r.err, "invalid uid or password") {
			t.Fatalf("refused login: exit %d, stderr %q", r.code, r.err)
		}
	}
	if strings.ReplaceAll(wrong.err, "ops", "ghost") != ghost.err {
		t.Errorf("a wrong password says %q, an unknown uid %q", wrong.err, ghost.err)
	}
	if r := stranger.run("", "whoami"); r.code == 0 {
		t.Fatalf("whoami after refused logins: %s", r.out)
	}

	// Every attempt is in the audit record; no secret is.
	out := admin.ok("", "admin", "audit", "--operation", "trellis.v1.Auth/ChallengeResponse", "--output", "json")
	var audit struct {
		Events []struct{ Object, Outcome, Detail string }
	}
	if err := json.Unmarshal([]byte(out), &audit); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		"user:ops ok challenge scram-argon2id":       false,
		"user:ops unauthenticated bad credentials":   false,
		"user:ghost unauthenticated bad credentials": false,
	}
	for _, e := range audit.Events {
		want[e.Object+" "+e.Outcome+" "+e.Detail] = true
	}
	for k, seen := range want {
		if !seen {
			t.Errorf("no audit event %q in %s", k, out)
		}
	}
	if strings.Contains(out, pw) || strings.Contains(out, "not the password") {
		t.Errorf("the audit record holds a password: %s", out)
	}

	// The session is a session like any other: logout, then in again.
	admin.ok("", "logout")
	admin.ok(pw+"\n", "login", "ops", "--challenge", "--password-stdin")
	admin.ok("", "whoami")
}
