package x509ca_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/auth/keys"
	"github.com/trellis-testbed/trellis/internal/auth/x509ca"
	"github.com/trellis-testbed/trellis/internal/store"
	"github.com/trellis-testbed/trellis/internal/store/sqlstore"
)

func openStore(t testing.TB) store.Store {
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

func stored(t *testing.T, st store.Store) *store.Authority {
	t.Helper()
	var a *store.Authority
	if err := st.View(t.Context(), func(tx store.Tx) (err error) {
		a, err = tx.Authorities().Get(t.Context(), store.AuthorityX509)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestLoadKeepsOneAuthority(t *testing.T) {
	st := openStore(t)
	first, err := x509ca.Load(t.Context(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	root := first.Certificate()
	if !root.IsCA || root.Subject.CommonName != "Trellis CA" || root.NotAfter.Sub(root.NotBefore) < 9*365*24*time.Hour {
		t.Errorf("root: CA %v, subject %q, valid %s to %s", root.IsCA, root.Subject.CommonName, root.NotBefore, root.NotAfter)
	}
	if root.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("root key %v", root.PublicKeyAlgorithm)
	}
	// A restart, and replicas starting at once, find the same root.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			ca, err := x509ca.Load(t.Context(), st, nil)
			if err != nil {
				t.Error(err)
				return
			}
			if !ca.Certificate().Equal(root) {
				t.Error("a second Load made another root")
			}
		})
	}
	wg.Wait()
}

func TestLoadSealsAndReseals(t *testing.T) {
	st := openStore(t)
	if _, err := x509ca.Load(t.Context(), st, nil); err != nil {
		t.Fatal(err)
	}
	if a := stored(t, st); !bytes.HasPrefix(a.PrivateKey, []byte("plain:")) || a.Algorithm != x509ca.Algorithm {
		t.Fatalf("stored %s key %q…", a.Algorithm, a.PrivateKey[:6])
	}
	sealer, _ := keys.NewAESGCM(bytes.Repeat([]byte{1}, keys.KEKSize))
	if _, err := x509ca.Load(t.Context(), st, sealer); err != nil {
		t.Fatal(err)
	}
	if a := stored(t, st); !bytes.HasPrefix(a.PrivateKey, []byte("aesgcm1:")) {
		t.Errorf("key not sealed once a KEK is configured: %q…", a.PrivateKey[:8])
	}
	other, _ := keys.NewAESGCM(bytes.Repeat([]byte{2}, keys.KEKSize))
	if _, err := x509ca.Load(t.Context(), st, other); err == nil {
		t.Error("opened with the wrong key-encryption key")
	}
}

func TestIssue(t *testing.T) {
	ca, err := x509ca.Load(t.Context(), openStore(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := ca.IssueClient("alice")
	if err != nil {
		t.Fatal(err)
	}
	c := cl.Cert
	if c.Subject.CommonName != "alice" || c.NotAfter.Sub(c.NotBefore) != x509ca.ClientValidity+x509ca.ClockSkew ||
		len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth || c.IsCA {
		t.Errorf("client certificate: %q, %s to %s, %v", c.Subject.CommonName, c.NotBefore, c.NotAfter, c.ExtKeyUsage)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate does not verify: %v", err)
	}
	if _, err := tls.X509KeyPair(cl.CertPEM, cl.KeyPEM); err != nil {
		t.Errorf("PEM pair: %v", err)
	}
	if !ca.Issuer(c) {
		t.Error("Issuer denies its own certificate")
	}
	again, _ := ca.IssueClient("alice")
	if again.Cert.SerialNumber.Cmp(c.SerialNumber) == 0 || x509ca.Fingerprint(again.Cert) == x509ca.Fingerprint(c) || len(x509ca.Fingerprint(c)) != 64 {
		t.Error("two certificates share a serial or a fingerprint")
	}

	sv, err := ca.IssueServer([]string{"trellis.example.org", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"trellis.example.org", "127.0.0.1"} {
		if _, err := sv.Cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: host}); err != nil {
			t.Errorf("server certificate for %s: %v", host, err)
		}
	}
	if _, err := sv.Cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "other.example.org"}); err == nil {
		t.Error("server certificate valid for a host it does not name")
	}
	if d := sv.Cert.NotAfter.Sub(sv.Cert.NotBefore); d != x509ca.ServerValidity+x509ca.ClockSkew {
		t.Errorf("server certificate valid %s", d)
	}

	// Another authority's certificate is not this one's.
	other, _ := x509ca.Load(t.Context(), openStore(t), nil)
	foreign, _ := other.IssueClient("alice")
	if ca.Issuer(foreign.Cert) {
		t.Error("Issuer accepts another CA's certificate")
	}
	if _, err := foreign.Cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("another CA's certificate verifies")
	}
	// An expired one fails verification.
	old, _ := ca.WithClock(func() time.Time { return time.Now().Add(-48 * time.Hour) }).IssueClient("alice")
	if _, err := old.Cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("an expired certificate verifies")
	}
}

// BenchmarkIssueClient measures certificate issuance: a fresh P-256 key and
// the CA's signature, what each login asking for a certificate costs.
func BenchmarkIssueClient(b *testing.B) {
	ca, err := x509ca.Load(b.Context(), openStore(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := ca.IssueClient("alice"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "certs/s")
}
