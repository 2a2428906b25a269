package verify

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

func okpJWK(t *testing.T, pub ed25519.PublicKey, kid string, extra map[string]any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: "EdDSA", Use: "sig"})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range extra {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, _ = json.Marshal(m)
	return b
}

func TestParseJWKSKeepsOnlyEd25519WithKid(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	keys := []json.RawMessage{
		okpJWK(t, pub, "good", nil),
		okpJWK(t, pub, "no-alg-no-use", map[string]any{"alg": nil, "use": nil}),
		okpJWK(t, pub, "", nil),                                                 // no kid
		okpJWK(t, pub, "enc", map[string]any{"use": "enc"}),                     // not for signatures
		okpJWK(t, pub, "other-alg", map[string]any{"alg": "ES256"}),             // wrong algorithm
		okpJWK(t, pub, "x25519", map[string]any{"crv": "X25519"}),               // not a signature curve
		okpJWK(t, pub, "short", map[string]any{"x": "AAAA"}),                    // wrong size
		okpJWK(t, pub, "private", map[string]any{"d": strings.Repeat("A", 43)}), // never accept private keys
		json.RawMessage(`{"kty":"RSA","kid":"rsa","n":"AQAB","e":"AQAB"}`),
		json.RawMessage(`{"kty":"EC","kid":"ec","crv":"P-256","x":"AA","y":"AA"}`),
		json.RawMessage(`{"kty":"oct","kid":"oct","k":"c2VjcmV0"}`),
		json.RawMessage(`{"kty":"future","kid":"future"}`),
		json.RawMessage(`"not an object"`),
	}
	doc, _ := json.Marshal(map[string]any{"keys": keys})
	set, err := parseJWKS(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(set) != 2 || !pub.Equal(set["good"]) || !pub.Equal(set["no-alg-no-use"]) {
		t.Fatalf("kept %v", set)
	}
}

// TestErrorMapping pins the mapping from the token package's refusal
// reasons to this package's errors, against real refusals.
func TestErrorMapping(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	doc, _ := json.Marshal(map[string]any{"keys": []json.RawMessage{okpJWK(t, pub, "k1", nil)}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(doc) }))
	defer srv.Close()
	now := time.Now()
	v, err := New(context.Background(), Options{Issuer: srv.URL, Now: func() time.Time { return now }, Leeway: -1, MinRefetch: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()

	sign := func(key ed25519.PrivateKey, alg jose.SignatureAlgorithm, kid, typ string, claims map[string]any) string {
		t.Helper()
		payload, _ := json.Marshal(claims)
		opts := &jose.SignerOptions{}
		if typ != "" {
			opts = opts.WithType(jose.ContentType(typ))
		}
		var sk any = jose.JSONWebKey{Key: key, KeyID: kid}
		if alg == jose.HS256 {
			sk = jose.JSONWebKey{Key: []byte(strings.Repeat("k", 32)), KeyID: kid}
		}
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: sk}, opts)
		if err != nil {
			t.Fatal(err)
		}
		jws, err := s.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := jws.CompactSerialize()
		return raw
	}
	good := func() map[string]any {
		return map[string]any{"iss": srv.URL, "aud": "trellis", "sub": "ops", "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Minute).Unix()}
	}
	with := func(k string, val any) map[string]any {
		c := good()
		if val == nil {
			delete(c, k)
		} else {
			c[k] = val
		}
		return c
	}
	_, otherPriv, _ := ed25519.GenerateKey(nil)
	for _, tc := range []struct {
		name string
		raw  string
		want error
	}{
		{"good", sign(priv, jose.EdDSA, "k1", "at+jwt", good()), nil},
		{"empty", "", ErrMissing},
		{"too large", strings.Repeat("a", 9<<10), ErrMalformed},
		{"garbage", "a.b.c", ErrMalformed},
		{"HS256", sign(nil, jose.HS256, "k1", "at+jwt", good()), ErrInvalid},
		{"id token type", sign(priv, jose.EdDSA, "k1", "JWT", good()), ErrInvalid},
		{"no kid", sign(priv, jose.EdDSA, "", "at+jwt", good()), ErrMalformed},
		{"unknown kid", sign(priv, jose.EdDSA, "k2", "at+jwt", good()), ErrUnknownKey},
		{"bad signature", sign(otherPriv, jose.EdDSA, "k1", "at+jwt", good()), ErrInvalid},
		{"issuer", sign(priv, jose.EdDSA, "k1", "at+jwt", with("iss", "https://other")), ErrIssuer},
		{"audience", sign(priv, jose.EdDSA, "k1", "at+jwt", with("aud", "other")), ErrAudience},
		{"no subject", sign(priv, jose.EdDSA, "k1", "at+jwt", with("sub", nil)), ErrInvalid},
		{"no expiry", sign(priv, jose.EdDSA, "k1", "at+jwt", with("exp", nil)), ErrInvalid},
		{"expired", sign(priv, jose.EdDSA, "k1", "at+jwt", with("exp", now.Unix())), ErrExpired},
		{"not yet valid", sign(priv, jose.EdDSA, "k1", "at+jwt", with("nbf", now.Add(time.Minute).Unix())), ErrNotYetValid},
		{"actor", sign(priv, jose.EdDSA, "k1", "at+jwt", with("act", map[string]string{"sub": "svc"})), nil},
	} {
		c, err := v.Verify(context.Background(), tc.raw)
		if err != tc.want { // exactly the sentinel, not merely wrapping it
			t.Errorf("%s: want %v, got %v", tc.name, tc.want, err)
		}
		if err == nil && (c.Subject != "ops" || (tc.name == "actor") != (c.Actor == "svc")) {
			t.Errorf("%s: claims %+v", tc.name, c)
		}
	}
	// Every reason the token package has is mapped.
	if n := len(reasons); n != 8 {
		t.Errorf("reasons has %d entries; extend this test with the new ones", n)
	}
	if got := classify(errors.New("something new")); got != ErrInvalid {
		t.Errorf("an unknown refusal maps to %v, want ErrInvalid", got)
	}
}
