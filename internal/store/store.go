// Package store is Trellis's one interface to persistence. Implementations
// (package sqlstore: SQLite embedded, PostgreSQL to scale out) pass the same
// conformance suite (package storetest), concurrency guarantees included.
//
// Every operation runs inside a transaction: the service layer opens one per
// API operation with Store.Update or Store.View and does all of its reads,
// writes, audit record and mail inside it, so an operation is all or nothing.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// Store opens transactions.
type Store interface {
	// Update runs fn in a read-write transaction and commits when fn returns
	// nil. A transaction that loses a serialization race is retried from
	// the start, so fn must not have effects outside tx.
	Update(ctx context.Context, fn func(Tx) error) error
	// View runs fn in a read-only transaction.
	View(ctx context.Context, fn func(Tx) error) error
	// Ping checks that the store answers.
	Ping(ctx context.Context) error
	// Probe commits a small write, as an operation would: it fails when
	// the store answers but cannot commit (disk full, read only).
	Probe(ctx context.Context) error
	// Migrate brings the schema up to date. It is idempotent and safe to run
	// from several replicas at once.
	Migrate(ctx context.Context) error
	// Kind names the implementation: "sqlite" or "postgres".
	Kind() string
	Close() error
}

// ErrUnavailable marks a store that cannot serve now: it cannot be
// reached, it has no room left, or transactions kept conflicting past every
// retry. The same request may succeed later. Store methods return it inside
// a domain unavailable error (errors.Is(err, ErrUnavailable)).
var ErrUnavailable = errors.New("store unavailable")

// Unavailable wraps cause, a failure of the store itself, as ErrUnavailable
// in a domain error whose message says to try again (the cause is for the
// log only).
func Unavailable(cause error) error {
	return &domain.Error{
		Code:    domain.CodeUnavailable,
		Message: "the store is unavailable; try again shortly",
		Err:     fmt.Errorf("%w: %w", ErrUnavailable, cause),
	}
}

// Tx is one transaction. Its parts are grouped by what they hold.
type Tx interface {
	Users() Users
	Profiles() Profiles
	Sessions() Sessions
	OneTimeTokens() OneTimeTokens
	LoginFailures() LoginFailures
	SigningKeys() SigningKeys
	Audit() Audit
	Outbox() Outbox
	Changes() Changes
	Leases() Leases
	Projects() Projects
	Circles() Circles
	Requests() Requests
	Notifications() Notifications
	Experiments() Experiments
	Libraries() Libraries
	Grants() Grants
	Resources() Resources
	Realizations() Realizations
	SSHKeys() SSHKeys
	Authorities() Authorities
	Challenges() Challenges
	APITokens() APITokens
	Services() Services
	CertBindings() CertBindings
	OIDC() OIDC
	Federation() Federation
	Providers() Providers
	Deliveries() Deliveries
	Materializations() Materializations
}

// MaxLimit is the most rows one listing call returns, whatever limit it is
// given (no limit gives DefaultLimit). A caller that needs more, or one row
// more to learn whether another page follows, reads again after the last row.
const (
	MaxLimit     = 1000
	DefaultLimit = 100
)

// Page asks for one page of a listing ordered by a key: rows after After,
// at most Limit of them.
type Page struct {
	After string
	Limit int
}

// Users holds accounts. Errors: domain not-found for a missing uid,
// already-exists (naming the field) for a duplicate uid or e-mail.
type Users interface {
	Create(ctx context.Context, u *domain.User, passwordHash string) error
	Get(ctx context.Context, uid string) (*domain.User, error)
	GetByEmail(ctx context.Context, email string) (*domain.User, error)
	// List returns users ordered by uid, uid > page.After, with the prefix.
	List(ctx context.Context, prefix string, page Page) ([]*domain.User, error)
	// Update writes Email, EmailVerified, State, Admin and UpdatedAt.
	Update(ctx context.Context, u *domain.User) error
	PasswordHash(ctx context.Context, uid string) (string, error)
	SetPasswordHash(ctx context.Context, uid, hash string) error
	// ScramVerifier returns what challenge logins verify ("" when the
	// password was set before they existed); SetScramVerifier replaces it.
	ScramVerifier(ctx context.Context, uid string) (string, error)
	SetScramVerifier(ctx context.Context, uid, verifier string) error
	// CountAdmins counts accounts with the admin flag, whatever their state.
	CountAdmins(ctx context.Context) (int, error)
	// Holdings lists, in name order, the projects uid owns and the live
	// realizations it holds: what keeps an account from being closed.
	Holdings(ctx context.Context, uid string) (projects, realizations []string, err error)
	// Close deletes uid's account, with everything that cascades from it
	// and its profile, and keeps a tombstone: Create refuses the uid with
	// already-exists from then on. by is who closed it.
	Close(ctx context.Context, uid, by string, at time.Time) error
	// Taken reports whether uid names an account or a closed one.
	Taken(ctx context.Context, uid string) (bool, error)
}

