// Package oidclogin serves the browser's side of the oidc authentication
// backend: the page the identity provider sends the browser back to, and
// the form that links an identity to a Trellis account on first use.
package oidclogin

import (
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/trellis-testbed/trellis/internal/auth/oidcbackend"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/service"
	"github.com/trellis-testbed/trellis/internal/transport/httpserver"
)

// LinkPath is where the link form posts.
const LinkPath = "/auth/oidc/link"

// Mount registers the pages on mux.
func Mount(mux *http.ServeMux, svc *service.Service, log *slog.Logger) {
	p := &pages{svc: svc, log: log}
	mux.HandleFunc("GET "+oidcbackend.CallbackPath, p.callback)
	mux.HandleFunc("POST "+LinkPath, p.link)
}

// pages call the service with no caller (nil): the login's state and the
// password typed are the credentials.
type pages struct {
	svc *service.Service
	log *slog.Logger
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Trellis login</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body>
<main>
{{if .Code}}<h1>{{if .Link}}Identity checked{{else}}Logged in{{end}}</h1>
<p id="done">{{if .Link}}The identity will be linked to the Trellis account <strong>{{.UID}}</strong>{{else}}You are logged in to Trellis as <strong>{{.UID}}</strong>{{end}}{{if .Email}} ({{.Email}}){{end}} once the program that started this login has the code below. Paste it there:</p>
<p><code id="finish-code">{{.Code}}</code></p>
<p>Give this code to no one else, and paste it only into a program you started yourself: whoever holds it gets this login.</p>
{{else if .Form}}<h1>Link your identity to a Trellis account</h1>
<p>{{.Issuer}} vouches for <strong>{{if .Email}}{{.Email}}{{else}}{{.Subject}}{{end}}</strong>, which is not linked to a Trellis account yet. Log in with your Trellis account once to link them; later logins through {{.Issuer}} need no password.</p>
{{if .Error}}<p role="alert" id="error">{{.Error}}</p>{{end}}
<form method="post" action="link">
<input type="hidden" name="login" value="{{.LoginID}}">
<input type="hidden" name="token" value="{{.Token}}">
<p><label>User id <input name="uid" value="{{.Typed}}" autocomplete="username" required autofocus></label></p>
<p><label>Password <input name="password" type="password" autocomplete="current-password" required></label></p>
<p><button type="submit">Link and log in</button></p>
</form>
{{else}}<h1>Login failed</h1>
<p role="alert" id="error">{{.Error}}</p>
{{end}}
</main>
</body>
</html>
`))

type view struct {
	UID, Email, Issuer, Subject string
	Link                        bool
	Code                        string // the finish code, shown when there is no return_to
	Form                        bool
	LoginID, Token, Typed       string
	Error                       string
}

// done ends a step that settled the account: the browser takes the finish
// code to the client's loopback address, or shows it to be pasted.
func (p *pages) done(w http.ResponseWriter, r *http.Request, st *service.ExternalStep) {
	if st.ReturnTo != "" {
		u, err := url.Parse(st.ReturnTo)
		if err == nil {
			q := u.Query()
			q.Set("code", st.FinishCode)
			u.RawQuery = q.Encode()
			httpserver.SecurePage(w.Header())
			http.Redirect(w, r, u.String(), http.StatusFound)
			return
		}
	}
	p.render(w, r, http.StatusOK, view{UID: st.UID, Email: st.Email, Link: st.Link, Code: st.FinishCode})
}

func (p *pages) render(w http.ResponseWriter, r *http.Request, status int, v view) {
	httpserver.SecurePage(w.Header())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := page.Execute(w, v); err != nil {
		p.log.WarnContext(r.Context(), "oidc login page", "err", err)
	}
}

// fail shows a typed error's message; anything else is the server's fault
// and says so without detail.
func (p *pages) fail(w http.ResponseWriter, r *http.Request, err error) {
	var de *domain.Error
	if errors.As(err, &de) && de.Code != domain.CodeInternal {
		p.render(w, r, httpserver.Status(de.Code), view{Error: de.Message})
		return
	}
	p.log.ErrorContext(r.Context(), "oidc login failed", "err", err)
	p.render(w, r, http.StatusInternalServerError, view{Error: "server error: try again later"})
}

func (p *pages) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		// The provider's own refusal (the user declined, say): its words,
		// escaped by the template.
		msg := "the identity provider refused the login: " + e
		if d := q.Get("error_description"); d != "" {
			msg += ": " + d
		}
		p.render(w, r, http.StatusUnauthorized, view{Error: msg})
		return
	}
	st, err := p.svc.Federation.CompleteExternalLogin(r.Context(), nil, q.Get("state"), q.Get("code"))
	if err != nil {
		p.fail(w, r, err)
		return
	}
	if st.UID == "" {
		p.render(w, r, http.StatusOK, view{Issuer: st.Issuer, Subject: st.Subject, Email: st.Email, Form: true, LoginID: st.LoginID, Token: st.LinkToken})
		return
	}
	p.done(w, r, st)
}

func (p *pages) link(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	f := r.PostForm
	uid := f.Get("uid")
	st, err := p.svc.Federation.LinkExternalLogin(r.Context(), nil, f.Get("login"), f.Get("token"), uid, f.Get("password"))
	var de *domain.Error
	switch {
	case err == nil:
		p.done(w, r, st)
	case errors.As(err, &de) && (de.Code == domain.CodeUnauthenticated || de.Code == domain.CodeResourceExhausted || de.Code == domain.CodePermissionDenied || de.Code == domain.CodeFailedPrecondition || de.Code == domain.CodeInvalidArgument):
		// A wrong password, a mistyped uid (or a locked account): the
		// form again.
		p.render(w, r, httpserver.Status(de.Code), view{Form: true, LoginID: f.Get("login"), Token: f.Get("token"), Typed: uid, Error: de.Message})
	default:
		p.fail(w, r, err)
	}
}
