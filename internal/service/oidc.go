package service

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/policy"
	"github.com/trellis-testbed/trellis/internal/store"
)

// The OpenID Connect provider's steps are not calls of the contract; their
// audit records carry these names.
const (
	OpOIDCLogin  = "oidc.login"  // a user logs in to authorize a client
	OpOIDCToken  = "oidc.token"  // a client redeems a code for tokens
	OpOIDCRevoke = "oidc.revoke" // a client revokes a token
)

// Lifetimes of the provider's grants.
const (
	// OIDCAuthRequestTTL bounds the whole authorization: the user's login
	// and the client's redemption of the code.
	OIDCAuthRequestTTL = 10 * time.Minute
	// OIDCAccessTokenTTL is an access token's life; the ID token lives as
	// long.
	OIDCAccessTokenTTL = 15 * time.Minute
)

const maxRedirectURIs = 10

// PKCEMethod is the one code challenge method the provider accepts.
const PKCEMethod = "S256"

func oidcClientObject(id string) string { return "oidc_client:" + id }

// validateRedirectURI allows https, and http on a loopback address (a
// native app's local listener, RFC 8252); an exact URI, without fragment.
func validateRedirectURI(field, raw string) error {
	bad := func(desc string) error {
		return domain.Invalid(field, "redirect_uri.format", fmt.Sprintf("%q: %s", raw, desc))
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return bad("not an absolute URL")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return bad("a redirect URI has no fragment")
	}
	if strings.ContainsAny(raw, " \t\r\n") {
		return bad("a redirect URI has no spaces")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
		return bad("http is allowed on loopback addresses only; use https")
	default:
		return bad("the scheme must be https (or http on a loopback address)")
	}
}

// AddOIDCClient registers an OpenID Connect client; a confidential one
// gets a secret, returned this once.
func (s *Federation) AddOIDCClient(ctx context.Context, p *auth.Principal, name string, redirectURIs []string, public bool) (*domain.OIDCClient, string, error) {
	if err := s.authorize(ctx, p, opOidcClientsAddClient, policy.None); err != nil {
		return nil, "", err
	}
	var vs domain.Violations
	if err := vs.Check(validateServiceName(name)); err != nil {
		return nil, "", err
	}
	switch {
	case len(redirectURIs) == 0:
		vs.Add("redirect_uris", "redirect_uris.required", "a client needs at least one redirect URI")
	case len(redirectURIs) > maxRedirectURIs:
		vs.Add("redirect_uris", "redirect_uris.max", fmt.Sprintf("at most %d redirect URIs", maxRedirectURIs))
	}
	for i, u := range redirectURIs {
		field := fmt.Sprintf("redirect_uris[%d]", i)
		if err := vs.Check(validateRedirectURI(field, u)); err != nil {
			return nil, "", err
		}
		if slices.Index(redirectURIs, u) < i {
			vs.Add(field, "redirect_uris.duplicate", fmt.Sprintf("%q is listed twice", u))
		}
	}
	if err := vs.Err(); err != nil {
		return nil, "", err
	}
	c := &domain.OIDCClient{ID: name, RedirectURIs: slices.Clone(redirectURIs), CreatedAt: s.now()}
	var secret string
	if !public {
		secret, c.SecretHash = newSecret()
	}
	kind := "confidential"
	if public {
		kind = "public"
	}
	rec := &record{op: opOidcClientsAddClient.Name, actor: p, object: oidcClientObject(name), detail: kind + " client, redirect URIs " + strings.Join(redirectURIs, " ")}
	if err := s.update(ctx, rec, func(tx store.Tx) error { return tx.OIDC().CreateClient(ctx, c) }); err != nil {
		return nil, "", err
	}
	return c, secret, nil
}

// ListOIDCClients lists the registered clients.
func (s *Federation) ListOIDCClients(ctx context.Context, p *auth.Principal) ([]*domain.OIDCClient, error) {
	if err := s.authorize(ctx, p, opOidcClientsListClients, policy.None); err != nil {
		return nil, err
	}
	return viewOf(ctx, s.base, func(tx store.Tx) ([]*domain.OIDCClient, error) { return tx.OIDC().ListClients(ctx) })
}

// RemoveOIDCClient removes a client with its tokens and pending codes.
func (s *Federation) RemoveOIDCClient(ctx context.Context, p *auth.Principal, name string) error {
	if err := s.authorize(ctx, p, opOidcClientsRemoveClient, policy.None); err != nil {
		return err
	}
	return s.update(ctx, &record{op: opOidcClientsRemoveClient.Name, actor: p, object: oidcClientObject(name)}, func(tx store.Tx) error {
		return tx.OIDC().DeleteClient(ctx, name)
	})
}

