package oidcprovider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/trellis-testbed/trellis/internal/auth/keys"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/service"
	"github.com/trellis-testbed/trellis/internal/store"
)

// storage adapts the service to the library's op.Storage: the library does
// the protocol (parsing, redirect URI and PKCE checks, token responses,
// signing), the service keeps the state in the store, shared by every
// replica, and writes the audit record. Its steps pass no caller (nil):
// their rules are public, and the protocol's credentials (the client's
// secret, the code, the token) prove each.
type storage struct {
	svc      *service.Service
	keys     *keys.Manager
	loginURL func(requestID string) string
}

var _ op.Storage = (*storage)(nil)

// Scopes the provider knows; others are dropped from requests.
var supportedScopes = []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail}

// notFound tells the library that a lookup missed, so it answers with the
// protocol's error rather than a server error.
type notFound struct{ error }

func (notFound) IsNotFound() {}

// describe is what a client may be told of err: a typed error's message,
// never an internal one's.
func describe(err error) string {
	var e *domain.Error
	if errors.As(err, &e) && e.Code != domain.CodeInternal {
		return e.Message
	}
	return "server error"
}

// typed reports whether err is a refusal (a typed error), not a failure
// of the server (the store down, say), which clients must not take for
// one.
func typed(err error) bool {
	var e *domain.Error
	return errors.As(err, &e) && e.Code != domain.CodeInternal && e.Code != domain.CodeUnavailable
}

func wrap(err error) error {
	if domain.HasCode(err, domain.CodeNotFound) {
		return notFound{err}
	}
	return err
}

// authRequest is a stored request as the library sees it.
type authRequest struct{ r *store.OIDCAuthRequest }

func (a authRequest) GetID() string         { return a.r.ID }
func (a authRequest) GetACR() string        { return "" }
func (a authRequest) GetAMR() []string      { return []string{"pwd"} }
func (a authRequest) GetAudience() []string { return []string{a.r.ClientID} }
func (a authRequest) GetAuthTime() time.Time {
	return a.r.AuthTime
}
func (a authRequest) GetClientID() string { return a.r.ClientID }
func (a authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.r.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: a.r.CodeChallenge, Method: oidc.CodeChallengeMethod(a.r.CodeChallengeMethod)}
}
func (a authRequest) GetNonce() string                   { return a.r.Nonce }
func (a authRequest) GetRedirectURI() string             { return a.r.RedirectURI }
func (a authRequest) GetResponseType() oidc.ResponseType { return oidc.ResponseType(a.r.ResponseType) }
func (a authRequest) GetResponseMode() oidc.ResponseMode { return oidc.ResponseMode(a.r.ResponseMode) }
func (a authRequest) GetScopes() []string                { return a.r.Scopes }
func (a authRequest) GetState() string                   { return a.r.State }
func (a authRequest) GetSubject() string                 { return a.r.UID }
func (a authRequest) Done() bool                         { return a.r.UID != "" }

func (s *storage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	r := &store.OIDCAuthRequest{
		ClientID:            req.ClientID,
		RedirectURI:         req.RedirectURI,
		State:               req.State,
		Nonce:               req.Nonce,
		ResponseType:        string(req.ResponseType),
		ResponseMode:        string(req.ResponseMode),
		CodeChallenge:       req.CodeChallenge,
		CodeChallengeMethod: string(req.CodeChallengeMethod),
	}
	for _, sc := range req.Scopes {
		if slices.Contains(supportedScopes, sc) && !slices.Contains(r.Scopes, sc) {
			r.Scopes = append(r.Scopes, sc)
		}
	}
	if err := s.svc.Federation.OIDCStartAuthRequest(ctx, nil, r); err != nil {
		if domain.HasCode(err, domain.CodeInvalidArgument) {
			return nil, oidc.ErrInvalidRequest().WithDescription("%s", describe(err))
		}
		return nil, err
	}
	return authRequest{r}, nil
}

func (s *storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	r, err := s.svc.Federation.OIDCAuthRequest(ctx, nil, id)
	if err != nil {
		return nil, wrap(err)
	}
	return authRequest{r}, nil
}

func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	r, err := s.svc.Federation.OIDCRedeemCode(ctx, nil, code)
	if err != nil {
		return nil, wrap(err)
	}
	return authRequest{r}, nil
}

func (s *storage) SaveAuthCode(ctx context.Context, id, code string) error {
	return wrap(s.svc.Federation.OIDCSaveCode(ctx, nil, id, code))
}

func (s *storage) DeleteAuthRequest(ctx context.Context, id string) error {
	return s.svc.Federation.OIDCEndAuthRequest(ctx, nil, id)
}

// clientOf names the client of a token request.
func clientOf(req op.TokenRequest) (string, error) {
	switch r := req.(type) {
	case authRequest:
		return r.r.ClientID, nil
	case interface{ GetClientID() string }:
		return r.GetClientID(), nil
	}
	return "", fmt.Errorf("oidcprovider: token request %T names no client", req)
}

