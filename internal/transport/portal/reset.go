package portal

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/service"
)

// Password reset and sign-in through the institution: pages a visitor uses
// before signing in. The service decides everything: whether a reset mail
// goes out (it answers alike for an unknown account), whether the mailed
// token is good, whether the identity provider's login ends in an account.

const resetRequestPath = "/reset/request"

// resetRequestPage asks for the account whose password is forgotten.
type resetRequestPage struct {
	Form *form
}

func (resetRequestPage) title() string { return "Forgot your password?" }

func (h *Portal) resetRequestForm(w http.ResponseWriter, r *http.Request) {
	s := h.load(w, r)
	h.ensureFormToken(w, s)
	h.render(w, r, s, http.StatusOK, "resetrequest", resetRequestPage{Form: newForm()})
}

func (h *Portal) resetRequest(w http.ResponseWriter, r *http.Request) {
	s := h.load(w, r)
	if !h.checkForm(w, r, s) {
		return
	}
	f := newForm()
	account := strings.TrimSpace(r.PostForm.Get("account"))
	f.Values["account"] = account
	answer, err := h.svc.Accounts.RequestPasswordReset(r.Context(), s.caller, account)
	if err != nil {
		// The service names the field uid; the form, account.
		if !f.explain(err, "uid") {
			h.fail(w, r, s, err)
			return
		}
		if e, ok := f.Errors["uid"]; ok {
			f.Errors["account"] = e
		}
		h.render(w, r, s, statusOf(domain.CodeOf(err)), "resetrequest", resetRequestPage{Form: f})
		return
	}
	// The same page whether or not the account exists: the service's
	// answer is worded alike for both.
	h.render(w, r, s, http.StatusOK, "message", messagePage{
		Title:   "Check your mail",
		Message: "Your request is taken: " + answer + ".",
		Link:    service.PortalResetPath, LinkText: "I have a reset token",
	})
}

// resetPage sets a new password with the mailed token. Opening the link
// only draws the form (a mail scanner fetching it changes nothing).
type resetPage struct {
	Form *form
}

func (resetPage) title() string { return "Choose a new password" }

func (h *Portal) resetForm(w http.ResponseWriter, r *http.Request) {
	s := h.load(w, r)
	h.ensureFormToken(w, s)
	f := newForm()
	f.Values["token"] = r.URL.Query().Get("token")
	h.render(w, r, s, http.StatusOK, "reset", resetPage{Form: f})
}

func (h *Portal) reset(w http.ResponseWriter, r *http.Request) {
	s := h.load(w, r)
	if !h.checkForm(w, r, s) {
		return
	}
	f := newForm()
	tok := strings.TrimSpace(r.PostForm.Get("token"))
	f.Values["token"] = tok
	pw := r.PostForm.Get("new_password")
	if pw != r.PostForm.Get("repeat") {
		f.Errors["repeat"] = "the two passwords differ: type the same one twice"
		h.render(w, r, s, http.StatusBadRequest, "reset", resetPage{Form: f})
		return
	}
	if err := h.svc.Accounts.ResetPassword(r.Context(), s.caller, tok, pw); err != nil {
		if !f.explain(err, "token", "new_password") {
			h.fail(w, r, s, err)
			return
		}
		h.render(w, r, s, statusOf(domain.CodeOf(err)), "reset", resetPage{Form: f})
		return
	}
	// Every session of the account ended, this browser's too.
	if s.caller != nil {
		h.setCookie(w, sessionCookie, "", time.Time{})
	}
	http.Redirect(w, r, "/signin?reset=1", http.StatusSeeOther)
}

// Sign-in through the institution: the oidc backend's browser flow
// (internal/transport/oidclogin), with the portal as the client. The login
// starts here; its poll secret stays in this browser's cookie; the
// identity provider's page sends the browser back to oidclogin's callback,
// which hands the finish code to PortalExternalLoginPath; the portal, with
// the poll secret, collects the login's session. A finish code that
// reaches another browser is of no use there, without the cookie.
const (
	externalStartPath = "/signin/external"
	externalCookie    = "trellis_external"
)

// externalStart starts the login. A link, not a form: the browser goes on
// to the identity provider's site, which a form's redirect may not under
// the portal's form-action policy; starting a login changes nothing of
// anyone's account.
func (h *Portal) externalStart(w http.ResponseWriter, r *http.Request) {
	s := h.load(w, r)
	next := safeNext(r.URL.Query().Get("next"))
	if s.caller != nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	h.startExternal(w, r, s, false, next)
}

// startExternal starts a login through the identity provider (with link,
// the signed-in caller's, to link the identity to the account) and sends
// the browser there; next is where it ends.
func (h *Portal) startExternal(w http.ResponseWriter, r *http.Request, s *session, link bool, next string) {
	st, err := h.svc.Federation.StartExternalLogin(r.Context(), s.caller, link, service.PortalExternalLoginURL(h.svc.Config().PublicURL))
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	v := url.Values{"l": {st.ID}, "p": {st.PollSecret}, "n": {next}}
	h.setCookie(w, externalCookie, v.Encode(), st.ExpiresAt)
	http.Redirect(w, r, st.AuthorizationURL, http.StatusSeeOther)
}

// linkIdentity starts linking an identity at the institution to the
// signed-in account (the credentials page's button).
func (h *Portal) linkIdentity(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	h.startExternal(w, r, s, true, credentialsPath+"?done=linked")
}

// externalDone collects the login the identity provider vouched for.
func (h *Portal) externalDone(w http.ResponseWriter, r *http.Request) {
	s := h.load(w, r)
	c, err := r.Cookie(h.cookieName(externalCookie))
	v, perr := url.ParseQuery("")
	if err == nil {
		v, perr = url.ParseQuery(c.Value)
	}
	if err != nil || perr != nil || v.Get("l") == "" {
		h.render(w, r, s, http.StatusBadRequest, "error", errorPage{
			Title:   "This sign-in was not started here",
			Message: "This browser did not start a sign-in through the institution, or it took too long. Start again from the sign-in page.",
		})
		return
	}
	h.setCookie(w, externalCookie, "", time.Time{})
	fin, err := h.svc.Federation.FinishExternalLogin(r.Context(), nil, v.Get("l"), v.Get("p"), r.URL.Query().Get("code"), false)
	if err != nil {
		// An expired login, a locked account: the sign-in page again,
		// with the service's words above it.
		code := domain.CodeOf(err)
		if code == domain.CodeInternal || code == domain.CodeUnavailable {
			h.fail(w, r, s, err)
			return
		}
		h.ensureFormToken(w, s)
		f := newForm()
		f.Error = err.Error()
		h.render(w, r, s, statusOf(code), "signin", signinPage{Form: f, Next: safeNext(v.Get("n")), External: h.external})
		return
	}
	// A link leaves the caller's session as it is; a login starts one.
	if fin.Tokens != nil {
		h.startSession(w, fin.Tokens)
	}
	http.Redirect(w, r, safeNext(v.Get("n")), http.StatusSeeOther)
}