// The rest serves the provider's protocol endpoints (internal/oidcprovider):
// their rules are public, and the provider passes no caller (nil); the
// client, the user's password or a code proves each step.

// OIDCClient returns a registered client, or domain not-found.
func (s *Federation) OIDCClient(ctx context.Context, p *auth.Principal, id string) (*domain.OIDCClient, error) {
	if err := s.authorize(ctx, p, opOIDCClient, policy.None); err != nil {
		return nil, err
	}
	return s.oidcClient(ctx, id)
}

func (s *Federation) oidcClient(ctx context.Context, id string) (*domain.OIDCClient, error) {
	return viewOf(ctx, s.base, func(tx store.Tx) (*domain.OIDCClient, error) { return tx.OIDC().GetClient(ctx, id) })
}

// errBadClient is the one answer to an unknown client and a wrong secret.
var errBadClient = domain.Unauthenticated("invalid client id or secret")

// OIDCAuthenticateClient checks a confidential client's secret.
func (s *Federation) OIDCAuthenticateClient(ctx context.Context, p *auth.Principal, id, secret string) error {
	if err := s.authorize(ctx, p, opOIDCAuthenticate, policy.None); err != nil {
		return err
	}
	c, err := s.oidcClient(ctx, id)
	if domain.HasCode(err, domain.CodeNotFound) {
		err = errBadClient
	}
	if err == nil {
		switch {
		case c.SecretHash == nil:
			err = domain.Unauthenticated("client %s is public: it has no secret and proves itself by PKCE", id)
		case subtle.ConstantTimeCompare(hashSecret(secret), c.SecretHash) != 1:
			err = errBadClient
		}
	}
	// The provider's endpoint audits the refusal (oidcprovider.audit).
	return err
}

// OIDCStartAuthRequest stores an authorization request the provider has
// checked against its client (redirect URI, response type), after the
// checks that are Trellis's own: PKCE with S256, always.
func (s *Federation) OIDCStartAuthRequest(ctx context.Context, p *auth.Principal, r *store.OIDCAuthRequest) error {
	if err := s.authorize(ctx, p, opOIDCStartAuthRequest, policy.None); err != nil {
		return err
	}
	if r.CodeChallenge == "" || r.CodeChallengeMethod != PKCEMethod {
		return domain.Invalid("code_challenge", "pkce.required", "PKCE is required: send code_challenge with code_challenge_method=S256")
	}
	now := s.now()
	r.ID, r.CreatedAt, r.ExpiresAt = newID(), now, now.Add(OIDCAuthRequestTTL)
	return s.st.Update(ctx, func(tx store.Tx) error { return tx.OIDC().CreateAuthRequest(ctx, r) })
}

var errAuthRequestGone = domain.NotFound("authorization request not found (it expired, or was used): start again from the application")

// OIDCAuthRequest returns a live authorization request.
func (s *Federation) OIDCAuthRequest(ctx context.Context, p *auth.Principal, id string) (*store.OIDCAuthRequest, error) {
	if err := s.authorize(ctx, p, opOIDCAuthRequest, policy.None); err != nil {
		return nil, err
	}
	return s.oidcAuthRequest(ctx, id)
}

func (s *Federation) oidcAuthRequest(ctx context.Context, id string) (*store.OIDCAuthRequest, error) {
	r, err := viewOf(ctx, s.base, func(tx store.Tx) (*store.OIDCAuthRequest, error) { return tx.OIDC().GetAuthRequest(ctx, id) })
	if domain.HasCode(err, domain.CodeNotFound) || (err == nil && !s.now().Before(r.ExpiresAt)) {
		return nil, errAuthRequestGone
	}
	return r, err
}

