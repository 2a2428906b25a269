package app_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/crypto/ssh"
	"google.golang.org/protobuf/types/known/durationpb"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/app"
	"github.com/trellis-testbed/trellis/internal/service"
)

// dsaKey is a DSA public key; making one takes seconds, so it is fixed.
const dsaKey = "ssh-dss AAAAB3NzaC1kc3MAAACBAJFyFwEHaZc8vwZJT470Q00JcA1HE9jQzRPAMCwgkdwObsQ0ncdjcuXohSD1TfQ2sYqXAkjlrbE49TT4YpyDNtrgZxQqwjswpJ5CSVjn4AQ6yx814PB475MEpmX3MdlQcOMp5UiWeB+AFRkBHc4eQ2dyx4UExPKwhn3Y+KDm/hbXAAAAFQCKpbrFe/JTlbbcS9K6DkrJAu02vQAAAIBQiLOc3SFdjVpestMSeMd0/A6miMADlXhrz4arBXQJMklJvAgCZPjB1I8S0NCeAQdsNGABRn8mdsWuOT3IhRVrD4ee6FzBJicpGNHKSg+39kJ+9PdFT8+VpqgxCp0Wy24OAwMhf+w32bZEcnwumbX7gi3NGsaaQKDwy9z/7y4M/wAAAIEAhLbkMervlGpMQmBWKRFjAxraTZRdl/HR9p6JmmJnLI2BSwEJD0TecilunjFclr1c8i/CaZJv6A+pAZBYo5s0vYymAhhZkTevpXfJNO5uDCPhTij87DynpEshmDzntV5F6jQjE3Zja/sR8wGGc/xihArvCwcEe2qmkTULIKSOyUk= old@box"

// newSSHKey returns a fresh ed25519 public key and its authorized_keys line.
func newSSHKey(t *testing.T, comment string) (ssh.PublicKey, string) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) + " " + comment
}

// caKey fetches the SSH user CA's key the way a site would, without
// credentials.
func (h *harness) caKey(t *testing.T) (ssh.PublicKey, string) {
	t.Helper()
	resp, err := h.info.GetSSHCertificateAuthority(context.Background(), req(&trellisv1.GetSSHCertificateAuthorityRequest{}, ""))
	if err != nil {
		t.Fatal(err)
	}
	line := resp.Msg.PublicKey
	k, comment, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil || comment != "trellis-user-ca" || k.Type() != ssh.KeyAlgoED25519 {
		t.Fatalf("CA line %q: %v", line, err)
	}
	return k, line
}

// parseCert parses a certificate as ssh reads it from KEY-cert.pub.
func parseCert(t *testing.T, text string) *ssh.Certificate {
	t.Helper()
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(text))
	if err != nil {
		t.Fatalf("certificate %q: %v", text, err)
	}
	c, ok := k.(*ssh.Certificate)
	if !ok {
		t.Fatalf("certificate parses as %T", k)
	}
	return c
}

func wantViolation(t *testing.T, err error, code connect.Code, field, rule string) {
	t.Helper()
	wantCode(t, err, code)
	if got := violations(err)[field]; got != rule {
		t.Fatalf("violation on %s = %q, want %q (error %v)", field, got, rule, err)
	}
	if !strings.Contains(err.Error(), field) {
		t.Fatalf("message %q does not name the field", err)
	}
}

