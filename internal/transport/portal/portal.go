// Package portal is Trellis's web portal: server-rendered pages for
// researchers and operators, served by `trellis serve` at "/".
//
// The portal is a door like the API: it authenticates each request (a
// session cookie holding a Trellis session's tokens, checked by the same
// auth.Authenticator as the API) and calls the service layer with that
// caller. Every service method authorizes itself, so the portal makes no
// authorization decision of its own: it shows what the service returns and
// the refusals the service gives.
//
// Pages are html/template, embedded with the one stylesheet and the few
// lines of script, which are served under content-hashed names. Every page
// carries a strict Content-Security-Policy (no inline script or style),
// every state-changing form a CSRF token, and every request passes
// net/http's cross-origin protection.
package portal

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/requestid"
	"github.com/trellis-testbed/trellis/internal/service"
	"github.com/trellis-testbed/trellis/internal/store"
)

// Options configure the portal.
type Options struct {
	Service *service.Service
	// Authenticator is the API's: the portal authenticates every request
	// with it, so revocation and account state apply alike.
	Authenticator *auth.Authenticator
	// Secure marks cookies Secure (the server speaks TLS).
	Secure bool
	Log    *slog.Logger
	// Now is the clock (tests move it); time.Now when nil.
	Now func() time.Time
	// LimitAnonymous, when set, wraps the forms anyone may post (sign in,
	// register, confirm): a per-address bound like the OpenID Connect
	// pages'.
	LimitAnonymous func(http.Handler) http.Handler

	// ExternalLogin offers signing in through the institution: the oidc
	// authentication backend is on (reset.go).
	ExternalLogin bool
}

// Portal serves the pages.
type Portal struct {
	svc       *service.Service
	authn     *auth.Authenticator
	secure    bool
	log       *slog.Logger
	now       func() time.Time
	assets    *assetSet
	pages     map[string]*template.Template
	refreshes refreshCache
	cop       *http.CrossOriginProtection
	limit     func(http.Handler) http.Handler

	external bool
}

// CSP is every page's Content-Security-Policy: only this origin's own
// stylesheet, script and images; no inline script or style, no framing,
// forms posted only here.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// New builds the portal.
func New(o Options) (*Portal, error) {
	h := &Portal{svc: o.Service, authn: o.Authenticator, secure: o.Secure, log: o.Log, now: o.Now, limit: o.LimitAnonymous}
	h.external = o.ExternalLogin
	if h.limit == nil {
		h.limit = func(next http.Handler) http.Handler { return next }
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.now == nil {
		h.now = time.Now
	}
	var err error
	if h.assets, err = loadAssets(); err != nil {
		return nil, fmt.Errorf("portal assets: %w", err)
	}
	if h.pages, err = h.parseTemplates(); err != nil {
		return nil, fmt.Errorf("portal templates: %w", err)
	}
	h.cop = http.NewCrossOriginProtection()
	h.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.render(w, r, &session{}, http.StatusForbidden, "error", errorPage{
			Title:   "This form came from another site",
			Message: "Your browser says this request was sent by a page of another site, so it was refused. If you meant to do this, open Trellis directly and try again.",
		})
	}))
	return h, nil
}

