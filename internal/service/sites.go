package service

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/auth/keys"
	"github.com/trellis-testbed/trellis/internal/auth/token"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/policy"
	"github.com/trellis-testbed/trellis/internal/store"
)

// Lifetimes of what the centre issues for sites.
const (
	// ProviderRegistrationTTL is how long an AddProvider token registers.
	ProviderRegistrationTTL = time.Hour
	// ConnectionTicketTTL is how long a connection ticket is valid.
	ConnectionTicketTTL = 10 * time.Minute
	// SiteTokenTTL is how long a user's token for a site's requests is.
	SiteTokenTTL = 5 * time.Minute
)

// Purposes of the centre's tokens for sites (the "purpose" claim): a site
// accepts each only where it expects it.
const (
	PurposeConnect = "connect"
	PurposeRequest = "request"
	PurposeDeliver = "deliver"
)

// siteLeeway tolerates a site's clock when the centre checks a ticket's
// expiry and records a site's JWT as used.
const siteLeeway = 30 * time.Second

// Sites holds the sites (providers): their registration, users'
// connections to them and the tickets and tokens the centre issues for
// them, and what sites report with their own keys.
type Sites struct {
	*base
	keys *keys.Manager
	// siteHTTP reaches sites: forwarded requests (with the tokens
	// forwardTokens keeps, forward.go) and deliveries (deliveries.go).
	siteHTTP      *http.Client
	forwardTokens forwardTokens
	// connections caches who may send requests to which site; nil
	// without a change feed (forward.go).
	connections *connectionCache
}

func providerObject(name string) string { return auth.ProviderOf(name) }

// SiteRegistration is what a site learns when it registers: who it is and
// how to check the centre's tokens.
type SiteRegistration struct {
	Name           string
	Issuer         string
	JWKSURL        string
	Audience       string // "provider:NAME": the centre's tokens for this site
	CentreAudience string // what the site's own JWTs are addressed to
}

// SiteTicket is a token the centre issued for a user at a site, with the
// site's address.
type SiteTicket struct {
	Token     string
	ExpiresAt time.Time
	URL       string
}

// String keeps the token out of logs.
func (t *SiteTicket) String() string { return "SiteTicket{" + t.URL + "}" }

func validateSiteURL(field, raw string) error {
	u, err := url.Parse(raw)
	if raw == "" {
		return domain.Invalid(field, field+".required", "the site's URL is required")
	}
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return domain.Invalid(field, field+".format", "an http:// or https:// URL with a host and no credentials, query or fragment")
	}
	return nil
}

// AddProvider makes a provider and its one-time registration token,
// returned this once.
func (s *Sites) AddProvider(ctx context.Context, p *auth.Principal, name, siteURL string) (*domain.Provider, string, time.Time, error) {
	if err := s.authorize(ctx, p, opProvidersAddProvider, policy.None); err != nil {
		return nil, "", time.Time{}, err
	}
	var vs domain.Violations
	_ = vs.Check(domain.ValidateProviderName("name", name))
	_ = vs.Check(validateSiteURL("url", siteURL))
	if err := vs.Err(); err != nil {
		return nil, "", time.Time{}, err
	}
	now := s.now()
	pr := &domain.Provider{Name: name, URL: strings.TrimRight(siteURL, "/"), State: domain.ProviderActive, CreatedAt: now}
	tok, hash := newSecret()
	exp := now.Add(ProviderRegistrationTTL)
	err := s.update(ctx, &record{op: opProvidersAddProvider.Name, actor: p, object: providerObject(name), detail: pr.URL}, func(tx store.Tx) error {
		if err := tx.Providers().Create(ctx, pr); err != nil {
			return err
		}
		return tx.Providers().CreateRegistration(ctx, &domain.ProviderRegistration{TokenHash: hash, Provider: name, ExpiresAt: exp})
	})
	if err != nil {
		return nil, "", time.Time{}, err
	}
	return pr, tok, exp, nil
}

