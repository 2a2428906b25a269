package service

import (
	"bytes"
	"testing"
)

// TestNewSecretNeverLooksLikeAFlag: a mailed token is pasted as a command
// argument; one starting with '-' would be read as a flag. (Without the
// guard, 1 in 64 would; 5,000 draws all missing it has odds of about 1e-34.)
func TestNewSecretNeverLooksLikeAFlag(t *testing.T) {
	seen := map[string]bool{}
	for range 5000 {
		tok, h := newSecret()
		if tok[0] == '-' {
			t.Fatalf("token %q starts with '-'", tok)
		}
		if len(tok) != 43 || seen[tok] {
			t.Fatalf("token %q: wrong length or repeated", tok)
		}
		seen[tok] = true
		if !bytes.Equal(h, hashSecret(tok)) {
			t.Fatal("hash does not match the token")
		}
	}
}

func TestNewIDNeverLooksLikeAFlag(t *testing.T) {
	for range 5000 {
		if id := newID(); id[0] == '-' || len(id) != 22 {
			t.Fatalf("id %q", id)
		}
	}
}