// Mount registers the portal's pages on mux. Each is a precise pattern, so
// the API's routes, the OpenID Connect endpoints and the health and
// metrics endpoints keep theirs.
func (h *Portal) Mount(mux *http.ServeMux) {
	handle := func(pattern string, fn func(http.ResponseWriter, *http.Request)) {
		mux.Handle(pattern, h.cop.Handler(h.page(http.HandlerFunc(fn))))
	}
	anonymous := func(pattern string, fn func(http.ResponseWriter, *http.Request)) {
		mux.Handle(pattern, h.limit(h.cop.Handler(h.page(http.HandlerFunc(fn)))))
	}
	mux.HandleFunc("GET "+AssetPrefix+"{name}", h.assets.serve)
	handle("GET /{$}", h.home)
	handle("GET /signin", h.signinForm)
	anonymous("POST /signin", h.signin)
	handle("POST /signout", h.signout)
	handle("GET /register", h.registerForm)
	anonymous("POST /register", h.register)
	handle("GET /register/sent", h.registerSent)
	handle("GET /confirm", h.confirmForm)
	anonymous("POST /confirm", h.confirm)
	handle("GET /profile", h.profile)
	handle("POST /profile", h.saveProfile)
	handle("GET /projects", h.projects)
	handle("GET /projects/new", h.newProjectForm)
	handle("POST /projects/new", h.requestProject)
	handle("GET /projects/{name}", h.project)
	handle("POST /projects/{name}/members", h.addMembers)
	handle("GET /notifications", h.notifications)
	handle("POST /notifications/read", h.markRead)
	handle("POST /requests/{id}/accept", h.acceptRequest)
	handle("POST /requests/{id}/decline", h.declineRequest)
	h.mountTestbed(handle)
	handle("GET "+EventsPath, h.events)
	handle("GET "+resetRequestPath, h.resetRequestForm)
	anonymous("POST "+resetRequestPath, h.resetRequest)
	handle("GET "+service.PortalResetPath, h.resetForm)
	anonymous("POST "+service.PortalResetPath, h.reset)
	anonymous("GET "+externalStartPath, h.externalStart)
	anonymous("GET "+service.PortalExternalLoginPath, h.externalDone)
	handle("GET "+credentialsPath, h.credentials)
	handle("POST /credentials/ssh", h.addSSHKey)
	handle("POST /credentials/ssh/remove", h.removeSSHKey)
	handle("POST /credentials/tokens", h.createAPIToken)
	handle("POST /credentials/tokens/{name}/revoke", h.revokeAPIToken)
	handle("POST /credentials/sites/{provider}/remove", h.removeConnection)
	handle("GET /credentials/link", h.linkIdentity)
	handle("POST /credentials/identities/remove", h.unlinkIdentity)
	handle("GET /admin/users", h.adminUsers)
	handle("POST /admin/users/{uid}/state", h.adminSetUserState)
	handle("POST /admin/users/{uid}/admin", h.adminSetAdmin)
	handle("GET /admin/realizations", h.adminRealizations)
	handle("POST /admin/realizations/{id}/release", h.adminForceRelease)
	handle("GET /admin/resources", h.adminResources)
	handle("POST /admin/resources/{name}/state", h.adminSetResourceState)
	handle("GET /admin/clients", h.adminClients)
	handle("POST /admin/services", h.adminAddService)
	handle("POST /admin/services/{name}/remove", h.adminRemoveService)
	handle("POST /admin/clients", h.adminAddClient)
	handle("POST /admin/clients/{name}/remove", h.adminRemoveClient)
	handle("GET /admin/audit", h.adminAudit)
	handle("GET /admin/outbox", h.adminOutbox)
	handle("GET /admin/ca", h.adminCA)
	handle("POST /admin/ca/rotate", h.adminRotateCA)
	handle("GET /admin/approvals", h.approvals)
	handle("POST /admin/approvals/{name}/approve", h.approve)
	handle("POST /admin/approvals/{name}/reject", h.reject)
}

