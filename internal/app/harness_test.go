package app_test

import (
	"context"
	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/domain"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
	"github.com/trellis-testbed/trellis/internal/app"
	"github.com/trellis-testbed/trellis/internal/auth/password"
	"github.com/trellis-testbed/trellis/internal/store"
	"github.com/trellis-testbed/trellis/internal/store/pgtest"
	"github.com/trellis-testbed/trellis/internal/store/sqlstore"
)

func TestMain(m *testing.M) {
	// The OpenID Connect library logs through the default logger.
	slog.SetDefault(quietLog())
	pgtest.Main(m)
}

// harness is a real Trellis server on a loopback port, with clients.
type harness struct {
	t     testing.TB
	srv   *app.Server
	url   string
	http  *http.Client
	auth  trellisv1connect.AuthClient
	users trellisv1connect.UsersClient
	admin trellisv1connect.AdminClient
	info  trellisv1connect.ApiInfoClient

	projects      trellisv1connect.ProjectsClient
	circles       trellisv1connect.CirclesClient
	notifications trellisv1connect.NotificationsClient
	policy        trellisv1connect.PolicyClient
	experiments   trellisv1connect.ExperimentsClient
	libraries     trellisv1connect.LibrariesClient
	resources     trellisv1connect.ResourcesClient
	realizations  trellisv1connect.RealizationsClient
}

const (
	adminPassword = "correct horse battery staple"
	// userPassword is every test user's; it contains none of their uids.
	userPassword = "mad hatter tea party"
)

// migrated is a PostgreSQL database migrated once per test process; tests
// get copies of it.
var migrated = pgtest.NewTemplate(func(ctx context.Context, url string) error {
	st, err := app.OpenStore(ctx, app.StoreConfig{Database: url})
	if err != nil {
		return err
	}
	return st.Close()
})

type storeKind string

const (
	sqlite   storeKind = "sqlite"
	postgres storeKind = "postgres"
)

