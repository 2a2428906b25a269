package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/trellis-testbed/trellis/internal/store"
)

// tx is one transaction; its parts are views of it.
type tx struct {
	f  *flavor
	tx *sql.Tx
	// lastSeq is the change sequence number this transaction appended last.
	lastSeq int64
}

func (t *tx) Users() store.Users                       { return users{t} }
func (t *tx) Profiles() store.Profiles                 { return profiles{t} }
func (t *tx) Sessions() store.Sessions                 { return sessions{t} }
func (t *tx) OneTimeTokens() store.OneTimeTokens       { return tokens{t} }
func (t *tx) LoginFailures() store.LoginFailures       { return loginFailures{t} }
func (t *tx) SigningKeys() store.SigningKeys           { return signingKeys{t} }
func (t *tx) Audit() store.Audit                       { return audit{t} }
func (t *tx) Outbox() store.Outbox                     { return outbox{t} }
func (t *tx) Changes() store.Changes                   { return changes{t} }
func (t *tx) Leases() store.Leases                     { return leases{t} }
func (t *tx) SSHKeys() store.SSHKeys                   { return sshKeys{t} }
func (t *tx) Authorities() store.Authorities           { return authorities{t} }
func (t *tx) Projects() store.Projects                 { return projects{t} }
func (t *tx) Circles() store.Circles                   { return circles{t} }
func (t *tx) Requests() store.Requests                 { return requests{t} }
func (t *tx) Notifications() store.Notifications       { return notifications{t} }
func (t *tx) Experiments() store.Experiments           { return experiments{t} }
func (t *tx) Libraries() store.Libraries               { return libraries{t} }
func (t *tx) Grants() store.Grants                     { return grants{t} }
func (t *tx) Resources() store.Resources               { return resources{t} }
func (t *tx) Realizations() store.Realizations         { return realizations{t} }
func (t *tx) Challenges() store.Challenges             { return challenges{t} }
func (t *tx) APITokens() store.APITokens               { return apiTokens{t} }
func (t *tx) Services() store.Services                 { return services{t} }
func (t *tx) CertBindings() store.CertBindings         { return certBindings{t} }
func (t *tx) OIDC() store.OIDC                         { return oidc{t} }
func (t *tx) Federation() store.Federation             { return federation{t} }
func (t *tx) Providers() store.Providers               { return providers{t} }
func (t *tx) Deliveries() store.Deliveries             { return deliveries{t} }
func (t *tx) Materializations() store.Materializations { return materializations{t} }

func (t *tx) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, t.f.rebind(q), args...)
}

func (t *tx) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, t.f.rebind(q), args...)
}

func (t *tx) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, t.f.rebind(q), args...)
}

// execAffected runs a statement and returns how many rows it touched.
func (t *tx) execAffected(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := t.exec(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// execOne runs a statement meant to touch one row (a delete or an update
// by key) and answers missing when it touched none; what names the
// statement in a failure.
func (t *tx) execOne(ctx context.Context, what string, missing error, q string, args ...any) error {
	n, err := t.execAffected(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("sqlstore: %s: %w", what, err)
	}
	if n == 0 {
		return missing
	}
	return nil
}

// guard runs fn, a statement that may fail with a constraint violation the
// caller turns into a domain error. On PostgreSQL any failed statement
// aborts the whole transaction; a savepoint undoes just the statement, so
// the caller may go on after an already-exists error, as on SQLite.
func (t *tx) guard(ctx context.Context, fn func() error) error {
	if !t.f.savepoints {
		return fn()
	}
	if _, err := t.tx.ExecContext(ctx, "SAVEPOINT sqlstore_guard"); err != nil {
		return err
	}
	err := fn()
	if err != nil {
		if _, ok := t.f.unique(err); !ok && !t.f.foreignKey(err) {
			// Anything else (a serialization failure, a lost connection)
			// leaves the transaction aborted: it must not commit.
			return err
		}
		if _, rerr := t.tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT sqlstore_guard"); rerr != nil {
			return fmt.Errorf("%w (and rolling back to the savepoint: %v)", err, rerr)
		}
	}
	if _, rerr := t.tx.ExecContext(ctx, "RELEASE SAVEPOINT sqlstore_guard"); rerr != nil && err == nil {
		return rerr
	}
	return err
}

// micros stores a time as microseconds since the epoch, the zero time as 0.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// fromMicros is the inverse of micros, in UTC.
func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

// nullBytes stores an empty byte slice as NULL, so that "no hash" never
// matches another "no hash".
func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// Listing limits: a listing without a limit gets a page of defaultLimit, and
// no page is larger than maxLimit (the store package's promise).
const (
	defaultLimit = store.DefaultLimit
	maxLimit     = store.MaxLimit
)

func pageLimit(n int) int {
	switch {
	case n <= 0:
		return defaultLimit
	case n > maxLimit:
		return maxLimit
	}
	return n
}
