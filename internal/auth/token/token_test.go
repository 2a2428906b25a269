package token

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/trellis-testbed/trellis/internal/auth/keys"
	"github.com/trellis-testbed/trellis/internal/domain"
)

const (
	issuer   = "https://trellis.example.net"
	audience = "trellis"
)

func claimsAt(now time.Time) Claims {
	return Claims{
		Issuer:    issuer,
		Subject:   "alice",
		Audience:  []string{audience, "other-service"},
		SessionID: "sess-1",
		ID:        "jti-1",
		IssuedAt:  now,
		NotBefore: now,
		Expiry:    now.Add(15 * time.Minute),
	}
}

func newVerifier(src KeySource, c *clock, opts VerifierOptions) *Verifier {
	opts.Issuer, opts.Audience, opts.Now = issuer, audience, c.Now
	return NewVerifier(src, opts)
}

func mustSign(t testing.TB, src SigningKeySource, c Claims) string {
	t.Helper()
	raw, err := Sign(src, c)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return raw
}

// wantRefused checks err is unauthenticated with message msg and does not
// quote the token.
func wantRefused(t *testing.T, err error, msg, raw string) {
	t.Helper()
	if !domain.HasCode(err, domain.CodeUnauthenticated) {
		t.Fatalf("error = %v, want unauthenticated %q", err, msg)
	}
	if err.Error() != msg {
		t.Fatalf("error = %q, want %q", err.Error(), msg)
	}
	for _, part := range strings.Split(raw, ".") {
		if len(part) > 8 && strings.Contains(err.Error(), part) {
			t.Fatalf("error %q quotes the token", err)
		}
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func b64JSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b64(b)
}

func TestRoundTrip(t *testing.T) {
	src, c := newStaticKeys("k1"), newClock()
	v := newVerifier(src, c, VerifierOptions{})
	want := claimsAt(c.Now())
	want.Actor = "svc-scheduler"
	raw := mustSign(t, src, want)
	got, err := v.Verify(raw)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("claims = %+v\nwant     %+v", *got, want)
	}
	// Header: EdDSA, our kid, typ at+jwt (RFC 9068).
	var hdr map[string]any
	h, _ := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
	_ = json.Unmarshal(h, &hdr)
	if hdr["alg"] != "EdDSA" || hdr["kid"] != "k1" || hdr["typ"] != "at+jwt" {
		t.Fatalf("header = %v", hdr)
	}
	// Payload: registered names plus sid and act.
	var payload map[string]any
	p, _ := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[1])
	_ = json.Unmarshal(p, &payload)
	for _, name := range []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "sid"} {
		if _, ok := payload[name]; !ok {
			t.Errorf("payload lacks %q: %s", name, p)
		}
	}
	if act, _ := payload["act"].(map[string]any); act["sub"] != "svc-scheduler" {
		t.Errorf("act = %v", payload["act"])
	}
}

func TestRoundTripSubsecondTimes(t *testing.T) {
	src, c := newStaticKeys("k1"), newClock()
	c.Add(700 * time.Millisecond)
	v := newVerifier(src, c, VerifierOptions{})
	in := claimsAt(c.Now())
	in.ID, in.NotBefore = "", time.Time{}
	got, err := v.Verify(mustSign(t, src, in))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID == "" {
		t.Error("Sign did not fill in a jti")
	}
	if !got.NotBefore.IsZero() {
		t.Errorf("NotBefore = %v, want zero (no nbf)", got.NotBefore)
	}
	if got.Expiry.Unix() != in.Expiry.Unix() || got.Expiry.Nanosecond() != 0 {
		t.Errorf("Expiry = %v, want %v to the second", got.Expiry, in.Expiry)
	}
}

func TestSignRefuses(t *testing.T) {
	src := newStaticKeys("k1")
	now := time.Now()
	for name, mutate := range map[string]func(*Claims){
		"no issuer":   func(c *Claims) { c.Issuer = "" },
		"no subject":  func(c *Claims) { c.Subject = "" },
		"no audience": func(c *Claims) { c.Audience = nil },
		"no expiry":   func(c *Claims) { c.Expiry = time.Time{} },
	} {
		c := claimsAt(now)
		mutate(&c)
		if _, err := Sign(src, c); err == nil {
			t.Errorf("%s: Sign succeeded", name)
		}
	}
	src.signing = ""
	if _, err := Sign(src, claimsAt(now)); err != ErrNoSigningKey {
		t.Errorf("Sign without a key = %v, want ErrNoSigningKey", err)
	}
}