// Profile kinds name what a profile belongs to.
const (
	ProfileUser = "user"
)

// Profiles holds self-describing attributes of any object.
type Profiles interface {
	Get(ctx context.Context, kind, id string) (map[string]string, error)
	// Values returns one attribute's value for each of ids that has it
	// (id -> value), in one read however many ids: listings show a column.
	Values(ctx context.Context, kind, name string, ids []string) (map[string]string, error)
	// Set replaces the whole profile.
	Set(ctx context.Context, kind, id string, values map[string]string) error

	// Attributes lists the administered attribute definitions of a
	// profile kind, by ordering hint then name.
	Attributes(ctx context.Context, kind string) ([]domain.Attribute, error)
	// AddAttribute defines a new attribute; domain already exists when
	// kind has one of that name.
	AddAttribute(ctx context.Context, kind string, a domain.Attribute) error
	// UpdateAttribute replaces the definition named a.Name; domain not
	// found when there is none.
	UpdateAttribute(ctx context.Context, kind string, a domain.Attribute) error
	// RemoveAttribute deletes the definition and every object's value of
	// it; domain not found when there is none.
	RemoveAttribute(ctx context.Context, kind, name string) error
}

// Sessions holds logins.
type Sessions interface {
	Create(ctx context.Context, s *domain.Session) error
	Get(ctx context.Context, id string) (*domain.Session, error)
	// GetByRefreshHash finds the session whose current or previous refresh
	// token hashes to h.
	GetByRefreshHash(ctx context.Context, h []byte) (*domain.Session, error)
	// RotateRefresh replaces the refresh hash when it still equals old:
	// of two concurrent refreshes with one token, exactly one succeeds, the
	// other gets domain aborted.
	RotateRefresh(ctx context.Context, id string, old, new []byte, at time.Time) error
	// Revoke marks the session revoked at at; revoking twice is no error.
	Revoke(ctx context.Context, id string, at time.Time) error
	// RevokeUser revokes every live session of uid and returns their ids.
	RevokeUser(ctx context.Context, uid string, at time.Time) ([]string, error)
	// ListRevokedSince lists sessions revoked at or after since that have not
	// expired by now: what a replica needs to refuse their tokens.
	ListRevokedSince(ctx context.Context, since, now time.Time) ([]*domain.Session, error)
	// DeleteExpired removes sessions that expired before the cutoff.
	DeleteExpired(ctx context.Context, before time.Time) (int, error)
}

// Purposes of one-time tokens.
const (
	PurposeConfirmEmail  = "confirm_email"
	PurposeResetPassword = "reset_password"
)

// OneTimeToken is a mailed secret: only its hash is stored.
type OneTimeToken struct {
	Hash      []byte
	Purpose   string
	UID       string
	Data      string // e.g. the address an e-mail change confirms
	CreatedAt time.Time
	ExpiresAt time.Time
}

// OneTimeTokens holds mailed single-use tokens.
type OneTimeTokens interface {
	Create(ctx context.Context, t *OneTimeToken) error
	// Consume deletes and returns the token with this hash and purpose. It
	// returns domain not-found when there is none (never issued, or used),
	// and failed-precondition when it expired (and deletes it). Of two
	// concurrent consumers exactly one gets the token.
	Consume(ctx context.Context, hash []byte, purpose string, now time.Time) (*OneTimeToken, error)
	// DeleteFor removes every token of uid with this purpose, so that a new
	// one supersedes them.
	DeleteFor(ctx context.Context, uid, purpose string) error
}

