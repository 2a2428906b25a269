package service

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/policy"
	"github.com/trellis-testbed/trellis/internal/store"
)

// Deliveries: work for a site is written to the store in the transaction
// of the operation that causes it, and a dispatcher posts it to the site
// (POST URL/deliveries) with a short-lived token the centre signs then,
// in order per site, retrying with back-off while the site is down, until
// the site acknowledges it. The site does each delivery once, by its id.

const (
	// DeliveryTokenTTL is the life of the token a delivery is posted with.
	DeliveryTokenTTL = 2 * time.Minute
	// deliveryClaim is how long a dispatcher holds a delivery it posts; a
	// dispatcher that dies lets another replica take it after this.
	deliveryClaim = time.Minute
	// deliveryTimeout bounds one post to a site.
	deliveryTimeout = 30 * time.Second
	// maxErrorText bounds what a site's refusal leaves in the record.
	maxErrorText = 500
)

var opDispatch = "trellis.deliveries/Dispatch"

// deliverySubject is the subject of a delivery's token: the centre itself,
// not a user (a site never maps it; purpose deliver says what it is for).
const deliverySubject = "centre"

// DeliveryEnvelope is the body of POST /deliveries at a site.
type DeliveryEnvelope struct {
	ID        string          `json:"id"`
	Kind      string          `json:"kind"`
	CreatedAt time.Time       `json:"created_at"`
	Payload   json.RawMessage `json:"payload"`
}

// DisconnectPayload is a disconnect delivery's: the site removes the
// user's mapping if it is still the one with this key (a connection made
// again since is not the one removed).
type DisconnectPayload struct {
	UID                string `json:"uid"`
	UserKeyFingerprint string `json:"user_key_fingerprint"`
}

// enqueueDelivery writes a delivery for a site in tx. key makes it
// idempotent: a delivery with the same key for the site is this one.
func (s *base) enqueueDelivery(ctx context.Context, tx store.Tx, provider, kind, key string, payload any) error {
	b, err := json.Marshal(payload)
	if err != nil {
		return domain.Internal(err, "encoding a delivery failed")
	}
	now := s.now()
	d := &domain.Delivery{ID: "d-" + newID(), Provider: provider, Kind: kind, Key: key, Payload: b, CreatedAt: now, NextAttempt: now}
	err = tx.Deliveries().Enqueue(ctx, d)
	if domain.HasCode(err, domain.CodeAlreadyExists) {
		return nil
	}
	if err != nil {
		return err
	}
	// Heard through the change feed once committed: dispatch at once
	// rather than at the next round.
	return tx.Changes().Append(ctx, store.ChangeDelivery, provider)
}

// wakeDispatcher says that deliveries were queued (on any replica).
func (s *base) wakeDispatcher(string) {
	select {
	case s.deliveriesQueued <- struct{}{}:
	default: // already due to dispatch
	}
}

// DeliveriesQueued receives when deliveries were queued, after they
// committed: the server dispatches then, besides every DeliveryInterval.
func (s *Service) DeliveriesQueued() <-chan struct{} { return s.deliveriesQueued }

// ListDeliveries lists the deliveries the centre holds for sites (one
// site's when provider is set), oldest first; delivered and failed ones
// only when asked.
func (s *Sites) ListDeliveries(ctx context.Context, p *auth.Principal, provider string, includeDone bool, pageSize int32, pageToken string) ([]*domain.Delivery, string, error) {
	if err := s.authorize(ctx, p, opProvidersListDeliveries, policy.None); err != nil {
		return nil, "", err
	}
	if provider != "" {
		if err := domain.ValidateProviderName("provider", provider); err != nil {
			return nil, "", err
		}
	}
	pg, err := idPage(pageSize, pageToken)
	if err != nil {
		return nil, "", err
	}
	var out []*domain.Delivery
	var next string
	err = s.view(ctx, func(tx store.Tx) error {
		var err error
		out, next, err = readPage(pg, func(after int64, n int) ([]*domain.Delivery, error) {
			return tx.Deliveries().List(ctx, store.DeliveryFilter{Provider: provider, IncludeDone: includeDone, AfterSeq: after, Limit: n})
		}, func(d *domain.Delivery) int64 { return d.Seq }, nil)
		return err
	})
	return out, next, err
}

// backoff is the wait before attempt+1 of a delivery: doubling from the
// base, capped.
func (s *Sites) backoff(attempts int) time.Duration {
	d := s.cfg.DeliveryBackoffBase
	for i := 1; i < attempts && d < s.cfg.DeliveryBackoffMax; i++ {
		d *= 2
	}
	return min(d, s.cfg.DeliveryBackoffMax)
}

