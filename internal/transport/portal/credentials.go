package portal

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/policy"
	"github.com/trellis-testbed/trellis/internal/service"
	"github.com/trellis-testbed/trellis/internal/store"
)

// The caller's credentials: SSH public keys, API tokens and the sites the
// account is connected to. Every list and change goes through the
// service's own operations (Users/AddSSHKey, Auth/CreateAPIToken,
// Providers/ListConnections, ...), on the caller's own account.

// credentialsPage is /credentials.
type credentialsPage struct {
	Keys    []*domain.SSHKey
	KeyForm *form
	Tokens  []tokenRow
	// TokenForm is the new token's form; Scopes are the ones offered as
	// boxes, the rest go in a text field.
	TokenForm *form
	Scopes    []string
	// Secret is the token just created, shown this once.
	Secret, SecretName string
	Sites              []*domain.ProviderConnection
	// Identities are the institution's identities linked to the account;
	// External offers to link one (the oidc backend is on).
	Identities []*store.IdentityLink
	External   bool
	Notice     string
	// DefaultDays and MaxDays bound a token's lifetime.
	DefaultDays, MaxDays int
}

func (credentialsPage) title() string { return "Keys and tokens" }

// tokenRow is an API token as listed.
type tokenRow struct {
	*domain.APIToken
	ScopeList []string
	// State is active, expired or revoked.
	State string
}

const credentialsPath = "/credentials"

func (h *Portal) credentials(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	notice := ""
	switch r.URL.Query().Get("done") {
	case "key-added":
		notice = "SSH key added."
	case "key-removed":
		notice = "SSH key removed. Certificates issued for it stay valid until they expire (they are short-lived)."
	case "token-revoked":
		notice = "API token revoked: it stops working at once, on every server."
	case "site-removed":
		notice = "Connection removed at the centre. Tell the site too (trellis provider disconnect)."
	case "linked":
		notice = "Identity linked: you may sign in through your institution."
	case "unlinked":
		notice = "Identity unlinked."
	}
	h.showCredentials(w, r, s, http.StatusOK, credentialsPage{Notice: notice})
}

// showCredentials fills the page's lists and draws it; p carries the forms
// and what a post has to say.
func (h *Portal) showCredentials(w http.ResponseWriter, r *http.Request, s *session, status int, p credentialsPage) {
	ctx, c := r.Context(), s.caller
	var err error
	if p.Keys, err = h.svc.Accounts.ListSSHKeys(ctx, c, ""); err != nil {
		h.fail(w, r, s, err)
		return
	}
	tokens, err := h.svc.Accounts.ListAPITokens(ctx, c)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	now := h.now()
	for _, t := range tokens {
		row := tokenRow{APIToken: t, ScopeList: policy.DecodeScopes(t.Scopes), State: "active"}
		switch {
		case !t.RevokedAt.IsZero():
			row.State = "revoked"
		case !now.Before(t.ExpiresAt):
			row.State = "expired"
		}
		p.Tokens = append(p.Tokens, row)
	}
	if p.Sites, err = h.svc.Sites.ListConnections(ctx, c, ""); err != nil {
		h.fail(w, r, s, err)
		return
	}
	if p.Identities, err = h.svc.Federation.ListIdentityLinks(ctx, c); err != nil {
		h.fail(w, r, s, err)
		return
	}
	p.External = h.external
	if p.KeyForm == nil {
		p.KeyForm = newForm()
	}
	if p.TokenForm == nil {
		p.TokenForm = newForm()
		p.TokenForm.Values["days"] = strconv.Itoa(int(service.APITokenDefaultTTL / (24 * time.Hour)))
	}
	p.Scopes = []string{policy.ScopeRead, policy.ScopeAll}
	p.DefaultDays = int(service.APITokenDefaultTTL / (24 * time.Hour))
	p.MaxDays = int(service.APITokenMaxTTL / (24 * time.Hour))
	h.render(w, r, s, status, "credentials", p)
}

