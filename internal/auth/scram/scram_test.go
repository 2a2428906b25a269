package scram

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"

	"github.com/trellis-testbed/trellis/internal/auth/password"
)

var params = password.TestParams()

func newVerifier(t *testing.T, pw string) *Verifier {
	t.Helper()
	v, err := NewVerifier(pw, params)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestExchange(t *testing.T) {
	v := newVerifier(t, "mad hatter tea party")
	c := v.Challenge()
	r, err := Respond("mad hatter tea party", "alice", "chal-1", c)
	if err != nil {
		t.Fatal(err)
	}
	am := AuthMessage("alice", "chal-1", c, r.ClientNonce)
	if !v.Verify(am, r.ClientProof) {
		t.Fatal("the right password's proof does not verify")
	}
	if err := r.VerifyServer(v.ServerSignature(am)); err != nil {
		t.Fatalf("the server's signature: %v", err)
	}
	if len(r.ClientProof) != ProofLen || len(r.ClientNonce) != NonceLen {
		t.Errorf("proof %d bytes, nonce %d bytes", len(r.ClientProof), len(r.ClientNonce))
	}
}

func TestWrongPassword(t *testing.T) {
	v := newVerifier(t, "mad hatter tea party")
	c := v.Challenge()
	r, err := Respond("mad hatter tea part", "alice", "chal-1", c)
	if err != nil {
		t.Fatal(err)
	}
	am := AuthMessage("alice", "chal-1", c, r.ClientNonce)
	if v.Verify(am, r.ClientProof) {
		t.Fatal("a wrong password's proof verifies")
	}
	// The client refuses the server's signature: it is not the server
	// this password was set on.
	if err := r.VerifyServer(v.ServerSignature(am)); !errors.Is(err, ErrServerSignature) {
		t.Fatalf("VerifyServer = %v, want ErrServerSignature", err)
	}
}

// TestProofBound checks that a proof answers one challenge of one account:
// changing anything AuthMessage names makes it fail.
func TestProofBound(t *testing.T) {
	v := newVerifier(t, "mad hatter tea party")
	c := v.Challenge()
	r, err := Respond("mad hatter tea party", "alice", "chal-1", c)
	if err != nil {
		t.Fatal(err)
	}
	other := *c
	other.ServerNonce = Nonce(NonceLen)
	otherSalt := *c
	otherSalt.Salt = bytes.Repeat([]byte{1}, len(c.Salt))
	for name, am := range map[string][]byte{
		"uid":          AuthMessage("bob", "chal-1", c, r.ClientNonce),
		"challenge id": AuthMessage("alice", "chal-2", c, r.ClientNonce),
		"server nonce": AuthMessage("alice", "chal-1", &other, r.ClientNonce),
		"client nonce": AuthMessage("alice", "chal-1", c, Nonce(NonceLen)),
		"salt":         AuthMessage("alice", "chal-1", &otherSalt, r.ClientNonce),
	} {
		if v.Verify(am, r.ClientProof) {
			t.Errorf("a proof verifies with another %s", name)
		}
	}
	for _, proof := range [][]byte{nil, {}, r.ClientProof[:31], append(r.ClientProof, 0)} {
		if v.Verify(AuthMessage("alice", "chal-1", c, r.ClientNonce), proof) {
			t.Errorf("a proof of %d bytes verifies", len(proof))
		}
	}
	if err := r.VerifyServer(nil); !errors.Is(err, ErrServerSignature) {
		t.Errorf("VerifyServer(nil) = %v", err)
	}
}

// TestKnownAnswer recomputes an exchange from the primitives, step by step
// as the package documentation states it, with fixed inputs: a client in
// another language implements exactly this.
func TestKnownAnswer(t *testing.T) {
	salt := []byte("0123456789abcdef")
	snonce := bytes.Repeat([]byte{0xAB}, NonceLen)
	cnonce := bytes.Repeat([]byte{0xCD}, NonceLen)
	c := &Challenge{Salt: salt, Params: params, ServerNonce: snonce}
	am := AuthMessage("alice", "chal-1", c, cnonce)
	wantAM := "trellis-scram-argon2id,v=1,uid=alice,id=chal-1,m=64,t=1,p=1,k=32," +
		"s=MDEyMzQ1Njc4OWFiY2RlZg==," +
		"r=q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=," +
		"c=zc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc0="
	if string(am) != wantAM {
		t.Fatalf("AuthMessage =\n%s\nwant\n%s", am, wantAM)
	}
	hm := func(k []byte, m string) []byte {
		h := hmac.New(sha256.New, k)
		h.Write([]byte(m))
		return h.Sum(nil)
	}
	salted := argon2.IDKey([]byte("pw"), salt, 1, 64, 1, 32)
	ck := hm(salted, "Client Key")
	sk := sha256.Sum256(ck)
	sig := hm(sk[:], wantAM)
	proof := make([]byte, 32)
	for i := range proof {
		proof[i] = ck[i] ^ sig[i]
	}
	v := &Verifier{Salt: salt, Params: params, StoredKey: sk[:], ServerKey: hm(salted, "Server Key")}
	if !v.Verify(am, proof) {
		t.Fatal("the step-by-step proof does not verify")
	}
	if got, want := v.ServerSignature(am), hm(hm(salted, "Server Key"), wantAM); !bytes.Equal(got, want) {
		t.Fatal("ServerSignature is not HMAC(ServerKey, AuthMessage)")
	}
	got, err := SaltedPassword("pw", salt, params)
	if err != nil || !bytes.Equal(got, salted) {
		t.Fatalf("SaltedPassword = %x, %v", got, err)
	}
}

func TestVerifierEncoding(t *testing.T) {
	v := newVerifier(t, "mad hatter tea party")
	enc := v.Encode()
	if !strings.HasPrefix(enc, "$scram-argon2id$v=19$m=64,t=1,p=1,k=32$") {
		t.Fatalf("Encode = %q", enc)
	}
	back, err := ParseVerifier(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Salt, v.Salt) || !bytes.Equal(back.StoredKey, v.StoredKey) ||
		!bytes.Equal(back.ServerKey, v.ServerKey) || back.Params != v.Params {
		t.Fatalf("ParseVerifier(Encode) = %+v, want %+v", back, v)
	}
	w := newVerifier(t, "mad hatter tea party")
	if bytes.Equal(w.Salt, v.Salt) || bytes.Equal(w.StoredKey, v.StoredKey) {
		t.Fatal("two verifiers of one password share a salt")
	}
	parts := strings.Split(enc, "$")
	for _, bad := range []string{
		"",
		"$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaA",
		strings.Replace(enc, "v=19", "v=16", 1),
		strings.Replace(enc, "m=64,t=1,p=1,k=32", "m=64,t=1,p=1", 1),
		strings.Replace(enc, "m=64,t=1,p=1,k=32", "m=1099511627776,t=1,p=1,k=32", 1),
		strings.Replace(enc, "m=64,t=1,p=1,k=32", "m=64,t=1,p=0,k=32", 1),
		strings.Replace(enc, parts[5], parts[5][:20], 1),
		strings.Replace(enc, parts[4], "!!"+parts[4], 1),
		enc + "$extra",
	} {
		_, err := ParseVerifier(bad)
		if !errors.Is(err, ErrMalformedVerifier) {
			t.Errorf("ParseVerifier(%q) = %v, want ErrMalformedVerifier", bad, err)
			continue
		}
		for _, secret := range parts[4:] {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q reveals part of the verifier", err)
			}
		}
	}
	if s := fmt.Sprint(v); strings.Contains(s, parts[5]) || s != "scram.Verifier{…}" {
		t.Errorf("a printed verifier shows %q", s)
	}
}