// OIDCLogin checks the user's password for an authorization request and
// records who logged in. The login back-off and the audit of failures are
// those of Auth.Login.
func (s *Federation) OIDCLogin(ctx context.Context, p *auth.Principal, requestID, uid, pw string) error {
	if err := s.authorize(ctx, p, opOIDCLogin, policy.None); err != nil {
		return err
	}
	if err := s.accounts.passwordLoginAllowed(); err != nil {
		return err
	}
	r, err := s.oidcAuthRequest(ctx, requestID)
	if err != nil {
		return err
	}
	if err := domain.ValidateUID("uid", uid); err != nil {
		return err
	}
	now := s.now()
	l, err := s.accounts.checkPassword(ctx, OpOIDCLogin, uid, pw, now)
	if err != nil {
		return err
	}
	if err := l.user.CanLogIn(); err != nil {
		s.auditRefusal(ctx, OpOIDCLogin, &auth.Principal{UID: uid}, oidcClientObject(r.ClientID), err, "account state "+string(l.user.State))
		return err
	}
	rec := &record{op: OpOIDCLogin, actor: &auth.Principal{UID: uid}, object: oidcClientObject(r.ClientID), detail: "scopes " + strings.Join(r.Scopes, " ")}
	return s.update(ctx, rec, func(tx store.Tx) error {
		if err := s.accounts.resetFailures(ctx, tx, uid); err != nil {
			return err
		}
		return tx.OIDC().CompleteAuthRequest(ctx, requestID, uid, now)
	})
}

// OIDCSaveCode records the code issued for a completed request.
func (s *Federation) OIDCSaveCode(ctx context.Context, p *auth.Principal, requestID, code string) error {
	if err := s.authorize(ctx, p, opOIDCSaveCode, policy.None); err != nil {
		return err
	}
	return s.st.Update(ctx, func(tx store.Tx) error { return tx.OIDC().SetCode(ctx, requestID, hashSecret(code)) })
}

// OIDCRedeemCode returns the request a code was issued for and voids the
// code: a code is good once, and only while its request lives.
func (s *Federation) OIDCRedeemCode(ctx context.Context, p *auth.Principal, code string) (*store.OIDCAuthRequest, error) {
	if err := s.authorize(ctx, p, opOIDCRedeemCode, policy.None); err != nil {
		return nil, err
	}
	var r *store.OIDCAuthRequest
	err := s.st.Update(ctx, func(tx store.Tx) error {
		var err error
		r, err = tx.OIDC().RedeemCode(ctx, hashSecret(code))
		return err
	})
	if err == nil && (!s.now().Before(r.ExpiresAt) || r.UID == "") {
		err = domain.NotFound("authorization code expired")
	}
	if err != nil {
		return nil, err // audited by the provider's endpoint, as invalid_grant
	}
	return r, nil
}

// OIDCEndAuthRequest removes a request once its code is redeemed.
func (s *Federation) OIDCEndAuthRequest(ctx context.Context, p *auth.Principal, id string) error {
	if err := s.authorize(ctx, p, opOIDCEndAuthRequest, policy.None); err != nil {
		return err
	}
	return s.st.Update(ctx, func(tx store.Tx) error { return tx.OIDC().DeleteAuthRequest(ctx, id) })
}

// OIDCIssueAccessToken records an access token issued to a client for a
// user, who must still be able to log in.
func (s *Federation) OIDCIssueAccessToken(ctx context.Context, p *auth.Principal, clientID, uid string, scopes []string) (id string, expires time.Time, err error) {
	if err := s.authorize(ctx, p, opOIDCToken, policy.None); err != nil {
		return "", time.Time{}, err
	}
	now := s.now()
	t := &store.OIDCToken{ID: newID(), ClientID: clientID, UID: uid, Scopes: scopes, CreatedAt: now, ExpiresAt: now.Add(OIDCAccessTokenTTL)}
	rec := &record{op: OpOIDCToken, actor: &auth.Principal{UID: uid}, object: oidcClientObject(clientID), detail: "scopes " + strings.Join(scopes, " ")}
	err = s.update(ctx, rec, func(tx store.Tx) error {
		u, err := tx.Users().Get(ctx, uid)
		if err != nil {
			return err
		}
		if err := u.CanLogIn(); err != nil {
			return err
		}
		return tx.OIDC().CreateToken(ctx, t)
	})
	if err != nil {
		return "", time.Time{}, err // audited by the provider's endpoint, as access_denied
	}
	return t.ID, t.ExpiresAt, nil
}

// OIDCClaims is what the provider may say of a user.
type OIDCClaims struct {
	User *domain.User
	Name string // the profile's full name, when set
}

// OIDCUser returns the claims of a user who may log in.
func (s *Federation) OIDCUser(ctx context.Context, p *auth.Principal, uid string) (*OIDCClaims, error) {
	if err := s.authorize(ctx, p, opOIDCUser, policy.None); err != nil {
		return nil, err
	}
	return viewOf(ctx, s.base, func(tx store.Tx) (*OIDCClaims, error) { return oidcClaims(ctx, tx, uid) })
}

