package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/trellis-testbed/trellis/internal/provider/usersig"
	"github.com/trellis-testbed/trellis/verify"
)

// purposeDeliver is the purpose of the centre's tokens for deliveries
// (service.PurposeDeliver).
const purposeDeliver = "deliver"

// deliveryMemory is how long the site remembers a delivery it did: far
// longer than the centre retries one whose acknowledgement was lost.
const deliveryMemory = 30 * 24 * time.Hour

// Delivery is a piece of work the centre queued for this site (the body
// of POST /deliveries; service.DeliveryEnvelope at the centre).
type Delivery struct {
	ID        string          `json:"id"`
	Kind      string          `json:"kind"`
	CreatedAt time.Time       `json:"created_at"`
	Payload   json.RawMessage `json:"payload"`
}

// DeliveryHandler does one kind of delivery. It returns once the work is
// done or, for long work, accepted and recorded so that a restart resumes
// it: the site then acknowledges the delivery and will not do it again. An
// error made with refused and a 4xx status makes the centre give the
// delivery up; any other error makes it try again later.
type DeliveryHandler func(ctx context.Context, d *Delivery) (detail string, err error)

// inbox is POST /deliveries: it checks the centre's token offline
// (purpose deliver, audience this site), does each delivery once by its
// id, dispatches it by kind and audits every decision.
type inbox struct {
	verifier interface {
		Verify(ctx context.Context, raw string) (*verify.Claims, error)
	}
	state *state
	audit *auditLog

	mu       sync.Mutex // one delivery at a time: check, do, record
	handlers map[string]DeliveryHandler
}

func newInbox(v *verify.Verifier, st *state, aud *auditLog) *inbox {
	return &inbox{verifier: v, state: st, audit: aud, handlers: map[string]DeliveryHandler{}}
}

// handle registers the handler of a kind.
func (in *inbox) handle(kind string, h DeliveryHandler) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.handlers[kind] = h
}

func (in *inbox) fail(w http.ResponseWriter, r *http.Request, e auditEntry, err error) {
	status := http.StatusInternalServerError
	var he *httpError
	if errors.As(err, &he) {
		status = he.status
	}
	e.Op, e.Outcome, e.Reason, e.Remote = "delivery", "refused", err.Error(), r.RemoteAddr
	if status >= 500 {
		e.Outcome = "failed"
	}
	in.audit.write(e)
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

func (in *inbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, ok := bearer(r)
	if !ok {
		in.fail(w, r, auditEntry{}, refused(http.StatusUnauthorized, "no centre token (Authorization: Bearer)"))
		return
	}
	c, err := in.verifier.Verify(r.Context(), raw)
	switch {
	case err != nil:
		in.fail(w, r, auditEntry{}, refused(http.StatusUnauthorized, "centre token refused: %v", err))
		return
	case c.Purpose != purposeDeliver:
		in.fail(w, r, auditEntry{}, refused(http.StatusUnauthorized, "centre token refused: its purpose is %q, not %q", c.Purpose, purposeDeliver))
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		in.fail(w, r, auditEntry{}, refused(http.StatusBadRequest, "body: %v", err))
		return
	}
	var d Delivery
	if err := json.Unmarshal(body, &d); err != nil || d.ID == "" || d.Kind == "" || len(d.ID) > 64 {
		in.fail(w, r, auditEntry{}, refused(http.StatusBadRequest, "body: a delivery has an id (at most 64 characters), a kind and a payload"))
		return
	}
	e := auditEntry{Detail: fmt.Sprintf("delivery %s (%s)", d.ID, d.Kind)}
	if !strings.HasPrefix(c.ID, d.ID+".") {
		// The centre signs a token per delivery, naming it in its jti.
		in.fail(w, r, e, refused(http.StatusUnauthorized, "centre token refused: it was not issued for delivery %s", d.ID))
		return
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.state.deliveryDone(d.ID) {
		// The centre did not hear our answer: say it again, do nothing.
		e.Op, e.Outcome, e.Remote, e.Detail = "delivery", "ok", r.RemoteAddr, e.Detail+": done already"
		in.audit.write(e)
		writeJSON(w, http.StatusOK, map[string]string{"status": "done already"})
		return
	}
	h, ok := in.handlers[d.Kind]
	if !ok {
		in.fail(w, r, e, refused(http.StatusUnprocessableEntity, "this site does not do %q deliveries", d.Kind))
		return
	}
	detail, err := h(r.Context(), &d)
	if detail != "" {
		e.Detail += ": " + detail
	}
	if err != nil {
		in.fail(w, r, e, err)
		return
	}
	if err := in.state.recordDelivery(d.ID, time.Now()); err != nil {
		in.fail(w, r, e, err)
		return
	}
	e.Op, e.Outcome, e.Remote = "delivery", "ok", r.RemoteAddr
	in.audit.write(e)
	writeJSON(w, http.StatusOK, map[string]string{"status": "done"})
}

// disconnectPayload is a disconnect delivery's (service.DisconnectPayload).
type disconnectPayload struct {
	UID                string `json:"uid"`
	UserKeyFingerprint string `json:"user_key_fingerprint"`
}

// disconnectHandler removes a mapping the centre removed, if it is still
// the one made with that user key: a user who connected again since keeps
// the new mapping.
func disconnectHandler(st *state) DeliveryHandler {
	return func(_ context.Context, d *Delivery) (string, error) {
		var p disconnectPayload
		if err := json.Unmarshal(d.Payload, &p); err != nil || p.UID == "" {
			return "", refused(http.StatusBadRequest, "disconnect payload: a uid is required")
		}
		removed, err := st.deleteMappingIf(p.UID, func(m *Mapping) bool {
			return p.UserKeyFingerprint == "" || usersig.Fingerprint(m.UserKey) == p.UserKeyFingerprint
		})
		switch {
		case err != nil:
			return "", err
		case removed:
			return "user " + p.UID + " disconnected", nil
		}
		return "user " + p.UID + " had no such mapping", nil
	}
}

// deliveryDone reports whether the delivery of this id was done here.
func (s *state) deliveryDone(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.data.Deliveries[id]
	return ok
}

// recordDelivery records a delivery done, forgetting those done long ago.
func (s *state) recordDelivery(id string, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, at := range s.data.Deliveries {
		if now.Sub(at) > deliveryMemory {
			delete(s.data.Deliveries, k)
		}
	}
	s.data.Deliveries[id] = now.UTC()
	return s.saveLocked()
}

// deleteMappingIf removes uid's mapping when match says so.
func (s *state) deleteMappingIf(uid string, match func(*Mapping) bool) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.data.Mappings[uid]
	if !ok || !match(m) {
		return false, nil
	}
	delete(s.data.Mappings, uid)
	return true, s.saveLocked()
}
