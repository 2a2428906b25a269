package password

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/GehirnInc/crypt"
	"github.com/GehirnInc/crypt/md5_crypt"
	"github.com/GehirnInc/crypt/sha512_crypt"
	"golang.org/x/crypto/bcrypt"
)

// Legacy formats: the hashes older testbeds kept, which accounts migrated
// in (docs/migrate.md) bring along. Hasher.Verify checks them and always
// asks for a rehash, so the first successful login replaces a legacy hash
// with an Argon2id one, as Keycloak and Kratos do on import.
//
// Each comparison is constant time (bcrypt and GehirnInc/crypt compare
// with crypto/subtle, and so does verifyPBKDF2). Costs are bounded, as for
// Argon2id, so that an imported hash cannot make one login a denial of
// service.
const (
	maxBcryptCost       = 16
	maxSHACryptRounds   = 1_000_000
	maxPBKDF2Iterations = 5_000_000
	djangoPBKDF2        = "pbkdf2_sha256"
)

// ErrUnknownFormat is wrapped by the error about a hash in no format this
// package reads.
var ErrUnknownFormat = errors.New("password: unknown hash format")

// Format names the format of an encoded hash: "argon2id", "bcrypt",
// "sha512-crypt", "md5-crypt", "pbkdf2-sha256", or "" when it is none of
// them.
func Format(encoded string) string {
	switch {
	case strings.HasPrefix(encoded, "$argon2id$"):
		return "argon2id"
	case strings.HasPrefix(encoded, "$2a$"), strings.HasPrefix(encoded, "$2b$"), strings.HasPrefix(encoded, "$2y$"):
		return "bcrypt"
	case strings.HasPrefix(encoded, "$6$"):
		return "sha512-crypt"
	case strings.HasPrefix(encoded, "$1$"):
		return "md5-crypt"
	case strings.HasPrefix(encoded, djangoPBKDF2+"$"):
		return "pbkdf2-sha256"
	}
	return ""
}

// CheckImportable reports whether encoded is a hash Verify can check,
// with a cost within bounds. Its error names what is wrong, never the hash.
func CheckImportable(encoded string) error {
	switch Format(encoded) {
	case "argon2id":
		_, err := decode(encoded)
		return err
	case "bcrypt":
		cost, err := bcrypt.Cost([]byte(encoded))
		if err != nil {
			return fmt.Errorf("%w: malformed bcrypt hash", ErrMalformedHash)
		}
		if cost > maxBcryptCost {
			return fmt.Errorf("%w: bcrypt cost %d over %d", ErrMalformedHash, cost, maxBcryptCost)
		}
		return nil
	case "sha512-crypt":
		return checkSHACrypt(encoded)
	case "md5-crypt":
		if parts := strings.Split(encoded, "$"); len(parts) != 4 || len(parts[2]) == 0 || len(parts[2]) > 8 || len(parts[3]) != 22 {
			return fmt.Errorf("%w: expected $1$salt$hash", ErrMalformedHash)
		}
		return nil
	case "pbkdf2-sha256":
		_, _, _, err := decodePBKDF2(encoded)
		return err
	}
	return fmt.Errorf("%w: expected argon2id, bcrypt ($2a$, $2b$, $2y$), SHA-512-crypt ($6$), MD5-crypt ($1$) or pbkdf2_sha256$…", ErrUnknownFormat)
}

// checkSHACrypt checks the form $6$[rounds=N$]salt$hash and bounds N.
func checkSHACrypt(encoded string) error {
	parts := strings.Split(encoded, "$")
	if len(parts) == 5 {
		n, ok := strings.CutPrefix(parts[2], "rounds=")
		r, err := strconv.Atoi(n)
		if !ok || err != nil || r < 1 {
			return fmt.Errorf("%w: expected $6$rounds=N$salt$hash", ErrMalformedHash)
		}
		if r > maxSHACryptRounds {
			return fmt.Errorf("%w: SHA-512-crypt rounds %d over %d", ErrMalformedHash, r, maxSHACryptRounds)
		}
		parts = append(parts[:2], parts[3:]...)
	}
	if len(parts) != 4 || len(parts[2]) > 16 || len(parts[3]) != 86 {
		return fmt.Errorf("%w: expected $6$salt$hash", ErrMalformedHash)
	}
	return nil
}

// decodePBKDF2 parses Django's pbkdf2_sha256$iterations$salt$base64(hash).
func decodePBKDF2(encoded string) (iter int, salt string, key []byte, err error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 4 || parts[0] != djangoPBKDF2 || parts[2] == "" {
		return 0, "", nil, fmt.Errorf("%w: expected pbkdf2_sha256$iterations$salt$hash", ErrMalformedHash)
	}
	iter, err = strconv.Atoi(parts[1])
	if err != nil || iter < 1 {
		return 0, "", nil, fmt.Errorf("%w: PBKDF2 iterations are not a positive number", ErrMalformedHash)
	}
	if iter > maxPBKDF2Iterations {
		return 0, "", nil, fmt.Errorf("%w: PBKDF2 iterations %d over %d", ErrMalformedHash, iter, maxPBKDF2Iterations)
	}
	key, err = base64.StdEncoding.DecodeString(parts[3])
	if err != nil || len(key) < 16 {
		return 0, "", nil, fmt.Errorf("%w: PBKDF2 hash is not base64 of at least 16 bytes", ErrMalformedHash)
	}
	return iter, parts[2], key, nil
}

// verifyLegacy checks password against a hash in a legacy format. err is
// set only when encoded is malformed or out of bounds.
func verifyLegacy(encoded, password string) (ok bool, err error) {
	if err := CheckImportable(encoded); err != nil {
		return false, err
	}
	switch Format(encoded) {
	case "bcrypt":
		err := bcrypt.CompareHashAndPassword([]byte(encoded), []byte(password))
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("%w: bcrypt: %v", ErrMalformedHash, err)
		}
		return true, nil
	case "sha512-crypt":
		return cryptVerify(sha512_crypt.New(), encoded, password)
	case "md5-crypt":
		return cryptVerify(md5_crypt.New(), encoded, password)
	case "pbkdf2-sha256":
		iter, salt, key, _ := decodePBKDF2(encoded)
		got, err := pbkdf2.Key(sha256.New, password, []byte(salt), iter, len(key))
		if err != nil {
			return false, fmt.Errorf("%w: pbkdf2: %v", ErrMalformedHash, err)
		}
		return subtle.ConstantTimeCompare(got, key) == 1, nil
	}
	return false, ErrUnknownFormat
}

// cryptVerify runs a crypt(3) scheme; its Verify compares in constant time
// and fails with ErrKeyMismatch on a wrong password.
func cryptVerify(c crypt.Crypter, encoded, password string) (bool, error) {
	err := c.Verify(encoded, []byte(password))
	if errors.Is(err, crypt.ErrKeyMismatch) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrMalformedHash, err)
	}
	return true, nil
}