// dispatch posts every site's due deliveries, each site's in order, sites
// in parallel, and returns how many were delivered. A site that does not
// answer keeps its deliveries (retried after a back-off); one that refuses
// a delivery (4xx) fails that delivery and goes on with the next.
// Replicas may run it at once: each delivery is claimed before it is sent.
func (s *Sites) dispatch(ctx context.Context) (int, error) {
	heads, err := viewOf(ctx, s.base, func(tx store.Tx) ([]*domain.Delivery, error) { return tx.Deliveries().Heads(ctx, store.MaxLimit) })
	if err != nil {
		return 0, err
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, len(heads))
	for _, d := range heads {
		wg.Go(func() {
			k, err := s.dispatchSite(ctx, d)
			n.Add(int64(k))
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	return int(n.Load()), <-errs
}

// dispatchSite sends d, the oldest pending delivery of its site, and the
// ones after it while the site takes them.
func (s *Sites) dispatchSite(ctx context.Context, d *domain.Delivery) (int, error) {
	delivered := 0
	for d != nil && ctx.Err() == nil {
		pr, err := viewOf(ctx, s.base, func(tx store.Tx) (*domain.Provider, error) { return tx.Providers().Get(ctx, d.Provider) })
		switch {
		case domain.HasCode(err, domain.CodeNotFound):
			// Removed meanwhile (RemoveProvider fails what it holds).
			if err := s.finish(ctx, d, func(tx store.Tx) error {
				return tx.Deliveries().Fail(ctx, d.ID, s.now(), "provider removed")
			}); err != nil {
				return delivered, err
			}
		case err != nil:
			return delivered, err
		case pr.State != domain.ProviderActive || pr.PublicKey == nil:
			// Kept until the site is enabled (or registers).
			return delivered, nil
		default:
			now := s.now()
			if d.NextAttempt.After(now) {
				return delivered, nil
			}
			var won bool
			if err := s.st.Update(ctx, func(tx store.Tx) (err error) {
				won, err = tx.Deliveries().Claim(ctx, d.ID, now, now.Add(deliveryClaim))
				return err
			}); err != nil || !won {
				return delivered, err
			}
			d.Attempts++
			ok, permanent, why := s.post(ctx, pr, d)
			switch {
			case ok:
				err = s.finish(ctx, d, func(tx store.Tx) error { return tx.Deliveries().Delivered(ctx, d.ID, s.now()) })
				delivered++
			case permanent:
				s.log.WarnContext(ctx, "a site refused a delivery", "provider", d.Provider, "delivery", d.ID, "kind", d.Kind, "err", why)
				err = s.finish(ctx, d, func(tx store.Tx) error {
					if err := tx.Deliveries().Fail(ctx, d.ID, s.now(), why); err != nil {
						return err
					}
					return s.deliveryRefused(ctx, tx, d, why)
				})
			default:
				s.log.InfoContext(ctx, "a site did not take a delivery; retrying later", "provider", d.Provider, "delivery", d.ID, "attempts", d.Attempts, "err", why)
				err = s.st.Update(ctx, func(tx store.Tx) error {
					return tx.Deliveries().Retry(ctx, d.ID, s.now().Add(s.backoff(d.Attempts)), why)
				})
				return delivered, err
			}
			if err != nil {
				return delivered, err
			}
		}
		// The next of this site's, if any.
		next, err := viewOf(ctx, s.base, func(tx store.Tx) ([]*domain.Delivery, error) {
			return tx.Deliveries().List(ctx, store.DeliveryFilter{Provider: d.Provider, Limit: 1})
		})
		if err != nil {
			return delivered, err
		}
		d = nil
		if len(next) > 0 {
			d = next[0]
		}
	}
	return delivered, nil
}

// finish ends a delivery with its audit record.
func (s *Sites) finish(ctx context.Context, d *domain.Delivery, fn func(tx store.Tx) error) error {
	err := s.update(ctx, &record{op: opDispatch, object: providerObject(d.Provider), detail: fmt.Sprintf("delivery %s (%s)", d.ID, d.Kind)}, fn)
	if domain.HasCode(err, domain.CodeFailedPrecondition) {
		return nil // done by another replica meanwhile
	}
	return err
}

// post sends d to its site. ok: the site took it; permanent: the site
// refused it for good (a 4xx other than 401, 408 and 429: a site that cannot check the token yet may later); why says what
// happened otherwise.
func (s *Sites) post(ctx context.Context, pr *domain.Provider, d *domain.Delivery) (ok, permanent bool, why string) {
	// The token's jti names the delivery: the site takes a token for this
	// delivery only, so a token seen in passing carries no other work.
	t, err := s.siteToken(pr, deliverySubject, PurposeDeliver, d.ID+"."+newID(), s.now(), DeliveryTokenTTL)
	if err != nil {
		return false, false, err.Error()
	}
	body, _ := json.Marshal(DeliveryEnvelope{ID: d.ID, Kind: d.Kind, CreatedAt: d.CreatedAt, Payload: d.Payload})
	ctx, cancel := context.WithTimeout(ctx, deliveryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, pr.URL+"/deliveries", bytes.NewReader(body))
	if err != nil {
		return false, true, "the site's URL: " + err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+t.Token)
	resp, err := s.siteHTTP.Do(req)
	if err != nil {
		return false, false, err.Error()
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorText))
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return true, false, ""
	case code >= 400 && code < 500 && code != http.StatusUnauthorized && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests:
		return false, true, fmt.Sprintf("the site answered %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	default:
		return false, false, fmt.Sprintf("the site answered %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
}

// DispatchDeliveries posts the deliveries that are due to their sites
// (the server's background work; tests call it to dispatch now).
func (s *Service) DispatchDeliveries(ctx context.Context) (int, error) {
	return s.Sites.dispatch(ctx)
}
