package app_test

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
	"github.com/trellis-testbed/trellis/internal/auth/token"
	"github.com/trellis-testbed/trellis/internal/service"
	"github.com/trellis-testbed/trellis/verify"
)

const opExchangeToken = "trellis.v1.Auth/ExchangeToken"

// servicesFixture is a server with an admin, a user "ann" in project lab,
// a service "runner" registered with an Ed25519 key and "archiver" with a
// client secret.
type servicesFixture struct {
	*harness
	admin, ann string
	services   trellisv1connect.ServicesClient
	key        ed25519.PrivateKey
	secret     string
	issuer     string
}

func newServicesFixture(t *testing.T, kind storeKind) *servicesFixture {
	h := newHarness(t, kind)
	f := &servicesFixture{harness: h, services: trellisv1connect.NewServicesClient(h.http, h.url)}
	f.admin = h.bootstrapAdmin()
	f.ann = h.newUser("ann")
	h.approvedProject(f.admin, f.ann, "lab")
	f.issuer = h.srv.Service.Config().Issuer
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	f.key = priv
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	reg, err := f.register("runner", &trellisv1.RegisterServiceRequest_PublicKey{PublicKey: pemKey})
	if err != nil {
		t.Fatal(err)
	}
	if s := reg.Service; s.Credential != "public_key" || !strings.HasPrefix(s.Fingerprint, "SHA256:") || reg.ClientSecret != "" ||
		s.State != trellisv1.ServiceState_SERVICE_STATE_ACTIVE {
		t.Fatalf("registered runner: %v", reg)
	}
	reg, err = f.register("archiver", &trellisv1.RegisterServiceRequest_GenerateSecret{GenerateSecret: true})
	if err != nil {
		t.Fatal(err)
	}
	if f.secret = reg.ClientSecret; len(f.secret) < 40 || reg.Service.Credential != "client_secret" {
		t.Fatalf("registered archiver: %v", reg)
	}
	return f
}

func (f *servicesFixture) register(name string, cred any) (*trellisv1.RegisterServiceResponse, error) {
	m := &trellisv1.RegisterServiceRequest{Name: name}
	switch c := cred.(type) {
	case *trellisv1.RegisterServiceRequest_PublicKey:
		m.Credential = c
	case *trellisv1.RegisterServiceRequest_GenerateSecret:
		m.Credential = c
	}
	resp, err := f.services.RegisterService(context.Background(), req(m, f.admin))
	if err != nil {
		return nil, err
	}
	return resp.Msg, nil
}

func (f *servicesFixture) assertion(service, aud string, iat time.Time, ttl time.Duration) string {
	f.t.Helper()
	a, err := token.SignAssertion(f.key, service, aud, iat, ttl)
	if err != nil {
		f.t.Fatal(err)
	}
	return a
}

func (f *servicesFixture) exchange(m *trellisv1.ExchangeTokenRequest) (string, error) {
	resp, err := f.auth.ExchangeToken(context.Background(), req(m, ""))
	if err != nil {
		return "", err
	}
	return resp.Msg.AccessToken, nil
}

func (f *servicesFixture) withAssertion(subject, assertion string) *trellisv1.ExchangeTokenRequest {
	return &trellisv1.ExchangeTokenRequest{SubjectToken: subject, Actor: &trellisv1.ExchangeTokenRequest_ActorAssertion{ActorAssertion: assertion}}
}

func (f *servicesFixture) withSecret(subject, id, secret string) *trellisv1.ExchangeTokenRequest {
	return &trellisv1.ExchangeTokenRequest{SubjectToken: subject, Actor: &trellisv1.ExchangeTokenRequest_ClientCredentials{
		ClientCredentials: &trellisv1.ClientCredentials{ClientId: id, ClientSecret: secret}}}
}

// wantActed checks that an event of op by actor for onBehalfOf with outcome
// was recorded, its detail containing detail.
func (f *servicesFixture) wantActed(op, actor, onBehalfOf, outcome, detail string) {
	f.t.Helper()
	evs, _, err := f.srv.Service.Accounts.ListAuditEvents(context.Background(), operator, service.AuditQuery{Operation: op, PageSize: 1000})
	if err != nil {
		f.t.Fatal(err)
	}
	for _, e := range evs {
		if e.Actor == actor && e.OnBehalfOf == onBehalfOf && e.Outcome == outcome && strings.Contains(e.Detail, detail) {
			return
		}
	}
	f.t.Fatalf("no %s event by %s for %q with outcome %s and detail %q in %+v", op, actor, onBehalfOf, outcome, detail, evs)
}

