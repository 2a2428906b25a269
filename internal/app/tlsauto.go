package app

import (
	"bytes"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"net"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trellis-testbed/trellis/internal/auth/x509ca"
)

// tlsCipherSuites are the TLS 1.2 suites the server accepts: forward
// secret (ECDHE) and authenticated encryption (AES-GCM, ChaCha20-Poly1305)
// only, no CBC. TLS 1.3's suites are all of that kind, and Go does not let
// them be configured.
var tlsCipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// tlsConfig is how the server speaks TLS: TLS 1.2 with tlsCipherSuites or
// TLS 1.3; its certificate (the operator's files, or one the Trellis CA
// issues with --tls-auto); and client certificates verified against the
// Trellis CA when a client offers one, so that one of another authority,
// or an expired one, fails the handshake.
func tlsConfig(cfg Config, ca *x509ca.CA) (*tls.Config, func() []byte, error) {
	c := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: tlsCipherSuites,
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    ca.Pool(),
	}
	// The trusted roots change with a rotation (and when the replaced
	// root's overlap ends): each handshake verifies against the current
	// ones, through a config rebuilt only when they change.
	var current atomic.Pointer[tls.Config]
	c.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		pool := ca.Pool()
		if cur := current.Load(); cur != nil && cur.ClientCAs == pool {
			return cur, nil
		}
		cp := c.Clone()
		cp.ClientCAs, cp.GetConfigForClient = pool, nil
		current.Store(cp)
		return cp, nil
	}
	if cfg.TLSAuto {
		a := &autoCert{ca: ca, hosts: autoHosts(cfg.Listen, cfg.PublicURL)}
		if _, err := a.get(); err != nil {
			return nil, nil, err
		}
		c.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return a.get() }
		return c, a.chainPEM, nil
	}
	pair, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return nil, nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	c.Certificates = []tls.Certificate{pair}
	var chain []byte
	for _, der := range pair.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	return c, func() []byte { return chain }, nil
}

// autoHosts are the names a --tls-auto certificate is valid for: the
// listen host (or this machine's name when listening on every address),
// the public URL's host, and loopback.
func autoHosts(listen, publicURL string) []string {
	var hosts []string
	add := func(h string) {
		if h == "" {
			return
		}
		if ip := net.ParseIP(h); ip != nil && ip.IsUnspecified() {
			if name, err := os.Hostname(); err == nil {
				h = name
			} else {
				return
			}
		}
		for _, x := range hosts {
			if x == h {
				return
			}
		}
		hosts = append(hosts, h)
	}
	if h, _, err := net.SplitHostPort(listen); err == nil {
		if h == "" {
			h = "0.0.0.0"
		}
		add(h)
	}
	if u, err := url.Parse(publicURL); err == nil {
		add(u.Hostname())
	}
	add("localhost")
	add("127.0.0.1")
	add("::1")
	return hosts
}

// autoCert is the --tls-auto certificate, issued again once two thirds of
// its life have passed, or at once when the CA's issuing root changed (a
// rotation: clients that fetched the CA bundle before it trust the new
// root already).
type autoCert struct {
	ca    *x509ca.CA
	hosts []string

	mu      sync.Mutex
	cur     *x509ca.Issued
	renewAt time.Time
}

func (a *autoCert) get() (*tls.Certificate, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cur == nil || !time.Now().Before(a.renewAt) || !bytes.Equal(a.cur.Cert.RawIssuer, a.ca.Certificate().RawSubject) {
		iss, err := a.ca.IssueServer(a.hosts)
		if err != nil {
			if a.cur != nil {
				return &a.cur.TLS, nil // still valid for a third of its life
			}
			return nil, err
		}
		a.cur = iss
		a.renewAt = iss.Cert.NotBefore.Add(iss.Cert.NotAfter.Sub(iss.Cert.NotBefore) * 2 / 3)
	}
	return &a.cur.TLS, nil
}

func (a *autoCert) chainPEM() []byte {
	if _, err := a.get(); err != nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cur.CertPEM
}
