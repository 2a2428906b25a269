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
// Rotation with overlap, by pre-publication: besides the issuing root the
// authority always keeps the next one (store.AuthorityX509Next), created
// ahead and published with it (CertificatePEM, the bundle clients put in
// their CA file). Rotate promotes the next root to issue and makes a new
// next one; the root it replaces stays trusted for ServerValidity, until
// the last certificate it issued has expired. A client whose CA file was
// fetched before the rotation trusts the new server certificate already;
// client certificates of the old root keep working across it. Replicas
// pick a rotation up on Reload (the server calls it every minute).
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
	"sync/atomic"
	"time"

	"github.com/trellis-testbed/trellis/internal/auth/keys"
	"github.com/trellis-testbed/trellis/internal/domain"
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
	st     store.Store
	sealer keys.Sealer
	gen    *atomic.Pointer[generation] // shared by WithClock copies
	now    func() time.Time
}

// generation is the authority between two rotations.
type generation struct {
	root *x509.Certificate // issues
	key  *ecdsa.PrivateKey
	next *x509.Certificate // published, issues after the next rotation
	// previous is the root the last rotation replaced, trusted until
	// previousUntil; nil when there was none.
	previous      *x509.Certificate
	previousUntil time.Time
	// pool holds root and next; poolPrevious also previous.
	pool, poolPrevious *x509.CertPool
	// The stored forms it was read from, to tell a reload that changed
	// nothing.
	rootRaw, nextRaw, chainRaw []byte
}

