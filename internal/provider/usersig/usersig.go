// Package usersig is the user's own signature on a request to a site: a
// compact JWS (EdDSA) by the key the user made when connecting, over the
// request's method, target, body hash, the site's name, a timestamp and a
// nonce. The centre never holds the key, so it cannot forge a request a
// site that requires the signature will run.
package usersig

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Header is the HTTP header that carries the signature.
const Header = "Trellis-User-Signature"

// Type is the JWS "typ" of a user signature, so no other JWT passes.
const Type = "trellis-user-request+jwt"

// MaxSize bounds a signature a site parses.
const MaxSize = 4 << 10

// Claims are what the user signs.
type Claims struct {
	Method   string `json:"htm"`
	Target   string `json:"htu"` // the request's path and query
	BodyHash string `json:"bh"`  // base64url SHA-256 of the body
	Site     string `json:"site"`
	Subject  string `json:"sub"` // the user's uid
	IssuedAt int64  `json:"iat"`
	Nonce    string `json:"nonce"`
}

// BodyHash is the "bh" of body.
func BodyHash(body []byte) string {
	h := sha256.Sum256(body)
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// Sign signs a request with the user's key.
func Sign(key ed25519.PrivateKey, uid, site, method, target string, body []byte, now time.Time) (string, error) {
	var n [16]byte
	_, _ = rand.Read(n[:])
	c := Claims{Method: method, Target: target, BodyHash: BodyHash(body), Site: site, Subject: uid, IssuedAt: now.Unix(), Nonce: base64.RawURLEncoding.EncodeToString(n[:])}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: key}, (&jose.SignerOptions{}).WithType(Type))
	if err != nil {
		return "", fmt.Errorf("usersig: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("usersig: %w", err)
	}
	return jws.CompactSerialize()
}

// Reasons a signature is refused.
var (
	ErrMissing   = errors.New("no user signature")
	ErrMalformed = errors.New("user signature malformed")
	ErrInvalid   = errors.New("user signature does not verify with the user's registered key")
	ErrMismatch  = errors.New("user signature does not match the request")
	ErrStale     = errors.New("user signature is not fresh")
)

// Request is what a site received, to compare with what was signed.
type Request struct {
	UID, Site, Method, Target string
	Body                      []byte
}

// Verify checks raw against pub and the request r: signature, type, every
// signed field equal to the request's, and the timestamp within maxAge of
// now (either side, for clocks). It returns the claims, whose nonce the
// caller must check unused.
func Verify(raw string, pub ed25519.PublicKey, r Request, now time.Time, maxAge time.Duration) (*Claims, error) {
	if raw == "" {
		return nil, ErrMissing
	}
	if len(raw) > MaxSize {
		return nil, ErrMalformed
	}
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil || len(jws.Signatures) != 1 {
		return nil, ErrMalformed
	}
	if typ, _ := jws.Signatures[0].Protected.ExtraHeaders[jose.HeaderType].(string); typ != Type {
		return nil, fmt.Errorf("%w: typ is not %s", ErrMalformed, Type)
	}
	payload, err := jws.Verify(pub)
	if err != nil {
		return nil, ErrInvalid
	}
	var c Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, ErrMalformed
	}
	switch {
	case c.Nonce == "" || len(c.Nonce) > 64:
		return nil, fmt.Errorf("%w: no nonce", ErrMalformed)
	case c.Subject != r.UID:
		return nil, fmt.Errorf("%w: signed for another user", ErrMismatch)
	case c.Site != r.Site:
		return nil, fmt.Errorf("%w: signed for another site", ErrMismatch)
	case c.Method != r.Method || c.Target != r.Target:
		return nil, fmt.Errorf("%w: signed for another method or target", ErrMismatch)
	case c.BodyHash != BodyHash(r.Body):
		return nil, fmt.Errorf("%w: signed another body", ErrMismatch)
	}
	if d := now.Sub(time.Unix(c.IssuedAt, 0)); d > maxAge || d < -maxAge {
		return nil, fmt.Errorf("%w: signed %s from now, more than %s", ErrStale, d.Round(time.Second), maxAge)
	}
	return &c, nil
}

// Fingerprint is the SHA256 fingerprint of a public key, as the centre
// shows it ("SHA256:" and unpadded base64).
func Fingerprint(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(h[:])
}
