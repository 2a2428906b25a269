package portal

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/service"
)

// The session cookie holds a Trellis session's tokens: the access token
// (what every request is authenticated with, through the same
// auth.Authenticator as the API, so a revoked session or a locked account is
// refused here too), the refresh token (traded for a fresh access token when
// it expires) and the form token of CSRF protection. It is HttpOnly (no
// script reads it), SameSite=Lax, Secure under TLS, where its name takes
// the __Host- prefix (no subdomain may set it).
const (
	sessionCookie = "trellis_session"
	// anonCookie carries the form token of pages used before signing in
	// (sign in, register, confirm).
	anonCookie = "trellis_form"
	// refreshMargin refreshes an access token a little before it expires,
	// so that it does not expire between the check and the service call.
	refreshMargin = 30 * time.Second
	// csrfField is the hidden form field every state-changing form carries.
	csrfField = "csrf"
)

// cookieState is what the session cookie encodes.
type cookieState struct {
	Access  string `json:"a"`
	Refresh string `json:"r"`
	Expires int64  `json:"e"` // the access token's expiry, Unix seconds
	CSRF    string `json:"c"`
	// SessionExpires is when the session itself ends: the cookie's too.
	SessionExpires int64 `json:"s"`
}

// session is the request's authenticated state.
type session struct {
	// caller is who the authenticator says the request is from; nil for
	// an anonymous visitor.
	caller *auth.Principal
	// csrf is the token forms carry: the session's, or the anonymous
	// visitor's.
	csrf string
	// ended is set when the request carried a session cookie that no
	// longer stands for a session (revoked, expired, account locked).
	ended bool
}

func (h *Portal) cookieName(base string) string {
	if h.secure {
		return "__Host-" + base
	}
	return base
}

func (h *Portal) setCookie(w http.ResponseWriter, base, value string, expires time.Time) {
	c := &http.Cookie{
		Name: h.cookieName(base), Value: value, Path: "/",
		HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteLaxMode,
	}
	if value == "" {
		c.MaxAge = -1
	} else if !expires.IsZero() {
		c.Expires = expires
	}
	http.SetCookie(w, c)
}

func encodeState(s *cookieState) string {
	b, _ := json.Marshal(s)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeState(v string) (*cookieState, bool) {
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return nil, false
	}
	var s cookieState
	if json.Unmarshal(b, &s) != nil || s.Access == "" || s.Refresh == "" || s.CSRF == "" {
		return nil, false
	}
	return &s, true
}

func newToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// startSession keeps a login's tokens in the cookie, with a fresh form token.
func (h *Portal) startSession(w http.ResponseWriter, t *service.Tokens) {
	st := &cookieState{
		Access: t.AccessToken, Refresh: t.RefreshToken, Expires: t.AccessExpiresAt.Unix(),
		CSRF: newToken(), SessionExpires: t.SessionExpiresAt.Unix(),
	}
	h.setCookie(w, sessionCookie, encodeState(st), t.SessionExpiresAt)
	// The anonymous form token has served its purpose.
	h.setCookie(w, anonCookie, "", time.Time{})
}

// load authenticates the request: the session cookie's access token through
// the authenticator, refreshed first when it has expired. A cookie that no
// longer stands for a session is cleared and reported as ended.
func (h *Portal) load(w http.ResponseWriter, r *http.Request) *session {
	s := &session{}
	if c, err := r.Cookie(h.cookieName(sessionCookie)); err == nil {
		st, ok := decodeState(c.Value)
		if !ok {
			s.ended = true
		} else if p := h.authenticate(r.Context(), w, st); p != nil {
			s.caller, s.csrf = p, st.CSRF
			return s
		} else {
			s.ended = true
		}
		h.setCookie(w, sessionCookie, "", time.Time{})
	}
	if c, err := r.Cookie(h.cookieName(anonCookie)); err == nil && len(c.Value) >= 32 {
		s.csrf = c.Value
	}
	return s
}

