package provider

import (
	"net/http"
	"testing"
	"time"
)

// TestOneTimeTokens: a token works once, for its kind, within 30 s, and
// tokens are 32 random bytes.
func TestOneTimeTokens(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	tt := newOneTimeTokens(func() time.Time { return now })
	issue := func(kind string) string {
		t.Helper()
		tok, exp, err := tt.issue(grant{kind: kind, uid: "alice", account: "tb_alice", path: "f"})
		if err != nil {
			t.Fatal(err)
		}
		if !exp.Equal(now.Add(30 * time.Second)) {
			t.Fatalf("expires %s", exp)
		}
		if len(tok) != 43 { // 32 bytes, base64url without padding
			t.Fatalf("token %q is not 32 bytes", tok)
		}
		return tok
	}
	refusedWith := func(t *testing.T, err error, status int) {
		t.Helper()
		he, ok := err.(*httpError)
		if !ok || he.status != status {
			t.Fatalf("%v, want a refusal with status %d", err, status)
		}
	}

	tok := issue("upload")
	g, err := tt.take(tok, "upload")
	if err != nil || g.uid != "alice" || g.account != "tb_alice" || g.path != "f" {
		t.Fatalf("first use: %+v, %v", g, err)
	}
	_, err = tt.take(tok, "upload")
	refusedWith(t, err, http.StatusUnauthorized)

	// At 29 s it works; at 30 s it does not.
	tok = issue("download")
	now = now.Add(29 * time.Second)
	if _, err := tt.take(tok, "download"); err != nil {
		t.Fatalf("at 29s: %v", err)
	}
	tok = issue("download")
	now = now.Add(30 * time.Second)
	_, err = tt.take(tok, "download")
	refusedWith(t, err, http.StatusUnauthorized)

	// A token for another kind is refused, and spent.
	tok = issue("download")
	_, err = tt.take(tok, "upload")
	refusedWith(t, err, http.StatusUnauthorized)
	_, err = tt.take(tok, "download")
	refusedWith(t, err, http.StatusUnauthorized)

	// Unknown tokens are refused.
	_, err = tt.take("AAAA", "upload")
	refusedWith(t, err, http.StatusUnauthorized)
	if len(tt.m) != 0 {
		t.Errorf("%d grants left", len(tt.m))
	}
}
