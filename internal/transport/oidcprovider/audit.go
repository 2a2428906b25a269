package oidcprovider

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/service"
)

// Operations of the provider's endpoints in the audit record (the login
// page's is service.OpOIDCLogin).
const (
	opAuthorize = "oidc.authorize"
	opUserinfo  = "oidc.userinfo"
)

// endpointOps names the audited endpoints, as the provider's router sees
// them (below Prefix).
var endpointOps = map[string]string{
	"/authorize":   opAuthorize,
	"/oauth/token": service.OpOIDCToken,
	"/userinfo":    opUserinfo,
}

// oauthCodes file OAuth 2.0 error codes under the error vocabulary of the
// audit record.
var oauthCodes = map[string]domain.Code{
	"invalid_request":           domain.CodeInvalidArgument,
	"invalid_scope":             domain.CodeInvalidArgument,
	"unsupported_response_type": domain.CodeInvalidArgument,
	"unsupported_grant_type":    domain.CodeInvalidArgument,
	"request_not_supported":     domain.CodeInvalidArgument,
	"invalid_client":            domain.CodeUnauthenticated,
	"unauthorized_client":       domain.CodeUnauthenticated,
	"invalid_token":             domain.CodeUnauthenticated,
	"invalid_grant":             domain.CodePermissionDenied,
	"access_denied":             domain.CodePermissionDenied,
	"interaction_required":      domain.CodeFailedPrecondition,
	"login_required":            domain.CodeFailedPrecondition,
}

// maxAuditedBody bounds what is kept of a request or an error response to
// read the client and the error from; token requests and OAuth errors are
// far smaller.
const maxAuditedBody = 16 << 10

// audit records every refusal of the authorize, token and userinfo
// endpoints. The library makes most of them itself (an unregistered
// redirect URI, a missing or mismatched PKCE verifier, a wrong client
// secret, a code used twice); its words go into the record, and never a
// secret: neither the request's secrets nor the response's tokens are kept.
func audit(next http.Handler, svc *service.Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op, ok := endpointOps[r.URL.Path]
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		client := r.URL.Query().Get("client_id")
		if r.Method == http.MethodPost && r.Body != nil {
			// Peek at the form for the client; the library reads it again.
			b, err := io.ReadAll(io.LimitReader(r.Body, maxAuditedBody+1))
			r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b), r.Body))
			if err == nil {
				if f, err := url.ParseQuery(string(b)); err == nil && f.Get("client_id") != "" {
					client = f.Get("client_id")
				}
			}
		}
		if id, _, ok := r.BasicAuth(); ok && id != "" {
			client = id
		}
		rec := &errorRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		code, desc, refused := rec.refusal()
		if !refused {
			return
		}
		object := ""
		if client != "" {
			// The caller chose it: the record keeps a bounded, printable
			// form (a real client id is a short name).
			object = "oidc_client:" + clip(client, 64)
		}
		dc, ok := oauthCodes[code]
		if !ok {
			dc = domain.CodeInternal
		}
		detail := clip(strings.TrimSpace(code+": "+desc), 300)
		svc.AuditRefusal(r.Context(), op, nil, object, &domain.Error{Code: dc, Message: detail}, detail)
	})
}

// errorRecorder keeps what says whether a response refused: its status,
// the Location of a redirect (an error sent back to the client), and the
// body of an error response.
type errorRecorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (e *errorRecorder) WriteHeader(code int) {
	if e.status == 0 {
		e.status = code
	}
	e.ResponseWriter.WriteHeader(code)
}

func (e *errorRecorder) Write(b []byte) (int, error) {
	if e.status == 0 {
		e.status = http.StatusOK
	}
	if e.status >= 400 && e.body.Len() < maxAuditedBody {
		e.body.Write(b[:min(len(b), maxAuditedBody-e.body.Len())])
	}
	return e.ResponseWriter.Write(b)
}

func (e *errorRecorder) Unwrap() http.ResponseWriter { return e.ResponseWriter }

// refusal reads the OAuth error of the response, if it is one.
func (e *errorRecorder) refusal() (code, desc string, refused bool) {
	if loc := e.Header().Get("Location"); e.status >= 300 && e.status < 400 && loc != "" {
		u, err := url.Parse(loc)
		if err != nil {
			return "", "", false
		}
		// An error goes back to the client in the query, or in the
		// fragment for fragment response modes.
		q := u.Query()
		if q.Get("error") == "" {
			q, _ = url.ParseQuery(u.Fragment)
		}
		if q.Get("error") == "" {
			return "", "", false
		}
		return q.Get("error"), q.Get("error_description"), true
	}
	if e.status < 400 {
		return "", "", false
	}
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(e.body.Bytes(), &body) == nil && body.Error != "" {
		return body.Error, body.Description, true
	}
	// Not JSON: an error page, or the userinfo endpoint's plain text about
	// a missing or undecipherable token.
	code = "invalid_request"
	if e.status == http.StatusUnauthorized {
		code = "invalid_token"
	}
	return code, strings.TrimSpace(firstLine(e.body.String())), true
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// clip bounds a string the caller chose, and keeps only printable runes.
func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return '?'
	}, s)
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
