package app_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/app"
	"github.com/trellis-testbed/trellis/internal/service"
)

const (
	opCreateAPIToken   = "trellis.v1.Auth/CreateAPIToken"
	opCreateExperiment = "trellis.v1.Experiments/CreateExperiment"
	opListExperiments  = "trellis.v1.Experiments/ListExperiments"
)

// lockedBuffer collects a server's log lines, from many goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (h *harness) createAPIToken(bearer, name string, expires time.Duration, scopes ...string) (*trellisv1.CreateAPITokenResponse, error) {
	m := &trellisv1.CreateAPITokenRequest{Name: name, Scopes: scopes}
	if expires != 0 {
		m.Expires = durationpb.New(expires)
	}
	resp, err := h.auth.CreateAPIToken(context.Background(), req(m, bearer))
	if err != nil {
		return nil, err
	}
	return resp.Msg, nil
}

func (h *harness) mustAPIToken(bearer, name string, expires time.Duration, scopes ...string) string {
	h.t.Helper()
	resp, err := h.createAPIToken(bearer, name, expires, scopes...)
	if err != nil {
		h.t.Fatalf("CreateAPIToken %s: %v", name, err)
	}
	return resp.Token
}

func (h *harness) listAPITokens(bearer string) []*trellisv1.APIToken {
	h.t.Helper()
	resp, err := h.auth.ListAPITokens(context.Background(), req(&trellisv1.ListAPITokensRequest{}, bearer))
	if err != nil {
		h.t.Fatal(err)
	}
	return resp.Msg.ApiTokens
}

func wantMessage(t *testing.T, err error, code connect.Code, words ...string) {
	t.Helper()
	wantCode(t, err, code)
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("error %q does not say %q", err, w)
		}
	}
}

// eventually retries fn until it returns nil, failing after five seconds.
func eventually(t *testing.T, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAPITokens(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		t.Run(string(kind), func(t *testing.T) { testAPITokens(t, kind) })
	}
}