func TestVerifyRefuses(t *testing.T) {
	src, c := newStaticKeys("k1"), newClock()
	now := c.Now()
	good := mustSign(t, src, claimsAt(now))
	parts := strings.Split(good, ".")
	kid, priv := src.Signer()
	pub := priv.Public().(ed25519.PublicKey)

	// forge builds a token from a header and claims, signed by sign.
	forge := func(hdr map[string]any, payload string, sign func(input []byte) []byte) string {
		input := b64JSON(t, hdr) + "." + payload
		return input + "." + b64(sign([]byte(input)))
	}
	edSign := func(k ed25519.PrivateKey) func([]byte) []byte {
		return func(in []byte) []byte { return ed25519.Sign(k, in) }
	}
	stdHeader := map[string]any{"alg": "EdDSA", "kid": kid, "typ": "at+jwt"}
	signedWith := func(mutate func(*Claims)) string {
		cl := claimsAt(now)
		mutate(&cl)
		return mustSign(t, src, cl)
	}

	tamperedPayload := func() string {
		var p map[string]any
		b, _ := base64.RawURLEncoding.DecodeString(parts[1])
		_ = json.Unmarshal(b, &p)
		p["sub"] = "root"
		return parts[0] + "." + b64JSON(t, p) + "." + parts[2]
	}()
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sig[0] ^= 1
	tamperedSig := parts[0] + "." + parts[1] + "." + b64(sig)

	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	tests := []struct {
		name string
		raw  string
		msg  string
	}{
		{"empty", "", msgMissing},
		{"garbage", "not a token", msgMalformed},
		{"two parts", parts[0] + "." + parts[1], msgMalformed},
		{"four parts", good + ".x", msgMalformed},
		{"bad base64", parts[0] + ".!!!." + parts[2], msgMalformed},
		{"json serialization", `{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`, msgMalformed},
		{"too large", parts[0] + "." + strings.Repeat("A", MaxSize) + "." + parts[2], msgTooLarge},
		{"tampered payload", tamperedPayload, msgSignature},
		{"tampered signature", tamperedSig, msgSignature},
		{"signature stripped", parts[0] + "." + parts[1] + ".", msgSignature},
		{"signed by another key under our kid", forge(stdHeader, parts[1], edSign(otherKey)), msgSignature},
		{"alg none", forge(map[string]any{"alg": "none", "kid": kid, "typ": "at+jwt"}, parts[1], func([]byte) []byte { return nil }), msgAlgorithm},
		{"alg HS256 keyed with the public key", forge(map[string]any{"alg": "HS256", "kid": kid, "typ": "at+jwt"}, parts[1], func(in []byte) []byte {
			m := hmac.New(sha256.New, pub)
			m.Write(in)
			return m.Sum(nil)
		}), msgAlgorithm},
		{"alg ES256", forge(map[string]any{"alg": "ES256", "kid": kid, "typ": "at+jwt"}, parts[1], edSign(priv)), msgAlgorithm},
		{"no typ", forge(map[string]any{"alg": "EdDSA", "kid": kid}, parts[1], edSign(priv)), msgType},
		{"typ JWT (an ID token)", forge(map[string]any{"alg": "EdDSA", "kid": kid, "typ": "JWT"}, parts[1], edSign(priv)), msgType},
		{"no kid", forge(map[string]any{"alg": "EdDSA", "typ": "at+jwt"}, parts[1], edSign(priv)), msgMalformed},
		{"unknown kid", forge(map[string]any{"alg": "EdDSA", "kid": "k9", "typ": "at+jwt"}, parts[1], edSign(otherKey)), msgUnknownKey},
		{"payload not JSON", forge(stdHeader, b64([]byte("hello")), edSign(priv)), msgMalformed},
		{"exp not a number", forge(stdHeader, b64([]byte(`{"iss":"`+issuer+`","sub":"a","aud":"`+audience+`","exp":"soon"}`)), edSign(priv)), msgMalformed},
		{"no expiry", forge(stdHeader, b64([]byte(`{"iss":"`+issuer+`","sub":"a","aud":"`+audience+`"}`)), edSign(priv)), msgNoExpiry},
		{"wrong issuer", signedWith(func(c *Claims) { c.Issuer = "https://evil.example" }), msgIssuer},
		{"wrong audience", signedWith(func(c *Claims) { c.Audience = []string{"storage"} }), msgAudience},
		{"expired", signedWith(func(c *Claims) { c.Expiry = now.Add(-time.Second) }), msgExpired},
		{"expires now", signedWith(func(c *Claims) { c.Expiry = now }), msgExpired},
		{"not yet valid", signedWith(func(c *Claims) { c.NotBefore = now.Add(time.Minute) }), msgNotYetValid},
	}
	v := newVerifier(src, c, VerifierOptions{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Verify(tt.raw)
			if got != nil {
				t.Fatalf("Verify returned claims %+v", got)
			}
			wantRefused(t, err, tt.msg, tt.raw)
		})
	}
	// A subject-less token (Sign refuses to make one) is refused.
	noSub := forge(stdHeader, b64([]byte(fmt.Sprintf(`{"iss":%q,"aud":%q,"exp":%d}`, issuer, audience, now.Add(time.Hour).Unix()))), edSign(priv))
	_, err := v.Verify(noSub)
	wantRefused(t, err, msgNoSubject, noSub)
	if n := v.cache.size(); n != 0 {
		t.Fatalf("%d failed verifications cached", n)
	}
	// The untouched token still passes.
	if _, err := v.Verify(good); err != nil {
		t.Fatal(err)
	}
}