func (s *storage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	client, err := clientOf(req)
	if err != nil {
		return "", time.Time{}, err
	}
	id, exp, err := s.svc.Federation.OIDCIssueAccessToken(ctx, nil, client, req.GetSubject(), req.GetScopes())
	if err != nil {
		if typed(err) {
			return "", time.Time{}, oidc.ErrAccessDenied().WithDescription("%s", describe(err))
		}
		return "", time.Time{}, err // the library answers server_error
	}
	return id, exp, nil
}

// Refresh tokens are not issued (the grant is off): access and ID tokens
// live 15 minutes, and a client that needs longer sends the user through
// the authorization again, which asks for the password again since the
// provider keeps no browser session. See docs/oidc.md.
func (s *storage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, oidc.ErrUnsupportedGrantType().WithDescription("refresh tokens are not issued")
}

func (s *storage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}

func (s *storage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

func (s *storage) TerminateSession(ctx context.Context, uid, clientID string) error {
	return s.svc.Federation.OIDCEndSession(ctx, nil, uid, clientID)
}

func (s *storage) RevokeToken(ctx context.Context, tokenID, _ string, clientID string) *oidc.Error {
	if err := s.svc.Federation.OIDCRevokeToken(ctx, nil, tokenID, clientID); err != nil {
		if domain.HasCode(err, domain.CodePermissionDenied) {
			return oidc.ErrInvalidClient().WithDescription("%s", describe(err))
		}
		return oidc.ErrServerError().WithDescription("revocation failed")
	}
	return nil
}

// signingKey is the key that signs Trellis's tokens now; ID tokens are
// signed the same way and verify from the same key set.
type signingKey struct {
	id  string
	key any
}

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.EdDSA }
func (k signingKey) Key() any                                    { return k.key }
func (k signingKey) ID() string                                  { return k.id }

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) {
	kid, priv := s.keys.Signer()
	if priv == nil {
		return nil, errors.New("oidcprovider: no signing key")
	}
	return signingKey{id: kid, key: priv}, nil
}

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.EdDSA}, nil
}

// publicKey is a published key as the library sees it.
type publicKey struct{ k jose.JSONWebKey }

func (p publicKey) ID() string                         { return p.k.KeyID }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return jose.SignatureAlgorithm(p.k.Algorithm) }
func (p publicKey) Use() string                        { return p.k.Use }
func (p publicKey) Key() any                           { return p.k.Key }

func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	b, err := s.keys.JWKS()
	if err != nil {
		return nil, err
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("oidcprovider: reading the key set: %w", err)
	}
	out := make([]op.Key, len(set.Keys))
	for i, k := range set.Keys {
		out[i] = publicKey{k}
	}
	return out, nil
}

func (s *storage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.svc.Federation.OIDCClient(ctx, nil, id)
	if err != nil {
		return nil, wrap(err)
	}
	return &client{c: c, loginURL: s.loginURL}, nil
}

func (s *storage) AuthorizeClientIDSecret(ctx context.Context, id, secret string) error {
	if err := s.svc.Federation.OIDCAuthenticateClient(ctx, nil, id, secret); err != nil {
		return oidc.ErrInvalidClient().WithDescription("%s", describe(err))
	}
	return nil
}

// SetUserinfoFromScopes is called for the ID token: its claims are set in
// SetUserinfoFromRequest instead, which knows the request.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest puts the user's claims into the ID token, as the
// scopes allow.
func (s *storage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	c, err := s.svc.Federation.OIDCUser(ctx, nil, req.GetSubject())
	if err != nil {
		return err
	}
	setClaims(info, c, scopes)
	return nil
}

func (s *storage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	t, c, err := s.svc.Federation.OIDCTokenClaims(ctx, nil, tokenID, subject)
	if err != nil {
		if !typed(err) {
			return oidc.ErrServerError().WithDescription("server error").WithParent(err)
		}
		// RFC 6750's answer to a token that no longer stands.
		return &oidc.Error{ErrorType: "invalid_token", Description: describe(err), Parent: err}
	}
	setClaims(info, c, t.Scopes)
	return nil
}

func (s *storage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	t, c, err := s.svc.Federation.OIDCTokenClaims(ctx, nil, tokenID, subject)
	if err != nil {
		return err
	}
	if t.ClientID != clientID {
		return errors.New("token issued to another client")
	}
	resp.Active = true
	resp.Scope = t.Scopes
	resp.ClientID = t.ClientID
	resp.Subject = t.UID
	resp.Expiration = oidc.FromTime(t.ExpiresAt)
	var info oidc.UserInfo
	setClaims(&info, c, t.Scopes)
	resp.SetUserInfo(&info)
	return nil
}

// setClaims sets the standard claims the scopes ask for.
func setClaims(info *oidc.UserInfo, c *service.OIDCClaims, scopes []string) {
	info.Subject = c.User.UID
	for _, sc := range scopes {
		switch sc {
		case oidc.ScopeProfile:
			info.PreferredUsername = c.User.UID
			info.Name = c.Name
		case oidc.ScopeEmail:
			info.Email = c.User.Email
			info.EmailVerified = oidc.Bool(c.User.EmailVerified)
		}
	}
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

// GetKeyByIDAndClientID serves the JWT profile grant, which is off.
func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, notFound{errors.New("no client keys: the JWT profile grant is not supported")}
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("the JWT profile grant is not supported")
}

func (s *storage) Health(ctx context.Context) error { return nil }
