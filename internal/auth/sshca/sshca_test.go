package sshca_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/trellis-testbed/trellis/internal/auth/keys"
	"github.com/trellis-testbed/trellis/internal/auth/sshca"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
	"github.com/trellis-testbed/trellis/internal/store/sqlstore"
)

// dsaKey is a DSA public key (1024 bits, the only size there is); making
// one takes seconds, so it is fixed here.
const dsaKey = "ssh-dss AAAAB3NzaC1kc3MAAACBAJFyFwEHaZc8vwZJT470Q00JcA1HE9jQzRPAMCwgkdwObsQ0ncdjcuXohSD1TfQ2sYqXAkjlrbE49TT4YpyDNtrgZxQqwjswpJ5CSVjn4AQ6yx814PB475MEpmX3MdlQcOMp5UiWeB+AFRkBHc4eQ2dyx4UExPKwhn3Y+KDm/hbXAAAAFQCKpbrFe/JTlbbcS9K6DkrJAu02vQAAAIBQiLOc3SFdjVpestMSeMd0/A6miMADlXhrz4arBXQJMklJvAgCZPjB1I8S0NCeAQdsNGABRn8mdsWuOT3IhRVrD4ee6FzBJicpGNHKSg+39kJ+9PdFT8+VpqgxCp0Wy24OAwMhf+w32bZEcnwumbX7gi3NGsaaQKDwy9z/7y4M/wAAAIEAhLbkMervlGpMQmBWKRFjAxraTZRdl/HR9p6JmmJnLI2BSwEJD0TecilunjFclr1c8i/CaZJv6A+pAZBYo5s0vYymAhhZkTevpXfJNO5uDCPhTij87DynpEshmDzntV5F6jQjE3Zja/sR8wGGc/xihArvCwcEe2qmkTULIKSOyUk= old@box"

func authorizedKey(t *testing.T, pub crypto.PublicKey, comment string) string {
	t.Helper()
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) + " " + comment
}