func TestServicesActingForUsers(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		t.Run(string(kind), func(t *testing.T) { testServicesActingForUsers(t, kind) })
	}
}

func testServicesActingForUsers(t *testing.T, kind storeKind) {
	f := newServicesFixture(t, kind)
	ctx := context.Background()

	// Listed, without secrets; bad registrations name the field and rule.
	list, err := f.services.ListServices(ctx, req(&trellisv1.ListServicesRequest{}, f.admin))
	if err != nil {
		t.Fatal(err)
	}
	js, _ := protojson.Marshal(list.Msg)
	if len(list.Msg.Services) != 2 || list.Msg.Services[0].Name != "archiver" || strings.Contains(string(js), f.secret) {
		t.Fatalf("list = %s", js)
	}
	_, err = f.register("Bad Name", &trellisv1.RegisterServiceRequest_GenerateSecret{GenerateSecret: true})
	wantRule(t, err, connect.CodeInvalidArgument, "name", "name.format")
	_, err = f.register("nocred", nil)
	wantRule(t, err, connect.CodeInvalidArgument, "credential", "credential.required")
	_, err = f.register("badkey", &trellisv1.RegisterServiceRequest_PublicKey{PublicKey: "not a key"})
	wantRule(t, err, connect.CodeInvalidArgument, "public_key", "public_key.format")
	_, err = f.register("runner", &trellisv1.RegisterServiceRequest_GenerateSecret{GenerateSecret: true})
	wantRule(t, err, connect.CodeAlreadyExists, "name", "name.duplicate")
	f.wantActed("trellis.v1.Services/RegisterService", "ops", "", "ok", "public key SHA256:")

	// A service proves itself with a signed assertion and gets a token for
	// ann that names it; ann's operations work with it.
	first := f.assertion("runner", f.issuer, time.Now(), time.Minute)
	acting, err := f.exchange(f.withAssertion(f.ann, first))
	if err != nil {
		t.Fatal(err)
	}
	// An assertion proves the service once: replayed, it is refused.
	_, err = f.exchange(f.withAssertion(f.ann, first))
	wantMessage(t, err, connect.CodeUnauthenticated, "actor assertion already used")
	f.wantActed(opExchangeToken, "service:runner", "ann", "unauthenticated", "assertion replayed")
	who, err := f.auth.WhoAmI(ctx, req(&trellisv1.WhoAmIRequest{}, acting))
	if err != nil {
		t.Fatal(err)
	}
	if who.Msg.Uid != "ann" || who.Msg.Actor != "service:runner" || who.Msg.SessionId != "" ||
		time.Until(who.Msg.TokenExpiresAt.AsTime()) > service.ExchangedTokenDefaultTTL {
		t.Fatalf("WhoAmI with the exchanged token: %v", who.Msg)
	}
	f.wantActed(opExchangeToken, "service:runner", "ann", "ok", "expires")
	if _, err := f.projects.GetProject(ctx, req(&trellisv1.GetProjectRequest{Name: "lab"}, acting)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.experiments.CreateExperiment(ctx, req(&trellisv1.CreateExperimentRequest{Id: "ann:by-runner"}, acting)); err != nil {
		t.Fatal(err)
	}
	f.wantActed(opCreateExperiment, "service:runner", "ann", "ok", "")
	// It decides as ann: no more than ann may.
	_, err = f.users.ListUsers(ctx, req(&trellisv1.ListUsersRequest{}, acting))
	wantCode(t, err, connect.CodePermissionDenied)
	// It cannot mint credentials that outlive it, nor log out.
	_, err = f.createAPIToken(acting, "longer", 0, "all")
	wantMessage(t, err, connect.CodePermissionDenied, "service:runner acts for ann")
	_, err = f.auth.Logout(ctx, req(&trellisv1.LogoutRequest{}, acting))
	wantMessage(t, err, connect.CodeFailedPrecondition, "no session")
	// Nor exchange it again.
	_, err = f.exchange(f.withSecret(acting, "archiver", f.secret))
	wantMessage(t, err, connect.CodeUnauthenticated, "itself issued by an exchange")

	// Client credentials work too, with a requested lifetime.
	m := f.withSecret(f.ann, "archiver", f.secret)
	m.Lifetime = durationpb.New(2 * time.Minute)
	resp, err := f.auth.ExchangeToken(ctx, req(m, ""))
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(resp.Msg.ExpiresAt.AsTime()); d > 2*time.Minute || d < time.Minute ||
		resp.Msg.IssuedTokenType != "urn:ietf:params:oauth:token-type:access_token" {
		t.Fatalf("exchange with a lifetime: %v", resp.Msg)
	}
	archived := resp.Msg.AccessToken
	m.Lifetime = durationpb.New(time.Hour)
	_, err = f.auth.ExchangeToken(ctx, req(m, ""))
	wantRule(t, err, connect.CodeInvalidArgument, "lifetime", "lifetime.too_long")

	// Refusals, each audited with the service named.
	_, err = f.exchange(f.withSecret(f.ann, "archiver", "wrong"))
	wantMessage(t, err, connect.CodeUnauthenticated, `client secret of service "archiver" not valid`)
	f.wantActed(opExchangeToken, "service:archiver", "", "unauthenticated", "client secret not valid")
	_, err = f.exchange(f.withSecret(f.ann, "ghost", f.secret))
	wantMessage(t, err, connect.CodeUnauthenticated, `service "ghost" is not registered`)
	f.wantActed(opExchangeToken, "service:ghost", "", "unauthenticated", "service not registered")
	_, err = f.exchange(f.withAssertion(f.ann, f.assertion("runner", "https://elsewhere.example.org", time.Now(), time.Minute)))
	wantMessage(t, err, connect.CodeUnauthenticated, "audience is not this server")
	f.wantActed(opExchangeToken, "service:runner", "", "unauthenticated", "audience")
	_, err = f.exchange(f.withAssertion(f.ann, f.assertion("runner", f.issuer, time.Now().Add(-10*time.Minute), time.Minute)))
	wantMessage(t, err, connect.CodeUnauthenticated, "actor assertion expired")
	f.wantActed(opExchangeToken, "service:runner", "", "unauthenticated", "expired")
	_, err = f.exchange(f.withAssertion(f.ann, f.assertion("runner", f.issuer, time.Now(), time.Hour)))
	wantMessage(t, err, connect.CodeUnauthenticated, "lives too long")
	// Signed ahead of time (iat and exp both an hour away): exp - iat is
	// within the cap, but the assertion would be good for an hour.
	_, err = f.exchange(f.withAssertion(f.ann, f.assertion("runner", f.issuer, time.Now().Add(55*time.Minute), 5*time.Minute)))
	wantMessage(t, err, connect.CodeUnauthenticated, "issued in the future")
	good := f.assertion("runner", f.issuer, time.Now(), time.Minute)
	sig := good[strings.LastIndexByte(good, '.')+1:]
	flipped := "A"
	if sig[0] == 'A' {
		flipped = "B"
	}
	tampered := good[:strings.LastIndexByte(good, '.')+1] + flipped + sig[1:]
	_, err = f.exchange(f.withAssertion(f.ann, tampered))
	wantMessage(t, err, connect.CodeUnauthenticated, "signature invalid")
	f.wantActed(opExchangeToken, "service:runner", "", "unauthenticated", "signature invalid")
	_, err = f.exchange(f.withAssertion(f.ann, "not.a.jwt"))
	wantMessage(t, err, connect.CodeUnauthenticated, "actor assertion malformed")
	_, err = f.exchange(f.withSecret("", "archiver", f.secret))
	wantRule(t, err, connect.CodeInvalidArgument, "subject_token", "subject_token.required")
	_, err = f.exchange(f.withSecret("garbage", "archiver", f.secret))
	wantMessage(t, err, connect.CodeUnauthenticated, "subject_token: malformed access token")

	// Ann logs out: her token stops, the exchanged ones keep working until
	// they expire; her revoked token can no longer be exchanged.
	if _, err := f.auth.Logout(ctx, req(&trellisv1.LogoutRequest{}, f.ann)); err != nil {
		t.Fatal(err)
	}
	_, err = f.auth.WhoAmI(ctx, req(&trellisv1.WhoAmIRequest{}, f.ann))
	wantCode(t, err, connect.CodeUnauthenticated)
	for _, tok := range []string{acting, archived} {
		if _, err := f.projects.GetProject(ctx, req(&trellisv1.GetProjectRequest{Name: "lab"}, tok)); err != nil {
			t.Fatalf("exchanged token after the user's logout: %v", err)
		}
	}
	_, err = f.exchange(f.withSecret(f.ann, "archiver", f.secret))
	wantMessage(t, err, connect.CodeUnauthenticated, "session was revoked or expired")
	f.wantActed(opExchangeToken, "service:archiver", "ann", "unauthenticated", "subject session ended")

	// Past its lifetime an exchanged token is refused (signed here with the
	// server's own keys, as the server would have, long ago).
	old, err := token.Sign(f.srv.Keys, token.Claims{
		Issuer: f.issuer, Subject: "ann", Audience: []string{"trellis"}, Actor: "service:runner",
		IssuedAt: time.Now().Add(-20 * time.Minute), Expiry: time.Now().Add(-15 * time.Minute),
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.auth.WhoAmI(ctx, req(&trellisv1.WhoAmIRequest{}, old))
	wantMessage(t, err, connect.CodeUnauthenticated, "access token expired")

	// A disabled service: its exchange and its issued tokens are refused,
	// audited with both names; enabled again, they work.
	ann2 := f.login("ann", userPassword).AccessToken
	if _, err := f.services.SetServiceState(ctx, req(&trellisv1.SetServiceStateRequest{Name: "runner", State: trellisv1.ServiceState_SERVICE_STATE_DISABLED}, f.admin)); err != nil {
		t.Fatal(err)
	}
	_, err = f.projects.GetProject(ctx, req(&trellisv1.GetProjectRequest{Name: "lab"}, acting))
	wantMessage(t, err, connect.CodeUnauthenticated, `service "runner" acting for "ann" is disabled`)
	f.wantActed("trellis.v1.Projects/GetProject", "service:runner", "ann", "unauthenticated", "service disabled")
	_, err = f.exchange(f.withAssertion(ann2, f.assertion("runner", f.issuer, time.Now(), time.Minute)))
	wantMessage(t, err, connect.CodeUnauthenticated, `service "runner" is disabled`)
	f.wantActed(opExchangeToken, "service:runner", "", "unauthenticated", "service disabled")
	if _, err := f.services.SetServiceState(ctx, req(&trellisv1.SetServiceStateRequest{Name: "runner", State: trellisv1.ServiceState_SERVICE_STATE_ACTIVE}, f.admin)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.projects.GetProject(ctx, req(&trellisv1.GetProjectRequest{Name: "lab"}, acting)); err != nil {
		t.Fatalf("after enabling the service again: %v", err)
	}

	// A disabled account: its exchanged tokens stop, and its tokens cannot
	// be exchanged (the check says why, whatever else is wrong).
	if _, err := f.users.SetUserState(ctx, req(&trellisv1.SetUserStateRequest{Uid: "ann", State: trellisv1.UserState_USER_STATE_DISABLED}, f.admin)); err != nil {
		t.Fatal(err)
	}
	_, err = f.projects.GetProject(ctx, req(&trellisv1.GetProjectRequest{Name: "lab"}, archived))
	wantMessage(t, err, connect.CodeUnauthenticated, "account is not active")
	_, err = f.exchange(f.withSecret(ann2, "archiver", f.secret))
	wantMessage(t, err, connect.CodeUnauthenticated, `account "ann" is disabled`)
	f.wantActed(opExchangeToken, "service:archiver", "ann", "unauthenticated", "account disabled")

	// Removed, a service is unknown.
	if _, err := f.services.RemoveService(ctx, req(&trellisv1.RemoveServiceRequest{Name: "archiver"}, f.admin)); err != nil {
		t.Fatal(err)
	}
	_, err = f.services.RemoveService(ctx, req(&trellisv1.RemoveServiceRequest{Name: "archiver"}, f.admin))
	wantCode(t, err, connect.CodeNotFound)
}

// TestExchangedTokenVerifiedOffline: another service verifies a token that
// a registered service obtained for a user with the public verify package,
// sees both identities, and refuses it after its lifetime.
func TestExchangedTokenVerifiedOffline(t *testing.T) {
	f := newServicesFixture(t, sqlite)
	ctx := context.Background()
	acting, err := f.exchange(f.withAssertion(f.ann, f.assertion("runner", f.issuer, time.Now(), time.Minute)))
	if err != nil {
		t.Fatal(err)
	}
	var skew atomic.Int64
	v, err := verify.New(ctx, verify.Options{
		Issuer: f.issuer, JWKSURL: f.url + "/.well-known/jwks.json",
		Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	c, err := v.Verify(ctx, acting)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "ann" || c.Actor != "service:runner" || c.SessionID != "" ||
		c.Expiry.Sub(c.IssuedAt) != service.ExchangedTokenDefaultTTL {
		t.Fatalf("claims = %+v", c)
	}
	// Past its lifetime (and the verifier's leeway), refused.
	skew.Store(int64(service.ExchangedTokenDefaultTTL + time.Minute))
	if _, err := v.Verify(ctx, acting); !errors.Is(err, verify.ErrExpired) {
		t.Fatalf("after its lifetime: %v, want ErrExpired", err)
	}
}
