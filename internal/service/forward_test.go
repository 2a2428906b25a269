package service

import (
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

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
	c, err := SiteHTTPClient(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Get("http://" + addr + "/exec")
	if err == nil {
		t.Fatal("a closed port answered")
	}
	r := transportReason(err)
	if strings.Contains(r, "/exec") || !strings.Contains(r, "refused") {
		t.Errorf("reason %q", r)
	}
	if _, err := SiteHTTPClient(nil, []byte("not PEM")); err == nil {
		t.Error("a bundle without a certificate was accepted")
	}
	if errors.Is(err, http.ErrUseLastResponse) {
		t.Error("unexpected redirect error")
	}
}

// TestForwardTokensReused: a user's token for a site is reused while more
// than half its life is left, then made anew.
func TestForwardTokensReused(t *testing.T) {
	var f forwardTokens
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	tok := &SiteTicket{Token: "t1", ExpiresAt: now.Add(ForwardTokenTTL)}
	f.put("alice\x00site1", tok, now)
	if got := f.get("alice\x00site1", now.Add(ForwardTokenTTL/2-time.Second)); got != tok {
		t.Errorf("before half its life: %v", got)
	}
	if got := f.get("alice\x00site1", now.Add(ForwardTokenTTL/2+time.Second)); got != nil {
		t.Errorf("past half its life: %v", got)
	}
	if got := f.get("bob\x00site1", now); got != nil {
		t.Errorf("another user's: %v", got)
	}
}

// TestConnectionCache: what a change invalidated is read again, and a
// read that raced an invalidation is not kept.
func TestConnectionCache(t *testing.T) {
	c := newConnectionCache()
	site1, site2 := &domain.Provider{Name: "site1"}, &domain.Provider{Name: "site2"}
	_, gen := c.get("alice", "site1")
	c.put("alice", "site1", site1, gen)
	c.put("alice", "site2", site2, gen)
	c.put("bob", "site1", site1, gen)
	if got, _ := c.get("alice", "site1"); got != site1 {
		t.Fatalf("alice at site1: %v", got)
	}

	// A read begun before an invalidation is not kept.
	_, stale := c.get("carol", "site1")
	c.invalidateUser("nobody")
	c.put("carol", "site1", site1, stale)
	if got, _ := c.get("carol", "site1"); got != nil {
		t.Errorf("a raced read was kept: %v", got)
	}

	c.invalidateUser("alice") // alice disconnected from a site
	if got, _ := c.get("alice", "site2"); got != nil {
		t.Errorf("alice after her connections changed: %v", got)
	}
	if got, _ := c.get("bob", "site1"); got != site1 {
		t.Errorf("bob lost his entry: %v", got)
	}
	c.invalidateProvider("site1") // site1 disabled or removed
	if got, _ := c.get("bob", "site1"); got != nil {
		t.Errorf("bob at a changed site: %v", got)
	}
	_, gen = c.get("bob", "site2")
	c.put("bob", "site2", site2, gen)
	c.reset()
	if got, _ := c.get("bob", "site2"); got != nil || c.n != 0 {
		t.Errorf("after a reset: %v, %d entries", got, c.n)
	}
}