// skKey builds a security-key public key line, which needs hardware to
// generate: its wire form is the plain key's plus the application string.
func skKey(t *testing.T, typ string, fields ...any) string {
	t.Helper()
	var b []byte
	b = append(b, ssh.Marshal(struct{ S string }{typ})...)
	for _, f := range fields {
		switch v := f.(type) {
		case string:
			b = append(b, ssh.Marshal(struct{ S string }{v})...)
		case []byte:
			b = append(b, ssh.Marshal(struct{ B []byte }{v})...)
		}
	}
	k, err := ssh.ParsePublicKey(b)
	if err != nil {
		t.Fatalf("building %s key: %v", typ, err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) + " yubikey"
}

var rsaKeys = sync.OnceValues(func() (*rsa.PrivateKey, *rsa.PrivateKey) {
	weak, err1 := rsa.GenerateKey(rand.Reader, 2048)
	strong, err2 := rsa.GenerateKey(rand.Reader, 3072)
	if err := errors.Join(err1, err2); err != nil {
		panic(err)
	}
	return weak, strong
})

func TestParseUserKey(t *testing.T) {
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	ec := func(c elliptic.Curve) *ecdsa.PublicKey {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return &k.PublicKey
	}
	p256, _ := ecdh.P256().GenerateKey(rand.Reader)
	weak, strong := rsaKeys()
	edLine := authorizedKey(t, edPub, "alice@laptop")
	edCert := func() string {
		signer, _ := ssh.NewSignerFromKey(ed25519.NewKeyFromSeed(make([]byte, 32)))
		k, _ := ssh.NewPublicKey(edPub)
		c := &ssh.Certificate{Key: k, CertType: ssh.UserCert, ValidPrincipals: []string{"alice"}, ValidBefore: ssh.CertTimeInfinity}
		if err := c.SignCert(rand.Reader, signer); err != nil {
			t.Fatal(err)
		}
		return string(ssh.MarshalAuthorizedKey(c))
	}()
	const private = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"

	tests := []struct {
		name     string
		line     string
		rule     string // "" when accepted
		typ      string
		bits     int
		comment  string
		dontEcho string // a part of the input the error must not repeat
	}{
		{"ed25519", edLine + "\n", "", ssh.KeyAlgoED25519, 256, "alice@laptop", ""},
		{"ed25519 without comment", authorizedKey(t, edPub, ""), "", ssh.KeyAlgoED25519, 256, "", ""},
		{"ecdsa p256", authorizedKey(t, ec(elliptic.P256()), "c"), "", ssh.KeyAlgoECDSA256, 256, "c", ""},
		{"ecdsa p384", authorizedKey(t, ec(elliptic.P384()), "c"), "", ssh.KeyAlgoECDSA384, 384, "c", ""},
		{"ecdsa p521", authorizedKey(t, ec(elliptic.P521()), "c"), "", ssh.KeyAlgoECDSA521, 521, "c", ""},
		{"rsa 3072", authorizedKey(t, &strong.PublicKey, "c"), "", ssh.KeyAlgoRSA, 3072, "c", ""},
		{"sk ed25519", skKey(t, ssh.KeyAlgoSKED25519, []byte(edPub), "ssh:"), "", ssh.KeyAlgoSKED25519, 256, "yubikey", ""},
		{"sk ecdsa", skKey(t, ssh.KeyAlgoSKECDSA256, "nistp256", p256.PublicKey().Bytes(), "ssh:"), "", ssh.KeyAlgoSKECDSA256, 256, "yubikey", ""},
		{"rsa 2048", authorizedKey(t, &weak.PublicKey, "c"), "public_key.weak", "", 0, "", ""},
		{"dsa", dsaKey, "public_key.weak", "", 0, "", ""},
		{"empty", "  \n", "public_key.required", "", 0, "", ""},
		{"malformed", "ssh-ed25519 this-is-not-base64 me", "public_key.format", "", 0, "", "this-is-not-base64"},
		{"unknown type", "ssh-foo AAAAB3NzaC1yc2E= me", "public_key.format", "", 0, "", ""},
		{"two keys", edLine + "\n" + edLine, "public_key.format", "", 0, "", ""},
		{"garbage before a key", "hello\n" + edLine, "public_key.format", "", 0, "", ""},
		{"private key", private, "public_key.private_key", "", 0, "", "b3BlbnNzaC1rZXktdjEAAAAA"},
		{"options", `command="/bin/sh" ` + edLine, "public_key.options", "", 0, "", ""},
		{"certificate", edCert, "public_key.certificate", "", 0, "", ""},
		{"control character in comment", authorizedKey(t, edPub, "a\x1b[31mb"), "public_key.comment", "", 0, "", ""},
		{"too long", "ssh-ed25519 " + strings.Repeat("A", 9000), "public_key.too_long", "", 0, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := sshca.ParseUserKey("public_key", tt.line)
			if tt.rule == "" {
				if err != nil {
					t.Fatal(err)
				}
				if k.Type != tt.typ || k.Bits != tt.bits || k.Comment != tt.comment {
					t.Errorf("got %s %d %q, want %s %d %q", k.Type, k.Bits, k.Comment, tt.typ, tt.bits, tt.comment)
				}
				if want := ssh.FingerprintSHA256(k.Key); k.Fingerprint != want || !strings.HasPrefix(want, "SHA256:") {
					t.Errorf("fingerprint %s, want %s", k.Fingerprint, want)
				}
				if err := sshca.CheckFingerprint("fingerprint", k.Fingerprint); err != nil {
					t.Errorf("its own fingerprint refused: %v", err)
				}
				// The stored form drops the comment and parses back.
				back, err := sshca.ParseUserKey("public_key", k.AuthorizedKey())
				if err != nil || back.Fingerprint != k.Fingerprint || back.Comment != "" {
					t.Errorf("AuthorizedKey %q does not round-trip: %v", k.AuthorizedKey(), err)
				}
				return
			}
			var de *domain.Error
			if !errors.As(err, &de) || de.Code != domain.CodeInvalidArgument || len(de.Violations) != 1 {
				t.Fatalf("err = %v, want one invalid-argument violation", err)
			}
			if v := de.Violations[0]; v.Field != "public_key" || v.Rule != tt.rule {
				t.Errorf("violation %s (%s), want public_key (%s): %s", v.Field, v.Rule, tt.rule, v.Description)
			}
			if tt.dontEcho != "" && strings.Contains(err.Error(), tt.dontEcho) {
				t.Errorf("error %q echoes the input", err)
			}
		})
	}
}

