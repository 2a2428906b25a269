package cli

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSignedClientCertificate is a certificate for uid and its key, the
// kind of pair `trellis cert get` saves, with fixed validity dates.
func selfSignedClientCertificate(uid string) (certPEM, keyPEM string) {
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

func TestSavedClientCert(t *testing.T) {
	certPEM, keyPEM := selfSignedClientCertificate("alice") // valid 2030-01-02 03:04:05 to 2030-01-03 03:04:05
	block, _ := pem.Decode([]byte(certPEM))
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	// The server asks for a certificate of the CA that issued it (the fake
	// one is self-signed).
	ours := &tls.CertificateRequestInfo{AcceptableCAs: [][]byte{leaf.RawIssuer}, SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256}, Version: tls.VersionTLS13}
	others := &tls.CertificateRequestInfo{AcceptableCAs: [][]byte{[]byte("another CA")}, SignatureSchemes: ours.SignatureSchemes, Version: tls.VersionTLS13}
	valid := time.Date(2030, 1, 2, 12, 0, 0, 0, time.UTC)

	tests := []struct {
		name      string
		cert, key string
		now       time.Time
		cri       *tls.CertificateRequestInfo
		presented bool
		warns     bool
	}{
		{"saved", certPEM, keyPEM, valid, ours, true, false},
		{"none saved", "", "", valid, ours, false, false},
		{"expired", certPEM, keyPEM, valid.Add(48 * time.Hour), ours, false, false},
		{"not yet valid", certPEM, keyPEM, valid.Add(-48 * time.Hour), ours, false, false},
		{"another server's CA", certPEM, keyPEM, valid, others, false, false},
		{"damaged", certPEM, "not a key", valid, ours, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.cert != "" {
				_ = os.WriteFile(filepath.Join(dir, certFileName), []byte(tt.cert), 0o600)
				_ = os.WriteFile(filepath.Join(dir, keyFileName), []byte(tt.key), 0o600)
			}
			var warn bytes.Buffer
			s := &savedClientCert{dir: dir, now: func() time.Time { return tt.now }, warn: &warn}
			if s.present() != (tt.cert != "") {
				t.Errorf("present = %v", s.present())
			}
			c, err := s.get(tt.cri)
			if err != nil {
				t.Fatalf("get: %v (must never fail the handshake)", err)
			}
			if got := len(c.Certificate) > 0; got != tt.presented {
				t.Fatalf("presented = %v, want %v", got, tt.presented)
			}
			if got := warn.Len() > 0; got != tt.warns {
				t.Errorf("warning %q", warn.String())
			}
			if strings.Contains(warn.String(), "PRIVATE KEY") {
				t.Errorf("warning shows the key: %q", warn.String())
			}
		})
	}
}

func TestClientCertOnlyOverHTTPS(t *testing.T) {
	a := &app{now: time.Now, streams: Streams{Err: &bytes.Buffer{}}}
	if rt, sc := a.withClientCert(http.DefaultTransport, t.TempDir(), "http://127.0.0.1:7700"); sc != nil || rt != http.DefaultTransport {
		t.Error("a plain HTTP server is offered a client certificate")
	}
	rt, sc := a.withClientCert(http.DefaultTransport, t.TempDir(), "https://trellis.example.org")
	if sc == nil || rt.(*http.Transport).TLSClientConfig.GetClientCertificate == nil {
		t.Fatal("an https server is not offered the client certificate")
	}
	if c := http.DefaultTransport.(*http.Transport).TLSClientConfig; c != nil && c.GetClientCertificate != nil {
		t.Error("the default transport was changed")
	}
}
