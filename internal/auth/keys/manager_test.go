package keys

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

var ctx = context.Background()

func newTestManager(t *testing.T, st *memStore, c *clock, s Sealer) *Manager {
	t.Helper()
	m := NewManager(st, s, Options{Now: c.Now})
	if err := m.Init(ctx); err != nil {
		t.Fatalf("Init: %v", err)
	}
	return m
}

// parseJWKS decodes the key set the way a relying party does.
func parseJWKS(t *testing.T, m *Manager) jose.JSONWebKeySet {
	t.Helper()
	b, err := m.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatalf("JWKS does not parse: %v\n%s", err, b)
	}
	return set
}

func kids(set jose.JSONWebKeySet) []string {
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	return out
}

func TestInitCreatesOneKey(t *testing.T) {
	st, c := newMemStore(), newClock()
	m := newTestManager(t, st, c, Plain())
	stored := st.stored()
	if len(stored) != 1 {
		t.Fatalf("store holds %d keys after Init, want 1", len(stored))
	}
	kid, priv := m.Signer()
	sk, ok := stored[kid]
	if !ok || priv == nil {
		t.Fatalf("Signer() = %q, %v; not the stored key", kid, priv != nil)
	}
	if sk.Algorithm != "EdDSA" || !sk.CreatedAt.Equal(c.Now()) || !sk.NotAfter.Equal(c.Now().Add(DefaultRotateAfter)) {
		t.Fatalf("stored key = %+v", sk)
	}
	if !bytes.Equal(sk.PublicKey, priv.Public().(ed25519.PublicKey)) {
		t.Fatal("stored public key does not match the signer")
	}
	if len(kid) < 20 || strings.ContainsAny(kid, "+/=") {
		t.Fatalf("kid %q is not a random URL-safe id", kid)
	}

	// A second manager (a restart, another replica) reuses the key.
	m2 := newTestManager(t, st, c, Plain())
	kid2, _ := m2.Signer()
	if kid2 != kid || len(st.stored()) != 1 {
		t.Fatalf("second Init: signer %q (want %q), %d keys stored (want 1)", kid2, kid, len(st.stored()))
	}
	// And so does a second Init of the same manager.
	if err := m.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if k, _ := m.Signer(); k != kid || len(st.stored()) != 1 {
		t.Fatal("second Init of one manager created a key")
	}
}

func TestInitAfterExpiryCreatesKey(t *testing.T) {
	st, c := newMemStore(), newClock()
	m := newTestManager(t, st, c, Plain())
	old, _ := m.Signer()
	c.Add(DefaultRotateAfter) // the key stops signing exactly now
	if kid, priv := m.Signer(); kid != "" || priv != nil {
		t.Fatalf("Signer() after NotAfter = %q; want none", kid)
	}
	m2 := newTestManager(t, st, c, Plain())
	kid, _ := m2.Signer()
	if kid == "" || kid == old {
		t.Fatalf("Init after expiry: signer %q, old %q", kid, old)
	}
	if _, ok := m2.PublicKey(old); !ok {
		t.Fatal("the expired key is not published during TokenTTL")
	}
}

func TestRotate(t *testing.T) {
	st, c := newMemStore(), newClock()
	m := newTestManager(t, st, c, Plain())
	old, oldPriv := m.Signer()
	c.Add(time.Hour)
	if err := m.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	cur, curPriv := m.Signer()
	if cur == old || curPriv.Equal(oldPriv) {
		t.Fatal("Rotate did not change the signer")
	}
	if got := st.stored()[old].NotAfter; !got.Equal(c.Now()) {
		t.Fatalf("old key NotAfter = %v, want now %v", got, c.Now())
	}
	// The old key stays published for TokenTTL.
	if got := kids(parseJWKS(t, m)); len(got) != 2 || got[0] != cur || got[1] != old {
		t.Fatalf("JWKS kids = %v, want [%s %s] (newest first)", got, cur, old)
	}
	c.Add(DefaultTokenTTL - time.Second)
	if _, ok := m.PublicKey(old); !ok {
		t.Fatal("old key unpublished before TokenTTL passed")
	}
	if len(parseJWKS(t, m).Keys) != 2 {
		t.Fatal("old key left the JWKS before TokenTTL passed")
	}
	c.Add(time.Second)
	if _, ok := m.PublicKey(old); ok {
		t.Fatal("old key still published after TokenTTL")
	}
	if got := kids(parseJWKS(t, m)); len(got) != 1 || got[0] != cur {
		t.Fatalf("JWKS kids after TokenTTL = %v, want [%s]", got, cur)
	}
	// Housekeeping deletes it from the store.
	if err := m.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := st.stored()[old]; ok || len(st.stored()) != 1 {
		t.Fatalf("retired key not deleted: %d keys stored", len(st.stored()))
	}
}

func TestMaintainCreatesSuccessorAhead(t *testing.T) {
	st, c := newMemStore(), newClock()
	m := newTestManager(t, st, c, Plain())
	first, _ := m.Signer()
	c.Add(DefaultRotateAfter / 2)
	if err := m.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if k, _ := m.Signer(); k != first || len(st.stored()) != 1 {
		t.Fatal("Maintain rotated a key with plenty of life left")
	}
	c.Add(DefaultRotateAfter/2 - DefaultRotateAfter/10)
	if err := m.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	next, _ := m.Signer()
	if next == first || len(st.stored()) != 2 {
		t.Fatalf("Maintain near NotAfter: signer %q (first %q), %d keys", next, first, len(st.stored()))
	}
	// The first key keeps its NotAfter and stays published past it.
	if _, ok := m.PublicKey(first); !ok {
		t.Fatal("first key unpublished")
	}
}

