// Package token signs and verifies Trellis access tokens: JWTs (RFC 7519)
// in compact JWS form, signed with Ed25519 ("EdDSA", RFC 8037), typed
// "at+jwt" as RFC 9068 asks of access tokens.
//
// Verification checks the token alone: signature, issuer, audience and
// times. Whether its session is still live is the caller's business (see
// package auth), as is everything else that can be revoked.
package token

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Type is the "typ" header of access tokens (RFC 9068 section 2.1).
const Type = "at+jwt"

// Claims are what an access token says.
type Claims struct {
	Issuer    string   // iss
	Subject   string   // sub: the uid
	Audience  []string // aud
	SessionID string   // sid: the session the token was issued for
	ID        string   // jti
	IssuedAt  time.Time
	NotBefore time.Time // zero: valid from the start
	Expiry    time.Time
	// Actor is the service acting for Subject, if any: the RFC 8693 "act"
	// claim, {"sub": Actor}.
	Actor string
	// Purpose narrows a token for a site ("connect": a connection ticket;
	// "request": a user's requests to the site); empty for access tokens.
	// Sites refuse a token whose purpose is not the one they expect.
	Purpose string
}

// clone copies c deeply enough that the copy shares nothing mutable.
func (c *Claims) clone() *Claims {
	d := *c
	d.Audience = slices.Clone(c.Audience)
	return &d
}

// KeySource finds the public key of a key id. keys.Manager is one; a
// JWKS-fetching client is another.
type KeySource interface {
	PublicKey(kid string) (ed25519.PublicKey, bool)
}

// SigningKeySource yields the key that signs now (an empty kid when none).
type SigningKeySource interface {
	Signer() (kid string, key ed25519.PrivateKey)
}

// wireClaims is the JSON payload. Times are NumericDates: whole seconds,
// read back in UTC.
type wireClaims struct {
	Issuer    string           `json:"iss,omitempty"`
	Subject   string           `json:"sub,omitempty"`
	Audience  jwt.Audience     `json:"aud,omitempty"`
	Expiry    *jwt.NumericDate `json:"exp,omitempty"`
	NotBefore *jwt.NumericDate `json:"nbf,omitempty"`
	IssuedAt  *jwt.NumericDate `json:"iat,omitempty"`
	ID        string           `json:"jti,omitempty"`
	SessionID string           `json:"sid,omitempty"`
	Actor     *actor           `json:"act,omitempty"`
	Purpose   string           `json:"purpose,omitempty"`
}

type actor struct {
	Subject string `json:"sub"`
}

func numericDate(t time.Time) *jwt.NumericDate {
	if t.IsZero() {
		return nil
	}
	return jwt.NewNumericDate(t)
}

func timeOf(d *jwt.NumericDate) time.Time {
	if d == nil {
		return time.Time{}
	}
	return d.Time().UTC()
}

// ErrNoSigningKey is returned by Sign when the key source has no key that
// signs now.
var ErrNoSigningKey = errors.New("token: no signing key available")

// Sign returns c as a signed compact JWS. Issuer, Subject, Audience and
// Expiry are required: a token without them could not be verified or would
// never expire. An empty ID gets a random one.
func Sign(src SigningKeySource, c Claims) (string, error) {
	switch {
	case c.Issuer == "":
		return "", errors.New("token: claims lack an issuer")
	case c.Subject == "":
		return "", errors.New("token: claims lack a subject")
	case len(c.Audience) == 0:
		return "", errors.New("token: claims lack an audience")
	case c.Expiry.IsZero():
		return "", errors.New("token: claims lack an expiry")
	}
	kid, priv := src.Signer()
	if kid == "" || len(priv) != ed25519.PrivateKeySize {
		return "", ErrNoSigningKey
	}
	w := wireClaims{
		Issuer:    c.Issuer,
		Subject:   c.Subject,
		Audience:  jwt.Audience(c.Audience),
		Expiry:    numericDate(c.Expiry),
		NotBefore: numericDate(c.NotBefore),
		IssuedAt:  numericDate(c.IssuedAt),
		ID:        c.ID,
		SessionID: c.SessionID,
		Purpose:   c.Purpose,
	}
	if w.ID == "" {
		w.ID = randomID()
	}
	if c.Actor != "" {
		w.Actor = &actor{Subject: c.Actor}
	}
	payload, err := json.Marshal(w)
	if err != nil {
		return "", fmt.Errorf("token: encoding claims: %w", err)
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.EdDSA, Key: jose.JSONWebKey{Key: priv, KeyID: kid}},
		(&jose.SignerOptions{}).WithType(Type),
	)
	if err != nil {
		return "", fmt.Errorf("token: preparing signer for key %s: %w", kid, err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("token: signing with key %s: %w", kid, err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("token: serializing: %w", err)
	}
	return raw, nil
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}