// RegisterSite registers a site's public key with its one-time token. The
// token is the credential: it works once and for an hour; every refusal
// is audited.
func (s *Sites) RegisterSite(ctx context.Context, p *auth.Principal, tok, publicKey string) (*SiteRegistration, error) {
	if err := s.authorize(ctx, p, opProvidersRegisterSite, policy.None); err != nil {
		return nil, err
	}
	var vs domain.Violations
	if tok == "" {
		vs.Add("token", "token.required", "the registration token is required")
	}
	pub, err := ParseServiceKey("public_key", publicKey)
	_ = vs.Check(err)
	if err := vs.Err(); err != nil {
		return nil, err
	}
	now := s.now()
	var name string
	var refusal string
	rec := &record{op: opProvidersRegisterSite.Name, actor: p, detail: "public key " + KeyFingerprint(pub)}
	err = s.update(ctx, rec, func(tx store.Tx) error {
		r, err := tx.Providers().ClaimRegistration(ctx, hashSecret(tok))
		if err != nil {
			refusal = "registration token used, unknown or removed"
			return domain.Unauthenticated("registration token not valid: it was used, expired or never issued; ask an admin for a new one (trellis admin provider add)")
		}
		name, rec.object = r.Provider, providerObject(r.Provider)
		if !now.Before(r.ExpiresAt) {
			refusal = "registration token expired"
			return domain.Unauthenticated("registration token expired at %s; ask an admin for a new one", r.ExpiresAt.UTC().Format(time.RFC3339))
		}
		pr, err := tx.Providers().Get(ctx, name)
		if err != nil {
			return err
		}
		pr.PublicKey, pr.RegisteredAt = pub, now
		if err := tx.Providers().Update(ctx, pr); err != nil {
			return err
		}
		return tx.Changes().Append(ctx, store.ChangeProvider, name)
	})
	if refusal != "" {
		object := ""
		if name != "" {
			object = providerObject(name)
		}
		s.auditRefusal(ctx, opProvidersRegisterSite.Name, p, object, err, refusal)
	}
	if err != nil {
		return nil, err
	}
	return &SiteRegistration{
		Name:           name,
		Issuer:         s.cfg.Issuer,
		JWKSURL:        strings.TrimRight(s.cfg.PublicURL, "/") + "/.well-known/jwks.json",
		Audience:       auth.ProviderOf(name),
		CentreAudience: s.cfg.Audience,
	}, nil
}

// ListProviders lists the sites.
func (s *Sites) ListProviders(ctx context.Context, p *auth.Principal) ([]*domain.Provider, error) {
	if err := s.authorize(ctx, p, opProvidersListProviders, policy.None); err != nil {
		return nil, err
	}
	return viewOf(ctx, s.base, func(tx store.Tx) ([]*domain.Provider, error) { return tx.Providers().List(ctx) })
}

// GetProvider describes a site.
func (s *Sites) GetProvider(ctx context.Context, p *auth.Principal, name string) (*domain.Provider, error) {
	if err := s.authorize(ctx, p, opProvidersGetProvider, policy.None); err != nil {
		return nil, err
	}
	if err := domain.ValidateProviderName("name", name); err != nil {
		return nil, err
	}
	return viewOf(ctx, s.base, func(tx store.Tx) (*domain.Provider, error) { return tx.Providers().Get(ctx, name) })
}

// SetProviderState disables a site (its reports are refused, no tickets are
// issued for it) or enables it again.
func (s *Sites) SetProviderState(ctx context.Context, p *auth.Principal, name, state string) (*domain.Provider, error) {
	if err := s.authorize(ctx, p, opProvidersSetProviderState, policy.None); err != nil {
		return nil, err
	}
	var vs domain.Violations
	_ = vs.Check(domain.ValidateProviderName("name", name))
	if state != domain.ProviderActive && state != domain.ProviderDisabled {
		vs.Add("state", "state.unknown", "a provider's state is active or disabled")
	}
	if err := vs.Err(); err != nil {
		return nil, err
	}
	var out *domain.Provider
	err := s.update(ctx, &record{op: opProvidersSetProviderState.Name, actor: p, object: providerObject(name), detail: state}, func(tx store.Tx) (err error) {
		if out, err = tx.Providers().Get(ctx, name); err != nil {
			return err
		}
		out.State = state
		if err := tx.Providers().Update(ctx, out); err != nil {
			return err
		}
		return tx.Changes().Append(ctx, store.ChangeProvider, name)
	})
	return out, err
}

// RemoveProvider removes a site with its connections. What the centre
// still held for it is failed ("provider removed") and kept for the record;
// a disabled site's deliveries, by contrast, wait until it is enabled.
func (s *Sites) RemoveProvider(ctx context.Context, p *auth.Principal, name string) error {
	if err := s.authorize(ctx, p, opProvidersRemoveProvider, policy.None); err != nil {
		return err
	}
	if err := domain.ValidateProviderName("name", name); err != nil {
		return err
	}
	return s.update(ctx, &record{op: opProvidersRemoveProvider.Name, actor: p, object: providerObject(name)}, func(tx store.Tx) error {
		// Resources name their site: a site that still has some stays
		// (disable it, or remove its resources first).
		if _, err := tx.Providers().Get(ctx, name); err != nil {
			return err
		}
		rs, err := tx.Resources().List(ctx, store.ResourceFilter{Provider: name, Page: store.Page{Limit: 1}})
		if err != nil {
			return err
		}
		if len(rs) > 0 {
			return domain.FailedPrecondition("provider %q still has resources (%s, perhaps more): remove them first (trellis resource list --provider %s), or disable the provider", name, rs[0].Name, name)
		}
		if err := tx.Providers().Delete(ctx, name); err != nil {
			return err
		}
		if _, err := tx.Deliveries().FailPending(ctx, name, s.now(), "provider removed"); err != nil {
			return err
		}
		return tx.Changes().Append(ctx, store.ChangeProvider, name)
	})
}