// LoginFailures counts failed logins per uid string (existing or not, so the
// back-off does not reveal which accounts exist) and per client: the key of
// the address the attempts came from (package clientaddr; "" for none).
//
// The service counts an attempt before it checks the password, reading the
// count and recording the attempt in one transaction, so that concurrent
// attempts cannot all pass the back-off before any of them is counted; a
// success resets the count.
type LoginFailures interface {
	// Get returns the failure count of uid from client and the time of the
	// last failure.
	Get(ctx context.Context, uid, client string) (count int, last time.Time, err error)
	// Record adds one failure of uid from client at at and returns the new
	// count.
	Record(ctx context.Context, uid, client string, at time.Time) (int, error)
	// Reset forgets uid's failures from client.
	Reset(ctx context.Context, uid, client string) error
	// ResetAll forgets uid's failures from every client.
	ResetAll(ctx context.Context, uid string) error
	// DeleteBefore forgets the counts whose last failure is before the
	// cutoff and returns how many.
	DeleteBefore(ctx context.Context, before time.Time) (int, error)
}

// SigningKey is a token-signing key pair. The private key is stored as
// given: the auth layer seals it when a key-encryption key is configured.
type SigningKey struct {
	ID         string // the JWT "kid"
	Algorithm  string // "EdDSA"
	PublicKey  []byte // raw public key
	PrivateKey []byte // sealed or plain, as auth encoded it
	CreatedAt  time.Time
	// NotAfter is when the key stops signing; it is published until every
	// token it signed has expired.
	NotAfter time.Time
}

// SigningKeys holds token-signing keys.
type SigningKeys interface {
	Create(ctx context.Context, k *SigningKey) error
	// List returns every key, newest first.
	List(ctx context.Context) ([]*SigningKey, error)
	Delete(ctx context.Context, id string) error
}

// AuditFilter selects audit events; zero fields match everything.
type AuditFilter struct {
	Actor     string
	Object    string
	Operation string
	Since     time.Time
	// Until, when set, keeps only events before it (a time range with
	// Since).
	Until time.Time
	// BeforeID pages backwards: only events with a smaller id.
	BeforeID int64
	Limit    int
}

// Audit is the append-only audit record.
type Audit interface {
	Append(ctx context.Context, e *domain.AuditEvent) error
	// List returns matching events, newest first.
	List(ctx context.Context, f AuditFilter) ([]*domain.AuditEvent, error)
}

// OutboxFilter selects mail; zero fields match everything.
type OutboxFilter struct {
	To string
	// Subject, when set, matches the subject exactly.
	Subject string
	// Since, when set, matches mail created at or after it.
	Since    time.Time
	BeforeID int64
	Limit    int
}

// Outbox is every mail Trellis sends, written in the transaction of the
// operation that sends it and delivered afterwards.
type Outbox interface {
	Append(ctx context.Context, m *domain.Mail) error
	// List returns matching mail, newest first.
	List(ctx context.Context, f OutboxFilter) ([]*domain.Mail, error)
	// Pending returns undelivered mail, oldest first.
	Pending(ctx context.Context, limit int) ([]*domain.Mail, error)
	// MarkSent records the delivery of mail id and forgets its sealed
	// secret; it empties the body too unless keepBody (see DropBodies).
	MarkSent(ctx context.Context, id int64, at time.Time, keepBody bool) error
	// DropBodies empties the body of mail delivered before sentBefore,
	// keeping the record that it was sent; it returns how many it emptied.
	DropBodies(ctx context.Context, sentBefore time.Time) (int, error)
	MarkFailed(ctx context.Context, id int64, errText string) error
}

// Change is one entry of the change feed: something of Kind with Key changed.
type Change struct {
	Seq  int64
	Kind string
	Key  string
	At   time.Time
}

// Change kinds.
const (
	ChangeUser    = "user"
	ChangeSession = "session"
	// ChangeProfileAttributes: the attribute definitions of the profile
	// kind named by the key changed.
	ChangeProfileAttributes = "profile_attributes"
)

// Changes is the change feed. Replicas read it to invalidate what they keep
// in memory. Sequence numbers are assigned in commit order: a reader that has
// seen Seq n has seen every change with a smaller Seq.
type Changes interface {
	// Append records a change; the sequence number is assigned at commit.
	Append(ctx context.Context, kind, key string) error
	// Since returns changes with Seq > after, in order, at most limit.
	Since(ctx context.Context, after int64, limit int) ([]Change, error)
	// Latest returns the highest committed Seq (0 when none).
	Latest(ctx context.Context) (int64, error)
	// Prune deletes changes recorded before the cutoff and returns how many.
	// A reader that falls further behind than that sees a gap and must
	// drop everything it keeps (see changefeed).
	Prune(ctx context.Context, before time.Time) (int, error)
}

