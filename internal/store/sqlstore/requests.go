package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
)

type requests struct{ *tx }

const requestColumns = "id, kind, object, subject, requester, rights, message, created_at, expires_at"

// Listings of requests are oldest first: the order they were asked in.
const requestOrder = " ORDER BY created_at, id"

func scanRequest(row scanner) (*domain.PendingRequest, error) {
	var r domain.PendingRequest
	var kind, rights string
	var created, expires int64
	if err := row.Scan(&r.ID, &kind, &r.Object, &r.Subject, &r.Requester, &rights, &r.Message,
		&created, &expires); err != nil {
		return nil, err
	}
	r.Kind, r.Rights = domain.RequestKind(kind), domain.DecodeRights(rights)
	r.CreatedAt, r.ExpiresAt = fromMicros(created), fromMicros(expires)
	return &r, nil
}

func (s requests) Create(ctx context.Context, r *domain.PendingRequest) error {
	err := s.guard(ctx, func() error {
		_, err := s.exec(ctx, "INSERT INTO requests ("+requestColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
			r.ID, string(r.Kind), r.Object, r.Subject, r.Requester, r.Rights.Encode(), r.Message,
			micros(r.CreatedAt), micros(r.ExpiresAt))
		return err
	})
	switch _, dup := s.f.duplicate(err); {
	case err == nil:
		return nil
	case dup: // the id is the only unique key
		return domain.AlreadyExists("request %q already exists", r.ID)
	case s.f.foreignKey(err):
		if merr := s.firstMissing(ctx, userRow(r.Subject), userRow(r.Requester)); merr != nil {
			return merr
		}
	}
	return fmt.Errorf("sqlstore: create request: %w", err)
}

// Get returns the request even when it has expired, so that the caller can
// say so rather than "not found".
func (s requests) Get(ctx context.Context, id string) (*domain.PendingRequest, error) {
	r, err := scanRequest(s.queryRow(ctx, "SELECT "+requestColumns+" FROM requests WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.NotFound("request %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get request: %w", err)
	}
	return r, nil
}

func (s requests) Find(ctx context.Context, kind domain.RequestKind, object, subject string, now time.Time) (*domain.PendingRequest, error) {
	// The service refuses a second live request, so there is at most one;
	// should there be more, the oldest is the one to answer.
	r, err := scanRequest(s.queryRow(ctx, "SELECT "+requestColumns+
		" FROM requests WHERE object = ? AND kind = ? AND subject = ? AND expires_at > ?"+requestOrder+" LIMIT 1",
		object, string(kind), subject, micros(now)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domain.NotFound("no pending %s request for %s on %s", kind, subject, object)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: find request: %w", err)
	}
	return r, nil
}

// Delete reports not-found when no row went: of two concurrent deleters the
// second either waits for the first and deletes nothing (SQLite's one
// writer) or fails to serialize and, run again, deletes nothing
// (PostgreSQL), so exactly one succeeds.
func (s requests) Delete(ctx context.Context, id string) error {
	return s.execOne(ctx, "delete request", domain.NotFound("request %q not found", id), "DELETE FROM requests WHERE id = ?", id)
}

func (s requests) ListByObjects(ctx context.Context, objects []string, now time.Time) ([]*domain.PendingRequest, error) {
	if len(objects) == 0 {
		return nil, nil
	}
	var w where
	addIn(&w, "object", objects)
	w.add("expires_at > ?", micros(now))
	return s.list(ctx, "list requests by object", w)
}

func (s requests) ListByUser(ctx context.Context, uid string, now time.Time) ([]*domain.PendingRequest, error) {
	var w where
	w.conds = append(w.conds, "(subject = ? OR requester = ?)")
	w.args = append(w.args, uid, uid)
	w.add("expires_at > ?", micros(now))
	return s.list(ctx, "list requests by user", w)
}

func (s requests) ListByKind(ctx context.Context, kind domain.RequestKind, now time.Time) ([]*domain.PendingRequest, error) {
	var w where
	w.add("kind = ?", string(kind))
	w.add("expires_at > ?", micros(now))
	return s.list(ctx, "list requests by kind", w)
}

func (s requests) list(ctx context.Context, what string, w where) ([]*domain.PendingRequest, error) {
	out, err := collect(ctx, s.tx, scanRequest, "SELECT "+requestColumns+" FROM requests"+w.String()+requestOrder, w.args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: %s: %w", what, err)
	}
	return out, nil
}

func (s requests) DeleteByObject(ctx context.Context, object string) error {
	if _, err := s.exec(ctx, "DELETE FROM requests WHERE object = ?", object); err != nil {
		return fmt.Errorf("sqlstore: delete requests about %s: %w", object, err)
	}
	return nil
}

// DeleteExpired removes what is no longer live: expires_at <= now.
func (s requests) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	n, err := s.execAffected(ctx, "DELETE FROM requests WHERE expires_at <= ?", micros(now))
	if err != nil {
		return 0, fmt.Errorf("sqlstore: delete expired requests: %w", err)
	}
	return int(n), nil
}
