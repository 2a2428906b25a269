package provider

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/app"
	"github.com/trellis-testbed/trellis/internal/app/apptest"
	"github.com/trellis-testbed/trellis/internal/auth/token"
	"github.com/trellis-testbed/trellis/internal/provider/usersig"
	"github.com/trellis-testbed/trellis/internal/store/pgtest"
)

// connectUser connects uid to the test site as the real flow does: the
// centre issues a ticket, the site reports the mapping signed with its key
// and keeps it.
func (ts *testSite) connectUser(uid string) {
	ts.t.Helper()
	ctx := context.Background()
	tok := ts.centre.AdminToken(ts.t)
	if uid != "ops" {
		tok = ts.centre.Login(ts.t, uid, "mad hatter tea party").GetAccessToken()
	}
	tk, err := ts.providers(tok).CreateConnectionTicket(ctx, connect.NewRequest(&trellisv1.CreateConnectionTicketRequest{Provider: ts.cfg.Name}))
	if err != nil {
		ts.t.Fatal(err)
	}
	c, err := ts.inbox.verifier.Verify(ctx, tk.Msg.GetTicket())
	if err != nil {
		ts.t.Fatal(err)
	}
	pub, _, _ := ed25519.GenerateKey(nil)
	req := connect.NewRequest(&trellisv1.ReportConnectionRequest{Uid: uid, LocalAccount: "tb_" + uid, UserKeyFingerprint: usersig.Fingerprint(pub), TicketJti: c.ID})
	req.Header().Set("Authorization", "Bearer "+ts.siteJWT())
	if _, err := ts.providers("").ReportConnection(ctx, req); err != nil {
		ts.t.Fatal(err)
	}
	if err := ts.state.putMapping(uid, &Mapping{Account: "tb_" + uid, UserKey: pub, CreatedAt: time.Now()}); err != nil {
		ts.t.Fatal(err)
	}
}

// TestDeliveriesWaitForTheSite: work queued for a site that is down stays
// pending (admins see it), is retried with back-off, and once the site is
// up is delivered exactly once each, in the order it was queued.
func TestDeliveriesWaitForTheSite(t *testing.T) {
	ts := newTestSite(t, "site1")
	var mu sync.Mutex
	var seen []string // uids of disconnect deliveries the handler ran for
	disconnect := disconnectHandler(ts.state)
	ts.inbox.handle("disconnect", func(ctx context.Context, d *Delivery) (string, error) {
		var p disconnectPayload
		_ = json.Unmarshal(d.Payload, &p)
		mu.Lock()
		seen = append(seen, p.UID)
		mu.Unlock()
		return disconnect(ctx, d)
	})
	users := []string{"alice", "bob", "carol"}
	for _, uid := range users {
		ts.centre.NewPowerfulUser(t, uid, "p"+uid)
		ts.connectUser(uid)
	}
	ctx := context.Background()
	for _, uid := range users {
		tok := ts.centre.Login(t, uid, "mad hatter tea party").GetAccessToken()
		if _, err := ts.providers(tok).RemoveConnection(ctx, connect.NewRequest(&trellisv1.RemoveConnectionRequest{Provider: "site1"})); err != nil {
			t.Fatal(err)
		}
	}

	// The site is down: nothing is delivered, all is pending and retried
	// later, not at once.
	if n := ts.dispatch(); n != 0 {
		t.Fatalf("delivered %d to a site that is down", n)
	}
	pending := ts.deliveries(false)
	if len(pending) != 3 {
		t.Fatalf("admins see %d pending deliveries, want 3: %v", len(pending), pending)
	}
	head := pending[0]
	if head.GetKind() != "disconnect" || head.GetState() != "pending" || head.GetAttempts() != 1 || head.GetLastError() == "" ||
		!head.GetNextAttemptAt().AsTime().After(ts.clock.now()) || !strings.Contains(head.GetPayload(), `"uid":"alice"`) {
		t.Errorf("the first pending delivery after a failed attempt = %v", head)
	}
	if pending[1].GetAttempts() != 0 {
		t.Errorf("a delivery behind the head was attempted (%d): a site gets its work in order", pending[1].GetAttempts())
	}
	ts.up()
	if n := ts.dispatch(); n != 0 {
		t.Fatalf("delivered %d before the back-off ended", n)
	}
	// Past the first back-off (2 s), within what the site's clock
	// tolerates of the centre's.
	ts.clock.advance(3 * time.Second)
	if n := ts.dispatch(); n != 3 {
		t.Fatalf("delivered %d once the site was up, want 3: %v", n, ts.deliveries(false))
	}
	if n := ts.dispatch(); n != 0 {
		t.Fatalf("delivered %d more after everything was delivered", n)
	}
	mu.Lock()
	if got := strings.Join(seen, ","); got != "alice,bob,carol" {
		t.Errorf("the site did %q, want each once, in order: alice,bob,carol", got)
	}
	mu.Unlock()
	if p := ts.deliveries(false); len(p) != 0 {
		t.Errorf("still pending: %v", p)
	}
	all := ts.deliveries(true)
	for _, d := range all {
		if d.GetState() != "delivered" || d.GetDeliveredAt() == nil {
			t.Errorf("delivery %v is not delivered", d)
		}
	}
	for _, uid := range users {
		if _, ok := ts.state.mapping(uid); ok {
			t.Errorf("%s is still mapped at the site", uid)
		}
	}

	// The centre did not hear an answer and posts again: the site answers
	// 200 and does nothing.
	status, _ := ts.post(all[0].GetId(), "disconnect", `{"uid":"alice"}`, "deliver", all[0].GetId()+".again", "provider:site1")
	if status != http.StatusOK {
		t.Errorf("a repeated delivery answered %d, want 200", status)
	}
	mu.Lock()
	if len(seen) != 3 {
		t.Errorf("a repeated delivery was done again: %v", seen)
	}
	mu.Unlock()
}