func TestJWKSFormat(t *testing.T) {
	st, c := newMemStore(), newClock()
	m := newTestManager(t, st, c, Plain())
	kid, priv := m.Signer()
	raw, _ := m.JWKS()
	var generic struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(raw, &generic); err != nil || len(generic.Keys) != 1 {
		t.Fatalf("JWKS %s: %v", raw, err)
	}
	k := generic.Keys[0]
	for name, want := range map[string]string{"kty": "OKP", "crv": "Ed25519", "kid": kid, "use": "sig", "alg": "EdDSA"} {
		if k[name] != want {
			t.Errorf("JWKS %s = %v, want %s", name, k[name], want)
		}
	}
	if _, ok := k["d"]; ok {
		t.Fatal("JWKS publishes the private key")
	}
	set := parseJWKS(t, m)
	pub, ok := set.Key(kid)[0].Key.(ed25519.PublicKey)
	if !ok || !pub.Equal(priv.Public()) {
		t.Fatal("JWKS key is not the signer's public key")
	}
	// Cached: the same bytes until the set changes.
	again, _ := m.JWKS()
	if &again[0] != &raw[0] {
		t.Fatal("JWKS re-encoded an unchanged set")
	}
	_ = m.Rotate(ctx)
	rotated, _ := m.JWKS()
	if bytes.Equal(rotated, raw) {
		t.Fatal("JWKS unchanged after Rotate")
	}
}

func TestPublicKeyReloadsOnMiss(t *testing.T) {
	st, c := newMemStore(), newClock()
	a := newTestManager(t, st, c, Plain())
	b := newTestManager(t, st, c, Plain())
	// Replica b rotates; replica a learns of the new key on its first miss.
	c.Add(5 * time.Second)
	if err := b.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	k1, _ := b.Signer()
	if _, ok := a.PublicKey(k1); !ok {
		t.Fatal("replica a did not find the key replica b created")
	}
	// A second unknown kid within the same second does not reload...
	if err := b.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	k2, _ := b.Signer()
	if _, ok := a.PublicKey(k2); ok {
		t.Fatal("replica a reloaded twice within one second")
	}
	if _, ok := a.PublicKey("made-up"); ok {
		t.Fatal("unknown kid found")
	}
	// ...one second later it does.
	c.Add(time.Second)
	if _, ok := a.PublicKey(k2); !ok {
		t.Fatal("replica a did not reload a second later")
	}
}

func TestSealedKeys(t *testing.T) {
	st, c := newMemStore(), newClock()
	enc, _ := NewAESGCM(testKEK(1))
	m := newTestManager(t, st, c, enc)
	kid, priv := m.Signer()
	blob := st.stored()[kid].PrivateKey
	if !bytes.HasPrefix(blob, []byte("aesgcm1:")) || bytes.Contains(blob, priv.Seed()) {
		t.Fatal("private key stored without encryption")
	}
	// A restart with the same KEK opens it.
	m2 := newTestManager(t, st, c, enc)
	if k, p := m2.Signer(); k != kid || !p.Equal(priv) {
		t.Fatal("restart with the same KEK does not sign with the same key")
	}
	// A wrong KEK fails loudly, naming the problem but not the key.
	wrong, _ := NewAESGCM(testKEK(2))
	err := NewManager(st, wrong, Options{Now: c.Now}).Init(ctx)
	if err == nil || !strings.Contains(err.Error(), "wrong key-encryption key") || !strings.Contains(err.Error(), kid) {
		t.Fatalf("Init with the wrong KEK: %v", err)
	}
	// No KEK at all: a clear instruction.
	err = NewManager(st, Plain(), Options{Now: c.Now}).Init(ctx)
	if err == nil || !strings.Contains(err.Error(), "signing keys are encrypted; configure the key-encryption key") {
		t.Fatalf("Init without a KEK: %v", err)
	}
	// Rotation needs no old private key: the operator's way out of a lost KEK.
	c.Add(time.Minute)
	recovered := NewManager(st, wrong, Options{Now: c.Now})
	if err := recovered.Rotate(ctx); err != nil {
		t.Fatalf("Rotate with a new KEK: %v", err)
	}
	if k, _ := recovered.Signer(); k == "" || k == kid {
		t.Fatal("Rotate with a new KEK did not produce a new signer")
	}
}

func TestPlainKeysAreResealed(t *testing.T) {
	st, c := newMemStore(), newClock()
	m := newTestManager(t, st, c, Plain())
	kid, priv := m.Signer()
	if !bytes.HasPrefix(st.stored()[kid].PrivateKey, []byte("plain:")) {
		t.Fatal("plain sealer did not store plain")
	}
	enc, _ := NewAESGCM(testKEK(3))
	m2 := newTestManager(t, st, c, enc)
	if k, p := m2.Signer(); k != kid || !p.Equal(priv) {
		t.Fatal("key changed when a KEK was configured")
	}
	sk := st.stored()[kid]
	if !bytes.HasPrefix(sk.PrivateKey, []byte("aesgcm1:")) {
		t.Fatal("Init with a KEK left a plain key in the store")
	}
	if !sk.NotAfter.Equal(c.Now().Add(DefaultRotateAfter)) || !sk.CreatedAt.Equal(c.Now()) {
		t.Fatal("resealing changed the key's times")
	}
}

func TestConcurrentUse(t *testing.T) {
	st, c := newMemStore(), newClock()
	m := newTestManager(t, st, c, Plain())
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				kid, priv := m.Signer()
				if priv == nil {
					t.Error("no signer during rotation")
					return
				}
				if _, ok := m.PublicKey(kid); !ok {
					// The signer may have been replaced and, after
					// TokenTTL, dropped; the clock does not move here.
					t.Error("signer's key not published")
					return
				}
				if _, err := m.JWKS(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for range 20 {
		if err := m.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}