func oidcClaims(ctx context.Context, tx store.Tx, uid string) (*OIDCClaims, error) {
	u, err := tx.Users().Get(ctx, uid)
	if err != nil {
		return nil, err
	}
	if err := u.CanLogIn(); err != nil {
		return nil, err
	}
	prof, err := tx.Profiles().Get(ctx, store.ProfileUser, uid)
	if err != nil && !domain.HasCode(err, domain.CodeNotFound) {
		return nil, err
	}
	return &OIDCClaims{User: u, Name: prof["name"]}, nil
}

// errOIDCTokenDead answers a userinfo call whose token no longer stands.
var errOIDCTokenDead = domain.Unauthenticated("access token expired or revoked")

// OIDCTokenClaims returns the token with this id and its user's claims,
// while the token lives, names subject, and its user may log in; one read
// transaction.
func (s *Federation) OIDCTokenClaims(ctx context.Context, p *auth.Principal, tokenID, subject string) (*store.OIDCToken, *OIDCClaims, error) {
	if err := s.authorize(ctx, p, opOIDCTokenClaims, policy.None); err != nil {
		return nil, nil, err
	}
	var (
		t *store.OIDCToken
		c *OIDCClaims
	)
	err := s.view(ctx, func(tx store.Tx) error {
		var err error
		if t, err = tx.OIDC().GetToken(ctx, tokenID); err != nil {
			return err
		}
		if !s.now().Before(t.ExpiresAt) || t.UID != subject {
			return errOIDCTokenDead
		}
		if c, err = oidcClaims(ctx, tx, t.UID); err != nil && domain.CodeOf(err) != domain.CodeInternal {
			return domain.Unauthenticated("account may no longer log in")
		}
		return err
	})
	if domain.HasCode(err, domain.CodeNotFound) {
		err = errOIDCTokenDead
	}
	if err != nil {
		return nil, nil, err
	}
	return t, c, nil
}

// OIDCRevokeToken revokes a client's access token (RFC 7009); a token of
// another client is refused, an unknown one is no error.
func (s *Federation) OIDCRevokeToken(ctx context.Context, p *auth.Principal, tokenID, clientID string) error {
	if err := s.authorize(ctx, p, opOIDCRevoke, policy.None); err != nil {
		return err
	}
	return s.update(ctx, &record{op: OpOIDCRevoke, object: oidcClientObject(clientID)}, func(tx store.Tx) error {
		t, err := tx.OIDC().GetToken(ctx, tokenID)
		if domain.HasCode(err, domain.CodeNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if t.ClientID != clientID {
			return domain.PermissionDenied("the token was not issued to client %s", clientID)
		}
		return tx.OIDC().DeleteToken(ctx, tokenID)
	})
}

// OIDCEndSession revokes the tokens a client holds for a user (the user
// logged out of it).
func (s *Federation) OIDCEndSession(ctx context.Context, p *auth.Principal, uid, clientID string) error {
	if err := s.authorize(ctx, p, opOIDCEndSession, policy.None); err != nil {
		return err
	}
	if uid == "" {
		return nil // no id_token_hint: no one to log out, nothing to record
	}
	return s.update(ctx, &record{op: OpOIDCRevoke, actor: &auth.Principal{UID: uid}, object: oidcClientObject(clientID), detail: "end session"}, func(tx store.Tx) error {
		_, err := tx.OIDC().DeleteUserTokens(ctx, uid, clientID)
		return err
	})
}

// oidcTokenKeyName names the server secret that encrypts the provider's
// opaque access tokens; every replica must use the same.
const oidcTokenKeyName = "oidc-access-token-key"

// OIDCTokenKey returns the key that encrypts the provider's access tokens,
// created by whichever replica needs it first.
func (s *Federation) oidcTokenKey(ctx context.Context) ([32]byte, error) {
	var key [32]byte
	candidate := make([]byte, len(key))
	if _, err := rand.Read(candidate); err != nil {
		return key, err
	}
	var got []byte
	err := s.st.Update(ctx, func(tx store.Tx) error {
		var err error
		got, err = tx.Challenges().Secret(ctx, oidcTokenKeyName, candidate)
		return err
	})
	if err != nil {
		return key, fmt.Errorf("oidc token key: %w", err)
	}
	if len(got) != len(key) {
		return key, fmt.Errorf("oidc token key: stored secret has %d bytes, want %d", len(got), len(key))
	}
	copy(key[:], got)
	return key, nil
}