func TestSSHKeysAndCertificates(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		t.Run(string(kind), func(t *testing.T) {
			h := newHarness(t, kind)
			ctx := context.Background()
			adminTok := h.bootstrapAdmin()
			alice := h.newUser("alice")
			bob := h.newUser("bob")

			key, line := newSSHKey(t, "alice@laptop")
			fp := ssh.FingerprintSHA256(key)
			added, err := h.users.AddSSHKey(ctx, req(&trellisv1.AddSSHKeyRequest{PublicKey: line + "\n"}, alice))
			if err != nil {
				t.Fatal(err)
			}
			k := added.Msg.Key
			if k.Uid != "alice" || k.Fingerprint != fp || k.Type != "ssh-ed25519" || k.Bits != 256 ||
				k.Comment != "alice@laptop" || k.PublicKey != strings.TrimSuffix(line, " alice@laptop") || k.CreatedAt == nil {
				t.Fatalf("added %v", k)
			}

			// The same key again, by anyone, is refused: a certificate must
			// know whose key it certifies.
			for _, tok := range []string{alice, bob} {
				_, err = h.users.AddSSHKey(ctx, req(&trellisv1.AddSSHKeyRequest{PublicKey: line}, tok))
				wantViolation(t, err, connect.CodeAlreadyExists, "public_key", "public_key.duplicate")
			}

			list := func(uid, tok string) []*trellisv1.SSHKey {
				t.Helper()
				resp, err := h.users.ListSSHKeys(ctx, req(&trellisv1.ListSSHKeysRequest{Uid: uid}, tok))
				if err != nil {
					t.Fatalf("list %s: %v", uid, err)
				}
				return resp.Msg.Keys
			}
			for _, who := range []struct{ uid, tok string }{{"", alice}, {"alice", alice}, {"alice", adminTok}} {
				if ks := list(who.uid, who.tok); len(ks) != 1 || ks[0].Fingerprint != fp {
					t.Fatalf("alice's keys listed as %v", ks)
				}
			}
			if ks := list("", bob); len(ks) != 0 {
				t.Fatalf("bob's keys: %v", ks)
			}
			// Another user neither sees nor removes alice's keys.
			_, err = h.users.ListSSHKeys(ctx, req(&trellisv1.ListSSHKeysRequest{Uid: "alice"}, bob))
			wantCode(t, err, connect.CodeNotFound)
			_, err = h.users.RemoveSSHKey(ctx, req(&trellisv1.RemoveSSHKeyRequest{Uid: "alice", Fingerprint: fp}, bob))
			wantCode(t, err, connect.CodeNotFound)
			_, err = h.users.RemoveSSHKey(ctx, req(&trellisv1.RemoveSSHKeyRequest{Fingerprint: fp}, bob))
			wantCode(t, err, connect.CodeNotFound)
			_, err = h.users.ListSSHKeys(ctx, req(&trellisv1.ListSSHKeysRequest{Uid: "nobody"}, adminTok))
			wantCode(t, err, connect.CodeNotFound)

			// A certificate for the registered key, signed by the
			// published authority, for alice only, 8 hours by default.
			caKey, caLine := h.caKey(t)
			before := time.Now()
			issued, err := h.auth.IssueSSHCertificate(ctx, req(&trellisv1.IssueSSHCertificateRequest{PublicKey: line}, alice))
			if err != nil {
				t.Fatal(err)
			}
			m := issued.Msg
			c := parseCert(t, m.Certificate)
			if c.CertType != ssh.UserCert || len(c.ValidPrincipals) != 1 || c.ValidPrincipals[0] != "alice" ||
				!bytes.Equal(c.Key.Marshal(), key.Marshal()) || !bytes.Equal(c.SignatureKey.Marshal(), caKey.Marshal()) {
				t.Fatalf("certificate %+v", c)
			}
			if window := time.Duration(c.ValidBefore-c.ValidAfter) * time.Second; window != 8*time.Hour+5*time.Minute {
				t.Errorf("validity window %v, want 8h plus 5m of clock skew", window)
			}
			if vb := time.Unix(int64(c.ValidBefore), 0); vb.Before(before.Add(8*time.Hour-time.Second)) || vb.After(time.Now().Add(8*time.Hour)) {
				t.Errorf("valid before %v, issued at %v", vb, before)
			}
			if m.Serial != c.Serial || m.KeyId != c.KeyId || m.KeyId != fmt.Sprintf("trellis:alice:%d", c.Serial) ||
				len(m.Principals) != 1 || m.Principals[0] != "alice" || m.Fingerprint != fp ||
				m.ValidAfter.AsTime().Unix() != int64(c.ValidAfter) || m.ValidBefore.AsTime().Unix() != int64(c.ValidBefore) {
				t.Errorf("response %v does not describe the certificate", m)
			}
			checker := &ssh.CertChecker{IsUserAuthority: func(k ssh.PublicKey) bool { return bytes.Equal(k.Marshal(), caKey.Marshal()) }}
			if err := checker.CheckCert("alice", c); err != nil {
				t.Errorf("a site trusting the CA refuses the certificate: %v", err)
			}
			if err := checker.CheckCert("bob", c); err == nil {
				t.Error("the certificate logs in as bob")
			}

			// A shorter validity on request; beyond the maximum refused.
			short, err := h.auth.IssueSSHCertificate(ctx, req(&trellisv1.IssueSSHCertificateRequest{PublicKey: line, Validity: durationpb.New(time.Hour)}, alice))
			if err != nil {
				t.Fatal(err)
			}
			if sc := parseCert(t, short.Msg.Certificate); time.Duration(sc.ValidBefore-sc.ValidAfter)*time.Second != time.Hour+5*time.Minute || sc.Serial == c.Serial {
				t.Errorf("1h certificate: %d..%d serial %d", sc.ValidAfter, sc.ValidBefore, sc.Serial)
			}
			_, err = h.auth.IssueSSHCertificate(ctx, req(&trellisv1.IssueSSHCertificateRequest{PublicKey: line, Validity: durationpb.New(25 * time.Hour)}, alice))
			wantViolation(t, err, connect.CodeInvalidArgument, "validity", "validity.max")
			_, err = h.auth.IssueSSHCertificate(ctx, req(&trellisv1.IssueSSHCertificateRequest{PublicKey: line, Validity: durationpb.New(0)}, alice))
			wantViolation(t, err, connect.CodeInvalidArgument, "validity", "validity.min")

			// Nobody gets a certificate for a key that is not theirs.
			_, err = h.auth.IssueSSHCertificate(ctx, req(&trellisv1.IssueSSHCertificateRequest{PublicKey: line}, bob))
			wantViolation(t, err, connect.CodeInvalidArgument, "public_key", "public_key.unregistered")
			_, stranger := newSSHKey(t, "")
			_, err = h.auth.IssueSSHCertificate(ctx, req(&trellisv1.IssueSSHCertificateRequest{PublicKey: stranger}, alice))
			wantViolation(t, err, connect.CodeInvalidArgument, "public_key", "public_key.unregistered")
			_, err = h.auth.IssueSSHCertificate(ctx, req(&trellisv1.IssueSSHCertificateRequest{PublicKey: line}, ""))
			wantCode(t, err, connect.CodeUnauthenticated)

			// Sites get the same line over plain HTTP.
			resp, err := h.http.Get(h.url + "/ssh/trusted-user-ca-keys")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(body) != caLine+"\n" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
				t.Errorf("GET /ssh/trusted-user-ca-keys: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}

			// The record names each issuance by fingerprint and serial, and
			// holds no key material.
			evs, _, err := h.srv.Service.Accounts.ListAuditEvents(ctx, operator, service.AuditQuery{Operation: "trellis.v1.Auth/IssueSSHCertificate"})
			if err != nil {
				t.Fatal(err)
			}
			var okDetails, refusals []string
			for _, e := range evs {
				if strings.Contains(e.Detail, "AAAA") || strings.Contains(e.Detail, key.Type()+" ") {
					t.Errorf("audit detail holds key material: %q", e.Detail)
				}
				if e.Outcome == "ok" {
					okDetails = append(okDetails, e.Detail)
				} else {
					refusals = append(refusals, e.Actor+" "+e.Outcome)
				}
			}
			if len(okDetails) != 2 || !strings.Contains(okDetails[1], "fingerprint="+fp) || !strings.Contains(okDetails[1], fmt.Sprintf("serial=%d", c.Serial)) {
				t.Errorf("issuances recorded as %q", okDetails)
			}
			if len(refusals) != 2 {
				t.Errorf("refused issuances recorded as %q, want bob's and alice's", refusals)
			}

			// Removing the key: certificates are no longer issued for it,
			// and another user may register it.
			if _, err := h.users.RemoveSSHKey(ctx, req(&trellisv1.RemoveSSHKeyRequest{Fingerprint: fp}, alice)); err != nil {
				t.Fatal(err)
			}
			if ks := list("", alice); len(ks) != 0 {
				t.Fatalf("after removal: %v", ks)
			}
			_, err = h.users.RemoveSSHKey(ctx, req(&trellisv1.RemoveSSHKeyRequest{Fingerprint: fp}, alice))
			wantCode(t, err, connect.CodeNotFound)
			_, err = h.auth.IssueSSHCertificate(ctx, req(&trellisv1.IssueSSHCertificateRequest{PublicKey: line}, alice))
			wantViolation(t, err, connect.CodeInvalidArgument, "public_key", "public_key.unregistered")
			if _, err := h.users.AddSSHKey(ctx, req(&trellisv1.AddSSHKeyRequest{PublicKey: line}, bob)); err != nil {
				t.Fatalf("bob adding the freed key: %v", err)
			}
			// An admin manages another account's keys.
			if _, err := h.users.RemoveSSHKey(ctx, req(&trellisv1.RemoveSSHKeyRequest{Uid: "bob", Fingerprint: fp}, adminTok)); err != nil {
				t.Fatalf("admin removing bob's key: %v", err)
			}
		})
	}
}

