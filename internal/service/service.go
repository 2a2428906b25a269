// Package service holds Trellis's use cases: one method per API operation.
// Each runs in one store transaction that also writes the operation's audit
// record and mail, so an operation is all or nothing. Callers (the transport
// layer) have already authenticated the caller and applied the operation's
// policy rule; methods receive the principal for the record.
package service

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"runtime"
	"time"

	"github.com/trellis-testbed/trellis/internal/aspect"
	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/auth/keys"
	"github.com/trellis-testbed/trellis/internal/auth/password"
	"github.com/trellis-testbed/trellis/internal/auth/sshca"
	"github.com/trellis-testbed/trellis/internal/auth/x509ca"
	"github.com/trellis-testbed/trellis/internal/changefeed"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/policy"
	"github.com/trellis-testbed/trellis/internal/requestid"
	"github.com/trellis-testbed/trellis/internal/store"
)

// Config holds the service's policies.
type Config struct {
	// Issuer and Audience go into every access token.
	Issuer   string
	Audience string
	// AccessTokenTTL is how long an access token is valid (default 10m).
	AccessTokenTTL time.Duration
	// SessionTTL is how long a login lasts (default 24h).
	SessionTTL time.Duration
	// ConfirmTTL is how long an e-mail confirmation token is valid (48h).
	ConfirmTTL time.Duration
	// ResetTTL is how long a password-reset token is valid (2h).
	ResetTTL time.Duration
	// PublicURL is how users reach this server; it appears in mail.
	PublicURL string
	// LoginBackoffAfter is how many failed logins of an account one client
	// (address) may make before its further attempts must wait (default
	// 5); the wait doubles with each further failure, from
	// LoginBackoffBase up to LoginBackoffMax. Other clients are not
	// slowed down: see docs/operations.md, "Login lockout policy".
	LoginBackoffAfter int
	LoginBackoffBase  time.Duration
	LoginBackoffMax   time.Duration
	// LoginFailureReset is how long after its last failure a client's
	// count for an account is forgotten (default 12h); the janitor
	// deletes older counts.
	LoginFailureReset time.Duration
	// ResetMailLimit is how many password-reset mails one account is sent
	// within ResetMailWindow (default 3 per hour); further requests send
	// none, with the same answer.
	ResetMailLimit  int
	ResetMailWindow time.Duration
	// LeaseDefault is a realization's lease when the request names none
	// (24h); LeaseMax the longest a request or renewal may ask for (7 days).
	LeaseDefault time.Duration
	LeaseMax     time.Duration
	// VetAllProjects makes every new project wait for an admin's approval,
	// not only those requested by users who belong to no approved project.
	VetAllProjects bool
	// SSHCertValidity is how long an SSH certificate is valid when the
	// request does not say (default 8h); SSHCertMaxValidity is the most a
	// request may ask for (default 24h).
	SSHCertValidity    time.Duration
	SSHCertMaxValidity time.Duration
	// PasswordLoginDisabled refuses every password login (Auth.Login,
	// challenge logins, HTTP Basic): the server runs without the local
	// authentication backend. Passwords may still be set and reset.
	PasswordLoginDisabled bool
	// MailDelivered says a mail server delivers the outbox. Without one
	// the outbox is the development mailbox: Admin.ListOutbox shows its
	// undelivered mail whole, mailed tokens included, as the recipient
	// would read it. With one, mailed tokens are for their recipients
	// only, and ListOutbox redacts them.
	MailDelivered bool
	// DeliveryBackoffBase and DeliveryBackoffMax space the retries of a
	// delivery to a site that is down (doubling from the base, capped;
	// defaults 2s and 5m).
	DeliveryBackoffBase time.Duration
	DeliveryBackoffMax  time.Duration
	// SiteSilenceLimit is how long a site may leave a realization's
	// materialization unanswered before its resources are marked suspect
	// (default 15m).
	SiteSilenceLimit time.Duration
}

func (c *Config) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.AccessTokenTTL, 10*time.Minute)
	def(&c.SessionTTL, 24*time.Hour)
	def(&c.ConfirmTTL, 48*time.Hour)
	def(&c.ResetTTL, 2*time.Hour)
	def(&c.LoginBackoffBase, time.Second)
	def(&c.LoginBackoffMax, 15*time.Minute)
	def(&c.LoginFailureReset, 12*time.Hour)
	def(&c.ResetMailWindow, time.Hour)
	def(&c.LeaseDefault, 24*time.Hour)
	def(&c.LeaseMax, 7*24*time.Hour)
	def(&c.SSHCertValidity, 8*time.Hour)
	def(&c.SSHCertMaxValidity, 24*time.Hour)
	def(&c.DeliveryBackoffBase, 2*time.Second)
	def(&c.DeliveryBackoffMax, 5*time.Minute)
	def(&c.SiteSilenceLimit, 15*time.Minute)
	if c.LoginBackoffAfter == 0 {
		c.LoginBackoffAfter = 5
	}
	if c.ResetMailLimit == 0 {
		c.ResetMailLimit = 3
	}
	if c.Audience == "" {
		c.Audience = "trellis"
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://127.0.0.1:7700"
	}
	if c.Issuer == "" {
		c.Issuer = c.PublicURL
	}
}