// usableProvider returns the named site when tokens may be issued for it:
// it exists, is active and has registered its key.
func (s *Sites) usableProvider(ctx context.Context, name string) (*domain.Provider, error) {
	if err := domain.ValidateProviderName("provider", name); err != nil {
		return nil, err
	}
	pr, err := viewOf(ctx, s.base, func(tx store.Tx) (*domain.Provider, error) { return tx.Providers().Get(ctx, name) })
	switch {
	case err != nil:
		return nil, err
	case pr.State != domain.ProviderActive:
		return nil, domain.FailedPrecondition("provider %q is disabled", name)
	case pr.PublicKey == nil:
		return nil, domain.FailedPrecondition("provider %q has not registered yet (trellis provider init at the site)", name)
	}
	return pr, nil
}

// siteToken signs a token for uid at site pr with purpose.
func (s *Sites) siteToken(pr *domain.Provider, uid, purpose, jti string, now time.Time, ttl time.Duration) (*SiteTicket, error) {
	exp := now.Add(ttl)
	raw, err := token.Sign(s.keys, token.Claims{
		Issuer: s.cfg.Issuer, Subject: uid, Audience: []string{auth.ProviderOf(pr.Name)},
		ID: jti, IssuedAt: now, NotBefore: now, Expiry: exp, Purpose: purpose,
	})
	if err != nil {
		return nil, domain.Internal(err, "signing the site token failed")
	}
	return &SiteTicket{Token: raw, ExpiresAt: exp, URL: pr.URL}, nil
}