func TestChallengeEncoding(t *testing.T) {
	c := newVerifier(t, "pw").Challenge()
	back, err := DecodeChallenge(c.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Salt, c.Salt) || !bytes.Equal(back.ServerNonce, c.ServerNonce) || back.Params != c.Params {
		t.Fatalf("DecodeChallenge(Encode) = %+v, want %+v", back, c)
	}
	for _, bad := range []string{"", "{", `{"salt":"c2FsdHNhbHRzYWx0c2FsdA==","m":64,"t":1,"p":1,"k":32}`} {
		if _, err := DecodeChallenge(bad); err == nil {
			t.Errorf("DecodeChallenge(%q) succeeded", bad)
		}
	}
}

// TestRespondRefusesAbsurdChallenges: the client checks a challenge before
// spending memory on it.
func TestRespondRefusesAbsurdChallenges(t *testing.T) {
	good := newVerifier(t, "pw").Challenge()
	for name, mutate := range map[string]func(c *Challenge){
		"memory":      func(c *Challenge) { c.Params.MemoryKiB = 1 << 31 },
		"time":        func(c *Challenge) { c.Params.Time = 1000 },
		"no threads":  func(c *Challenge) { c.Params.Threads = 0 },
		"short salt":  func(c *Challenge) { c.Salt = c.Salt[:4] },
		"short key":   func(c *Challenge) { c.Params.KeyLen = 4 },
		"short nonce": func(c *Challenge) { c.ServerNonce = c.ServerNonce[:8] },
	} {
		c := *good
		mutate(&c)
		if _, err := Respond("pw", "alice", "chal-1", &c); err == nil {
			t.Errorf("%s: Respond accepted the challenge", name)
		}
	}
}

func TestDecoy(t *testing.T) {
	key := []byte("server secret, 32 bytes at least")
	a1, a2 := Decoy(key, "alice", params), Decoy(key, "alice", params)
	if !bytes.Equal(a1.Salt, a2.Salt) {
		t.Fatal("the decoy salt of one uid changes")
	}
	if bytes.Equal(a1.ServerNonce, a2.ServerNonce) {
		t.Fatal("decoys share a nonce")
	}
	if bytes.Equal(a1.Salt, Decoy(key, "bob", params).Salt) || bytes.Equal(a1.Salt, Decoy([]byte("another key"), "alice", params).Salt) {
		t.Fatal("the decoy salt does not depend on the uid and the key")
	}
	if err := a1.Validate(); err != nil || len(a1.Salt) != int(params.SaltLen) || a1.Params != params {
		t.Fatalf("decoy %+v: %v", a1, err)
	}
	long := params
	long.SaltLen = 48
	if d := Decoy(key, "alice", long); len(d.Salt) != 48 || d.Validate() != nil {
		t.Fatalf("decoy salt of %d bytes, want 48", len(d.Salt))
	}
}

func TestResponseHidesProof(t *testing.T) {
	r, err := Respond("pw", "alice", "chal-1", newVerifier(t, "pw").Challenge())
	if err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprintf("%v %+v", r, r); s != "scram.Response{…} scram.Response{…}" {
		t.Errorf("a printed response shows %q", s)
	}
}