// Service is the whole of Trellis's use cases, one area each. Every
// exported method of an area is an operation: it takes the caller, applies
// the operation's one rule (rules.go) first, then runs in one transaction
// with its audit record. Every door (the API, the portal, a site's module)
// calls these, so there is one policy whichever way a request comes in.
type Service struct {
	// Accounts: users, passwords, sessions and every credential kind.
	Accounts *Accounts
	// Social: projects, circles, requests, notifications, policy questions.
	Social *Social
	// Testbed: experiments, libraries, resources, realizations.
	Testbed *Testbed
	// Federation: services acting for users, OIDC (both ways).
	Federation *Federation
	// Sites: providers, users' connections to them, their reports.
	Sites *Sites

	*base
}

// base is what every area needs: the store, the policy engine and the
// clock; and the helpers that write an operation with its audit record.
type base struct {
	cfg    Config
	st     store.Store
	feed   *changefeed.Follower
	engine *policy.Engine
	log    *slog.Logger
	now    func() time.Time
	// watchers wake Watch streams when a notification arrives; notify
	// writes them from every area.
	watchers *watchers
	// realizationWatchers wakes Realizations/Watch streams, by realization id.
	realizationWatchers *watchers
	// deliveriesQueued wakes the dispatcher (see DeliveriesQueued).
	deliveriesQueued chan struct{}
	// descriptions caches profile descriptions (attributes.go).
	descriptions *descriptionCache
}

// Accounts holds the operations on users and their credentials.
type Accounts struct {
	*base
	hasher *password.Hasher
	keys   *keys.Manager
	sshCA  *sshca.CA
	// x509CA issues client certificates; serverCert returns the TLS
	// certificate chain served (PEM), empty without TLS.
	x509CA     *x509ca.CA
	serverCert func() []byte
	// hashing bounds concurrent password hashing: each argon2id run holds
	// tens of MiB, and a burst of logins must not exhaust memory.
	hashing chan struct{}
	// bootstrapArm is the one-time token of Admin/Bootstrap (bootstrap.go).
	bootstrapArm bootstrapArm
	// backoffs remembers which back-off refusals were audited.
	backoffs backoffMemo
	// sealer seals the tokens mail carries while it waits in the outbox.
	sealer keys.Sealer
}

// Social holds projects, circles, consent requests, notifications and the
// policy questions anyone may ask about themselves.
type Social struct {
	*base
}

// Testbed holds experiments, libraries, resources and realizations.
type Testbed struct {
	*base
	// aspects are the experiment aspect types known.
	aspects *aspect.Registry
}

// Federation holds what crosses Trellis's edge: services acting for users,
// the OIDC provider's clients and steps, logins through an institution.
type Federation struct {
	*base
	// accounts checks passwords and opens sessions for logins that end
	// here.
	accounts *Accounts
	keys     *keys.Manager
	// idp is the linking backend users log in through (oidc), or nil.
	idp auth.Linker
}

// Deps are what the service is built from.
type Deps struct {
	Store  store.Store
	Hasher *password.Hasher
	Keys   *keys.Manager
	// SSHCA signs SSH certificates; without it they are not offered.
	SSHCA *sshca.CA
	// X509CA issues X.509 client certificates; without it none are offered.
	X509CA *x509ca.CA
	// ServerCertificate returns the TLS certificate chain the server
	// presents (PEM); nil when it serves no TLS.
	ServerCertificate func() []byte
	// Feed, when set, is synced after every write so this replica's caches
	// never serve what the write changed.
	Feed *changefeed.Follower
	// Engine decides and answers membership questions.
	Engine *policy.Engine
	// IdentityProvider is the linking backend (oidc) users log in through;
	// nil when none is enabled.
	IdentityProvider auth.Linker
	// SiteHTTP is how the centre reaches sites (forwarded requests and
	// deliveries); nil: SiteHTTPClient(X509CA, nil).
	SiteHTTP *http.Client
	// Sealer seals the tokens waiting in the outbox (keys.Plain when nil).
	Sealer keys.Sealer
	Log    *slog.Logger
	Now    func() time.Time
}