// Leases make background work exclusive across replicas (the mail sender,
// reapers): a replica works only while it holds the work's lease, and renews
// it well before it expires. A replica that dies loses it at expiry.
type Leases interface {
	// Acquire takes or renews the named lease for holder until now+ttl. It
	// reports false, without error, while another holder's lease is live.
	Acquire(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error)
	// Release gives the lease up if holder has it.
	Release(ctx context.Context, name, holder string) error
}

// SSHKeys holds users' SSH public keys.
type SSHKeys interface {
	// Create registers a key. It returns domain already-exists naming the
	// field "public_key" when any user holds a key with this fingerprint.
	Create(ctx context.Context, k *domain.SSHKey) error
	// Get returns the key with this fingerprint, whoever holds it, or
	// domain not-found.
	Get(ctx context.Context, fingerprint string) (*domain.SSHKey, error)
	// List returns uid's keys, oldest first.
	List(ctx context.Context, uid string) ([]*domain.SSHKey, error)
	// Delete removes uid's key with this fingerprint; domain not-found when
	// uid holds no such key (another user's key included).
	Delete(ctx context.Context, uid, fingerprint string) error
}

// Authority names.
const (
	// AuthoritySSHUser signs SSH user certificates.
	AuthoritySSHUser = "ssh-user"
	// AuthorityX509 issues TLS server and client certificates.
	AuthorityX509 = "x509"
	// AuthorityX509Next is the X.509 root published ahead of the rotation
	// that will make it issue.
	AuthorityX509Next = "x509-next"
)

// Authority is a certificate authority's key pair. Unlike token-signing keys
// it does not rotate on a schedule: sites are configured to trust it, so it
// lives until an operator replaces it. The private key is stored as given:
// the auth layer seals it.
type Authority struct {
	Name       string // AuthoritySSHUser, …
	Algorithm  string // e.g. "ssh-ed25519"
	PublicKey  []byte // in the algorithm's own encoding (SSH wire format for SSH)
	PrivateKey []byte // sealed or plain, as auth encoded it
	// Chain ties the authority to the ones it replaced (for X.509: DER
	// certificates, one after the other); empty when it replaced none.
	Chain     []byte
	CreatedAt time.Time
}

// Authorities holds certificate authorities' keys, one per name.
type Authorities interface {
	// Create stores a new authority; domain already-exists when the name
	// is taken (another replica created it first).
	Create(ctx context.Context, a *Authority) error
	// Get returns the named authority, or domain not-found.
	Get(ctx context.Context, name string) (*Authority, error)
	// SetPrivateKey replaces the stored private key (sealing it once a
	// key-encryption key is configured); domain not-found without one.
	SetPrivateKey(ctx context.Context, name string, sealed []byte) error
	// Replace replaces the named authority whole (a rotation); domain
	// not-found when there is none.
	Replace(ctx context.Context, a *Authority) error
}

// HeadReader is implemented by a store that can read the change feed's
// head in one statement, outside a transaction: whatever committed before
// the call is visible to it, which is all the feed's barrier needs, at a
// third of the round trips of a read-only transaction.
type HeadReader interface {
	ReadChangeHead(ctx context.Context) (int64, error)
}

// LocalHead is implemented by a store that knows the change feed's head
// without asking the database: an embedded store that no other process may
// write (it holds an exclusive lock on its files). Readers of the feed use it
// to skip a round trip when nothing changed.
type LocalHead interface {
	// ChangeHead returns the highest committed change sequence number, and
	// false when the store cannot know it locally.
	ChangeHead() (seq int64, ok bool)
}