func TestSSHKeyBadInput(t *testing.T) {
	h := newHarness(t, sqlite)
	ctx := context.Background()
	alice := h.newUser("alice")
	weak, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	weakKey, _ := ssh.NewPublicKey(&weak.PublicKey)
	const private = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----\n"
	tests := []struct {
		name, key, rule string
	}{
		{"rsa 2048", string(ssh.MarshalAuthorizedKey(weakKey)), "public_key.weak"},
		{"dsa", dsaKey, "public_key.weak"},
		{"malformed", "ssh-ed25519 AAAAnot-a-key alice@laptop", "public_key.format"},
		{"empty", "", "public_key.required"},
		{"private key", private, "public_key.private_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.users.AddSSHKey(ctx, req(&trellisv1.AddSSHKeyRequest{PublicKey: tt.key}, alice))
			wantViolation(t, err, connect.CodeInvalidArgument, "public_key", tt.rule)
			if tt.rule == "public_key.private_key" && strings.Contains(err.Error(), "b3BlbnNzaC1rZXktdjEAAAAA") {
				t.Fatal("error echoes the private key")
			}
			// Certificates are refused for the same reasons.
			_, err = h.auth.IssueSSHCertificate(ctx, req(&trellisv1.IssueSSHCertificateRequest{PublicKey: tt.key}, alice))
			wantViolation(t, err, connect.CodeInvalidArgument, "public_key", tt.rule)
		})
	}
	// Several violations at once are reported together.
	_, err = h.auth.IssueSSHCertificate(ctx, req(&trellisv1.IssueSSHCertificateRequest{PublicKey: dsaKey, Validity: durationpb.New(48 * time.Hour)}, alice))
	if vs := violations(err); vs["public_key"] != "public_key.weak" || vs["validity"] != "validity.max" {
		t.Errorf("violations %v", vs)
	}
	for fp, rule := range map[string]string{"": "fingerprint.required", "md5:00:11": "fingerprint.format"} {
		_, err := h.users.RemoveSSHKey(ctx, req(&trellisv1.RemoveSSHKeyRequest{Fingerprint: fp}, alice))
		wantViolation(t, err, connect.CodeInvalidArgument, "fingerprint", rule)
	}
	// Nothing half-written.
	resp, err := h.users.ListSSHKeys(ctx, req(&trellisv1.ListSSHKeysRequest{}, alice))
	if err != nil || len(resp.Msg.Keys) != 0 {
		t.Fatalf("refused keys left %v (%v)", resp, err)
	}
}

