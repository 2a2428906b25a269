package auth

import (
	"bytes"
	"strings"
	"testing"
)

func TestAPITokenFormat(t *testing.T) {
	tok, id, hash := NewAPIToken()
	gotID, secret, ok := parseAPIToken(tok)
	if !ok || gotID != id || !bytes.Equal(hashAPISecret(secret), hash) {
		t.Fatalf("parse(%q) = %q, %v", tok, gotID, ok)
	}
	if tok2, id2, _ := NewAPIToken(); tok2 == tok || id2 == id {
		t.Fatal("two tokens alike")
	}
	for _, bad := range []string{"", "trls_", "trls_" + id, "trls_" + id + "_short", "xtrls_" + id + "_" + secret, strings.Replace(tok, "_", "-", 1)} {
		if _, _, ok := parseAPIToken(bad); ok {
			t.Errorf("parse(%q) accepted", bad)
		}
	}
}
