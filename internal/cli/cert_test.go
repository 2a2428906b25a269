package cli

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/app/apptest"
)

func TestCertGetShow(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	srv.NewUser(t, "alice")
	e := newEnv(t, srv)
	r := e.run(apptest.Password+"\n", "cert", "get", "alice", "--password-stdin")
	if r.code != 0 {
		t.Fatalf("cert get: code %d, stderr %q", r.code, r.err)
	}
	certPath, keyPath := filepath.Join(e.dir, certFileName), filepath.Join(e.dir, keyFileName)
	if r.out != "Certificate: "+certPath+"\nKey: "+keyPath+"\n" {
		t.Errorf("stdout = %q", r.out)
	}
	for _, p := range []string{certPath, keyPath, e.credentialsPath()} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", p, fi.Mode().Perm())
		}
	}
	// The session's tokens are saved as by login.
	if got := whoAmI(t, srv, e.credentials().AccessToken); got != "alice" {
		t.Errorf("the saved token stands for %q", got)
	}

	// The certificate is one the server's CA issued for client
	// authentication.
	b, err := os.ReadFile(certPath)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	ca := must(srv.Clients("").Info.GetServerCertificate(bg, req(&trellisv1.GetServerCertificateRequest{})))(t)
	if !roots.AppendCertsFromPEM([]byte(ca.GetCaCertificatePem())) {
		t.Fatal("the server publishes no CA certificate")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the saved certificate does not verify against the server's CA: %v", err)
	}

	r = e.run("", "cert", "show")
	if r.code != 0 {
		t.Fatalf("cert show: code %d, stderr %q", r.code, r.err)
	}
	sum := sha256.Sum256(leaf.Raw)
	for _, want := range []string{
		"Subject:     " + leaf.Subject.String() + "\n",
		"Serial:      " + leaf.SerialNumber.Text(16) + "\n",
		"Valid:       " + leaf.NotBefore.UTC().Format("2006-01-02 15:04:05Z") + " to " + leaf.NotAfter.UTC().Format("2006-01-02 15:04:05Z") + "\n",
		"SHA-256:     " + hex.EncodeToString(sum[:]) + "\n",
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("cert show does not say %q:\n%s", want, r.out)
		}
	}
	if !strings.Contains(leaf.Subject.String(), "alice") {
		t.Errorf("subject %q does not name alice", leaf.Subject)
	}
	if r := e.run("", "--config-dir", t.TempDir(), "cert", "show"); r.code == 0 || !strings.Contains(r.err, "trellis cert get") {
		t.Errorf("cert show without a certificate: code %d, stderr %q", r.code, r.err)
	}
}
