package service

import (
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// TestValidateForwardTarget: the centre forwards only a path at the site's
// own URL, never another host, and names the field when it refuses.
func TestValidateForwardTarget(t *testing.T) {
	for _, tc := range []struct {
		target string
		ok     bool
	}{
		{"/exec", true},
		{"/files?x=1", true},
		{"", false},
		{"exec", false},
		{"//evil.example/exec", false},
		{"http://evil.example/exec", false},
		{"/exec#frag", false},
		{"/exec\r\nX-Injected: 1", false},
		{"/" + strings.Repeat("a", maxForwardTarget), false},
	} {
		err := validateForwardTarget(tc.target)
		if tc.ok != (err == nil) {
			t.Errorf("%q: %v, want ok=%v", tc.target, err, tc.ok)
		}
		if err != nil && !domain.HasCode(err, domain.CodeInvalidArgument) {
			t.Errorf("%q: %v is not invalid-argument", tc.target, err)
		}
	}
}

// TestTransportReason: an unreachable site's error says why without the
// URL repeated.
func TestTransportReason(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = siteHTTPClient(nil).Get("http://" + addr + "/exec")
	if err == nil {
		t.Fatal("a closed port answered")
	}
	r := transportReason(err)
	if strings.Contains(r, "/exec") || !strings.Contains(r, "refused") {
		t.Errorf("reason %q", r)
	}
	if errors.Is(err, http.ErrUseLastResponse) {
		t.Error("unexpected redirect error")
	}
}