// post posts a delivery to the site with a centre token of purpose, jti
// and audience.
func (ts *testSite) post(id, kind, payload, purpose, jti, aud string) (int, string) {
	ts.t.Helper()
	now := time.Now()
	raw, err := token.Sign(ts.centre.App.Keys, token.Claims{Issuer: ts.cfg.Issuer, Subject: "centre", Audience: []string{aud},
		ID: jti, IssuedAt: now, NotBefore: now, Expiry: now.Add(time.Minute), Purpose: purpose})
	if err != nil {
		ts.t.Fatal(err)
	}
	body, _ := json.Marshal(Delivery{ID: id, Kind: kind, CreatedAt: now, Payload: json.RawMessage(payload)})
	req, _ := http.NewRequest(http.MethodPost, "http://"+ts.addr+"/deliveries", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+raw)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out["error"]
}

// TestDeliveryRefusals: the site takes only the centre's tokens for
// deliveries, addressed to itself, for that delivery; a kind it does not do
// is refused (the centre gives it up) and every refusal is audited.
func TestDeliveryRefusals(t *testing.T) {
	ts := newTestSite(t, "site1")
	ts.up()
	for _, tc := range []struct {
		name, kind, purpose, jti, aud string
		status                        int
		want                          string
	}{
		{"wrong purpose", "disconnect", "request", "d-1.x", "provider:site1", 401, "purpose"},
		{"another site's", "disconnect", "deliver", "d-1.x", "provider:site2", 401, "audience"},
		{"token of another delivery", "disconnect", "deliver", "d-2.x", "provider:site1", 401, "not issued for delivery"},
		{"unknown kind", "reboot", "deliver", "d-1.x", "provider:site1", 422, "does not do"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, msg := ts.post("d-1", tc.kind, `{"uid":"alice"}`, tc.purpose, tc.jti, tc.aud)
			if status != tc.status || !strings.Contains(msg, tc.want) {
				t.Errorf("answer %d %q, want %d with %q", status, msg, tc.status, tc.want)
			}
		})
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+ts.addr+"/deliveries", strings.NewReader(`{}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without a token: %d, want 401", resp.StatusCode)
	}
	if ts.state.deliveryDone("d-1") {
		t.Error("a refused delivery was recorded as done")
	}
	ts.audit.f.Sync()
	log, _ := readFile(ts.dir + "/" + AuditFile)
	if n := strings.Count(log, `"outcome":"refused"`); n < 5 {
		t.Errorf("%d refusals audited, want 5:\n%s", n, log)
	}
}

// TestDeliveriesOfARemovedOrDisabledSite: a disabled site's deliveries
// wait (not attempted) until it is enabled; a removed site's are failed,
// and kept for the record.
func TestDeliveriesOfARemovedOrDisabledSite(t *testing.T) {
	ts := newTestSite(t, "site1")
	ts.up()
	ts.centre.NewPowerfulUser(t, "alice", "palice")
	ts.connectUser("alice")
	ctx := context.Background()
	tok := ts.centre.Login(t, "alice", "mad hatter tea party").GetAccessToken()
	if _, err := ts.providers(tok).RemoveConnection(ctx, connect.NewRequest(&trellisv1.RemoveConnectionRequest{Provider: "site1"})); err != nil {
		t.Fatal(err)
	}
	admin := ts.providers(ts.admin)
	if _, err := admin.SetProviderState(ctx, connect.NewRequest(&trellisv1.SetProviderStateRequest{Name: "site1", State: trellisv1.ProviderState_PROVIDER_STATE_DISABLED})); err != nil {
		t.Fatal(err)
	}
	if n := ts.dispatch(); n != 0 {
		t.Fatalf("delivered %d to a disabled site", n)
	}
	if p := ts.deliveries(false); len(p) != 1 || p[0].GetAttempts() != 0 {
		t.Fatalf("a disabled site's delivery: %v, want one pending, never attempted", p)
	}
	if _, err := admin.RemoveProvider(ctx, connect.NewRequest(&trellisv1.RemoveProviderRequest{Name: "site1"})); err != nil {
		t.Fatal(err)
	}
	if p := ts.deliveries(false); len(p) != 0 {
		t.Errorf("a removed site still has pending deliveries: %v", p)
	}
	all := ts.deliveries(true)
	if len(all) != 1 || all[0].GetState() != "failed" || all[0].GetLastError() != "provider removed" {
		t.Errorf("a removed site's delivery: %v, want failed, provider removed", all)
	}
}

// TestDeliveriesWithTwoReplicas: two centre replicas on one PostgreSQL
// dispatch at once; each delivery reaches the site once, in order.
func TestDeliveriesWithTwoReplicas(t *testing.T) {
	pgtest.Require(t)
	db := pgtest.NewDatabase(t)
	ts := newTestSiteOn(t, db, "site1")
	// Replicas share the public URL, so the issuer of the tokens they sign.
	other := apptest.StartOn(t, db, func(c *app.Config) { c.Now = ts.clock.now; c.DeliveryInterval = -1; c.PublicURL = ts.centre.URL })
	var mu sync.Mutex
	var posts []string
	disconnect := disconnectHandler(ts.state)
	posted := map[string]int{} // POSTs the site got, by delivery id
	ts.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var d Delivery
		_ = json.Unmarshal(body, &d)
		mu.Lock()
		posted[d.ID]++
		mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		ts.inbox.ServeHTTP(w, r)
	})
	ts.inbox.handle("disconnect", func(ctx context.Context, d *Delivery) (string, error) {
		var p disconnectPayload
		_ = json.Unmarshal(d.Payload, &p)
		mu.Lock()
		posts = append(posts, p.UID)
		mu.Unlock()
		return disconnect(ctx, d)
	})
	var users []string
	for i := range 8 {
		uid := fmt.Sprintf("user%d", i)
		users = append(users, uid)
		ts.centre.NewPowerfulUser(t, uid, "p"+uid)
		ts.connectUser(uid)
		tok := ts.centre.Login(t, uid, "mad hatter tea party").GetAccessToken()
		if _, err := ts.providers(tok).RemoveConnection(context.Background(), connect.NewRequest(&trellisv1.RemoveConnectionRequest{Provider: "site1"})); err != nil {
			t.Fatal(err)
		}
	}
	ts.up()
	var wg sync.WaitGroup
	var delivered atomic.Int64
	for _, srv := range []*apptest.Server{ts.centre, other, ts.centre, other} {
		wg.Go(func() {
			n, err := srv.App.Service.DispatchDeliveries(context.Background())
			if err != nil {
				t.Error(err)
			}
			delivered.Add(int64(n))
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for _, d := range ts.deliveries(true) {
		if d.GetAttempts() != 1 || d.GetState() != "delivered" {
			t.Logf("delivery %s: %s after %d attempts: %s", d.GetId(), d.GetState(), d.GetAttempts(), d.GetLastError())
		}
	}
	for id, n := range posted {
		if n != 1 {
			t.Errorf("delivery %s was posted %d times: replicas must claim before posting", id, n)
		}
	}
	if got := strings.Join(posts, ","); got != strings.Join(users, ",") || delivered.Load() != 8 {
		t.Errorf("the site did %q (%d delivered), want each once, in order: %s", got, delivered.Load(), strings.Join(users, ","))
	}
}
