// Package scram implements the challenge-response login "scram-argon2id":
// SCRAM (RFC 5802, RFC 7677) with Argon2id in place of PBKDF2, so that the
// password never crosses the wire and the server never stores what a client
// sends.
//
// Both sides derive, from the password, the account's salt and Argon2id
// parameters:
//
//	SaltedPassword  = Argon2id(password, salt, m, t, p, keyLen)
//	ClientKey       = HMAC-SHA-256(SaltedPassword, "Client Key")
//	StoredKey       = SHA-256(ClientKey)
//	ServerKey       = HMAC-SHA-256(SaltedPassword, "Server Key")
//	ClientSignature = HMAC-SHA-256(StoredKey, AuthMessage)
//	ClientProof     = ClientKey XOR ClientSignature
//	ServerSignature = HMAC-SHA-256(ServerKey, AuthMessage)
//
// The server stores only the salt, the parameters, StoredKey and ServerKey
// (a Verifier). It checks a proof by recovering ClientKey = ClientProof XOR
// ClientSignature and comparing SHA-256(ClientKey) with StoredKey; it proves
// itself to the client with ServerSignature. AuthMessage binds the exchange
// to one account, one challenge and both sides' nonces (see AuthMessage).
//
// The verifier has a salt of its own, not the one of the account's PHC
// password hash: the PHC hash holds Argon2id(password, salt) itself, so with
// a shared salt whoever read the hash could compute ClientKey and log in
// without ever learning the password. With separate salts, neither stored
// value lets a thief run the exchange; like any SCRAM verifier, StoredKey
// and ServerKey still allow an offline guessing attack at the cost of one
// Argon2id per guess, and ServerKey lets its holder impersonate the server
// to a client (not log in).
package scram

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"

	"github.com/trellis-testbed/trellis/internal/auth/password"
)

// Type names the challenge type in the API.
const Type = "scram-argon2id"

// Sizes of the exchange's values.
const (
	// NonceLen is the length of the server's nonce, and of the nonce
	// Respond chooses for the client.
	NonceLen = 32
	// MinClientNonceLen and MaxClientNonceLen bound the client's nonce.
	MinClientNonceLen = 16
	MaxClientNonceLen = 64
	// ProofLen is the length of a ClientProof and a ServerSignature.
	ProofLen = sha256.Size
)

// b64 encodes binary values inside AuthMessage and in stored challenges.
var b64 = base64.StdEncoding

// Challenge is the server's half of an exchange: what it hands the client.
// None of it is secret.
type Challenge struct {
	Salt []byte
	// Params are Argon2id's costs; SaltLen is len(Salt).
	Params      password.Params
	ServerNonce []byte
}

// Validate checks what a client must check before spending memory and time
// on a challenge: a server (or a forged answer) could otherwise ask for an
// absurd Argon2id run.
func (c *Challenge) Validate() error {
	p := c.Params
	p.SaltLen = uint32(len(c.Salt))
	if err := p.Validate(); err != nil {
		return fmt.Errorf("scram: challenge parameters: %w", err)
	}
	if len(c.ServerNonce) != NonceLen {
		return fmt.Errorf("scram: the server nonce has %d bytes, want %d", len(c.ServerNonce), NonceLen)
	}
	return nil
}

// stored is the JSON form of a Challenge, as the service stores it.
type stored struct {
	Salt      []byte `json:"salt"`
	MemoryKiB uint32 `json:"m"`
	Time      uint32 `json:"t"`
	Threads   uint8  `json:"p"`
	KeyLen    uint32 `json:"k"`
	Nonce     []byte `json:"nonce"`
}

// Encode returns the challenge as a string to store with it.
func (c *Challenge) Encode() string {
	b, _ := json.Marshal(stored{
		Salt: c.Salt, MemoryKiB: c.Params.MemoryKiB, Time: c.Params.Time, Threads: c.Params.Threads,
		KeyLen: c.Params.KeyLen, Nonce: c.ServerNonce,
	})
	return string(b)
}