// New returns a service.
func New(cfg Config, d Deps) *Service {
	cfg.defaults()
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	b := &base{cfg: cfg, st: d.Store, feed: d.Feed, engine: d.Engine, log: d.Log, now: d.Now, watchers: newWatchers(), realizationWatchers: newWatchers(), deliveriesQueued: make(chan struct{}, 1)}
	if d.Feed != nil {
		// Without a feed nothing would invalidate it: read per request.
		b.descriptions = newDescriptionCache()
		d.Feed.On(store.ChangeProfileAttributes, b.descriptions.invalidate)
		d.Feed.OnReset(b.descriptions.reset)
	}
	acct := &Accounts{
		base: b, hasher: d.Hasher, keys: d.Keys, sshCA: d.SSHCA, x509CA: d.X509CA, serverCert: d.ServerCertificate,
		hashing: make(chan struct{}, 2*runtime.GOMAXPROCS(0)),
		sealer:  d.Sealer,
	}
	if d.SiteHTTP == nil {
		d.SiteHTTP, _ = SiteHTTPClient(d.X509CA, nil) // no extra PEM: cannot fail
	}
	if acct.sealer == nil {
		acct.sealer = keys.Plain()
	}
	s := &Service{
		Accounts:   acct,
		Social:     &Social{base: b},
		Testbed:    &Testbed{base: b, aspects: aspect.Default()},
		Federation: &Federation{base: b, accounts: acct, keys: d.Keys, idp: d.IdentityProvider},
		Sites:      &Sites{base: b, keys: d.Keys, siteHTTP: d.SiteHTTP},
		base:       b,
	}
	if d.Feed != nil {
		d.Feed.On(store.ChangeNotification, b.watchers.wake)
		// Without a feed nothing would invalidate it: read per request.
		c := newConnectionCache()
		s.Sites.connections = c
		d.Feed.On(store.ChangeProvider, c.invalidateProvider)
		d.Feed.On(store.ChangeProviderConnection, c.invalidateUser)
		d.Feed.On(store.ChangeUser, c.invalidateUser) // a removed user's connections go with it
		d.Feed.OnReset(c.reset)
		d.Feed.On(store.ChangeRealization, b.realizationWatchers.wake)
		d.Feed.On(store.ChangeDelivery, b.wakeDispatcher)
	}
	return s
}

// hashSlot waits for a turn to run the password hasher; release it after.
func (s *Accounts) hashSlot(ctx context.Context) (release func(), err error) {
	select {
	case s.hashing <- struct{}{}:
		return func() { <-s.hashing }, nil
	case <-ctx.Done():
		return nil, domain.ResourceExhausted("the server is busy checking passwords; try again")
	}
}

