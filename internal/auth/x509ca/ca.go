// Package x509ca is Trellis's X.509 certificate authority. It issues the
// server's TLS certificate when the operator gives none (serve --tls-auto)
// and short-lived client certificates that, once bound to a login session,
// authenticate requests over mutual TLS.
//
// The authority is an ECDSA P-256 key with a self-signed root certificate
// (10 years, "Trellis CA"), created on first start and kept in the store's
// Authorities, its private key sealed with the key-encryption key like the
// SSH CA's. Replicas that start at once agree on one.
//
// Rotation (not automated yet): an operator would store a new authority
// and keep the old root in the trust pool until the last certificate it
// issued expires (24 hours for clients, 90 days for servers); Pool is the
// one place that would hold both roots.
package x509ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"

	"github.com/trellis-testbed/trellis/internal/auth/keys"
	"github.com/trellis-testbed/trellis/internal/store"
)

// Algorithm tags the stored authority: PublicKey holds the root
// certificate (DER), PrivateKey the sealed PKCS #8 key.
const Algorithm = "x509-ecdsa-p256"

// Validity of what the authority issues.
const (
	RootValidity   = 10 * 365 * 24 * time.Hour
	ServerValidity = 90 * 24 * time.Hour
	ClientValidity = 24 * time.Hour
	// ClockSkew backdates every certificate, so a peer whose clock runs a
	// little behind accepts it at once.
	ClockSkew = 5 * time.Minute
)

// UnboundCN is the subject of a client certificate issued to nobody
// (ApiInfo.GetClientCertificate): it authenticates nothing until a login
// made with it binds it to the session.
const UnboundCN = "unbound"

// CA issues X.509 certificates. It is safe for concurrent use.
type CA struct {
	root *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
	now  func() time.Time
}

// Load returns the X.509 CA kept in st, creating it on first start. A key
// stored in plain before a key-encryption key was configured is sealed on
// the way.
func Load(ctx context.Context, st store.Store, sealer keys.Sealer) (*CA, error) {
	if sealer == nil {
		sealer = keys.Plain()
	}
	a, err := keys.LoadAuthority(ctx, st, sealer, store.AuthorityX509, func() (*store.Authority, error) { return newAuthority(sealer, time.Now()) })
	if err != nil {
		return nil, fmt.Errorf("x509ca: loading the X.509 CA: %w", err)
	}
	return open(a, sealer)
}

func newAuthority(sealer keys.Sealer, now time.Time) (*store.Authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the X.509 CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(),
		Subject:               pkix.Name{CommonName: "Trellis CA", Organization: []string{"Trellis"}},
		NotBefore:             now.Add(-ClockSkew),
		NotAfter:              now.Add(RootValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("signing the X.509 CA certificate: %w", err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	defer clear(pk)
	sealed, err := sealer.Seal(pk)
	if err != nil {
		return nil, fmt.Errorf("sealing the X.509 CA key: %w", err)
	}
	return &store.Authority{
		Name: store.AuthorityX509, Algorithm: Algorithm,
		PublicKey: der, PrivateKey: sealed, CreatedAt: now,
	}, nil
}

// open decodes a stored authority; it checks that the private key matches
// the root certificate that clients trust.
func open(a *store.Authority, sealer keys.Sealer) (*CA, error) {
	if a.Algorithm != Algorithm {
		return nil, fmt.Errorf("x509ca: the X.509 CA key is of type %q, which this release cannot use", a.Algorithm)
	}
	root, err := x509.ParseCertificate(a.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("x509ca: parsing the X.509 CA certificate: %w", err)
	}
	der, err := sealer.Open(a.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("x509ca: opening the X.509 CA key: %w", err)
	}
	defer clear(der)
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("x509ca: opening the X.509 CA key: %w", err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(root.PublicKey) {
		return nil, errors.New("x509ca: opening the X.509 CA key: the private key does not match the CA certificate")
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	return &CA{root: root, key: key, pool: pool, now: time.Now}, nil
}

// WithClock returns the authority issuing as if the time were now(): tests
// use it to make certificates that are already expired.
func (c *CA) WithClock(now func() time.Time) *CA {
	cp := *c
	cp.now = now
	return &cp
}

// Certificate returns the root certificate.
func (c *CA) Certificate() *x509.Certificate { return c.root }

// CertificatePEM returns the root certificate in PEM.
func (c *CA) CertificatePEM() []byte { return encodeCert(c.root.Raw) }

// Pool returns the roots a peer's certificate must chain to: servers use
// it as tls.Config.ClientCAs, clients as RootCAs.
func (c *CA) Pool() *x509.CertPool { return c.pool }

// Issued is a certificate with its fresh private key.
type Issued struct {
	Cert    *x509.Certificate
	CertPEM []byte // the certificate, then the CA certificate
	KeyPEM  []byte // PKCS #8, "PRIVATE KEY"
	// TLS is the same pair ready for tls.Config.
	TLS tls.Certificate
}

// IssueServer issues a TLS server certificate for hosts (DNS names or IP
// addresses), valid for ServerValidity.
func (c *CA) IssueServer(hosts []string) (*Issued, error) {
	if len(hosts) == 0 {
		return nil, errors.New("x509ca: a server certificate needs a host name")
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: hosts[0]},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return c.issue(tmpl, ServerValidity)
}

// IssueClient issues a client certificate for a fresh key, valid for
// ClientValidity; cn is the uid it is issued to, or UnboundCN.
func (c *CA) IssueClient(cn string) (*Issued, error) {
	if cn == "" {
		return nil, errors.New("x509ca: a client certificate needs a subject")
	}
	return c.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: cn, Organization: []string{"Trellis"}},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ClientValidity)
}

func (c *CA) issue(tmpl *x509.Certificate, validity time.Duration) (*Issued, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("x509ca: generating a key: %w", err)
	}
	now := c.now()
	tmpl.SerialNumber = newSerial()
	tmpl.NotBefore = now.Add(-ClockSkew)
	tmpl.NotAfter = now.Add(validity)
	if tmpl.NotAfter.After(c.root.NotAfter) {
		tmpl.NotAfter = c.root.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.root, &key.PublicKey, c.key)
	if err != nil {
		return nil, fmt.Errorf("x509ca: signing a certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &Issued{
		Cert:    cert,
		CertPEM: append(encodeCert(der), encodeCert(c.root.Raw)...),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}),
		TLS:     tls.Certificate{Certificate: [][]byte{der, c.root.Raw}, PrivateKey: crypto.Signer(key), Leaf: cert},
	}, nil
}

// Issuer reports whether cert was signed by this authority (its chain
// verified by TLS against Pool; this double-checks the leaf).
func (c *CA) Issuer(cert *x509.Certificate) bool {
	return bytes.Equal(cert.RawIssuer, c.root.RawSubject) && cert.CheckSignatureFrom(c.root) == nil
}

// Fingerprint is the SHA-256 of a certificate's DER, in lowercase hex: the
// key under which a certificate is bound to a session.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// newSerial returns a random positive 128-bit serial number (RFC 5280
// allows up to 20 octets): replicas issue without coordinating.
func newSerial() *big.Int {
	max := new(big.Int).Lsh(big.NewInt(1), 127)
	for {
		n, _ := rand.Int(rand.Reader, max) // never fails (crypto/rand, Go 1.24+)
		if n.Sign() > 0 {
			return n
		}
	}
}