// DecodeChallenge is the inverse of Encode.
func DecodeChallenge(s string) (*Challenge, error) {
	var st stored
	if err := json.Unmarshal([]byte(s), &st); err != nil {
		return nil, errors.New("scram: malformed stored challenge")
	}
	c := &Challenge{
		Salt: st.Salt, ServerNonce: st.Nonce,
		Params: password.Params{
			MemoryKiB: st.MemoryKiB, Time: st.Time, Threads: st.Threads,
			SaltLen: uint32(len(st.Salt)), KeyLen: st.KeyLen,
		},
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// AuthMessage is what both proofs sign. It names the exchange (version 1),
// the uid and the challenge id, every parameter the server sent and both
// nonces, so a proof answers one challenge of one account only:
//
//	trellis-scram-argon2id,v=1,uid=UID,id=ID,m=M,t=T,p=P,k=K,s=SALT,r=SERVERNONCE,c=CLIENTNONCE
//
// with M, T, P, K in decimal and SALT and the nonces in padded standard
// base64. A uid (a login name) and a challenge id hold no comma.
func AuthMessage(uid, challengeID string, c *Challenge, clientNonce []byte) []byte {
	var b strings.Builder
	b.WriteString("trellis-scram-argon2id,v=1,uid=")
	b.WriteString(uid)
	b.WriteString(",id=")
	b.WriteString(challengeID)
	fmt.Fprintf(&b, ",m=%d,t=%d,p=%d,k=%d", c.Params.MemoryKiB, c.Params.Time, c.Params.Threads, c.Params.KeyLen)
	b.WriteString(",s=")
	b.WriteString(b64.EncodeToString(c.Salt))
	b.WriteString(",r=")
	b.WriteString(b64.EncodeToString(c.ServerNonce))
	b.WriteString(",c=")
	b.WriteString(b64.EncodeToString(clientNonce))
	return []byte(b.String())
}

// SaltedPassword runs Argon2id over pw with salt and p (p.SaltLen is
// ignored: the salt is what it is).
func SaltedPassword(pw string, salt []byte, p password.Params) ([]byte, error) {
	p.SaltLen = uint32(len(salt))
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("scram: %w", err)
	}
	return argon2.IDKey([]byte(pw), salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen), nil
}

func mac(key []byte, msg ...[]byte) []byte {
	m := hmac.New(sha256.New, key)
	for _, b := range msg {
		m.Write(b)
	}
	return m.Sum(nil)
}

func clientKey(salted []byte) []byte { return mac(salted, []byte("Client Key")) }
func serverKey(salted []byte) []byte { return mac(salted, []byte("Server Key")) }

func storedKey(clientKey []byte) []byte {
	h := sha256.Sum256(clientKey)
	return h[:]
}

func xor(a, b []byte) []byte {
	out := make([]byte, len(a))
	subtle.XORBytes(out, a, b)
	return out
}

// Nonce returns n random bytes.
func Nonce(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return b
}

// Response is the client's answer to a challenge, and what it expects the
// server to answer in turn.
type Response struct {
	ClientNonce []byte
	ClientProof []byte
	// serverSignature is what an honest server returns.
	serverSignature []byte
}

// ErrServerSignature means the server did not prove that it holds the
// account's verifier: it is not the server the password was set on.
var ErrServerSignature = errors.New("scram: the server's signature does not match: it does not hold this account's verifier")

// Respond computes the client's answer to challenge id for uid: the one
// Argon2id run of the exchange happens here, on the client.
func Respond(pw, uid, challengeID string, c *Challenge) (*Response, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	salted, err := SaltedPassword(pw, c.Salt, c.Params)
	if err != nil {
		return nil, err
	}
	nonce := Nonce(NonceLen)
	ck := clientKey(salted)
	am := AuthMessage(uid, challengeID, c, nonce)
	return &Response{
		ClientNonce:     nonce,
		ClientProof:     xor(ck, mac(storedKey(ck), am)),
		serverSignature: mac(serverKey(salted), am),
	}, nil
}

// VerifyServer checks the server's signature; ErrServerSignature when it
// does not match.
func (r *Response) VerifyServer(sig []byte) error {
	if len(sig) != ProofLen || subtle.ConstantTimeCompare(sig, r.serverSignature) != 1 {
		return ErrServerSignature
	}
	return nil
}

// String keeps the proof out of logs should a Response be printed.
func (r *Response) String() string { return "scram.Response{…}" }

// Verifier is what the server stores of a password for this exchange.
type Verifier struct {
	Salt      []byte
	Params    password.Params
	StoredKey []byte
	ServerKey []byte
}

// NewVerifier derives a verifier for pw with a fresh random salt of
// p.SaltLen bytes.
func NewVerifier(pw string, p password.Params) (*Verifier, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("scram: %w", err)
	}
	salt := Nonce(int(p.SaltLen))
	salted, err := SaltedPassword(pw, salt, p)
	if err != nil {
		return nil, err
	}
	return &Verifier{Salt: salt, Params: p, StoredKey: storedKey(clientKey(salted)), ServerKey: serverKey(salted)}, nil
}

