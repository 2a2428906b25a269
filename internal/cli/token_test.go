package cli

import (
	"strings"
	"testing"
	"time"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/app/apptest"
)

func TestTokenCreatePrintsTheTokenOnce(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	srv.NewUser(t, "alice")
	e := as(t, srv, "alice")
	r := e.run("", "token", "create", "ci", "--scope", "read", "--scope", "trellis.v1.Experiments/*", "--expires", "30d")
	if r.code != 0 {
		t.Fatalf("code %d, err %q", r.code, r.err)
	}
	// The token alone on standard output, for $(...); the rest on stderr.
	token := strings.TrimSuffix(r.out, "\n")
	if token == "" || strings.ContainsAny(token, " \n") {
		t.Errorf("stdout %q, want the token alone", r.out)
	}
	if !strings.Contains(r.err, "shown this once") || strings.Contains(r.err, token) {
		t.Errorf("stderr %q", r.err)
	}
	// The server knows it, for alice, as asked.
	if got := whoAmI(t, srv, token); got != "alice" {
		t.Errorf("the token stands for %q", got)
	}
	tokens := func() map[string]*trellisv1.APIToken {
		out := map[string]*trellisv1.APIToken{}
		for _, k := range must(e.api().Auth.ListAPITokens(bg, req(&trellisv1.ListAPITokensRequest{})))(t).GetApiTokens() {
			out[k.GetName()] = k
		}
		return out
	}
	lifetime := func(k *trellisv1.APIToken) time.Duration {
		return k.GetExpiresAt().AsTime().Sub(k.GetCreatedAt().AsTime()).Round(time.Minute)
	}
	ci := tokens()["ci"]
	if strings.Join(ci.GetScopes(), " ") != "read trellis.v1.Experiments/*" || lifetime(ci) != 30*24*time.Hour {
		t.Errorf("on the server: %v", ci)
	}

	// 12h form; without --expires the server's default (30 days) applies.
	if r := e.run("", "token", "create", "short", "--scope", "all", "--expires", "12h"); r.code != 0 {
		t.Fatalf("code %d, err %q", r.code, r.err)
	}
	if r := e.run("", "token", "create", "dflt", "--scope", "read"); r.code != 0 {
		t.Fatalf("code %d, err %q", r.code, r.err)
	}
	all := tokens()
	if d := lifetime(all["short"]); d != 12*time.Hour {
		t.Errorf("short lives %v", d)
	}
	if d := lifetime(all["dflt"]); d != 30*24*time.Hour {
		t.Errorf("dflt lives %v", d)
	}

	// Revoked, it stops working at once; the list shows no secret.
	if r := e.run("", "token", "revoke", "ci"); r.code != 0 || !strings.Contains(r.out, "Revoked API token ci") {
		t.Fatalf("revoke: code %d, out %q, err %q", r.code, r.out, r.err)
	}
	if tokens()["ci"].GetRevokedAt() == nil {
		t.Error("ci is not revoked on the server")
	}
	if got := whoAmI(t, srv, token); got != "" {
		t.Errorf("the revoked token still stands for %q", got)
	}
	r = e.run("", "token", "list")
	if r.code != 0 || !strings.Contains(r.out, "LAST USED") || !strings.Contains(r.out, "revoked") || !strings.Contains(r.out, "never") ||
		strings.Contains(r.out, token) {
		t.Fatalf("list: code %d, out %q, err %q", r.code, r.out, r.err)
	}
	if r := e.run("", "token", "revoke", "nope"); r.code != 1 || r.err != "error: user \"alice\" has no API token named \"nope\"\n" {
		t.Fatalf("revoking an unknown token: %+v", r)
	}
}

func TestTokenCreateUsage(t *testing.T) {
	t.Parallel()
	e := offline(t)
	for _, args := range [][]string{
		{"token", "create", "ci"}, // no scope
		{"token", "create", "ci", "--scope", "read", "--expires", "soon"}, // bad duration
		{"token", "create", "ci", "--scope", "read", "--expires", "-1d"},  // not positive
		{"token", "create", "--scope", "read"},                            // no name
	} {
		r := e.run("", args...)
		if r.code != 1 || !strings.HasPrefix(r.err, "error: ") || strings.Contains(r.err, "request to") {
			t.Errorf("%v: code %d, err %q; want a refusal before any request", args, r.code, r.err)
		}
	}
}
