package oidcprovider

import (
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net/http"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/service"
	"github.com/trellis-testbed/trellis/internal/transport/httpserver"
)

// loginPage is where the provider sends a browser to log in: a form for
// uid and password, checked like Auth.Login (same back-off, same audit).
// Registered clients are approved by the testbed's admins, so there is no
// separate consent step. The page calls the service with no caller (nil):
// the password typed is the credential.
type loginPage struct {
	svc      *service.Service
	callback func(ctx context.Context, requestID string) string
	log      *slog.Logger
}

var loginTemplate = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Log in to {{.Client}} with Trellis</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body>
<main>
<h1>Log in with your Trellis account</h1>
<p><strong>{{.Client}}</strong> asks who you are{{if .Scopes}} ({{.Scopes}}){{end}}.</p>
{{if .Error}}<p role="alert" id="error">{{.Error}}</p>{{end}}
<form method="post" action="login">
<input type="hidden" name="id" value="{{.ID}}">
<p><label>User id <input name="uid" value="{{.UID}}" autocomplete="username" required autofocus></label></p>
<p><label>Password <input name="password" type="password" autocomplete="current-password" required></label></p>
<p><button type="submit">Log in</button></p>
</form>
</main>
</body>
</html>
`))

type loginView struct {
	ID, Client, Scopes, UID, Error string
}

func (l *loginPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	httpserver.SecurePage(h)
	switch r.Method {
	case http.MethodGet:
		l.show(w, r, r.URL.Query().Get("id"), "", "", http.StatusOK)
	case http.MethodPost:
		l.submit(w, r)
	default:
		h.Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (l *loginPage) show(w http.ResponseWriter, r *http.Request, id, uid, msg string, status int) {
	req, err := l.svc.Federation.OIDCAuthRequest(r.Context(), nil, id)
	if err != nil {
		l.fail(w, r, err)
		return
	}
	v := loginView{ID: id, Client: req.ClientID, UID: uid, Error: msg}
	for i, s := range req.Scopes {
		if i > 0 {
			v.Scopes += ", "
		}
		v.Scopes += s
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := loginTemplate.Execute(w, v); err != nil {
		l.log.WarnContext(r.Context(), "oidc login page", "err", err)
	}
}

func (l *loginPage) submit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	id, uid := r.PostForm.Get("id"), r.PostForm.Get("uid")
	err := l.svc.Federation.OIDCLogin(r.Context(), nil, id, uid, r.PostForm.Get("password"))
	var de *domain.Error
	switch {
	case err == nil:
		http.Redirect(w, r, l.callback(r.Context(), id), http.StatusFound)
	case errors.As(err, &de) && de.Code == domain.CodeNotFound:
		l.fail(w, r, err)
	case errors.As(err, &de) && de.Code != domain.CodeInternal:
		l.show(w, r, id, uid, de.Message, httpserver.Status(de.Code))
	default:
		l.fail(w, r, err)
	}
}

// fail answers a request that cannot go on: the authorization request is
// gone (the user starts again from the application), or the server failed.
func (l *loginPage) fail(w http.ResponseWriter, r *http.Request, err error) {
	var de *domain.Error
	if errors.As(err, &de) && de.Code == domain.CodeNotFound {
		http.Error(w, de.Message, http.StatusNotFound)
		return
	}
	l.log.ErrorContext(r.Context(), "oidc login failed", "err", err)
	http.Error(w, "server error", http.StatusInternalServerError)
}
