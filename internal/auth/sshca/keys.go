package sshca

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/ssh"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// MinRSABits is the smallest RSA key accepted: NIST's floor for keys that
// must stay safe beyond 2030.
const MinRSABits = 3072

// Limits on what a user submits. The longest accepted key, RSA-16384, is
// about 2,800 characters in authorized_keys form.
const (
	maxKeyLineLen = 8 << 10
	maxCommentLen = 256
)

// UserKey is a checked SSH public key.
type UserKey struct {
	Key         ssh.PublicKey
	Fingerprint string // "SHA256:…", as ssh-keygen -l prints it
	Type        string
	Bits        int
	Comment     string
}

// AuthorizedKey returns the key in authorized_keys form, without comment.
func (k *UserKey) AuthorizedKey() string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k.Key)))
}

const keyForm = "one line in authorized_keys form (TYPE BASE64 [COMMENT]), such as the content of ~/.ssh/id_ed25519.pub"

const acceptedTypes = "ed25519, ecdsa, rsa of at least 3072 bits, or their security-key (sk-) variants"

// ParseUserKey checks an SSH public key a user submits in field: one
// authorized_keys line without options, of a type and size strong enough.
// Errors are domain invalid-argument errors naming field; they never quote
// the input, which might be a private key pasted by mistake.
func ParseUserKey(field, line string) (*UserKey, error) {
	line = strings.TrimSpace(line)
	invalid := func(rule, desc string) error { return domain.Invalid(field, field+"."+rule, desc) }
	switch {
	case line == "":
		return nil, invalid("required", "an SSH public key is required: "+keyForm)
	case len(line) > maxKeyLineLen:
		return nil, invalid("too_long", fmt.Sprintf("at most %d characters: %s", maxKeyLineLen, keyForm))
	case strings.Contains(line, "PRIVATE KEY"):
		return nil, invalid("private_key", "this is a private key, which must never leave your machine; give the public key (the .pub file) instead")
	case strings.ContainsAny(line, "\r\n"):
		return nil, invalid("format", "give one key only: "+keyForm)
	}
	key, comment, options, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return nil, invalid("format", "not an SSH public key: want "+keyForm)
	}
	if len(options) > 0 {
		return nil, invalid("options", "authorized_keys options (from=, command=, …) are not accepted: give the key alone")
	}
	if _, ok := key.(*ssh.Certificate); ok {
		return nil, invalid("certificate", "this is an SSH certificate; give the public key it certifies")
	}
	if !utf8.ValidString(comment) || strings.IndexFunc(comment, unicode.IsControl) >= 0 || len(comment) > maxCommentLen {
		return nil, invalid("comment", fmt.Sprintf("the comment must be printable text of at most %d bytes", maxCommentLen))
	}
	bits, err := keyBits(key)
	if err != nil {
		return nil, invalid("type", err.Error())
	}
	switch key.Type() {
	case ssh.InsecureKeyAlgoDSA:
		return nil, invalid("weak", "DSA keys are too weak and OpenSSH no longer accepts them; use "+acceptedTypes+" (ssh-keygen -t ed25519)")
	case ssh.KeyAlgoRSA:
		if bits < MinRSABits {
			return nil, invalid("weak", fmt.Sprintf("this RSA key has %d bits; at least %d are required (or use ed25519: ssh-keygen -t ed25519)", bits, MinRSABits))
		}
	}
	return &UserKey{Key: key, Fingerprint: ssh.FingerprintSHA256(key), Type: key.Type(), Bits: bits, Comment: comment}, nil
}

// keyBits returns a key's size as ssh-keygen -l prints it, or an error for
// the types Trellis does not accept.
func keyBits(key ssh.PublicKey) (int, error) {
	switch key.Type() {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoSKED25519:
		return 256, nil
	case ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521, ssh.KeyAlgoSKECDSA256:
		if k, ok := key.(ssh.CryptoPublicKey).CryptoPublicKey().(*ecdsa.PublicKey); ok {
			return k.Curve.Params().BitSize, nil
		}
	case ssh.KeyAlgoRSA:
		if k, ok := key.(ssh.CryptoPublicKey).CryptoPublicKey().(*rsa.PublicKey); ok {
			return k.N.BitLen(), nil
		}
	case ssh.InsecureKeyAlgoDSA:
		return 1024, nil // the only size OpenSSH ever made; refused anyway
	}
	return 0, fmt.Errorf("key type %s is not accepted; use %s", key.Type(), acceptedTypes)
}

var fingerprintFormat = regexp.MustCompile(`^SHA256:[A-Za-z0-9+/]{43}$`)

// CheckFingerprint checks that fp is an SSH SHA-256 fingerprint.
func CheckFingerprint(field, fp string) error {
	switch {
	case fp == "":
		return domain.Invalid(field, field+".required", "a key fingerprint is required, as `trellis ssh key list` shows it (SHA256:…)")
	case !fingerprintFormat.MatchString(fp):
		return domain.Invalid(field, field+".format", "a fingerprint is SHA256: followed by 43 base64 characters, as `ssh-keygen -l` and `trellis ssh key list` print it")
	}
	return nil
}
