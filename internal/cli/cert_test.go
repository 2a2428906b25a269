package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeClientCertificate is what the fake server issues for a login with
// issue_client_certificate: a self-signed certificate for uid and its key.
func fakeClientCertificate(uid string) (certPEM, keyPEM string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(0xbeef),
		Subject:      pkix.Name{CommonName: uid},
		NotBefore:    time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
		NotAfter:     time.Date(2030, 1, 3, 3, 4, 5, 0, time.UTC),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	kb, _ := x509.MarshalPKCS8PrivateKey(key)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}))
}

func TestCertGetShow(t *testing.T) {
	e := newEnv(t)
	r := e.run(fakePassword+"\n", "cert", "get", "alice", "--password-stdin")
	if r.code != 0 {
		t.Fatalf("cert get: code %d, stderr %q", r.code, r.err)
	}
	certPath, keyPath := filepath.Join(e.dir, certFileName), filepath.Join(e.dir, keyFileName)
	if r.out != "Certificate: "+certPath+"\nKey: "+keyPath+"\n" {
		t.Errorf("stdout = %q", r.out)
	}
	for _, p := range []string{certPath, keyPath, filepath.Join(e.dir, credentialsFileName)} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", p, fi.Mode().Perm())
		}
	}
	r = e.run("", "cert", "show")
	if r.code != 0 {
		t.Fatalf("cert show: code %d, stderr %q", r.code, r.err)
	}
	for _, want := range []string{"Subject:     CN=alice", "Serial:      beef", "Valid:       2030-01-02 03:04:05Z to 2030-01-03 03:04:05Z", "SHA-256:     "} {
		if !strings.Contains(r.out, want) {
			t.Errorf("cert show does not say %q:\n%s", want, r.out)
		}
	}
	if r := e.run("", "--config-dir", t.TempDir(), "cert", "show"); r.code == 0 || !strings.Contains(r.err, "trellis cert get") {
		t.Errorf("cert show without a certificate: code %d, stderr %q", r.code, r.err)
	}
}