func TestLeeway(t *testing.T) {
	src, c := newStaticKeys("k1"), newClock()
	now := c.Now()
	cl := claimsAt(now)
	cl.NotBefore = now.Add(20 * time.Second)
	raw := mustSign(t, src, cl)
	v := newVerifier(src, c, VerifierOptions{Leeway: 30 * time.Second, CacheSize: -1})
	if _, err := v.Verify(raw); err != nil {
		t.Fatalf("nbf within leeway: %v", err)
	}
	c.Add(15*time.Minute + 29*time.Second)
	if _, err := v.Verify(raw); err != nil {
		t.Fatalf("exp within leeway: %v", err)
	}
	c.Add(time.Second)
	_, err := v.Verify(raw)
	wantRefused(t, err, msgExpired, raw)
}

func TestCache(t *testing.T) {
	src, c := newStaticKeys("k1"), newClock()
	v := newVerifier(src, c, VerifierOptions{})
	raw := mustSign(t, src, claimsAt(c.Now()))
	first, err := v.Verify(raw)
	if err != nil {
		t.Fatal(err)
	}
	// Swap the key under the same kid: a full verification would now fail,
	// so success proves the cache answered.
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	src.set("k1", other)
	second, err := v.Verify(raw)
	if err != nil {
		t.Fatalf("cached Verify: %v", err)
	}
	if !reflect.DeepEqual(first, second) {
		t.Fatalf("cached claims %+v differ from %+v", second, first)
	}
	// Callers get copies: changing one does not change the cache.
	second.Audience[0], second.Subject = "mutated", "mallory"
	third, _ := v.Verify(raw)
	if !reflect.DeepEqual(first, third) {
		t.Fatal("a caller's change reached the cache")
	}
	// The clock is still checked on a hit.
	c.Add(15 * time.Minute)
	_, err = v.Verify(raw)
	wantRefused(t, err, msgExpired, raw)
	if n := v.cache.size(); n != 0 {
		t.Fatalf("expired token still cached (%d entries)", n)
	}
}

func TestCacheDropsWithdrawnKey(t *testing.T) {
	src, c := newStaticKeys("k1", "k2"), newClock()
	v := newVerifier(src, c, VerifierOptions{})
	raw := mustSign(t, src, claimsAt(c.Now()))
	if _, err := v.Verify(raw); err != nil {
		t.Fatal(err)
	}
	src.set("k1", nil)
	_, err := v.Verify(raw)
	wantRefused(t, err, msgUnknownKey, raw)
}