// authenticate returns the cookie's principal, refreshing the access token
// (and rewriting the cookie) when it has expired; nil when the session is
// over.
func (h *Portal) authenticate(ctx context.Context, w http.ResponseWriter, st *cookieState) *auth.Principal {
	refreshed := false
	if time.Unix(st.Expires, 0).Add(-refreshMargin).Before(h.now()) {
		if !h.refresh(ctx, w, st) {
			return nil
		}
		refreshed = true
	}
	p, err := h.authn.AuthenticateToken(ctx, st.Access)
	if err != nil && !refreshed && domain.HasCode(err, domain.CodeUnauthenticated) {
		// Clocks differ a little: the token may have expired for the
		// verifier before the cookie said. One refresh, then the answer.
		if h.refresh(ctx, w, st) {
			p, err = h.authn.AuthenticateToken(ctx, st.Access)
		}
	}
	if err != nil {
		if !domain.HasCode(err, domain.CodeUnauthenticated) {
			h.log.WarnContext(ctx, "portal: authenticating a session failed", "err", err)
		}
		return nil
	}
	return p
}

// refresh trades the cookie's refresh token for fresh tokens and rewrites
// the cookie. Two requests of one browser may carry the same expired
// cookie at once (two tabs); a refresh token used twice revokes its
// session, so the second is given the first's result from refreshes.
func (h *Portal) refresh(ctx context.Context, w http.ResponseWriter, st *cookieState) bool {
	t, err := h.refreshes.do(ctx, st.Refresh, h.now(), func() (*service.Tokens, error) {
		return h.svc.Accounts.Refresh(ctx, nil, st.Refresh)
	})
	if err != nil {
		if !domain.HasCode(err, domain.CodeUnauthenticated) {
			h.log.WarnContext(ctx, "portal: refreshing a session failed", "err", err)
		}
		return false
	}
	st.Access, st.Refresh, st.Expires = t.AccessToken, t.RefreshToken, t.AccessExpiresAt.Unix()
	h.setCookie(w, sessionCookie, encodeState(st), time.Unix(st.SessionExpires, 0))
	return true
}

// refreshCache remembers recent refreshes by the hash of the refresh token
// they used, for refreshGrace; refreshes are rare (one per access token
// lifetime per browser), so one lock serializes them all.
type refreshCache struct {
	mu      sync.Mutex
	recent  map[[32]byte]refreshed
	cleaned time.Time
}

type refreshed struct {
	tokens *service.Tokens
	at     time.Time
}

const refreshGrace = time.Minute

func (c *refreshCache) do(ctx context.Context, refresh string, now time.Time, fn func() (*service.Tokens, error)) (*service.Tokens, error) {
	key := sha256.Sum256([]byte(refresh))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.recent == nil {
		c.recent = map[[32]byte]refreshed{}
	}
	if now.Sub(c.cleaned) > refreshGrace {
		for k, v := range c.recent {
			if now.Sub(v.at) > refreshGrace {
				delete(c.recent, k)
			}
		}
		c.cleaned = now
	}
	if v, ok := c.recent[key]; ok && now.Sub(v.at) <= refreshGrace {
		return v.tokens, nil
	}
	t, err := fn()
	if err != nil {
		return nil, err
	}
	c.recent[key] = refreshed{tokens: t, at: now}
	return t, nil
}

// ensureFormToken gives an anonymous visitor a form token (in its own
// cookie) before a page with a form is drawn.
func (h *Portal) ensureFormToken(w http.ResponseWriter, s *session) {
	if s.csrf != "" {
		return
	}
	s.csrf = newToken()
	h.setCookie(w, anonCookie, s.csrf, time.Time{})
}

// checkForm parses a posted form and checks its form token against the
// session's (or the anonymous visitor's). Browsers' own cross-origin
// checks (http.CrossOriginProtection, around every handler) come first;
// the token also refuses a form drawn for another session, such as one
// left open across a sign-out.
func (h *Portal) checkForm(w http.ResponseWriter, r *http.Request, s *session) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		h.render(w, r, s, http.StatusBadRequest, "error", errorPage{Title: "That form could not be read", Message: "The form sent was malformed or too large."})
		return false
	}
	got := r.PostForm.Get(csrfField)
	if s.csrf == "" || got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) != 1 {
		h.staleForm(w, r, s)
		return false
	}
	return true
}

const maxFormBytes = 64 << 10
