package service

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/policy"
	"github.com/trellis-testbed/trellis/internal/store"
)

// API token lifetimes: a token always expires, so a forgotten one does not
// stay a credential for ever.
const (
	APITokenDefaultTTL = 30 * 24 * time.Hour
	APITokenMaxTTL     = 365 * 24 * time.Hour
)

// apiTokenNamePattern is the rule of experiment, library and aspect names.
var apiTokenNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)

func validateAPITokenName(name string) error {
	if name == "" {
		return domain.Invalid("name", "name.required", "an API token needs a name")
	}
	if len(name) > 64 || !apiTokenNamePattern.MatchString(name) {
		return domain.Invalid("name", "name.format", "an API token's name is 1 to 64 characters: lower-case letters, digits, '_', '.' or '-', starting with a letter or digit")
	}
	return nil
}

func apiTokenObject(name string) string { return "api_token:" + name }

// CreateAPIToken creates an API token for the caller and returns it, the
// only time it is shown, with what is stored of it. expires nil means the
// default lifetime.
func (s *Accounts) CreateAPIToken(ctx context.Context, p *auth.Principal, name string, scopes []string, expires *time.Duration) (string, *domain.APIToken, error) {
	if err := s.authorize(ctx, p, opAuthCreateAPIToken, policy.None); err != nil {
		return "", nil, err
	}
	var vs domain.Violations
	_ = vs.Check(validateAPITokenName(name))
	scopes, err := policy.ParseScopes("scopes", scopes)
	_ = vs.Check(err)
	ttl := APITokenDefaultTTL
	if expires != nil {
		switch ttl = *expires; {
		case ttl <= 0:
			vs.Add("expires", "expires.positive", "an API token's lifetime must be longer than zero")
		case ttl > APITokenMaxTTL:
			vs.Add("expires", "expires.too_long", fmt.Sprintf("an API token lives at most %d days", APITokenMaxTTL/(24*time.Hour)))
		}
	}
	if err := vs.Err(); err != nil {
		return "", nil, err
	}
	now := s.now()
	tok, id, hash := auth.NewAPIToken()
	t := &domain.APIToken{
		ID: id, UID: p.UID, Name: name, Scopes: policy.EncodeScopes(scopes), SecretHash: hash,
		CreatedAt: now, ExpiresAt: now.Add(ttl),
	}
	detail := fmt.Sprintf("scopes %s; expires %s", t.Scopes, t.ExpiresAt.UTC().Format(time.RFC3339))
	err = s.update(ctx, &record{op: opAuthCreateAPIToken.Name, actor: p, object: apiTokenObject(name), detail: detail}, func(tx store.Tx) error {
		if err := tx.APITokens().Create(ctx, t); err != nil {
			return err
		}
		// A replica may remember that this id is unknown (someone probed
		// it); the change makes it look again.
		return tx.Changes().Append(ctx, store.ChangeAPIToken, id)
	})
	if err != nil {
		return "", nil, err
	}
	return tok, t, nil
}

// ListAPITokens lists the caller's API tokens.
func (s *Accounts) ListAPITokens(ctx context.Context, p *auth.Principal) ([]*domain.APIToken, error) {
	if err := s.authorize(ctx, p, opAuthListAPITokens, policy.None); err != nil {
		return nil, err
	}
	var out []*domain.APIToken
	err := s.view(ctx, func(tx store.Tx) (err error) {
		out, err = tx.APITokens().List(ctx, p.UID)
		return err
	})
	return out, err
}

// RevokeAPIToken revokes the caller's API token of that name; every replica
// refuses it from the moment the change feed tells it, this one at once.
func (s *Accounts) RevokeAPIToken(ctx context.Context, p *auth.Principal, name string) error {
	if err := s.authorize(ctx, p, opAuthRevokeAPIToken, policy.None); err != nil {
		return err
	}
	if name == "" {
		return domain.Invalid("name", "name.required", "name the API token to revoke")
	}
	return s.update(ctx, &record{op: opAuthRevokeAPIToken.Name, actor: p, object: apiTokenObject(name)}, func(tx store.Tx) error {
		t, err := tx.APITokens().Revoke(ctx, p.UID, name, s.now())
		if err != nil {
			return err
		}
		return tx.Changes().Append(ctx, store.ChangeAPIToken, t.ID)
	})
}