func TestSSHCertificateValidityIsConfigurable(t *testing.T) {
	st := openStore(t, sqlite)
	h := newServer(t, st, func(c *app.Config) {
		c.Service.SSHCertValidity = 2 * time.Hour
		c.Service.SSHCertMaxValidity = 3 * time.Hour
	})
	ctx := context.Background()
	alice := h.newUser("alice")
	_, line := newSSHKey(t, "")
	if _, err := h.users.AddSSHKey(ctx, req(&trellisv1.AddSSHKeyRequest{PublicKey: line}, alice)); err != nil {
		t.Fatal(err)
	}
	resp, err := h.auth.IssueSSHCertificate(ctx, req(&trellisv1.IssueSSHCertificateRequest{PublicKey: line}, alice))
	if err != nil {
		t.Fatal(err)
	}
	if c := parseCert(t, resp.Msg.Certificate); time.Duration(c.ValidBefore-c.ValidAfter)*time.Second != 2*time.Hour+5*time.Minute {
		t.Errorf("window %ds, want the configured 2h plus 5m", c.ValidBefore-c.ValidAfter)
	}
	_, err = h.auth.IssueSSHCertificate(ctx, req(&trellisv1.IssueSSHCertificateRequest{PublicKey: line, Validity: durationpb.New(4 * time.Hour)}, alice))
	wantViolation(t, err, connect.CodeInvalidArgument, "validity", "validity.max")

	// Both replicas of one store share one authority.
	other := newServer(t, st)
	if _, a := h.caKey(t); func() string { _, b := other.caKey(t); return b }() != a {
		t.Error("replicas on one store publish different CAs")
	}

	// A default beyond the maximum is a configuration mistake.
	_, err = app.Build(ctx, app.Config{Listen: "127.0.0.1:0", Log: quietLog(), Service: service.Config{SSHCertValidity: 48 * time.Hour}}, st)
	if err == nil || !strings.Contains(err.Error(), "SSH certificate validity") {
		t.Errorf("Build with default > max: %v", err)
	}
}