// Challenge returns a fresh challenge for this verifier.
func (v *Verifier) Challenge() *Challenge {
	return &Challenge{Salt: v.Salt, Params: v.Params, ServerNonce: Nonce(NonceLen)}
}

// Verify reports whether proof proves knowledge of the password over am.
// It runs in constant time.
func (v *Verifier) Verify(am, proof []byte) bool {
	if len(proof) != ProofLen || len(v.StoredKey) != sha256.Size {
		return false
	}
	ck := xor(proof, mac(v.StoredKey, am))
	return subtle.ConstantTimeCompare(storedKey(ck), v.StoredKey) == 1
}

// ServerSignature proves to the client that the server holds the verifier.
func (v *Verifier) ServerSignature(am []byte) []byte { return mac(v.ServerKey, am) }

// String keeps the keys out of logs should a Verifier be printed.
func (v *Verifier) String() string { return "scram.Verifier{…}" }

// Encode returns the verifier in a PHC-like string, the form it is stored in:
//
//	$scram-argon2id$v=19$m=65536,t=2,p=2$<salt>$<StoredKey>$<ServerKey>
//
// with binary values in unpadded standard base64 and k the length of
// SaltedPassword (Argon2id's output).
func (v *Verifier) Encode() string {
	return fmt.Sprintf("$%s$v=%d$m=%d,t=%d,p=%d,k=%d$%s$%s$%s", Type, argon2.Version,
		v.Params.MemoryKiB, v.Params.Time, v.Params.Threads, v.Params.KeyLen,
		raw.EncodeToString(v.Salt), raw.EncodeToString(v.StoredKey), raw.EncodeToString(v.ServerKey))
}

var raw = base64.RawStdEncoding

// ErrMalformedVerifier is wrapped by every error about a stored verifier
// that cannot be parsed. Its text never holds the verifier.
var ErrMalformedVerifier = errors.New("scram: malformed verifier")

func malformed(reason string) error { return fmt.Errorf("%w: %s", ErrMalformedVerifier, reason) }

// ParseVerifier is the inverse of Encode.
func ParseVerifier(s string) (*Verifier, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 7 || parts[0] != "" || parts[1] != Type {
		return nil, malformed("expected $" + Type + "$v=19$m=…,t=…,p=…,k=…$salt$storedkey$serverkey")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return nil, malformed("unsupported argon2 version")
	}
	var p password.Params
	kv := strings.Split(parts[3], ",")
	if len(kv) != 4 {
		return nil, malformed("parameters must be m=…,t=…,p=…,k=…")
	}
	for i, name := range []string{"m", "t", "p", "k"} {
		k, val, found := strings.Cut(kv[i], "=")
		if !found || k != name {
			return nil, malformed("parameters must be m=…,t=…,p=…,k=…")
		}
		bits := 32
		if name == "p" {
			bits = 8
		}
		n, err := strconv.ParseUint(val, 10, bits)
		if err != nil {
			return nil, malformed("parameter " + name + " is not a number in range")
		}
		switch name {
		case "m":
			p.MemoryKiB = uint32(n)
		case "t":
			p.Time = uint32(n)
		case "p":
			p.Threads = uint8(n)
		case "k":
			p.KeyLen = uint32(n)
		}
	}
	var bins [3][]byte
	for i, what := range []string{"salt", "stored key", "server key"} {
		b, err := raw.Strict().DecodeString(parts[4+i])
		if err != nil {
			return nil, malformed(what + " is not unpadded base64")
		}
		bins[i] = b
	}
	p.SaltLen = uint32(len(bins[0]))
	if err := p.Validate(); err != nil {
		return nil, malformed(err.Error())
	}
	if len(bins[1]) != sha256.Size || len(bins[2]) != sha256.Size {
		return nil, malformed("keys must be 32 bytes")
	}
	return &Verifier{Salt: bins[0], Params: p, StoredKey: bins[1], ServerKey: bins[2]}, nil
}

// Decoy returns the challenge to hand out for a uid that has no verifier (no
// such account, or one whose password predates this exchange), so that the
// answer does not reveal which accounts exist: its salt is derived from key
// (a server secret) and the uid, so the same uid gets the same salt every
// time, as a real account does, with the parameters real accounts get. No
// response to it ever verifies.
func Decoy(key []byte, uid string, p password.Params) *Challenge {
	n := int(p.SaltLen)
	var salt []byte
	for i := byte(0); len(salt) < n; i++ {
		salt = append(salt, mac(key, []byte("trellis scram-argon2id decoy salt"), []byte{0, i}, []byte(uid))...)
	}
	return &Challenge{Salt: salt[:n], Params: p, ServerNonce: Nonce(NonceLen)}
}