// hashPassword hashes pw within the concurrency bound.
func (s *Accounts) hashPassword(ctx context.Context, pw string) (string, error) {
	release, err := s.hashSlot(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	h, err := s.hasher.Hash(pw)
	if err != nil {
		return "", domain.Internal(err, "password hashing failed")
	}
	return h, nil
}

// verifyPassword checks pw against hash within the concurrency bound; an
// empty hash (no such account) costs the same time and fails.
func (s *Accounts) verifyPassword(ctx context.Context, hash, pw string) (ok, rehash bool, err error) {
	release, err := s.hashSlot(ctx)
	if err != nil {
		return false, false, err
	}
	defer release()
	if hash == "" {
		s.hasher.Equalize(pw)
		return false, false, nil
	}
	ok, rehash, err = s.hasher.Verify(hash, pw)
	if err != nil {
		return false, false, domain.Internal(err, "password check failed")
	}
	return ok, rehash, nil
}

// Config returns the effective configuration.
func (s *Service) Config() Config { return s.cfg }

// record describes the audit record of an operation.
type record struct {
	op     string
	actor  *auth.Principal
	object string
	detail string
}

func actorUID(p *auth.Principal) string {
	if p == nil {
		return ""
	}
	return p.UID
}

// update runs fn in one read-write transaction that also appends the
// operation's audit record, then brings this replica's caches up to date.
func (s *base) update(ctx context.Context, rec *record, fn func(tx store.Tx) error) error {
	err := s.st.Update(ctx, func(tx store.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return tx.Audit().Append(ctx, s.auditEvent(ctx, rec, domain.OutcomeOK))
	})
	if err != nil {
		return err
	}
	s.syncFeed(ctx)
	return nil
}

func (s *base) syncFeed(ctx context.Context) {
	if s.feed == nil {
		return
	}
	if err := s.feed.Sync(ctx); err != nil && !errors.Is(err, store.ErrUnavailable) {
		// The poller catches up; refusing the committed operation would lie.
		s.log.WarnContext(ctx, "change feed sync after write failed", "err", err)
	}
}

func (s *base) view(ctx context.Context, fn func(tx store.Tx) error) error {
	return s.st.View(ctx, fn)
}

// viewOf reads one value in a read-only transaction.
func viewOf[T any](ctx context.Context, s *base, read func(tx store.Tx) (T, error)) (T, error) {
	var v T
	err := s.view(ctx, func(tx store.Tx) error {
		var err error
		v, err = read(tx)
		return err
	})
	return v, err
}

func (s *base) auditEvent(ctx context.Context, rec *record, outcome string) *domain.AuditEvent {
	actor, onBehalfOf := actorUID(rec.actor), ""
	if rec.actor != nil && rec.actor.Actor != "" {
		// A service acting for a user: the service did it, for the user.
		actor, onBehalfOf = rec.actor.Actor, rec.actor.UID
	}
	e := &domain.AuditEvent{
		Time:       s.now(),
		Actor:      actor,
		OnBehalfOf: onBehalfOf,
		Operation:  rec.op,
		Object:     rec.object,
		Outcome:    outcome,
		RequestID:  requestid.From(ctx),
		Detail:     rec.detail,
	}
	// Objects and details can hold what an anonymous caller sent.
	e.Bound()
	return e
}

// AuditRefusal records a refusal that a door made before any operation
// ran (bad or unusable credentials, API-token scopes), in a transaction of
// its own.
func (s *Service) AuditRefusal(ctx context.Context, op string, p *auth.Principal, object string, err error, detail string) {
	s.auditRefusal(ctx, op, p, object, err, detail)
}

// auditRefusal records a refused attempt in a transaction of its own (the
// operation's own transaction, if any, did not commit).
func (s *base) auditRefusal(ctx context.Context, op string, p *auth.Principal, object string, err error, detail string) {
	ev := s.auditEvent(ctx, &record{op: op, actor: p, object: object, detail: detail}, domain.CodeOf(err).String())
	// An outage of the store is logged once, by its wrapper, not here at
	// every refusal.
	if aerr := s.st.Update(ctx, func(tx store.Tx) error { return tx.Audit().Append(ctx, ev) }); aerr != nil && !errors.Is(aerr, store.ErrUnavailable) {
		s.log.ErrorContext(ctx, "audit of a refusal failed", "op", op, "err", aerr)
	}
}

// newSecret returns a random URL-safe token and the hash that is stored.
func newSecret() (string, []byte) {
	for {
		var b [32]byte
		_, _ = rand.Read(b[:])
		tok := base64.RawURLEncoding.EncodeToString(b[:])
		// People paste mailed tokens as command arguments
		// (trellis user confirm TOKEN), where a leading '-' reads as a flag.
		// Drawing again when it would costs well under a bit of entropy.
		if tok[0] != '-' {
			return tok, hashSecret(tok)
		}
	}
}

func hashSecret(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// newID returns a random URL-safe id. Like mailed tokens, request ids are
// typed as arguments (trellis request accept ID), so none starts with '-'.
func newID() string {
	for {
		var b [16]byte
		_, _ = rand.Read(b[:])
		if id := base64.RawURLEncoding.EncodeToString(b[:]); id[0] != '-' {
			return id
		}
	}
}

func userObject(uid string) string { return "user:" + uid }

// System tasks and accessors: not operations of any door, so they
// authorize nothing; the server itself and the operator's local
// commands call them.

// Bootstrap makes the first administrator (trellis admin bootstrap).
func (s *Service) Bootstrap(ctx context.Context, uid, email, pw string) (*domain.User, error) {
	return s.Accounts.bootstrap(ctx, opBootstrap, uid, email, pw)
}

// HasAdmin reports whether any administrator exists.
func (s *Service) HasAdmin(ctx context.Context) (bool, error) { return s.Accounts.hasAdmin(ctx) }

// ReleaseExpired ends realizations whose lease ran out (the reaper).
func (s *Service) ReleaseExpired(ctx context.Context) (int, error) {
	return s.Testbed.releaseExpired(ctx)
}

// Registry is the experiment aspect types known.
func (s *Service) Registry() *aspect.Registry { return s.Testbed.registry() }

// OIDCTokenKey is the OIDC provider's key for its opaque access tokens.
func (s *Service) OIDCTokenKey(ctx context.Context) ([32]byte, error) {
	return s.Federation.oidcTokenKey(ctx)
}