// Load returns the X.509 CA kept in st, creating it on first start. A key
// stored in plain before a key-encryption key was configured is sealed on
// the way.
func Load(ctx context.Context, st store.Store, sealer keys.Sealer) (*CA, error) {
	if sealer == nil {
		sealer = keys.Plain()
	}
	c := &CA{st: st, sealer: sealer, gen: &atomic.Pointer[generation]{}, now: time.Now}
	if _, err := c.Reload(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload reads the authority from the store again: a rotation made on
// another replica takes effect here. It reports whether the issuing root
// changed. The usual case, nothing changed, costs one read transaction.
func (c *CA) Reload(ctx context.Context) (bool, error) {
	var cur, next *store.Authority
	err := c.st.View(ctx, func(tx store.Tx) error {
		var err error
		if cur, err = tx.Authorities().Get(ctx, store.AuthorityX509); err != nil {
			return err
		}
		next, err = tx.Authorities().Get(ctx, store.AuthorityX509Next)
		return err
	})
	if domain.HasCode(err, domain.CodeNotFound) || (err == nil && (keys.NeedsReseal(c.sealer, cur.PrivateKey) || keys.NeedsReseal(c.sealer, next.PrivateKey))) {
		// First start (or a key to seal): create or seal, once.
		cur, next, err = c.loadOrCreate(ctx)
	}
	if err != nil {
		return false, fmt.Errorf("x509ca: loading the X.509 CA: %w", err)
	}
	old := c.gen.Load()
	if old != nil && bytes.Equal(old.rootRaw, cur.PublicKey) && bytes.Equal(old.nextRaw, next.PublicKey) && bytes.Equal(old.chainRaw, cur.Chain) {
		return false, nil
	}
	g, err := open(cur, next, c.sealer)
	if err != nil {
		return false, err
	}
	c.gen.Store(g)
	return old == nil || !old.root.Equal(g.root), nil
}

func (c *CA) loadOrCreate(ctx context.Context) (cur, next *store.Authority, err error) {
	load := func(name, cn string) (*store.Authority, error) {
		return keys.LoadAuthority(ctx, c.st, c.sealer, name, func() (*store.Authority, error) { return newAuthority(c.sealer, name, cn, time.Now()) })
	}
	if cur, err = load(store.AuthorityX509, "Trellis CA"); err != nil {
		return nil, nil, err
	}
	next, err = load(store.AuthorityX509Next, nextCN(time.Now()))
	return cur, next, err
}

// nextCN names a root made at t; roots differ in name, so that a
// certificate's issuer says which one signed it.
func nextCN(t time.Time) string { return "Trellis CA " + t.UTC().Format("2006-01-02 15:04:05") }

func newAuthority(sealer keys.Sealer, name, cn string, now time.Time) (*store.Authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the X.509 CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Trellis"}},
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
		Name: name, Algorithm: Algorithm,
		PublicKey: der, PrivateKey: sealed, CreatedAt: now,
	}, nil
}

// open decodes the stored authorities; it checks that the issuing root's
// private key matches the certificate that clients trust.
func open(cur, next *store.Authority, sealer keys.Sealer) (*generation, error) {
	if cur.Algorithm != Algorithm || next.Algorithm != Algorithm {
		return nil, fmt.Errorf("x509ca: the X.509 CA key is of type %q, which this release cannot use", cur.Algorithm)
	}
	root, err := x509.ParseCertificate(cur.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("x509ca: parsing the X.509 CA certificate: %w", err)
	}
	der, err := sealer.Open(cur.PrivateKey)
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
	g := &generation{root: root, key: key, pool: x509.NewCertPool(), poolPrevious: x509.NewCertPool(),
		rootRaw: cur.PublicKey, nextRaw: next.PublicKey, chainRaw: cur.Chain}
	if g.next, err = x509.ParseCertificate(next.PublicKey); err != nil {
		return nil, fmt.Errorf("x509ca: parsing the next X.509 CA certificate: %w", err)
	}
	if len(cur.Chain) > 0 {
		if g.previous, err = x509.ParseCertificate(cur.Chain); err != nil {
			return nil, fmt.Errorf("x509ca: parsing the previous X.509 CA certificate: %w", err)
		}
		g.previousUntil = cur.CreatedAt.Add(PreviousTrust)
		g.poolPrevious.AddCert(g.previous)
	}
	for _, p := range []*x509.CertPool{g.pool, g.poolPrevious} {
		p.AddCert(root)
		p.AddCert(g.next)
	}
	return g, nil
}

// PreviousTrust is how long a replaced root stays trusted after a
// rotation: until the last server certificate it issued has expired.
const PreviousTrust = ServerValidity + ClockSkew

// Rotate promotes the next root to issue, keeps the one it replaces
// trusted for PreviousTrust, and makes a new next root, in tx; Reload
// after the commit. The previous root, if still trusted, is dropped: its
// certificates stop verifying.
func (c *CA) Rotate(ctx context.Context, tx store.Tx) (*x509.Certificate, error) {
	cur, err := tx.Authorities().Get(ctx, store.AuthorityX509)
	if err != nil {
		return nil, err
	}
	next, err := tx.Authorities().Get(ctx, store.AuthorityX509Next)
	if err != nil {
		return nil, err
	}
	now := c.now()
	promoted := *next
	promoted.Name, promoted.Chain, promoted.CreatedAt = store.AuthorityX509, cur.PublicKey, now
	if _, err := open(&promoted, next, c.sealer); err != nil {
		return nil, err
	}
	fresh, err := newAuthority(c.sealer, store.AuthorityX509Next, nextCN(now), now)
	if err != nil {
		return nil, err
	}
	if err := tx.Authorities().Replace(ctx, &promoted); err != nil {
		return nil, err
	}
	if err := tx.Authorities().Replace(ctx, fresh); err != nil {
		return nil, err
	}
	return x509.ParseCertificate(promoted.PublicKey)
}

// WithClock returns the authority issuing as if the time were now(): tests
// use it to make certificates that are already expired.
func (c *CA) WithClock(now func() time.Time) *CA {
	cp := *c
	cp.now = now
	return &cp
}

// Certificate returns the issuing root certificate.
func (c *CA) Certificate() *x509.Certificate { return c.gen.Load().root }

// Roots returns the roots peers trust now: the issuing one, the next one,
// and the one the last rotation replaced while it is still trusted.
func (c *CA) Roots() []*x509.Certificate {
	g := c.gen.Load()
	out := []*x509.Certificate{g.root, g.next}
	if g.previous != nil && c.now().Before(g.previousUntil) {
		out = append(out, g.previous)
	}
	return out
}

// CertificatePEM returns the roots in PEM, the issuing one first: the
// bundle a client's CA file holds, so that it trusts the server across the
// next rotation too.
func (c *CA) CertificatePEM() []byte {
	var out []byte
	for _, r := range c.Roots() {
		out = append(out, encodeCert(r.Raw)...)
	}
	return out
}

// Pool returns the roots a peer's certificate must chain to: servers use
// it as tls.Config.ClientCAs, clients as RootCAs.
func (c *CA) Pool() *x509.CertPool {
	g := c.gen.Load()
	if g.previous != nil && c.now().Before(g.previousUntil) {
		return g.poolPrevious
	}
	return g.pool
}

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
	g := c.gen.Load()
	tmpl.SerialNumber = newSerial()
	tmpl.NotBefore = now.Add(-ClockSkew)
	tmpl.NotAfter = now.Add(validity)
	if tmpl.NotAfter.After(g.root.NotAfter) {
		tmpl.NotAfter = g.root.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, g.root, &key.PublicKey, g.key)
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
		CertPEM: append(encodeCert(der), encodeCert(g.root.Raw)...),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}),
		TLS:     tls.Certificate{Certificate: [][]byte{der, g.root.Raw}, PrivateKey: crypto.Signer(key), Leaf: cert},
	}, nil
}

// Issuer reports whether cert was signed by one of the roots trusted now
// (its chain verified by TLS against Pool; this double-checks the leaf).
func (c *CA) Issuer(cert *x509.Certificate) bool {
	for _, r := range c.Roots() {
		if bytes.Equal(cert.RawIssuer, r.RawSubject) && cert.CheckSignatureFrom(r) == nil {
			return true
		}
	}
	return false
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
