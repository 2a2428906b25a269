package token

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// signClaims signs w as a client assertion, whatever its times say:
// SignAssertion only makes well-formed ones.
func signClaims(t *testing.T, key ed25519.PrivateKey, w wireClaims) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(signer).Claims(w).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestVerifyAssertionTimes(t *testing.T) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	const aud = "https://trellis.example.org"
	const leeway = 30 * time.Second
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *jwt.NumericDate { return jwt.NewNumericDate(now.Add(d)) }
	tests := []struct {
		name          string
		iat, nbf, exp *jwt.NumericDate
		want          error // nil: accepted
	}{
		{name: "fresh", iat: at(0), exp: at(time.Minute)},
		{name: "at the cap", iat: at(0), exp: at(MaxAssertionLifetime)},
		{name: "service clock ahead within leeway", iat: at(20 * time.Second), exp: at(20*time.Second + MaxAssertionLifetime)},
		{name: "service clock behind within leeway", iat: at(-20 * time.Second), exp: at(time.Minute)},
		{name: "no iat, short", exp: at(4 * time.Minute)},
		{name: "nbf now", iat: at(0), nbf: at(0), exp: at(time.Minute)},
		{name: "nbf within leeway", iat: at(0), nbf: at(20 * time.Second), exp: at(time.Minute)},

		{name: "exp past iat's cap", iat: at(0), exp: at(MaxAssertionLifetime + time.Second), want: ErrAssertionLifetime},
		{name: "iat an hour ahead", iat: at(55 * time.Minute), exp: at(60 * time.Minute), want: ErrAssertionLifetime},
		{name: "iat a year ahead", iat: at(365 * 24 * time.Hour), exp: at(365*24*time.Hour + time.Minute), want: ErrAssertionLifetime},
		{name: "iat just past the leeway", iat: at(leeway + time.Second), exp: at(leeway + 2*time.Second), want: ErrAssertionLifetime},
		{name: "no iat, long", exp: at(time.Hour), want: ErrAssertionLifetime},
		{name: "nbf ahead, exp far", nbf: at(55 * time.Minute), exp: at(60 * time.Minute), want: ErrAssertionMalformed},
		{name: "nbf just past the leeway", iat: at(0), nbf: at(leeway + time.Second), exp: at(2 * time.Minute), want: ErrAssertionMalformed},
		{name: "expired", iat: at(-2 * time.Minute), exp: at(-time.Minute), want: ErrAssertionExpired},
		{name: "no exp", iat: at(0), want: ErrAssertionMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := signClaims(t, key, wireClaims{
				Issuer: "runner", Subject: "runner", Audience: jwt.Audience{aud}, ID: "jti-1",
				IssuedAt: tt.iat, NotBefore: tt.nbf, Expiry: tt.exp,
			})
			a, err := VerifyAssertion(raw, pub, aud, now, leeway)
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want == nil && (a.Service != "runner" || a.ID != "jti-1"):
				t.Fatalf("accepted as %+v", a)
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}
