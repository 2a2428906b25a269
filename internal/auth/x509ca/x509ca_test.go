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

func pemPool(t *testing.T, bundle []byte) *x509.CertPool {
	t.Helper()
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(bundle) {
		t.Fatal("no certificate in the bundle")
	}
	return p
}

func rotate(t *testing.T, st store.Store, ca *x509ca.CA) {
	t.Helper()
	if err := st.Update(t.Context(), func(tx store.Tx) error {
		_, err := ca.Rotate(t.Context(), tx)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if changed, err := ca.Reload(t.Context()); err != nil || !changed {
		t.Fatalf("Reload after Rotate: changed %v, %v", changed, err)
	}
}

// TestRotate: the next root is published ahead, so a client whose CA
// bundle predates the rotation trusts what the new root issues, and
// certificates of the replaced root keep verifying for the overlap.
func TestRotate(t *testing.T) {
	st := openStore(t)
	ca, err := x509ca.Load(t.Context(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	replica, err := x509ca.Load(t.Context(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	oldRoot, oldRoots := ca.Certificate(), ca.Roots()
	if len(oldRoots) != 2 || !replica.Certificate().Equal(oldRoot) || !replica.Roots()[1].Equal(oldRoots[1]) {
		t.Fatalf("before rotation: roots %d, replicas disagree", len(oldRoots))
	}
	bundleBefore := ca.CertificatePEM()
	clientBefore, _ := ca.IssueClient("alice")

	rotate(t, st, ca)
	if !ca.Certificate().Equal(oldRoots[1]) {
		t.Fatal("the published next root does not issue after the rotation")
	}
	roots := ca.Roots()
	if len(roots) != 3 || !roots[2].Equal(oldRoot) || roots[1].Equal(oldRoots[1]) || roots[0].Subject.CommonName == oldRoot.Subject.CommonName {
		t.Fatalf("after rotation: %d roots", len(roots))
	}
	server, _ := ca.IssueServer([]string{"trellis.example.org"})
	client, _ := ca.IssueClient("alice")
	// A client whose bundle was fetched before trusts the new server
	// certificate; the server trusts old and new client certificates.
	if _, err := server.Cert.Verify(x509.VerifyOptions{Roots: pemPool(t, bundleBefore), DNSName: "trellis.example.org"}); err != nil {
		t.Errorf("server certificate against the bundle from before the rotation: %v", err)
	}
	for name, c := range map[string]*x509.Certificate{"before": clientBefore.Cert, "after": client.Cert} {
		if _, err := c.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil || !ca.Issuer(c) {
			t.Errorf("client certificate issued %s the rotation: %v", name, err)
		}
	}
	// The other replica trusts the new root's certificates before it has
	// reloaded (the next root is in its pool), and issues with it after.
	if _, err := client.Cert.Verify(x509.VerifyOptions{Roots: replica.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("replica before reloading: %v", err)
	}
	if changed, err := replica.Reload(t.Context()); err != nil || !changed || !replica.Certificate().Equal(ca.Certificate()) {
		t.Errorf("replica after reloading: changed %v, %v", changed, err)
	}
	if changed, _ := replica.Reload(t.Context()); changed {
		t.Error("a second reload reports a change")
	}

	// After the overlap the replaced root is trusted no more.
	later := ca.WithClock(func() time.Time { return time.Now().Add(x509ca.PreviousTrust + time.Minute) })
	if len(later.Roots()) != 2 || later.Issuer(clientBefore.Cert) {
		t.Errorf("after the overlap: %d roots, old certificates accepted %v", len(later.Roots()), later.Issuer(clientBefore.Cert))
	}
	// A second rotation drops the first root at once.
	rotate(t, st, ca)
	if ca.Issuer(clientBefore.Cert) || !ca.Issuer(client.Cert) {
		t.Error("second rotation: the first root's certificates accepted, or the second's refused")
	}
}