func TestCheckFingerprint(t *testing.T) {
	for fp, rule := range map[string]string{
		"":           "fingerprint.required",
		"MD5:aa:bb":  "fingerprint.format",
		"SHA256:abc": "fingerprint.format",
		"SHA256:" + strings.Repeat("A", 42) + "=": "fingerprint.format",
	} {
		var de *domain.Error
		if err := sshca.CheckFingerprint("fingerprint", fp); !errors.As(err, &de) || de.Violations[0].Rule != rule {
			t.Errorf("CheckFingerprint(%q) = %v, want %s", fp, err, rule)
		}
	}
}

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlstore.Open(t.Context(), filepath.Join(t.TempDir(), "trellis.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return st
}

func storedKey(t *testing.T, st store.Store) *store.Authority {
	t.Helper()
	var a *store.Authority
	err := st.View(t.Context(), func(tx store.Tx) (err error) {
		a, err = tx.Authorities().Get(t.Context(), store.AuthoritySSHUser)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestLoadKeepsOneAuthority(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	first, err := sshca.Load(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	line := first.TrustedUserCAKeys()
	if !strings.HasPrefix(line, "ssh-ed25519 AAAA") || !strings.HasSuffix(line, " trellis-user-ca") || strings.Contains(line, "\n") {
		t.Fatalf("TrustedUserCAKeys = %q", line)
	}
	if pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line)); err != nil || !bytes.Equal(pub.Marshal(), first.PublicKey().Marshal()) {
		t.Fatalf("the line does not parse back to the CA key: %v", err)
	}

	// A restart, and replicas starting at once, find the same key.
	var wg sync.WaitGroup
	lines := make([]string, 4)
	for i := range lines {
		wg.Go(func() {
			ca, err := sshca.Load(ctx, st, nil)
			if err != nil {
				t.Error(err)
				return
			}
			lines[i] = ca.TrustedUserCAKeys()
		})
	}
	wg.Wait()
	for _, l := range lines {
		if l != line {
			t.Errorf("reloaded CA %q, want %q", l, line)
		}
	}

	// Configuring a key-encryption key seals the stored key on next start;
	// the CA stays the same, and only that key opens it.
	if !bytes.HasPrefix(storedKey(t, st).PrivateKey, []byte("plain:")) {
		t.Fatal("without a key-encryption key the CA key should be stored plain")
	}
	kek := bytes.Repeat([]byte{7}, keys.KEKSize)
	sealer, _ := keys.NewAESGCM(kek)
	sealed, err := sshca.Load(ctx, st, sealer)
	if err != nil {
		t.Fatal(err)
	}
	if sealed.TrustedUserCAKeys() != line {
		t.Error("sealing changed the CA")
	}
	stored := storedKey(t, st)
	if !bytes.HasPrefix(stored.PrivateKey, []byte("aesgcm1:")) {
		t.Errorf("CA key not sealed: %q…", stored.PrivateKey[:8])
	}
	other, _ := keys.NewAESGCM(bytes.Repeat([]byte{8}, keys.KEKSize))
	if _, err := sshca.Load(ctx, st, other); !errors.Is(err, keys.ErrWrongKEK) {
		t.Errorf("Load with the wrong key-encryption key: %v", err)
	}
	if _, err := sshca.Load(ctx, st, nil); !errors.Is(err, keys.ErrEncrypted) {
		t.Errorf("Load without the key-encryption key: %v", err)
	}
}

func TestLoadSealsNewAuthority(t *testing.T) {
	st := openStore(t)
	sealer, _ := keys.NewAESGCM(bytes.Repeat([]byte{1}, keys.KEKSize))
	if _, err := sshca.Load(t.Context(), st, sealer); err != nil {
		t.Fatal(err)
	}
	if a := storedKey(t, st); !bytes.HasPrefix(a.PrivateKey, []byte("aesgcm1:")) || a.Algorithm != ssh.KeyAlgoED25519 {
		t.Errorf("stored %s key %q…", a.Algorithm, a.PrivateKey[:8])
	}
}

func TestSign(t *testing.T) {
	ca, err := sshca.Load(t.Context(), openStore(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	key, _ := ssh.NewPublicKey(edPub)
	now := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
	serial := sshca.NewSerial()
	cert, err := ca.Sign(sshca.Request{Key: key, UID: "alice", Serial: serial, Now: now, Validity: 8 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}

	// What a site sees: parse the file content and check it as sshd does.
	parsed, _, _, _, err := ssh.ParseAuthorizedKey([]byte(sshca.MarshalCertificate(cert)))
	if err != nil {
		t.Fatal(err)
	}
	c, ok := parsed.(*ssh.Certificate)
	if !ok {
		t.Fatalf("parsed a %T", parsed)
	}
	if c.CertType != ssh.UserCert || c.Serial != serial || c.KeyId != sshca.KeyID("alice", serial) ||
		len(c.ValidPrincipals) != 1 || c.ValidPrincipals[0] != "alice" {
		t.Errorf("certificate %+v", c)
	}
	if !bytes.Equal(c.Key.Marshal(), key.Marshal()) {
		t.Error("the certificate certifies another key")
	}
	if got, want := time.Unix(int64(c.ValidAfter), 0), now.Add(-sshca.ClockSkew); !got.Equal(want) {
		t.Errorf("valid after %v, want %v", got, want)
	}
	if got, want := time.Unix(int64(c.ValidBefore), 0), now.Add(8*time.Hour); !got.Equal(want) {
		t.Errorf("valid before %v, want %v", got, want)
	}
	for _, ext := range []string{"permit-pty", "permit-port-forwarding", "permit-agent-forwarding", "permit-X11-forwarding", "permit-user-rc"} {
		if _, ok := c.Extensions[ext]; !ok {
			t.Errorf("extension %s missing", ext)
		}
	}
	if len(c.CriticalOptions) != 0 {
		t.Errorf("critical options %v", c.CriticalOptions)
	}
	checker := &ssh.CertChecker{
		IsUserAuthority: func(auth ssh.PublicKey) bool { return bytes.Equal(auth.Marshal(), ca.PublicKey().Marshal()) },
		Clock:           func() time.Time { return now.Add(time.Hour) },
	}
	if err := checker.CheckCert("alice", c); err != nil {
		t.Errorf("a site refuses the certificate: %v", err)
	}
	if err := checker.CheckCert("bob", c); err == nil {
		t.Error("the certificate logs in as bob")
	}
	checker.Clock = func() time.Time { return now.Add(9 * time.Hour) }
	if err := checker.CheckCert("alice", c); err == nil {
		t.Error("an expired certificate passes")
	}
	if a, b := sshca.NewSerial(), sshca.NewSerial(); a == 0 || a == b {
		t.Errorf("serials %d, %d", a, b)
	}
}