func (h *Portal) addSSHKey(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok || !h.checkForm(w, r, s) {
		return
	}
	key := strings.TrimSpace(r.PostForm.Get("public_key"))
	if _, err := h.svc.Accounts.AddSSHKey(r.Context(), s.caller, "", key); err != nil {
		f := newForm()
		f.Values["public_key"] = key
		if !f.explain(err, "public_key") {
			h.fail(w, r, s, err)
			return
		}
		h.showCredentials(w, r, s, statusOf(domain.CodeOf(err)), credentialsPage{KeyForm: f})
		return
	}
	http.Redirect(w, r, credentialsPath+"?done=key-added", http.StatusSeeOther)
}

func (h *Portal) removeSSHKey(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok || !h.checkForm(w, r, s) {
		return
	}
	if err := h.svc.Accounts.RemoveSSHKey(r.Context(), s.caller, "", r.PostForm.Get("fingerprint")); err != nil {
		h.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, credentialsPath+"?done=key-removed", http.StatusSeeOther)
}

// createAPIToken creates a token and shows its secret in the answer to the
// post itself (never in a URL or a cookie): this page is its only showing.
func (h *Portal) createAPIToken(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok || !h.checkForm(w, r, s) {
		return
	}
	f := newForm()
	name := strings.TrimSpace(r.PostForm.Get("name"))
	other := strings.TrimSpace(r.PostForm.Get("other_scopes"))
	days := strings.TrimSpace(r.PostForm.Get("days"))
	f.Values["name"], f.Values["other_scopes"], f.Values["days"] = name, other, days
	scopes := append([]string(nil), r.PostForm["scopes"]...)
	for _, x := range scopes {
		f.Values["scope:"+x] = "on"
	}
	scopes = append(scopes, strings.Fields(other)...)
	var expires *time.Duration
	if days != "" {
		n, err := strconv.Atoi(days)
		if err != nil {
			f.Errors["days"] = "a whole number of days"
			h.showCredentials(w, r, s, http.StatusBadRequest, credentialsPage{TokenForm: f})
			return
		}
		d := time.Duration(n) * 24 * time.Hour
		expires = &d
	}
	secret, t, err := h.svc.Accounts.CreateAPIToken(r.Context(), s.caller, name, scopes, expires)
	if err != nil {
		// The service names the lifetime "expires"; the form, "days".
		if !f.explain(err, "name", "scopes", "expires") {
			h.fail(w, r, s, err)
			return
		}
		if e, ok := f.Errors["expires"]; ok {
			f.Errors["days"] = e
		}
		h.showCredentials(w, r, s, statusOf(domain.CodeOf(err)), credentialsPage{TokenForm: f})
		return
	}
	h.showCredentials(w, r, s, http.StatusOK, credentialsPage{Secret: secret, SecretName: t.Name})
}

func (h *Portal) revokeAPIToken(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok || !h.checkForm(w, r, s) {
		return
	}
	if err := h.svc.Accounts.RevokeAPIToken(r.Context(), s.caller, r.PathValue("name")); err != nil {
		h.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, credentialsPath+"?done=token-revoked", http.StatusSeeOther)
}

func (h *Portal) removeConnection(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok || !h.checkForm(w, r, s) {
		return
	}
	if err := h.svc.Sites.RemoveConnection(r.Context(), s.caller, "", r.PathValue("provider")); err != nil {
		h.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, credentialsPath+"?done=site-removed", http.StatusSeeOther)
}

func (h *Portal) unlinkIdentity(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok || !h.checkForm(w, r, s) {
		return
	}
	if err := h.svc.Federation.UnlinkIdentity(r.Context(), s.caller, r.PostForm.Get("issuer"), r.PostForm.Get("subject")); err != nil {
		h.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, credentialsPath+"?done=unlinked", http.StatusSeeOther)
}
