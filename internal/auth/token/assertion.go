package token

import (
	"crypto/ed25519"
	"errors"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// MaxAssertionLifetime bounds a client assertion's exp - iat: an assertion
// is made for one exchange, and a stolen one is of use for minutes only.
const MaxAssertionLifetime = 5 * time.Minute

// Reasons a client assertion is refused; every error of VerifyAssertion
// wraps one of them.
var (
	ErrAssertionMalformed = errors.New("actor assertion malformed")
	ErrAssertionSignature = errors.New("actor assertion signature invalid")
	ErrAssertionAudience  = errors.New("actor assertion audience is not this server")
	ErrAssertionExpired   = errors.New("actor assertion expired")
	ErrAssertionLifetime  = errors.New("actor assertion lives too long")
)

// assertionError says which check failed, with the detail a service's
// developer needs; it never quotes the assertion.
type assertionError struct {
	reason error
	detail string
}

func (e *assertionError) Error() string {
	if e.detail == "" {
		return e.reason.Error()
	}
	return e.reason.Error() + ": " + e.detail
}

func (e *assertionError) Unwrap() error { return e.reason }

func assertionErr(reason error, detail string) error {
	return &assertionError{reason: reason, detail: detail}
}

// Assertion is what a verified client assertion says.
type Assertion struct {
	Service string // iss and sub
	ID      string // jti
	Expiry  time.Time
}

// AssertionIssuer returns the unverified "iss" of a client assertion (RFC
// 7523: a JWT that a client signs to prove itself), so that the caller can
// find the key to verify it with. Nothing in it is to be trusted until
// VerifyAssertion checks it.
func AssertionIssuer(raw string) (string, error) {
	if raw == "" || len(raw) > MaxSize {
		return "", assertionErr(ErrAssertionMalformed, "empty or too large")
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return "", assertionErr(ErrAssertionMalformed, "not a compact JWT signed with EdDSA")
	}
	var w wireClaims
	if err := tok.UnsafeClaimsWithoutVerification(&w); err != nil || w.Issuer == "" {
		return "", assertionErr(ErrAssertionMalformed, "no iss")
	}
	return w.Issuer, nil
}

// VerifyAssertion checks a client assertion signed with pub: EdDSA, iss and
// sub equal, audience among "aud", a jti, exp present and in the future,
// iat and nbf (when present) not in the future, and exp at most
// MaxAssertionLifetime after both iat and now; "in the future" and "now"
// allow leeway for the service's clock.
//
// Both bounds on exp are needed: exp - iat alone lets a service sign an
// assertion today that is valid next year (iat and exp both ahead), and
// exp - now alone lets a long-lived assertion through at its end.
func VerifyAssertion(raw string, pub ed25519.PublicKey, audience string, now time.Time, leeway time.Duration) (*Assertion, error) {
	if raw == "" || len(raw) > MaxSize {
		return nil, assertionErr(ErrAssertionMalformed, "empty or too large")
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil || len(tok.Headers) != 1 {
		return nil, assertionErr(ErrAssertionMalformed, "not a compact JWT signed with EdDSA")
	}
	var w wireClaims
	if err := tok.Claims(pub, &w); err != nil {
		if errors.Is(err, jose.ErrCryptoFailure) {
			return nil, assertionErr(ErrAssertionSignature, "not signed by the service's registered key")
		}
		return nil, assertionErr(ErrAssertionMalformed, "claims unreadable")
	}
	exp, iat := timeOf(w.Expiry), timeOf(w.IssuedAt)
	switch {
	case w.Issuer == "" || w.Subject != w.Issuer:
		return nil, assertionErr(ErrAssertionMalformed, "iss and sub must both be the service's name")
	case w.ID == "":
		return nil, assertionErr(ErrAssertionMalformed, "no jti")
	case !w.Audience.Contains(audience):
		return nil, assertionErr(ErrAssertionAudience, "aud must contain "+audience)
	case exp.IsZero():
		return nil, assertionErr(ErrAssertionMalformed, "no exp")
	case !now.Before(exp.Add(leeway)):
		return nil, assertionErr(ErrAssertionExpired, "expired at "+exp.Format(time.RFC3339))
	case w.NotBefore != nil && now.Add(leeway).Before(timeOf(w.NotBefore)):
		return nil, assertionErr(ErrAssertionMalformed, "not valid yet (nbf)")
	case now.Add(leeway).Before(iat):
		return nil, assertionErr(ErrAssertionLifetime, "issued in the future (iat "+iat.Format(time.RFC3339)+"): check the service's clock")
	case exp.Sub(now) > MaxAssertionLifetime+leeway,
		!iat.IsZero() && exp.Sub(iat) > MaxAssertionLifetime:
		return nil, assertionErr(ErrAssertionLifetime, "exp may be at most 5 minutes after iat and after now")
	}
	return &Assertion{Service: w.Issuer, ID: w.ID, Expiry: exp}, nil
}

// SignAssertion signs a client assertion for service with key, valid for
// ttl from now: what a registered service sends to Auth.ExchangeToken.
func SignAssertion(key ed25519.PrivateKey, service, audience string, now time.Time, ttl time.Duration) (string, error) {
	w := wireClaims{
		Issuer: service, Subject: service, Audience: jwt.Audience{audience},
		IssuedAt: numericDate(now), Expiry: numericDate(now.Add(ttl)), ID: randomID(),
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	return jwt.Signed(signer).Claims(w).Serialize()
}