func TestCacheBounded(t *testing.T) {
	src, c := newStaticKeys("k1"), newClock()
	v := newVerifier(src, c, VerifierOptions{CacheSize: 32})
	for i := range 300 {
		cl := claimsAt(c.Now())
		cl.ID = fmt.Sprint(i)
		if _, err := v.Verify(mustSign(t, src, cl)); err != nil {
			t.Fatal(err)
		}
	}
	if n := v.cache.size(); n > 32 || n == 0 {
		t.Fatalf("cache holds %d entries, want 1..32", n)
	}
}

func TestCacheOff(t *testing.T) {
	src, c := newStaticKeys("k1"), newClock()
	v := newVerifier(src, c, VerifierOptions{CacheSize: -1})
	raw := mustSign(t, src, claimsAt(c.Now()))
	if _, err := v.Verify(raw); err != nil {
		t.Fatal(err)
	}
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	src.set("k1", other)
	_, err := v.Verify(raw)
	wantRefused(t, err, msgSignature, raw)
}

func TestNewVerifierNeedsIssuerAndAudience(t *testing.T) {
	for _, opts := range []VerifierOptions{{Audience: audience}, {Issuer: issuer}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewVerifier(%+v) did not panic", opts)
				}
			}()
			NewVerifier(newStaticKeys("k1"), opts)
		}()
	}
}

// newManager runs the real key manager over an in-memory store.
func newManager(t testing.TB, c *clock) *keys.Manager {
	t.Helper()
	m := keys.NewManager(openStore(t), keys.Plain(), keys.Options{Now: c.Now, TokenTTL: time.Hour})
	if err := m.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestKeyRotation(t *testing.T) {
	c := newClock()
	m := newManager(t, c)
	v := newVerifier(m, c, VerifierOptions{CacheSize: -1})
	oldKid, _ := m.Signer()
	before := mustSign(t, m, claimsAt(c.Now()))

	c.Add(time.Minute)
	if err := m.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	newKid, _ := m.Signer()
	after := mustSign(t, m, claimsAt(c.Now()))
	if newKid == oldKid {
		t.Fatal("Rotate kept the kid")
	}
	for _, raw := range []string{before, after} {
		if _, err := v.Verify(raw); err != nil {
			t.Fatalf("after rotation: %v", err)
		}
	}
	// Once the old key's publication ends, its tokens (expired anyway by
	// then) are refused as signed by an unknown key.
	c.Add(time.Hour)
	_, err := v.Verify(before)
	wantRefused(t, err, msgUnknownKey, before)
}

func TestConcurrentVerify(t *testing.T) {
	c := newClock()
	m := newManager(t, c)
	v := newVerifier(m, c, VerifierOptions{CacheSize: 64})
	var toks []string
	for i := range 100 {
		cl := claimsAt(c.Now())
		cl.ID = fmt.Sprint(i)
		toks = append(toks, mustSign(t, m, cl))
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				raw := toks[(i*7+g)%len(toks)]
				if got, err := v.Verify(raw); err != nil || got.Subject != "alice" {
					t.Errorf("Verify: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// The go-jose parser is the one relying parties use too: check it accepts
// our tokens with our published key set.
func TestVerifiesWithJOSE(t *testing.T) {
	c := newClock()
	m := newManager(t, c)
	raw := mustSign(t, m, claimsAt(c.Now()))
	setJSON, _ := m.JWKS()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(setJSON, &set); err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jws.Verify(set); err != nil {
		t.Fatalf("go-jose does not verify our token against our JWKS: %v", err)
	}
}

func BenchmarkSign(b *testing.B) {
	c := newClock()
	m := newManager(b, c)
	cl := claimsAt(c.Now())
	for b.Loop() {
		if _, err := Sign(m, cl); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyCold(b *testing.B) {
	c := newClock()
	m := newManager(b, c)
	v := newVerifier(m, c, VerifierOptions{CacheSize: -1})
	raw := mustSign(b, m, claimsAt(c.Now()))
	for b.Loop() {
		if _, err := v.Verify(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyCached(b *testing.B) {
	c := newClock()
	m := newManager(b, c)
	v := newVerifier(m, c, VerifierOptions{})
	// Many users' tokens, as a busy replica sees them.
	toks := make([]string, 1000)
	for i := range toks {
		cl := claimsAt(c.Now())
		cl.Subject = fmt.Sprint("user", i)
		toks[i] = mustSign(b, m, cl)
		if _, err := v.Verify(toks[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := v.Verify(toks[i%len(toks)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