// page sets the headers every page carries.
func (h *Portal) page(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", CSP)
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// noteArgs is what the "note" template receives.
type noteArgs struct {
	Note notificationRow
	CSRF string
}

// view is what every template receives.
type view struct {
	Title string
	// Caller is the signed-in user; nil for a visitor.
	Caller *auth.Principal
	Unread int
	// UnreadMore: more unread notifications than Unread counts.
	UnreadMore bool
	CSRF       string
	CSS, JS    string
	Icon       string
	Path       string
	Data       any

	// NewestUnread is the id of the newest unread notification: the
	// page's live stream starts after it (events.go).
	NewestUnread int64
}

func (h *Portal) parseTemplates() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"rights":   func(r domain.Rights) string { return strings.Join(r.Names(), ", ") },
		"when":     func(t time.Time) string { return formatTime(t) },
		"trimKind": func(obj string) string { _, name, _ := strings.Cut(obj, ":"); return name },
		"query":    url.QueryEscape,
		"add":      func(a, b int) int { return a + b },
		"sub":      func(a, b int) int { return a - b },
		"noteArgs": func(n notificationRow, csrf string) noteArgs { return noteArgs{Note: n, CSRF: csrf} },
	}
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/parts.html")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" || name == "parts" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(files, n)
		if err != nil {
			return nil, err
		}
		pages[name] = t
	}
	return pages, nil
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// render draws a page. The signed-in caller's unread count is asked of the
// service for the header's badge.
func (h *Portal) render(w http.ResponseWriter, r *http.Request, s *session, status int, name string, data any) {
	t, ok := h.pages[name]
	if !ok {
		panic("portal: no template " + name)
	}
	v := view{Caller: s.caller, CSRF: s.csrf, CSS: h.assets.url("portal.css"), JS: h.assets.url("portal.js"), Icon: h.assets.url("icon.svg"), Path: r.URL.Path, Data: data}
	if tp, ok := data.(interface{ title() string }); ok {
		v.Title = tp.title()
	}
	if s.caller != nil {
		v.Unread, v.UnreadMore, v.NewestUnread = h.unread(r, s)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", v); err != nil {
		h.log.ErrorContext(r.Context(), "portal: rendering a page failed", "page", name, "err", err)
		http.Error(w, "internal error; request id "+requestid.From(r.Context()), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// unreadPage bounds the badge's count: past it, the badge says "99+".
const unreadPage = 99

func (h *Portal) unread(r *http.Request, s *session) (int, bool, int64) {
	q := service.NotificationQuery{PageSize: unreadPage}
	q.UnreadOnly = true
	ns, next, err := h.svc.Social.ListNotifications(r.Context(), s.caller, q)
	if err != nil || len(ns) == 0 {
		return 0, false, 0
	}
	return len(ns), next != "", ns[0].ID
}

// errorPage is the page of a refusal or a failure.
type errorPage struct {
	Title   string
	Message string
	// SignIn offers the sign-in link (an ended session).
	SignIn bool
	// Next is where signing in returns to.
	Next string
}

func (e errorPage) title() string { return e.Title }

// fail answers a request the service refused or that failed, in the
// service's words; an internal failure shows only the request id (the
// cause goes to the log), never a stack trace.
func (h *Portal) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	if errors.Is(err, store.ErrUnavailable) {
		// An outage, logged once by the store's wrapper, not a bug.
		w.Header().Set("Retry-After", "5")
		h.render(w, r, s, http.StatusServiceUnavailable, "error", errorPage{Title: "Try again shortly", Message: "Trellis cannot reach its store just now. Try again in a few seconds."})
		return
	}
	var de *domain.Error
	if !errors.As(err, &de) || de.Code == domain.CodeInternal {
		id := requestid.From(r.Context())
		h.log.ErrorContext(r.Context(), "portal: internal error", "path", r.URL.Path, "err", err)
		h.render(w, r, s, http.StatusInternalServerError, "error", errorPage{Title: "Something went wrong", Message: "Trellis could not complete this request. If it keeps happening, quote request id " + id + " to the operators."})
		return
	}
	switch de.Code {
	case domain.CodeUnauthenticated:
		h.sessionEnded(w, r, s)
	case domain.CodePermissionDenied:
		h.render(w, r, s, http.StatusForbidden, "error", errorPage{Title: "Not allowed", Message: de.Message})
	case domain.CodeNotFound:
		h.render(w, r, s, http.StatusNotFound, "error", errorPage{Title: "Not found", Message: de.Message})
	default:
		h.render(w, r, s, statusOf(de.Code), "error", errorPage{Title: "That did not work", Message: de.Message})
	}
}

func statusOf(c domain.Code) int {
	switch c {
	case domain.CodeNotFound:
		return http.StatusNotFound
	case domain.CodeUnauthenticated:
		return http.StatusUnauthorized
	case domain.CodePermissionDenied:
		return http.StatusForbidden
	case domain.CodeResourceExhausted:
		return http.StatusTooManyRequests
	case domain.CodeAlreadyExists, domain.CodeFailedPrecondition, domain.CodeAborted:
		return http.StatusConflict
	case domain.CodeUnavailable:
		return http.StatusServiceUnavailable
	case domain.CodeInternal:
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

// sessionEnded is the page of a request whose session is over.
func (h *Portal) sessionEnded(w http.ResponseWriter, r *http.Request, s *session) {
	h.setCookie(w, sessionCookie, "", time.Time{})
	s.caller = nil
	next := ""
	if r.Method == http.MethodGet {
		next = r.URL.RequestURI()
	}
	h.render(w, r, s, http.StatusUnauthorized, "error", errorPage{
		Title:   "Your session has ended",
		Message: "You signed out, your session expired, or it was ended elsewhere. Sign in again to go on; nothing was changed.",
		SignIn:  true, Next: next,
	})
}

// staleForm is the page of a form whose token does not match the session.
func (h *Portal) staleForm(w http.ResponseWriter, r *http.Request, s *session) {
	h.render(w, r, s, http.StatusForbidden, "error", errorPage{
		Title:   "This form has expired",
		Message: "The form was opened in an earlier session (or in another browser), so it was not sent, and nothing was changed. Go back, reload the page and try again.",
	})
}

// signedIn returns the caller, or answers for an anonymous one: a page is
// sent to sign in (and back), a form post whose session ended gets the
// page that says so.
func (h *Portal) signedIn(w http.ResponseWriter, r *http.Request) (*session, bool) {
	s := h.load(w, r)
	if s.caller != nil {
		return s, true
	}
	if s.ended || r.Method != http.MethodGet {
		h.sessionEnded(w, r, s)
		return nil, false
	}
	http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
	return nil, false
}

// safeNext keeps a post-sign-in redirect on this site: a path, not a URL
// of another host.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}
