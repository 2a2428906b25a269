package cli

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// savedClientCert presents, over mutual TLS, the client certificate that
// `trellis cert get` saved in the config directory, so that a server that
// bound it to a session knows the caller without a token. The files are
// read at each TLS handshake (a few per command), so a certificate saved
// meanwhile counts. No certificate is presented when there is none, when it
// is not valid now (an expired one would fail the handshake, and with it
// calls that carry a token), or when the server does not ask for one of
// its authority (another server's CA).
type savedClientCert struct {
	dir  string
	now  func() time.Time
	warn io.Writer

	once sync.Once // warns of an unreadable pair once
}

// present reports whether the config directory holds a certificate and
// key to present.
func (s *savedClientCert) present() bool {
	for _, name := range []string{certFileName, keyFileName} {
		if _, err := os.Stat(filepath.Join(s.dir, name)); err != nil {
			return false
		}
	}
	return true
}

// get implements tls.Config.GetClientCertificate. An empty certificate
// means "none": the handshake goes on without one.
func (s *savedClientCert) get(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
	none := &tls.Certificate{}
	certPath, keyPath := filepath.Join(s.dir, certFileName), filepath.Join(s.dir, keyFileName)
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		return none, nil
	}
	if err != nil {
		// A damaged pair must not stop calls that carry a token: say so
		// and go on without it.
		s.once.Do(func() {
			fmt.Fprintf(s.warn, "warning: not presenting the client certificate in %s: %v (get a new one with trellis cert get UID)\n", s.dir, err)
		})
		return none, nil
	}
	if now := s.now(); pair.Leaf == nil || now.Before(pair.Leaf.NotBefore) || now.After(pair.Leaf.NotAfter) {
		return none, nil
	}
	if cri.SupportsCertificate(&pair) != nil {
		return none, nil
	}
	return &pair, nil
}

// withClientCert returns rt presenting the saved client certificate to an
// https server; rt itself otherwise. rt is the default transport or one
// that roundTripper built.
func (a *app) withClientCert(rt http.RoundTripper, dir, server string) (http.RoundTripper, *savedClientCert) {
	u, err := url.Parse(server)
	if err != nil || u.Scheme != "https" {
		return rt, nil
	}
	base, ok := rt.(*http.Transport)
	if !ok {
		return rt, nil
	}
	sc := &savedClientCert{dir: dir, now: a.now, warn: a.streams.Err}
	t := base.Clone()
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	t.TLSClientConfig.GetClientCertificate = sc.get
	return t, sc
}
