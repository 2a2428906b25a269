package main_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestAPITokenEndToEnd creates a read-scoped API token with the real CLI
// against the real server, then uses it through TRELLIS_TOKEN from a
// client with no login of its own: reads work, a write is refused with the
// scope's message, and the refusal is audited.
func TestAPITokenEndToEnd(t *testing.T) {
	const pw = "sesame for the testbed admin"
	dataDir := t.TempDir()
	base := &cli{t: t}
	base.ok(pw+"\n", "admin", "bootstrap", "--uid", "ops", "--email", "ops@testbed.example.org", "--password-stdin", "--data-dir", dataDir)
	base.server = startServer(t, dataDir)
	admin := base.as("ops")
	admin.ok(pw+"\n", "login", "ops", "--password-stdin")
	admin.ok("", "experiment", "create", "ops:ping")

	// The token alone on stdout, shown this once.
	tok := strings.TrimSpace(admin.ok("", "token", "create", "ci", "--scope", "read", "--expires", "30d"))
	if !strings.HasPrefix(tok, "trls_") || strings.ContainsAny(tok, " \n") {
		t.Fatalf("token create printed %q", tok)
	}
	list := admin.ok("", "token", "list")
	if !strings.Contains(list, "ci") || !strings.Contains(list, "read") || strings.Contains(list, tok[len("trls_"):]) {
		t.Fatalf("token list:\n%s", list)
	}

	robot := base.as("robot")
	robot.env = append(robot.env, "TRELLIS_TOKEN="+tok)
	if who := robot.ok("", "whoami"); !strings.Contains(who, "ops") || !strings.Contains(who, "api token:") || !strings.Contains(who, "scopes:") {
		t.Fatalf("whoami with the token: %s", who)
	}
	if out := robot.ok("", "experiment", "list"); !strings.Contains(out, "ops:ping") {
		t.Fatalf("experiment list with the token:\n%s", out)
	}
	r := robot.run("", "experiment", "create", "ops:pong")
	const msg = "this API token's scopes (read) do not include trellis.v1.Experiments/CreateExperiment"
	if r.code != 1 || !strings.Contains(r.err, msg) || strings.Contains(r.err, tok) {
		t.Fatalf("write with a read token: exit %d, stderr %q", r.code, r.err)
	}
	// Nor may it mint a broader token.
	if r := robot.run("", "token", "create", "wider", "--scope", "all"); r.code != 1 || !strings.Contains(r.err, `only a token scoped "all"`) {
		t.Fatalf("token create with a read token: exit %d, stderr %q", r.code, r.err)
	}

	// The refusal is in the audit record, the token is not.
	out := admin.ok("", "admin", "audit", "--operation", "trellis.v1.Experiments/CreateExperiment", "--output", "json")
	if strings.Contains(out, tok[len("trls_")+27:]) {
		t.Fatalf("the audit record holds the token: %s", out)
	}
	var audit struct {
		Events []struct{ Actor, Object, Outcome string }
	}
	if err := json.Unmarshal([]byte(out), &audit); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range audit.Events {
		found = found || (e.Actor == "ops" && e.Object == "api_token:ci" && e.Outcome == "permission_denied")
	}
	if !found {
		t.Fatalf("no audited refusal in %s", out)
	}

	// Revoked, it stops working at once.
	admin.ok("", "token", "revoke", "ci")
	if r := robot.run("", "experiment", "list"); r.code == 0 || !strings.Contains(r.err, `API token "ci" was revoked`) {
		t.Fatalf("after revoke: exit %d, stderr %q", r.code, r.err)
	}
}