// CreateConnectionTicket issues the caller a one-time ticket to connect to
// a site: the site verifies it offline, maps the caller to a local account
// and reports the mapping, naming the ticket, which the centre then marks
// used.
func (s *Sites) CreateConnectionTicket(ctx context.Context, p *auth.Principal, provider string) (*SiteTicket, error) {
	if err := s.authorize(ctx, p, opProvidersCreateConnectionTicket, policy.None); err != nil {
		return nil, err
	}
	pr, err := s.usableProvider(ctx, provider)
	if err != nil {
		return nil, err
	}
	now, jti := s.now(), newID()
	t, err := s.siteToken(pr, p.UID, PurposeConnect, jti, now, ConnectionTicketTTL)
	if err != nil {
		return nil, err
	}
	err = s.update(ctx, &record{op: opProvidersCreateConnectionTicket.Name, actor: p, object: providerObject(provider), detail: "ticket " + jti}, func(tx store.Tx) error {
		return tx.Providers().CreateTicket(ctx, &domain.ProviderTicket{ID: jti, Provider: provider, UID: p.UID, ExpiresAt: t.ExpiresAt})
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// CreateSiteToken issues the caller a short-lived token for its requests
// to a site it is connected to. The token alone does not act at a site
// that requires the user's signature: the centre cannot forge that.
func (s *Sites) CreateSiteToken(ctx context.Context, p *auth.Principal, provider string) (*SiteTicket, error) {
	if err := s.authorize(ctx, p, opProvidersCreateSiteToken, policy.None); err != nil {
		return nil, err
	}
	pr, err := s.connectedProvider(ctx, p.UID, provider)
	if err != nil {
		return nil, err
	}
	return s.siteToken(pr, p.UID, PurposeRequest, newID(), s.now(), SiteTokenTTL)
}

// ListConnections lists uid's connections (the caller's own when empty).
func (s *Sites) ListConnections(ctx context.Context, p *auth.Principal, uid string) ([]*domain.ProviderConnection, error) {
	if err := s.authorize(ctx, p, opProvidersListConnections, policy.Account("uid", uid)); err != nil {
		return nil, err
	}
	if uid == "" {
		uid = p.UID
	}
	return viewOf(ctx, s.base, func(tx store.Tx) ([]*domain.ProviderConnection, error) {
		if _, err := tx.Users().Get(ctx, uid); err != nil {
			return nil, err
		}
		return tx.Providers().ListConnections(ctx, uid)
	})
}

// RemoveConnection removes uid's connection to a site at the centre and
// queues its removal at the site (a disconnect delivery, sent when the
// site is up; the client may also tell the site itself at once).
func (s *Sites) RemoveConnection(ctx context.Context, p *auth.Principal, uid, provider string) error {
	if err := s.authorize(ctx, p, opProvidersRemoveConnection, policy.Account("uid", uid)); err != nil {
		return err
	}
	if uid == "" {
		uid = p.UID
	}
	if err := domain.ValidateProviderName("provider", provider); err != nil {
		return err
	}
	return s.update(ctx, &record{op: opProvidersRemoveConnection.Name, actor: p, object: providerObject(provider), detail: "user " + uid}, func(tx store.Tx) error {
		conns, err := tx.Providers().ListConnections(ctx, uid)
		if err != nil {
			return err
		}
		if err := tx.Providers().DeleteConnection(ctx, provider, uid); err != nil {
			return err
		}
		if err := tx.Changes().Append(ctx, store.ChangeProviderConnection, uid); err != nil {
			return err
		}
		for _, c := range conns {
			if c.Provider == provider {
				return s.enqueueDelivery(ctx, tx, provider, domain.DeliveryDisconnect, "disconnect:"+uid+":"+newID(),
					DisconnectPayload{UID: uid, UserKeyFingerprint: c.UserKeyFingerprint})
			}
		}
		return nil
	})
}

// ReportConnection is a site's report of the mapping it made for a
// connection ticket. The caller is the site (its own key signed the
// request); it may report only about tickets issued for itself, once each,
// for the user the ticket names.
func (s *Sites) ReportConnection(ctx context.Context, p *auth.Principal, c domain.ProviderConnection, ticketID string) (*domain.ProviderConnection, error) {
	if err := s.authorize(ctx, p, opProvidersReportConnection, policy.None); err != nil {
		return nil, err
	}
	var vs domain.Violations
	_ = vs.Check(domain.ValidateUID("uid", c.UID))
	if !domain.LocalAccountPattern.MatchString(c.LocalAccount) {
		vs.Add("local_account", "local_account.format", "a local account is a login name: lower-case letters, digits, '_' or '-'")
	}
	if !strings.HasPrefix(c.UserKeyFingerprint, "SHA256:") || len(c.UserKeyFingerprint) > 64 {
		vs.Add("user_key_fingerprint", "user_key_fingerprint.format", "a SHA256:… fingerprint of the user's key")
	}
	if ticketID == "" || len(ticketID) > 64 {
		vs.Add("ticket_jti", "ticket_jti.required", "name the connection ticket the user presented")
	}
	if err := vs.Err(); err != nil {
		return nil, err
	}
	site := p.Provider
	now := s.now()
	c.Provider, c.CreatedAt = site, now
	var refusal string
	err := s.update(ctx, &record{op: opProvidersReportConnection.Name, actor: p, object: userObject(c.UID), detail: fmt.Sprintf("local account %s, ticket %s", c.LocalAccount, ticketID)}, func(tx store.Tx) error {
		// The site's JWT proves one request: a replay is refused.
		if err := tx.Services().UseAssertion(ctx, auth.ProviderOf(site), p.AssertionID, p.TokenExpires.Add(siteLeeway)); err != nil {
			if domain.HasCode(err, domain.CodeAlreadyExists) {
				refusal = "site request replayed"
				return domain.Unauthenticated("the site's request JWT was used already (jti %q): sign a new one per request", p.AssertionID)
			}
			return err
		}
		t, err := tx.Providers().UseTicket(ctx, ticketID, now)
		switch {
		case domain.HasCode(err, domain.CodeNotFound):
			refusal = "unknown ticket"
			return domain.NotFound("ticket %q not found", ticketID)
		case domain.HasCode(err, domain.CodeFailedPrecondition):
			refusal = "ticket used twice"
			return err
		case err != nil:
			return err
		case t.Provider != site:
			// A site speaking for another site's user: refused.
			refusal = "ticket of another site"
			return domain.PermissionDenied("ticket %q was not issued for site %q", ticketID, site)
		case t.UID != c.UID:
			refusal = "ticket of another user"
			return domain.PermissionDenied("ticket %q was issued for another user", ticketID)
		case !now.Before(t.ExpiresAt.Add(siteLeeway)):
			refusal = "ticket expired"
			return domain.FailedPrecondition("ticket %q expired at %s", ticketID, t.ExpiresAt.UTC().Format(time.RFC3339))
		}
		if err := tx.Providers().PutConnection(ctx, &c); err != nil {
			return err
		}
		return tx.Changes().Append(ctx, store.ChangeProviderConnection, c.UID)
	})
	if refusal != "" {
		s.auditRefusal(ctx, opProvidersReportConnection.Name, p, userObject(c.UID), err, refusal)
	}
	if err != nil {
		return nil, err
	}
	return &c, nil
}
