// Package requestid carries the id of the API request being served, so logs
// and audit records of one request can be found together.
package requestid

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"log/slog"
	"regexp"
)

type ctxKey struct{}

// With returns ctx carrying id.
func With(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// From returns the request id in ctx, or "".
func From(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

var enc = base32.StdEncoding.WithPadding(base32.NoPadding)

// New returns a fresh random id.
func New() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return enc.EncodeToString(b[:])
}

var acceptable = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Accept returns a caller-supplied id when it is safe to log, else a new one.
func Accept(supplied string) string {
	if acceptable.MatchString(supplied) {
		return supplied
	}
	return New()
}

// LogHandler adds the request id of the record's context to every log
// record, so one request's lines can be found together.
type LogHandler struct{ slog.Handler }

// Handle adds request_id when the context has one.
func (h LogHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := From(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs keeps the wrapper around the derived handler.
func (h LogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return LogHandler{h.Handler.WithAttrs(attrs)}
}

// WithGroup keeps the wrapper around the derived handler.
func (h LogHandler) WithGroup(name string) slog.Handler {
	return LogHandler{h.Handler.WithGroup(name)}
}
