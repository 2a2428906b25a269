package main_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestVettingEndToEnd drives the vetting flow through the real CLI: a
// researcher requests a project, the admin approves it, the owner adds a
// student, the student consents through the notification and is powerful,
// then is removed and is powerless again.
func TestVettingEndToEnd(t *testing.T) {
	dataDir := t.TempDir()
	base := &cli{t: t}
	base.ok("sesame for the testbed admin\n", "admin", "bootstrap", "--uid", "ops", "--email", "ops@testbed.example.org", "--password-stdin", "--data-dir", dataDir)
	base.server = startServer(t, dataDir)
	admin := base.as("ops")
	admin.ok("sesame for the testbed admin\n", "login", "ops", "--password-stdin")

	// Two researchers, registered and confirmed through the outbox.
	people := map[string]*cli{}
	for _, uid := range []string{"pat", "sam"} {
		c := base.as(uid)
		c.ok("white rabbit passphrase\n", "user", "register", "--uid", uid, "--email", uid+"@uni.example.edu",
			"--name", strings.ToUpper(uid), "--phone", "+1 310 555 0100", "--password-stdin")
		var ob struct{ Messages []struct{ Body string } }
		if err := json.Unmarshal([]byte(admin.ok("", "admin", "outbox", "--to", uid+"@uni.example.edu", "--output", "json")), &ob); err != nil || len(ob.Messages) == 0 {
			t.Fatalf("outbox for %s: %v", uid, err)
		}
		c.ok("", "user", "confirm", mailToken.FindStringSubmatch(ob.Messages[0].Body)[1])
		c.ok("white rabbit passphrase\n", "login", uid, "--password-stdin")
		people[uid] = c
	}
	pat, sam := people["pat"], people["sam"]

	// sam is powerless: it may not create a circle, and is told why.
	if r := sam.run("", "circle", "create", "sam:friends"); r.code == 0 || !strings.Contains(r.err, "no approved project") {
		t.Fatalf("powerless circle create: exit %d %s", r.code, r.err)
	}
	// policy check exits 3 for a refusal.
	if r := admin.run("", "policy", "check", "sam", "circle.create", "circle:sam:friends"); r.code != 3 {
		t.Fatalf("policy check of a refusal: exit %d %s%s", r.code, r.out, r.err)
	}

	// pat requests a project; it waits for the admin, who is notified.
	if out := pat.ok("", "project", "request", "netsec", "--description", "network security research"); !strings.Contains(strings.ToLower(out), "approv") {
		t.Fatalf("project request said: %s", out)
	}
	if out := admin.ok("", "notify", "list"); !strings.Contains(out, "netsec") {
		t.Fatalf("admin's notifications: %s", out)
	}
	admin.ok("", "project", "approve", "netsec")
	if out := pat.ok("", "project", "show", "netsec"); !strings.Contains(strings.ToLower(out), "approved") {
		t.Fatalf("project show: %s", out)
	}

	// pat adds sam; sam consents through the notification's request.
	pat.ok("", "project", "add", "netsec", "sam", "--rights", "realize_experiment")
	var ns struct {
		Notifications []struct {
			Text      string
			RequestID string `json:"requestId"`
		}
	}
	if err := json.Unmarshal([]byte(sam.ok("", "notify", "list", "--output", "json")), &ns); err != nil || len(ns.Notifications) == 0 || ns.Notifications[0].RequestID == "" {
		t.Fatalf("sam's notifications: %v %+v", err, ns)
	}
	if out := sam.ok("", "request", "list"); !strings.Contains(out, ns.Notifications[0].RequestID) {
		t.Fatalf("request list: %s", out)
	}
	sam.ok("", "request", "accept", ns.Notifications[0].RequestID)

	// sam is powerful now.
	sam.ok("", "circle", "create", "sam:friends")
	admin.ok("", "policy", "check", "sam", "project.realize_experiment", "project:netsec")
	if out := admin.ok("", "policy", "explain", "sam", "project.read", "project:netsec"); !strings.Contains(out, "sam is a member of project netsec") {
		t.Fatalf("explain: %s", out)
	}
	if out := pat.ok("", "project", "members", "netsec"); !strings.Contains(out, "sam") {
		t.Fatalf("members: %s", out)
	}

	// Removed, sam is powerless again.
	pat.ok("", "project", "remove", "netsec", "sam")
	if r := sam.run("", "circle", "create", "sam:others"); r.code == 0 {
		t.Fatalf("removed student still creates circles: %s", r.out)
	}
	if r := admin.run("", "policy", "check", "sam", "project.read", "project:netsec"); r.code != 3 {
		t.Fatalf("removed student still reads the project: exit %d", r.code)
	}
}