func openStore(t testing.TB, kind storeKind) store.Store {
	t.Helper()
	ctx := context.Background()
	var spec string
	if kind == postgres {
		spec = migrated.NewDatabase(t)
	} else {
		spec = t.TempDir() + "/trellis.db"
	}
	st, err := sqlstore.Open(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func quietLog() *slog.Logger {
	if os.Getenv("TRELLIS_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newServer starts a server on st; several may share one store, as replicas.
func newServer(t testing.TB, st store.Store, mutate ...func(*app.Config)) *harness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	params := password.TestParams()
	cfg := app.Config{
		Listen:         ln.Addr().String(),
		PasswordParams: &params,
		FeedInterval:   50 * time.Millisecond,
		Log:            quietLog(),
	}
	for _, m := range mutate {
		m(&cfg)
	}
	srv, err := app.Build(ctx, cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	url := "http://" + ln.Addr().String()
	hc := &http.Client{Timeout: 10 * time.Second}
	return &harness{
		t: t, srv: srv, url: url, http: hc,
		auth:  trellisv1connect.NewAuthClient(hc, url),
		users: trellisv1connect.NewUsersClient(hc, url),
		admin: trellisv1connect.NewAdminClient(hc, url),
		info:  trellisv1connect.NewApiInfoClient(hc, url),

		projects:      trellisv1connect.NewProjectsClient(hc, url),
		circles:       trellisv1connect.NewCirclesClient(hc, url),
		notifications: trellisv1connect.NewNotificationsClient(hc, url),
		policy:        trellisv1connect.NewPolicyClient(hc, url),
		experiments:   trellisv1connect.NewExperimentsClient(hc, url),
		libraries:     trellisv1connect.NewLibrariesClient(hc, url),
		resources:     trellisv1connect.NewResourcesClient(hc, url),
		realizations:  trellisv1connect.NewRealizationsClient(hc, url),
	}
}

func newHarness(t *testing.T, kind storeKind) *harness {
	return newServer(t, openStore(t, kind))
}

// req wraps a message, with a bearer token when tok is not empty.
func req[T any](msg *T, tok string) *connect.Request[T] {
	r := connect.NewRequest(msg)
	if tok != "" {
		r.Header().Set("Authorization", "Bearer "+tok)
	}
	return r
}

// bootstrapAdmin creates the first admin and logs in.
func (h *harness) bootstrapAdmin() string {
	h.t.Helper()
	if _, err := h.srv.Service.Bootstrap(context.Background(), "ops", "ops@testbed.example.org", adminPassword); err != nil {
		h.t.Fatal(err)
	}
	return h.login("ops", adminPassword).AccessToken
}

func (h *harness) login(uid, pw string) *trellisv1.Tokens {
	h.t.Helper()
	resp, err := h.auth.Login(context.Background(), req(&trellisv1.LoginRequest{Uid: uid, Password: pw}, ""))
	if err != nil {
		h.t.Fatalf("login %s: %v", uid, err)
	}
	return resp.Msg.Tokens
}

var tokenInMail = regexp.MustCompile(`(?m)^    ([A-Za-z0-9_-]{43})$`)

// lastMailTo reads the newest mail to addr from the outbox and returns the
// token in it.
func (h *harness) lastMailTo(addr string) (string, *trellisv1.OutboxMessage) {
	h.t.Helper()
	// The test reads the store as an operator with the database would:
	// not every test has an administrator to ask.
	var mail []*domain.Mail
	err := h.srv.Store.View(context.Background(), func(tx store.Tx) error {
		var err error
		mail, err = tx.Outbox().List(context.Background(), store.OutboxFilter{To: addr, Limit: 1})
		return err
	})
	if err != nil || len(mail) == 0 {
		h.t.Fatalf("no mail to %s (err %v)", addr, err)
	}
	m := mail[0]
	// The store keeps the token sealed beside the body.
	if m.SealedSecret != nil {
		tok, err := h.srv.Sealer.Open(m.SealedSecret)
		if err != nil {
			h.t.Fatalf("mail to %s: open its token: %v", addr, err)
		}
		m.Body = domain.RenderMail(m.Body, string(tok))
	}
	match := tokenInMail.FindStringSubmatch(m.Body)
	if match == nil {
		h.t.Fatalf("no token in mail:\n%s", m.Body)
	}
	return match[1], &trellisv1.OutboxMessage{Id: m.ID, To: m.To, Subject: m.Subject, Body: m.Body}
}

// newUser registers, confirms and logs in a user; it returns the access token.
func (h *harness) newUser(uid string) string {
	h.t.Helper()
	ctx := context.Background()
	pw := userPassword
	email := uid + "@uni.example.edu"
	if _, err := h.users.Register(ctx, req(&trellisv1.RegisterRequest{
		Uid: uid, Email: email, Password: pw,
		Profile: map[string]string{"name": strings.ToUpper(uid), "phone": "+1 310 555 0100"},
	}, "")); err != nil {
		h.t.Fatalf("register %s: %v", uid, err)
	}
	tok, _ := h.lastMailTo(email)
	if _, err := h.users.ConfirmEmail(ctx, req(&trellisv1.ConfirmEmailRequest{Token: tok}, "")); err != nil {
		h.t.Fatalf("confirm %s: %v", uid, err)
	}
	return h.login(uid, pw).AccessToken
}

// violations returns the rule of each field violation of err.
func violations(err error) map[string]string {
	out := map[string]string{}
	var ce *connect.Error
	if !asConnect(err, &ce) {
		return out
	}
	for _, d := range ce.Details() {
		v, derr := d.Value()
		if derr != nil {
			continue
		}
		if fv, ok := v.(*trellisv1.FieldViolations); ok {
			for _, x := range fv.Violations {
				out[x.Field] = x.Rule
			}
		}
	}
	return out
}

func asConnect(err error, ce **connect.Error) bool {
	e, ok := err.(*connect.Error)
	if ok {
		*ce = e
	}
	return ok
}

func wantCode(t *testing.T, err error, code connect.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("want %v, got success", code)
	}
	if got := connect.CodeOf(err); got != code {
		t.Fatalf("want %v, got %v: %v", code, got, err)
	}
}

// operator is the bootstrapped administrator ("ops"), for tests that read
// the audit record and the outbox through the service directly.
var operator = &auth.Principal{UID: "ops"}
