// Package storetest is the conformance suite of store.Store: every
// implementation runs it, so that all of them behave the same, errors,
// transactions and concurrency guarantees included.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { … })
//	}
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

// Run runs the suite. open must return a fresh, empty store and close it
// when t ends; Run migrates it (Migrate is idempotent, so an already
// migrated store is fine too). Each subtest gets its own store.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					s := open(t)
					if err := s.Migrate(ctxFor(t)); err != nil {
						t.Fatalf("Migrate: %v", err)
					}
					tc.fn(t, s)
				})
			}
		})
	}
}

type test struct {
	name string
	fn   func(t *testing.T, s store.Store)
}

type group struct {
	name  string
	tests []test
}

var groups = []group{
	{"Tx", txTests},
	{"Users", userTests},
	{"Profiles", profileTests},
	{"ProfileAttributes", attributeTests},
	{"Sessions", sessionTests},
	{"OneTimeTokens", tokenTests},
	{"LoginFailures", loginFailureTests},
	{"SigningKeys", signingKeyTests},
	{"Audit", auditTests},
	{"Outbox", outboxTests},
	{"OutboxSecret", outboxSecretTests},
	{"Health", healthTests},
	{"Changes", changeTests},
	{"Leases", leaseTests},
	{"Projects", projectTests},
	{"Circles", circleTests},
	{"Requests", requestTests},
	{"Notifications", notificationTests},
	{"SSHKeys", sshKeyTests},
	{"Authorities", authorityTests},
	{"Experiments", experimentTests},
	{"Libraries", libraryTests},
	{"Grants", grantTests},
	{"Resources", resourceTests},
	{"Realizations", realizationTests},
	{"Challenges", challengeTests},
	{"APITokens", apiTokenTests},
	{"Services", serviceTests},
	{"CertBindings", certBindingTests},
	{"OIDC", oidcTests},
	{"Federation", federationTests},
	{"Providers", providerTests},
	{"Deliveries", deliveryTests},
	{"Materializations", materializationTests},
	{"ChangePruning", pruneTests},
	{"ChangeHead", headTests},
	{"Concurrency", concurrencyTests},
}

// testTimeout bounds every subtest: a store that hangs (a lock never
// released) fails fast instead of stalling the run.
const testTimeout = 30 * time.Second

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// t0 is a fixed time with microsecond precision, what stores keep.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

// update runs fn in an Update and fails the test on error.
func update(t *testing.T, s store.Store, fn func(ctx context.Context, tx store.Tx) error) {
	t.Helper()
	ctx := ctxFor(t)
	if err := s.Update(ctx, func(tx store.Tx) error { return fn(ctx, tx) }); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

// view runs fn in a View and fails the test on error.
func view(t *testing.T, s store.Store, fn func(ctx context.Context, tx store.Tx) error) {
	t.Helper()
	ctx := ctxFor(t)
	if err := s.View(ctx, func(tx store.Tx) error { return fn(ctx, tx) }); err != nil {
		t.Fatalf("View: %v", err)
	}
}

// tryUpdate runs fn in an Update and returns its error.
func tryUpdate(t *testing.T, s store.Store, fn func(ctx context.Context, tx store.Tx) error) error {
	ctx := ctxFor(t)
	return s.Update(ctx, func(tx store.Tx) error { return fn(ctx, tx) })
}

// tryView runs fn in a View and returns its error.
func tryView(t *testing.T, s store.Store, fn func(ctx context.Context, tx store.Tx) error) error {
	ctx := ctxFor(t)
	return s.View(ctx, func(tx store.Tx) error { return fn(ctx, tx) })
}

// wantCode checks that err carries code and that its message holds every
// one of words.
func wantCode(t *testing.T, err error, code domain.Code, words ...string) {
	t.Helper()
	if got := domain.CodeOf(err); got != code {
		t.Fatalf("error %v: code %v, want %v", err, got, code)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

// wantNoSecret checks that err's message does not hold secret.
func wantNoSecret(t *testing.T, err error, secret string) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), secret) {
		t.Errorf("error %q reveals a secret", err)
	}
}

func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func newUser(uid string) *domain.User {
	return &domain.User{
		UID:       uid,
		Email:     uid + "@example.org",
		State:     domain.UserActive,
		CreatedAt: t0,
		UpdatedAt: t0,
	}
}

func createUsers(t *testing.T, s store.Store, uids ...string) {
	t.Helper()
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, uid := range uids {
			if err := tx.Users().Create(ctx, newUser(uid), "hash-"+uid); err != nil {
				return err
			}
		}
		return nil
	})
}

// errSentinel is what a test's fn returns to force a rollback.
var errSentinel = errors.New("storetest: roll back")

func fmtList[T any](xs []T, f func(T) string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = f(x)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func uids(us []*domain.User) string {
	return fmtList(us, func(u *domain.User) string { return u.UID })
}

func auditIDs(es []*domain.AuditEvent) string {
	return fmtList(es, func(e *domain.AuditEvent) string { return fmt.Sprint(e.ID) })
}

func mailIDs(ms []*domain.Mail) string {
	return fmtList(ms, func(m *domain.Mail) string { return fmt.Sprint(m.ID) })
}
