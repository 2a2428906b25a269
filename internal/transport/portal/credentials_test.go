package portal_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func newSSHKey(t *testing.T, comment string) (line, fingerprint string) {
	return newSSHKeyB(t, comment)
}

func newSSHKeyB(t testing.TB, comment string) (line, fingerprint string) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) + " " + comment, ssh.FingerprintSHA256(k)
}

func urlEscape(s string) string { return url.QueryEscape(s) }

// inHTML is s as html/template writes it in text and attributes.
func inHTML(s string) string {
	return strings.ReplaceAll(template.HTMLEscapeString(s), "+", "&#43;")
}

var regexpSecret = regexp.MustCompile(`id="token-secret" class="mono" value="([^"]+)"`)

func TestCredentials(t *testing.T) {
	tb := newTestbed(t)
	tb.newUser("alice")
	tb.newUser("bob")
	b := tb.browser()
	b.signIn("alice", userPassword)
	want(t, "credentials", b.get("/credentials"), http.StatusOK, `id="add-key"`, `id="no-keys"`, `id="new-api-token"`, `id="no-tokens"`, `id="no-sites"`, `href="/credentials" aria-current="page"`)

	// SSH keys: a bad one is refused in the service's words, kept in the
	// form; a good one is listed with its fingerprint; then removed.
	a := b.post("/credentials/ssh", url.Values{"public_key": {"ssh-rsa nonsense"}})
	want(t, "bad key", a, http.StatusBadRequest, `id="e-public_key"`, "ssh-rsa nonsense</textarea>")
	line, fp := newSSHKey(t, "alice@laptop")
	a = b.post("/credentials/ssh", url.Values{"public_key": {line}})
	if a.status != http.StatusSeeOther || a.location() != "/credentials?done=key-added" {
		t.Fatalf("add key: %d %q\n%s", a.status, a.location(), a.body)
	}
	want(t, "key listed", b.get(a.location()), http.StatusOK, `id="ssh-keys"`, inHTML(fp), "alice@laptop", "ssh-ed25519", "SSH key added")
	a = b.post("/credentials/ssh/remove", url.Values{"fingerprint": {fp}})
	if a.status != http.StatusSeeOther {
		t.Fatalf("remove key: %d\n%s", a.status, a.body)
	}
	if p := b.get(a.location()); !strings.Contains(p.body, `id="no-keys"`) || strings.Contains(p.body, inHTML(fp)) {
		t.Fatalf("key still listed:\n%s", p.body)
	}

	// API tokens: no scope is refused with the service's words next to
	// the field; one with scopes is shown once, listed, then revoked.
	a = b.post("/credentials/tokens", url.Values{"name": {"ci-nightly"}, "days": {"7"}})
	want(t, "no scope", a, http.StatusBadRequest, `id="e-scopes"`, "at least one scope", `value="ci-nightly"`)
	a = b.post("/credentials/tokens", url.Values{"name": {"ci-nightly"}, "scopes": {"read"}, "days": {"400"}})
	want(t, "too long", a, http.StatusBadRequest, `id="e-days"`, "at most 365 days")
	a = b.post("/credentials/tokens", url.Values{"name": {"ci-nightly"}, "scopes": {"read"}, "other_scopes": {"trellis.v1.Experiments/*"}, "days": {"7"}})
	want(t, "created", a, http.StatusOK, `id="new-token"`, `id="api-tokens"`, "<code>read</code>", "<code>trellis.v1.Experiments/*</code>", `id="revoke-ci-nightly"`)
	m := regexpSecret.FindStringSubmatch(a.body)
	if m == nil {
		t.Fatalf("no secret shown:\n%s", a.body)
	}
	secret := m[1]
	// The secret works as a bearer token (read scope: WhoAmI).
	req, _ := http.NewRequest(http.MethodPost, tb.url+"/trellis.v1.Auth/WhoAmI", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("WhoAmI with the new token: %d", resp.StatusCode)
	}
	if p := b.get("/credentials"); strings.Contains(p.body, secret) || !strings.Contains(p.body, "ci-nightly") {
		t.Fatal("the secret is shown again, or the token is not listed")
	}

	// Bob cannot revoke alice's token: his own account has none so named.
	bob := tb.browser()
	bob.signIn("bob", userPassword)
	bob.get("/credentials")
	want(t, "bob revokes alice's", bob.post("/credentials/tokens/ci-nightly/revoke", nil), http.StatusNotFound, "Not found")

	a = b.post("/credentials/tokens/ci-nightly/revoke", nil)
	if a.status != http.StatusSeeOther {
		t.Fatalf("revoke: %d\n%s", a.status, a.body)
	}
	want(t, "revoked", b.get(a.location()), http.StatusOK, `state revoked`, "API token revoked")
	req, _ = http.NewRequest(http.MethodPost, tb.url+"/trellis.v1.Auth/WhoAmI", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+secret)
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("WhoAmI with the revoked token: %d", resp.StatusCode)
	}
}
