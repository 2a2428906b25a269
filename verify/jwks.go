package verify

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/go-jose/go-jose/v4"
)

// maxJWKSSize bounds the key set read: Trellis publishes a handful of keys,
// a few hundred bytes; a misbehaving server must not exhaust memory.
const maxJWKSSize = 1 << 20

// keySet maps key ids to public keys. A published set is never modified:
// a fetch builds a new one.
type keySet map[string]ed25519.PublicKey

// fetcher gets the key set over HTTP.
type fetcher struct {
	url    string
	client *http.Client
}

func (f *fetcher) fetch(ctx context.Context) (keySet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.url, nil)
	if err != nil {
		return nil, fmt.Errorf("verify: fetching the key set: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("verify: fetching the key set: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("verify: fetching the key set from %s: %s", f.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSSize+1))
	if err != nil {
		return nil, fmt.Errorf("verify: reading the key set from %s: %w", f.url, err)
	}
	if len(body) > maxJWKSSize {
		return nil, fmt.Errorf("verify: the key set at %s exceeds %d bytes", f.url, maxJWKSSize)
	}
	set, err := parseJWKS(body)
	if err != nil {
		return nil, fmt.Errorf("verify: the key set at %s: %w", f.url, err)
	}
	return set, nil
}

// parseJWKS reads a JSON Web Key Set (RFC 7517) and keeps the Ed25519
// public keys (RFC 8037: kty "OKP", crv "Ed25519") that have a kid and are
// meant for signatures. Other keys are skipped, not refused, as RFC 7517
// section 5 asks: a newer Trellis may publish other kinds alongside.
func parseJWKS(b []byte) (keySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("not a JSON Web Key Set: %w", err)
	}
	if doc.Keys == nil {
		return nil, errors.New(`not a JSON Web Key Set: no "keys"`)
	}
	set := make(keySet, len(doc.Keys))
	for _, raw := range doc.Keys {
		// Look before handing the key to go-jose: its parser also takes
		// private and symmetric keys, which a key set must never carry.
		var h struct {
			Kty string          `json:"kty"`
			Crv string          `json:"crv"`
			Kid string          `json:"kid"`
			Use string          `json:"use"`
			Alg string          `json:"alg"`
			D   json.RawMessage `json:"d"`
		}
		if json.Unmarshal(raw, &h) != nil {
			continue
		}
		if h.Kty != "OKP" || h.Crv != "Ed25519" || h.Kid == "" || h.D != nil ||
			(h.Use != "" && h.Use != "sig") || (h.Alg != "" && h.Alg != string(jose.EdDSA)) {
			continue
		}
		var k jose.JSONWebKey
		if k.UnmarshalJSON(raw) != nil {
			continue // e.g. "x" is not 32 bytes
		}
		pub, ok := k.Key.(ed25519.PublicKey)
		if !ok {
			continue
		}
		set[h.Kid] = pub
	}
	return set, nil
}