func testAPITokens(t *testing.T, kind storeKind) {
	st := openStore(t, kind)
	var logs lockedBuffer
	h := newServer(t, st, func(c *app.Config) {
		c.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	other := newServer(t, st) // another replica
	ctx := context.Background()
	adminTok := h.bootstrapAdmin()
	ann := h.newUser("ann")
	h.approvedProject(adminTok, ann, "lab")
	var secrets []string

	// Created with a name, scopes and an expiry; the token is shown once.
	created, err := h.createAPIToken(ann, "ci", 12*time.Hour, "read")
	if err != nil {
		t.Fatal(err)
	}
	readTok := created.Token
	secrets = append(secrets, readTok)
	if !strings.HasPrefix(readTok, "trls_") || len(readTok) != len("trls_")+26+1+43 {
		t.Fatalf("token %q does not have the form trls_<id>_<secret>", readTok)
	}
	if info := created.ApiToken; info.Name != "ci" || strings.Join(info.Scopes, ",") != "read" ||
		info.ExpiresAt.AsTime().Sub(info.CreatedAt.AsTime()) != 12*time.Hour || info.LastUsedAt != nil {
		t.Fatalf("created %v", info)
	}
	list := h.listAPITokens(ann)
	js, _ := protojson.Marshal(&trellisv1.ListAPITokensResponse{ApiTokens: list})
	if len(list) != 1 || list[0].Name != "ci" || strings.Contains(string(js), readTok[len("trls_")+27:]) {
		t.Fatalf("list = %s", js)
	}

	// Usable as Bearer; read allows the operations without side effects.
	who, err := h.auth.WhoAmI(ctx, req(&trellisv1.WhoAmIRequest{}, readTok))
	if err != nil || who.Msg.Uid != "ann" || who.Msg.ApiTokenName != "ci" || strings.Join(who.Msg.Scopes, ",") != "read" || who.Msg.SessionId != "" {
		t.Fatalf("WhoAmI with the token: %v, %v", who, err)
	}
	if _, err := h.experiments.ListExperiments(ctx, req(&trellisv1.ListExperimentsRequest{}, readTok)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.projects.GetProject(ctx, req(&trellisv1.GetProjectRequest{Name: "lab"}, readTok)); err != nil {
		t.Fatal(err)
	}
	// ...and refuses a write, audited.
	_, err = h.experiments.CreateExperiment(ctx, req(&trellisv1.CreateExperimentRequest{Id: "ann:ping"}, readTok))
	wantMessage(t, err, connect.CodePermissionDenied, "this API token's scopes (read) do not include "+opCreateExperiment)
	wantEvent(t, h, opCreateExperiment, "ann", "api_token:ci", "permission_denied")

	// A narrow token cannot mint tokens, not even one scoped to Auth.
	_, err = h.createAPIToken(readTok, "wider", 0, "all")
	wantMessage(t, err, connect.CodePermissionDenied, `only a token scoped "all" may create tokens`)
	authTok := h.mustAPIToken(ann, "auth", 0, "trellis.v1.Auth/*")
	secrets = append(secrets, authTok)
	_, err = h.createAPIToken(authTok, "wider", 0, "all")
	wantCode(t, err, connect.CodePermissionDenied)
	if got := h.listAPITokens(authTok); len(got) != 2 { // the rest of Auth it may
		t.Fatalf("list with an Auth/* token: %v", got)
	}

	// Operation patterns.
	expTok := h.mustAPIToken(ann, "experiments", 0, "trellis.v1.Experiments/*")
	secrets = append(secrets, expTok)
	if _, err := h.experiments.CreateExperiment(ctx, req(&trellisv1.CreateExperimentRequest{Id: "ann:ping"}, expTok)); err != nil {
		t.Fatal(err)
	}
	_, err = h.projects.ListProjects(ctx, req(&trellisv1.ListProjectsRequest{}, expTok))
	wantMessage(t, err, connect.CodePermissionDenied, "(trellis.v1.Experiments/*) do not include trellis.v1.Projects/ListProjects")
	oneTok := h.mustAPIToken(ann, "one-op", 0, "trellis.v1.Experiments/GetExperiment")
	secrets = append(secrets, oneTok)
	if _, err := h.experiments.GetExperiment(ctx, req(&trellisv1.GetExperimentRequest{Id: "ann:ping"}, oneTok)); err != nil {
		t.Fatal(err)
	}
	_, err = h.experiments.ListExperiments(ctx, req(&trellisv1.ListExperimentsRequest{}, oneTok))
	wantCode(t, err, connect.CodePermissionDenied)

	// "all" is what the user may do, no more; it may create tokens.
	allTok := h.mustAPIToken(ann, "everything", 0, "all")
	secrets = append(secrets, allTok)
	_, err = h.users.ListUsers(ctx, req(&trellisv1.ListUsersRequest{}, allTok))
	wantCode(t, err, connect.CodePermissionDenied)
	secrets = append(secrets, h.mustAPIToken(allTok, "minted", time.Hour, "read"))
	_, err = h.auth.Logout(ctx, req(&trellisv1.LogoutRequest{}, allTok))
	wantMessage(t, err, connect.CodeFailedPrecondition, "revoke the token")

	// Bad input names the field and the rule.
	_, err = h.createAPIToken(ann, "x", 0, "read", "trellis.v1.Nope/*", "write")
	wantRule(t, err, connect.CodeInvalidArgument, "scopes", "scopes.unknown")
	_, err = h.createAPIToken(ann, "x", 0)
	wantRule(t, err, connect.CodeInvalidArgument, "scopes", "scopes.required")
	_, err = h.createAPIToken(ann, "Bad Name", 0, "read")
	wantRule(t, err, connect.CodeInvalidArgument, "name", "name.format")
	_, err = h.createAPIToken(ann, "x", 400*24*time.Hour, "read")
	wantRule(t, err, connect.CodeInvalidArgument, "expires", "expires.too_long")
	_, err = h.createAPIToken(ann, "x", -time.Hour, "read")
	wantRule(t, err, connect.CodeInvalidArgument, "expires", "expires.positive")
	_, err = h.createAPIToken(ann, "ci", 0, "read")
	wantRule(t, err, connect.CodeAlreadyExists, "name", "name.duplicate")
	// The default lifetime is 30 days.
	def, err := h.createAPIToken(ann, "default", 0, "read")
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, def.Token)
	if d := def.ApiToken.ExpiresAt.AsTime().Sub(def.ApiToken.CreatedAt.AsTime()); d != 30*24*time.Hour {
		t.Fatalf("default lifetime %v", d)
	}
	// A wrong secret for a real id, or a malformed token: one answer.
	forged := readTok[:len(readTok)-4] + "AAAA"
	if forged == readTok {
		forged = readTok[:len(readTok)-4] + "BBBB"
	}
	for _, bad := range []string{forged, "trls_nonsense", "trls_" + strings.Repeat("a", 26) + "_" + strings.Repeat("b", 43)} {
		_, err = h.auth.WhoAmI(ctx, req(&trellisv1.WhoAmIRequest{}, bad))
		wantMessage(t, err, connect.CodeUnauthenticated, "API token not valid")
	}

	// Last use is recorded, off the request path.
	eventually(t, "last use of ci", func() error {
		for _, tk := range h.listAPITokens(ann) {
			if tk.Name == "ci" && tk.LastUsedAt == nil {
				return connect.NewError(connect.CodeUnknown, nil)
			}
		}
		return nil
	})

	// Revoked: refused at once here, within the feed interval there.
	if _, err := other.auth.WhoAmI(ctx, req(&trellisv1.WhoAmIRequest{}, readTok)); err != nil {
		t.Fatal(err) // the other replica now remembers the token
	}
	if _, err := h.auth.RevokeAPIToken(ctx, req(&trellisv1.RevokeAPITokenRequest{Name: "ci"}, ann)); err != nil {
		t.Fatal(err)
	}
	_, err = h.experiments.ListExperiments(ctx, req(&trellisv1.ListExperimentsRequest{}, readTok))
	wantMessage(t, err, connect.CodeUnauthenticated, `API token "ci" was revoked`)
	wantEvent(t, h, opListExperiments, "ann", "api_token:ci", "unauthenticated")
	eventually(t, "revocation on the other replica", func() error {
		_, err := other.auth.WhoAmI(ctx, req(&trellisv1.WhoAmIRequest{}, readTok))
		if connect.CodeOf(err) != connect.CodeUnauthenticated {
			return connect.NewError(connect.CodeUnknown, nil)
		}
		return nil
	})
	if l := h.listAPITokens(ann); l[0].Name != "ci" || l[0].RevokedAt == nil {
		t.Fatalf("list after revoke: %v", l)
	}
	_, err = h.auth.RevokeAPIToken(ctx, req(&trellisv1.RevokeAPITokenRequest{Name: "nope"}, ann))
	wantCode(t, err, connect.CodeNotFound)
	// Each user's tokens are its own.
	bob := h.newUser("bob")
	_, err = h.auth.RevokeAPIToken(ctx, req(&trellisv1.RevokeAPITokenRequest{Name: "experiments"}, bob))
	wantCode(t, err, connect.CodeNotFound)
	if got := h.listAPITokens(bob); len(got) != 0 {
		t.Fatalf("bob sees %v", got)
	}

	// Past its expiry a token is refused, with a clear error, audited.
	short := h.mustAPIToken(ann, "short", 300*time.Millisecond, "read")
	secrets = append(secrets, short)
	eventually(t, "expiry", func() error {
		_, err := h.auth.WhoAmI(ctx, req(&trellisv1.WhoAmIRequest{}, short))
		if connect.CodeOf(err) != connect.CodeUnauthenticated {
			return connect.NewError(connect.CodeUnknown, nil)
		}
		wantMessage(t, err, connect.CodeUnauthenticated, `API token "short" expired at`, "create a new one")
		return nil
	})
	wantEvent(t, h, "trellis.v1.Auth/WhoAmI", "ann", "api_token:short", "unauthenticated")

	// A locked account's tokens stop working.
	if _, err := h.users.SetUserState(ctx, req(&trellisv1.SetUserStateRequest{Uid: "ann", State: trellisv1.UserState_USER_STATE_LOCKED}, adminTok)); err != nil {
		t.Fatal(err)
	}
	_, err = h.experiments.ListExperiments(ctx, req(&trellisv1.ListExperimentsRequest{}, expTok))
	wantMessage(t, err, connect.CodeUnauthenticated, "account is not active")

	// No token, nor any secret part of one, in the audit record or the log.
	evs, _, err := h.srv.Service.Accounts.ListAuditEvents(ctx, operator, service.AuditQuery{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	created2 := 0
	for _, e := range evs {
		if e.Operation == opCreateAPIToken && e.Outcome == "ok" {
			created2++
		}
		for _, s := range secrets {
			sec := s[len("trls_")+27:]
			if strings.Contains(e.Detail+e.Object, sec) {
				t.Errorf("audit event %+v holds a token", e)
			}
		}
	}
	if created2 != len(secrets) {
		t.Errorf("%d token creations audited, want %d", created2, len(secrets))
	}
	for _, s := range secrets {
		if strings.Contains(logs.String(), s[len("trls_")+27:]) {
			t.Errorf("the log holds a token:\n%s", logs.String())
		}
	}
}

// wantEvent checks that an event of op by actor on object with outcome was
// recorded.
func wantEvent(t *testing.T, h *harness, op, actor, object, outcome string) {
	t.Helper()
	for _, e := range h.audited(op) {
		if e.Actor == actor && e.Object == object && e.Outcome == outcome {
			return
		}
	}
	t.Fatalf("no %s event by %s on %s with outcome %s in %v", op, actor, object, outcome, h.audited(op))
}
