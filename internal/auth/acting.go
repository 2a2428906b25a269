package auth

import (
	"context"
	"strings"

	"github.com/trellis-testbed/trellis/internal/auth/token"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

// ActorPrefix starts the "act" subject of an exchanged token, and the actor
// of its audit records: "service:NAME". The prefix keeps a service's name
// from ever reading as a uid.
const ActorPrefix = "service:"

// ActorOf returns the actor a service named name is: "service:NAME".
func ActorOf(name string) string { return ActorPrefix + name }

// ServiceName returns the service an actor names, or "" when it names none.
func ServiceName(actor string) string {
	name, _ := strings.CutPrefix(actor, ActorPrefix)
	if name == actor {
		return ""
	}
	return name
}

// ActingRefusal is the refusal of an exchanged token whose signature checked
// out but that may not be used: its service is unknown or disabled, or its
// user's account is not active. It names both, for the audit record. Its
// code and message are those of Err.
type ActingRefusal struct {
	Err     *domain.Error
	UID     string
	Service string
	Reason  string
}

func (e *ActingRefusal) Error() string { return e.Err.Error() }
func (e *ActingRefusal) Unwrap() error { return e.Err }

// InvalidateService drops what is known of a registered service.
func (a *Authenticator) InvalidateService(name string) {
	a.mu.Lock()
	a.gen++
	a.services.remove(name)
	a.mu.Unlock()
}

// authenticateActing resolves a token that a registered service obtained by
// token exchange. It has no session, on purpose: it outlives the user's
// logout for the few minutes it is valid. The service and the account are
// checked on every request, so disabling either stops it at once.
func (a *Authenticator) authenticateActing(ctx context.Context, claims *token.Claims) (*Principal, error) {
	name := ServiceName(claims.Actor)
	if name == "" || claims.SessionID != "" {
		return nil, domain.Unauthenticated("malformed access token: its actor is not a registered service")
	}
	refuse := func(reason, format string, args ...any) error {
		return &ActingRefusal{Err: domain.Unauthenticated(format, args...), UID: claims.Subject, Service: name, Reason: reason}
	}
	svc, err := a.service(ctx, name)
	if err != nil {
		return nil, err
	}
	switch {
	case svc == nil:
		return nil, refuse("service not registered", "service %q acting for %q is no longer registered", name, claims.Subject)
	case svc.State != store.ServiceActive:
		return nil, refuse("service disabled", "service %q acting for %q is disabled", name, claims.Subject)
	}
	u, err := a.user(ctx, claims.Subject)
	if err != nil {
		return nil, err
	}
	if u == nil || u.State != domain.UserActive {
		return nil, refuse("account not active", "account is not active")
	}
	return &Principal{
		UID:          u.UID,
		Admin:        u.Admin,
		TokenExpires: claims.Expiry,
		Actor:        claims.Actor,
	}, nil
}

func (a *Authenticator) service(ctx context.Context, name string) (*store.Service, error) {
	a.mu.RLock()
	s, ok := a.services.get(name)
	a.mu.RUnlock()
	if ok {
		return s, nil
	}
	return load(a, ctx, a.services, name, func(tx store.Tx) (*store.Service, error) {
		return tx.Services().Get(ctx, name)
	})
}
