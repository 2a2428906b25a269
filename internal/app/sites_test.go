package app_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
	"github.com/trellis-testbed/trellis/internal/app"
	"github.com/trellis-testbed/trellis/internal/auth/token"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/service"
	"github.com/trellis-testbed/trellis/internal/store"
)

// TestResourcesNameRegisteredProviders: a new resource names a registered
// provider; resources stored before the rule keep theirs and keep
// working; a provider that resources name is not removed under them.
func TestResourcesNameRegisteredProviders(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		t.Run(string(kind), func(t *testing.T) {
			h := newHarness(t, kind)
			ctx := context.Background()
			adminTok := h.bootstrapAdmin()
			providers := trellisv1connect.NewProvidersClient(h.http, h.url)
			register := func(name, provider string) error {
				_, err := h.resources.RegisterResource(ctx, req(&trellisv1.RegisterResourceRequest{Name: name, Kind: "node", Provider: provider, Attributes: map[string]string{"cores": "8"}}, adminTok))
				return err
			}
			for _, tc := range []struct{ provider, rule string }{
				{"site9", "provider.unregistered"},
				{"", "provider.required"},
				{"Site 9!", "provider.format"},
			} {
				err := register("n1", tc.provider)
				wantCode(t, err, connect.CodeInvalidArgument)
				if v := violations(err); v["provider"] != tc.rule {
					t.Errorf("provider %q: violations %v, want provider: %s", tc.provider, v, tc.rule)
				}
			}
			if err := register("n1", "site9"); err == nil || !strings.Contains(err.Error(), "trellis admin provider add site9") {
				t.Errorf("the refusal does not say what to do: %v", err)
			}
			// Nothing half-done: no resource n1.
			_, err := h.resources.GetResource(ctx, req(&trellisv1.GetResourceRequest{Name: "n1"}, adminTok))
			wantCode(t, err, connect.CodeNotFound)

			h.addProvider(adminTok, "site9")
			if err := register("n1", "site9"); err != nil {
				t.Fatal(err)
			}
			// A disabled provider is still registered: its inventory may be
			// kept up to date while it is out of service.
			if _, err := providers.SetProviderState(ctx, req(&trellisv1.SetProviderStateRequest{Name: "site9", State: trellisv1.ProviderState_PROVIDER_STATE_DISABLED}, adminTok)); err != nil {
				t.Fatal(err)
			}
			if err := register("n2", "site9"); err != nil {
				t.Errorf("a resource of a disabled provider: %v", err)
			}

			// A resource from before the rule, at a provider never
			// registered (written straight into the store, as the old
			// server did): listed, filtered, changed and removed as ever.
			if err := h.srv.Store.Update(ctx, func(tx store.Tx) error {
				return tx.Resources().Create(ctx, &domain.Resource{Name: "old1", Kind: domain.KindNode, Provider: "Legacy Rack 4", State: domain.ResourceAvailable, CreatedAt: time.Now(), Attributes: map[string]string{"cores": "4"}})
			}); err != nil {
				t.Fatal(err)
			}
			list, err := h.resources.ListResources(ctx, req(&trellisv1.ListResourcesRequest{Provider: "Legacy Rack 4"}, adminTok))
			if err != nil || len(list.Msg.Resources) != 1 || list.Msg.Resources[0].Provider != "Legacy Rack 4" {
				t.Fatalf("the legacy resource listed: %v, %v", list, err)
			}
			if _, err := h.resources.SetResourceState(ctx, req(&trellisv1.SetResourceStateRequest{Name: "old1", State: "maintenance"}, adminTok)); err != nil {
				t.Errorf("changing the legacy resource's state: %v", err)
			}
			if _, err := h.resources.RemoveResource(ctx, req(&trellisv1.RemoveResourceRequest{Name: "old1"}, adminTok)); err != nil {
				t.Errorf("removing the legacy resource: %v", err)
			}

			// site9 keeps its resources: it is not removed under them.
			_, err = providers.RemoveProvider(ctx, req(&trellisv1.RemoveProviderRequest{Name: "site9"}, adminTok))
			wantCode(t, err, connect.CodeFailedPrecondition)
			if !strings.Contains(err.Error(), "still has resources") {
				t.Errorf("the refusal: %v", err)
			}
			for _, n := range []string{"n1", "n2"} {
				if _, err := h.resources.RemoveResource(ctx, req(&trellisv1.RemoveResourceRequest{Name: n}, adminTok)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := providers.RemoveProvider(ctx, req(&trellisv1.RemoveProviderRequest{Name: "site9"}, adminTok)); err != nil {
				t.Errorf("removing a provider without resources: %v", err)
			}
			_, err = providers.RemoveProvider(ctx, req(&trellisv1.RemoveProviderRequest{Name: "site9"}, adminTok))
			wantCode(t, err, connect.CodeNotFound)
			// Gone, its name is refused again for new resources.
			wantCode(t, register("n3", "site9"), connect.CodeInvalidArgument)
		})
	}
}

// site is a registered site of a test: its name and its own key.
type site struct {
	name     string
	key      ed25519.PrivateKey
	audience string // what its JWTs are addressed to
}

// addSite adds a provider and registers a fresh key for it, as
// `trellis provider init` does.
func (h *harness) addSite(adminTok, name string) *site {
	h.t.Helper()
	ctx := context.Background()
	providers := trellisv1connect.NewProvidersClient(h.http, h.url)
	added, err := providers.AddProvider(ctx, req(&trellisv1.AddProviderRequest{Name: name, Url: "https://" + name + ".example.org:7800"}, adminTok))
	if err != nil {
		h.t.Fatal(err)
	}
	pub, key, _ := ed25519.GenerateKey(nil)
	reg, err := providers.RegisterSite(ctx, req(&trellisv1.RegisterSiteRequest{Token: added.Msg.RegistrationToken, PublicKey: base64.StdEncoding.EncodeToString(pub)}, ""))
	if err != nil {
		h.t.Fatal(err)
	}
	return &site{name: name, key: key, audience: reg.Msg.CentreAudience}
}

// jwt is a site's JWT for one request, signed with key (the site's own,
// or another for a forgery).
func (s *site) jwt(t *testing.T, key ed25519.PrivateKey) string {
	t.Helper()
	raw, err := token.SignAssertion(key, "provider:"+s.name, s.audience, time.Now(), 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// ticketJTI reads the jti of a connection ticket, as the site does once it
// verified it.
func ticketJTI(t *testing.T, ticket string) string {
	t.Helper()
	parts := strings.Split(ticket, ".")
	if len(parts) != 3 {
		t.Fatalf("ticket %q is not a JWS", ticket)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		ID string `json:"jti"`
	}
	if err := json.Unmarshal(b, &c); err != nil || c.ID == "" {
		t.Fatalf("ticket claims %s: %v", b, err)
	}
	return c.ID
}

// TestReportConnectionRefusals: the centre takes a site's report of a
// connection only from that site, signed by its key, for a ticket issued
// for it and the user it names, once, in time. Each refusal has its code
// and an audit record.
func TestReportConnectionRefusals(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		t.Run(string(kind), func(t *testing.T) {
			clk := &testClock{now: time.Now().UTC()}
			h := newServer(t, openStore(t, kind), func(c *app.Config) { c.Now = clk.Now })
			ctx := context.Background()
			adminTok := h.bootstrapAdmin()
			alice, bob := h.newUser("alice"), h.newUser("bob")
			h.approvedProject(adminTok, alice, "lab")
			h.approvedProject(adminTok, bob, "bobs")
			siteA, siteB := h.addSite(adminTok, "sitea"), h.addSite(adminTok, "siteb")
			providers := trellisv1connect.NewProvidersClient(h.http, h.url)
			ticket := func(userTok, provider string) string {
				t.Helper()
				resp, err := providers.CreateConnectionTicket(ctx, req(&trellisv1.CreateConnectionTicketRequest{Provider: provider}, userTok))
				if err != nil {
					t.Fatal(err)
				}
				return ticketJTI(t, resp.Msg.Ticket)
			}
			report := func(bearer, uid, jti string) error {
				_, err := providers.ReportConnection(ctx, req(&trellisv1.ReportConnectionRequest{Uid: uid, LocalAccount: "tb_" + uid, UserKeyFingerprint: "SHA256:abc", TicketJti: jti}, bearer))
				return err
			}
			_, stranger, _ := ed25519.GenerateKey(nil)

			aliceAtA := ticket(alice, "sitea")
			bobAtA := ticket(bob, "sitea")
			replayed := siteA.jwt(t, siteA.key)
			for _, tc := range []struct {
				name   string
				bearer string
				uid    string
				jti    string
				code   connect.Code
				actor  string // of the audit record
				detail string // in it
			}{
				{"site B reports a ticket issued for site A", siteB.jwt(t, siteB.key), "alice", aliceAtA, connect.CodePermissionDenied, "provider:siteb", "ticket of another site"},
				{"a report in site A's name signed by another key", siteA.jwt(t, stranger), "alice", aliceAtA, connect.CodeUnauthenticated, "provider:sitea", "site JWT refused"},
				{"a user's own credential", alice, "alice", aliceAtA, connect.CodePermissionDenied, "alice", "not a site"},
				{"site A reports bob's ticket as alice's", siteA.jwt(t, siteA.key), "alice", bobAtA, connect.CodePermissionDenied, "provider:sitea", "ticket of another user"},
				{"a ticket never issued", siteA.jwt(t, siteA.key), "alice", "no-such-ticket", connect.CodeNotFound, "provider:sitea", "unknown ticket"},
				{"the genuine report", replayed, "alice", aliceAtA, 0, "provider:sitea", ""},
				{"the same site JWT again", replayed, "bob", bobAtA, connect.CodeUnauthenticated, "provider:sitea", "site request replayed"},
				{"the ticket reported twice", siteA.jwt(t, siteA.key), "alice", aliceAtA, connect.CodeFailedPrecondition, "provider:sitea", "ticket used twice"},
			} {
				err := report(tc.bearer, tc.uid, tc.jti)
				if tc.code == 0 {
					if err != nil {
						t.Fatalf("%s: %v", tc.name, err)
					}
					continue
				}
				if err == nil || connect.CodeOf(err) != tc.code {
					t.Errorf("%s: %v, want %v", tc.name, err, tc.code)
					continue
				}
				if !h.reportAudited(tc.actor, connect.CodeOf(err), tc.detail) {
					t.Errorf("%s: no audit record by %s, %v, %q", tc.name, tc.actor, tc.code, tc.detail)
				}
			}

			// A ticket reported after its ten minutes (and the 30 s allowed
			// for the site's clock).
			late := ticket(bob, "sitea")
			clk.set(clk.Now().Add(service.ConnectionTicketTTL + 31*time.Second))
			err := report(siteA.jwt(t, siteA.key), "bob", late)
			if connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), "expired") {
				t.Errorf("an expired ticket: %v", err)
			} else if !h.reportAudited("provider:sitea", connect.CodeFailedPrecondition, "ticket expired") {
				t.Error("an expired ticket: no audit record")
			}

			// Only the genuine report made a connection.
			for uid, tok := range map[string]string{"alice": alice, "bob": bob} {
				conns, err := providers.ListConnections(ctx, req(&trellisv1.ListConnectionsRequest{}, tok))
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, c := range conns.Msg.Connections {
					got = append(got, c.Provider+"/"+c.LocalAccount)
				}
				want := map[string]string{"alice": "sitea/tb_alice", "bob": ""}[uid]
				if strings.Join(got, ",") != want {
					t.Errorf("%s's connections: %v, want %q", uid, got, want)
				}
			}
		})
	}
}

// reportAudited reports whether the audit record holds a refused ReportConnection
// by actor with code whose detail says detail.
func (h *harness) reportAudited(actor string, code connect.Code, detail string) bool {
	h.t.Helper()
	evs, _, err := h.srv.Service.Accounts.ListAuditEvents(context.Background(), operator, service.AuditQuery{Operation: "trellis.v1.Providers/ReportConnection", PageSize: 1000})
	if err != nil {
		h.t.Fatal(err)
	}
	want := strings.ReplaceAll(code.String(), " ", "_")
	for _, e := range evs {
		if e.Actor == actor && e.Outcome == want && strings.Contains(e.Detail, detail) {
			return true
		}
	}
	return false
}
