package token

import (
	"crypto/sha256"
	"errors"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// MaxSize bounds the tokens Verify parses. Trellis's tokens are well under
// 1 KiB; the bound keeps a hostile header from costing parse time.
const MaxSize = 8 << 10

// DefaultCacheSize is the number of verified tokens a Verifier remembers
// when VerifierOptions.CacheSize is zero.
const DefaultCacheSize = 10_000

// VerifierOptions configure a Verifier.
type VerifierOptions struct {
	// Issuer is the required "iss"; Audience must be among "aud". Both are
	// required.
	Issuer   string
	Audience string
	// Leeway tolerates clock skew in exp and nbf.
	Leeway time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// CacheSize bounds the verified-token cache: 0 takes DefaultCacheSize,
	// a negative size turns the cache off.
	CacheSize int
}

// Verifier checks access tokens. It is safe for concurrent use.
//
// An Ed25519 verification costs ~50 µs, a large share of a request, so the
// Verifier remembers each token it verified (by its SHA-256) until the cache
// is full; a cached token is only checked against the clock and for its key
// still being published. Failures are not cached: they cost a full check.
type Verifier struct {
	keys     KeySource
	issuer   string
	audience string
	leeway   time.Duration
	now      func() time.Time
	cache    *cache // nil when off
}

// NewVerifier returns a Verifier that finds keys in keys. It panics when
// keys, Issuer or Audience is missing: that is a wiring mistake, and a
// verifier that skipped those checks would accept other services' tokens.
func NewVerifier(keys KeySource, opts VerifierOptions) *Verifier {
	if keys == nil || opts.Issuer == "" || opts.Audience == "" {
		panic("token: NewVerifier needs a key source, an issuer and an audience")
	}
	v := &Verifier{
		keys:     keys,
		issuer:   opts.Issuer,
		audience: opts.Audience,
		leeway:   opts.Leeway,
		now:      opts.Now,
	}
	if v.now == nil {
		v.now = time.Now
	}
	switch {
	case opts.CacheSize == 0:
		v.cache = newCache(DefaultCacheSize)
	case opts.CacheSize > 0:
		v.cache = newCache(opts.CacheSize)
	}
	return v
}

// Messages of Verify's errors. They say what is wrong and never quote the
// token.
const (
	msgMissing     = "missing access token"
	msgTooLarge    = "access token too large"
	msgMalformed   = "malformed access token"
	msgAlgorithm   = "access token signature algorithm not accepted"
	msgType        = "not an access token"
	msgUnknownKey  = "token signed by an unknown key"
	msgSignature   = "access token signature invalid"
	msgIssuer      = "token issued by another issuer"
	msgAudience    = "token issued for another audience"
	msgNoSubject   = "access token has no subject"
	msgNoExpiry    = "access token has no expiry"
	msgExpired     = "access token expired"
	msgNotYetValid = "access token not yet valid"
)

// Reasons a token is refused, for callers that act on the reason (the
// offline verify package) rather than show the message: every refusal wraps
// exactly one of them, so errors.Is finds it.
var (
	ErrMissing     = errors.New("token: missing")
	ErrMalformed   = errors.New("token: malformed")
	ErrInvalid     = errors.New("token: invalid")
	ErrUnknownKey  = errors.New("token: unknown key")
	ErrIssuer      = errors.New("token: other issuer")
	ErrAudience    = errors.New("token: other audience")
	ErrExpired     = errors.New("token: expired")
	ErrNotYetValid = errors.New("token: not yet valid")
)

// reasonOf files each message under its reason.
var reasonOf = map[string]error{
	msgMissing:     ErrMissing,
	msgTooLarge:    ErrMalformed,
	msgMalformed:   ErrMalformed,
	msgAlgorithm:   ErrInvalid,
	msgType:        ErrInvalid,
	msgUnknownKey:  ErrUnknownKey,
	msgSignature:   ErrInvalid,
	msgIssuer:      ErrIssuer,
	msgAudience:    ErrAudience,
	msgNoSubject:   ErrInvalid,
	msgNoExpiry:    ErrInvalid,
	msgExpired:     ErrExpired,
	msgNotYetValid: ErrNotYetValid,
}

func unauthenticated(msg string, cause error) error {
	reason := reasonOf[msg]
	if reason == nil {
		reason = ErrInvalid
	}
	return &domain.Error{Code: domain.CodeUnauthenticated, Message: msg, Err: errors.Join(reason, cause)}
}

// Verify checks raw and returns its claims, or a domain unauthenticated
// error saying why it is refused. The caller still has to check that the
// session (Claims.SessionID) is live.
func (v *Verifier) Verify(raw string) (*Claims, error) {
	switch {
	case raw == "":
		return nil, unauthenticated(msgMissing, nil)
	case len(raw) > MaxSize:
		return nil, unauthenticated(msgTooLarge, nil)
	}
	now := v.now()
	var sum [sha256.Size]byte
	if v.cache != nil {
		sum = sha256.Sum256([]byte(raw))
		if e, ok := v.cache.get(sum); ok {
			// A key withdrawn from the set (say, compromised and deleted)
			// stops its tokens at once, cached or not.
			if _, ok := v.keys.PublicKey(e.kid); !ok {
				v.cache.remove(sum)
				return nil, unauthenticated(msgUnknownKey, nil)
			}
			if !now.Before(e.claims.Expiry.Add(v.leeway)) {
				v.cache.remove(sum) // expired for good
				return nil, unauthenticated(msgExpired, nil)
			}
			if err := v.checkTime(e.claims, now); err != nil {
				return nil, err
			}
			return e.claims.clone(), nil
		}
	}
	c, kid, err := v.verify(raw, now)
	if err != nil {
		return nil, err
	}
	if v.cache != nil {
		v.cache.put(sum, &entry{claims: c, kid: kid}, now, v.leeway)
	}
	return c.clone(), nil
}

// verify is the full check: parse, algorithm, type, key, signature, claims.
// Claims are read only after the signature checks out.
func (v *Verifier) verify(raw string, now time.Time) (*Claims, string, error) {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		var alg *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &alg) {
			return nil, "", unauthenticated(msgAlgorithm, err)
		}
		return nil, "", unauthenticated(msgMalformed, err)
	}
	if len(tok.Headers) != 1 {
		return nil, "", unauthenticated(msgMalformed, errors.New("want exactly one signature"))
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !isAccessTokenType(typ) {
		// RFC 9068 section 4: keeps ID tokens and other JWTs signed by the
		// same keys from passing as access tokens.
		return nil, "", unauthenticated(msgType, nil)
	}
	if h.KeyID == "" {
		return nil, "", unauthenticated(msgMalformed, errors.New("no kid header"))
	}
	pub, ok := v.keys.PublicKey(h.KeyID)
	if !ok {
		return nil, "", unauthenticated(msgUnknownKey, nil)
	}
	var w wireClaims
	if err := tok.Claims(pub, &w); err != nil {
		if errors.Is(err, jose.ErrCryptoFailure) {
			return nil, "", unauthenticated(msgSignature, nil)
		}
		return nil, "", unauthenticated(msgMalformed, err)
	}
	switch {
	case w.Issuer != v.issuer:
		return nil, "", unauthenticated(msgIssuer, nil)
	case !w.Audience.Contains(v.audience):
		return nil, "", unauthenticated(msgAudience, nil)
	case w.Subject == "":
		return nil, "", unauthenticated(msgNoSubject, nil)
	case w.Expiry == nil:
		return nil, "", unauthenticated(msgNoExpiry, nil)
	}
	c := &Claims{
		Issuer:    w.Issuer,
		Subject:   w.Subject,
		Audience:  []string(w.Audience),
		SessionID: w.SessionID,
		Purpose:   w.Purpose,
		ID:        w.ID,
		IssuedAt:  timeOf(w.IssuedAt),
		NotBefore: timeOf(w.NotBefore),
		Expiry:    timeOf(w.Expiry),
	}
	if w.Actor != nil {
		c.Actor = w.Actor.Subject
	}
	if err := v.checkTime(c, now); err != nil {
		return nil, "", err
	}
	return c, h.KeyID, nil
}

// isAccessTokenType accepts "at+jwt" and its media-type spelling.
func isAccessTokenType(typ string) bool {
	typ = strings.ToLower(typ)
	return typ == Type || typ == "application/"+Type
}

// checkTime checks exp (the token is refused from exp on, RFC 7519 4.1.4)
// and nbf, each with the leeway.
func (v *Verifier) checkTime(c *Claims, now time.Time) error {
	if !now.Before(c.Expiry.Add(v.leeway)) {
		return unauthenticated(msgExpired, nil)
	}
	if !c.NotBefore.IsZero() && now.Add(v.leeway).Before(c.NotBefore) {
		return unauthenticated(msgNotYetValid, nil)
	}
	return nil
}