// Challenge is a login challenge: single use, bound to the uid it was issued
// for, valid until ExpiresAt. Its UID is the string the caller asked for, an
// account or not, so that challenges do not reveal which accounts exist.
type Challenge struct {
	ID        string
	UID       string
	Type      string // "clear", "scram-argon2id", …
	Data      string // the type's parameters as the service encoded them; no secret
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Challenges holds login challenges, and the server secrets they need.
type Challenges interface {
	// Create stores a challenge; domain already-exists for a taken id.
	Create(ctx context.Context, c *Challenge) error
	// Consume deletes and returns the challenge with this id, expired or
	// not (the caller judges expiry); domain not-found when there is none
	// (never issued, already used, or removed). Of two concurrent
	// consumers exactly one gets it.
	Consume(ctx context.Context, id string) (*Challenge, error)
	// Trim removes all but the keep newest challenges of uid (by
	// CreatedAt) and returns how many it removed.
	Trim(ctx context.Context, uid string, keep int) (int, error)
	// DeleteExpired removes challenges that expired before the cutoff.
	DeleteExpired(ctx context.Context, before time.Time) (int, error)
	// Secret returns the server secret with this name, storing candidate
	// first when there is none: every replica gets the same value,
	// whichever stored it.
	Secret(ctx context.Context, name string, candidate []byte) ([]byte, error)
}

// ChangeAPIToken is the change kind of an API token, keyed by its id.
const ChangeAPIToken = "api_token"

// APITokens holds API tokens.
type APITokens interface {
	// Create stores a token; domain already-exists naming the field "name"
	// when uid holds a token of that name (revoked or expired included),
	// domain not-found when there is no such user.
	Create(ctx context.Context, t *domain.APIToken) error
	// Get returns the token with this id, or domain not-found.
	Get(ctx context.Context, id string) (*domain.APIToken, error)
	// GetByName returns uid's token of that name, or domain not-found.
	GetByName(ctx context.Context, uid, name string) (*domain.APIToken, error)
	// List returns uid's tokens, oldest first.
	List(ctx context.Context, uid string) ([]*domain.APIToken, error)
	// Revoke marks uid's token of that name revoked at now (a token revoked
	// already keeps its first time) and returns it; domain not-found when
	// uid holds no such token.
	Revoke(ctx context.Context, uid, name string, now time.Time) (*domain.APIToken, error)
	// Touch records a use at now, unless a later use is recorded already.
	// A missing token is no error.
	Touch(ctx context.Context, id string, now time.Time) error
}

// ChangeService is the change kind of a registered service, keyed by its
// name.
const ChangeService = "service"

// States of a registered service.
const (
	ServiceActive   = "active"
	ServiceDisabled = "disabled"
)

// Service is another testbed service registered to act for users. It proves
// itself with a signature of its Ed25519 key (PublicKey) or with a client
// secret, of which only the hash is kept (SecretHash); exactly one is set.
type Service struct {
	Name       string
	PublicKey  []byte // 32 bytes, or nil
	SecretHash []byte // SHA-256 of the client secret, or nil
	State      string // ServiceActive or ServiceDisabled
	CreatedAt  time.Time
}

// Services holds registered services.
type Services interface {
	// Create stores a service; domain already-exists naming the field
	// "name" when the name is taken.
	Create(ctx context.Context, s *Service) error
	// Get returns the service of that name, or domain not-found.
	Get(ctx context.Context, name string) (*Service, error)
	// List returns every service, by name.
	List(ctx context.Context) ([]*Service, error)
	// SetState sets a service's state and returns it; domain not-found when
	// there is no such service.
	SetState(ctx context.Context, name, state string) (*Service, error)
	// Delete removes a service; domain not-found when there is none.
	Delete(ctx context.Context, name string) error
	// UseAssertion records that a service's assertion with this jti was
	// used, until expires; domain already-exists when it was used before
	// (a replay). Of two concurrent uses exactly one succeeds.
	UseAssertion(ctx context.Context, service, jti string, expires time.Time) error
	// DeleteExpiredAssertions forgets used assertions that expired before
	// the cutoff and returns how many.
	DeleteExpiredAssertions(ctx context.Context, before time.Time) (int, error)
}

// ChangeCertBinding is the change kind of a client certificate's binding,
// keyed by the certificate's fingerprint.
const ChangeCertBinding = "cert_binding"

// CertBinding binds an X.509 client certificate, named by the SHA-256
// fingerprint of its DER (lowercase hex), to the login session it
// authenticates as, until ExpiresAt or until the session ends.
type CertBinding struct {
	Fingerprint string
	SessionID   string
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// CertBindings holds client certificates' bindings to sessions.
type CertBindings interface {
	// Bind binds a certificate to a session, replacing an earlier binding
	// of the same certificate (a later login made with it); domain
	// not-found when there is no such session.
	Bind(ctx context.Context, b *CertBinding) error
	// Get returns the binding of a certificate, or domain not-found.
	Get(ctx context.Context, fingerprint string) (*CertBinding, error)
}
