package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
)

// fakeServer is a small in-memory Trellis: enough of Auth, Users, Admin and
// ApiInfo to drive the client, recording what the client sent.
type fakeServer struct {
	trellisv1connect.UnimplementedAuthHandler
	trellisv1connect.UnimplementedUsersHandler
	trellisv1connect.UnimplementedAdminHandler
	trellisv1connect.UnimplementedApiInfoHandler

	URL string

	mu        sync.Mutex
	n         int
	access    map[string]string // valid access token -> uid
	refresh   map[string]string // unspent refresh token -> uid
	accessTTL time.Duration

	passwords    []string          // passwords Login received
	authHeaders  map[string]string // procedure -> last Authorization header
	refreshCalls int
	logoutCalls  int
	changePW     []*trellisv1.ChangePasswordRequest
	registered   []*trellisv1.RegisterRequest
	setProfile   []*trellisv1.SetUserProfileRequest

	social  *fakeSocial  // Projects, Circles, Notifications, Policy
	testbed *fakeTestbed // Experiments, Libraries, Resources, Realizations
}

const fakePassword = "correct horse"

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	f := &fakeServer{
		access:      map[string]string{},
		refresh:     map[string]string{},
		authHeaders: map[string]string{},
		accessTTL:   5 * time.Minute,
	}
	mux := http.NewServeMux()
	mux.Handle(trellisv1connect.NewAuthHandler(f))
	mux.Handle(trellisv1connect.NewUsersHandler(f))
	mux.Handle(trellisv1connect.NewAdminHandler(f))
	mux.Handle(trellisv1connect.NewApiInfoHandler(f))
	f.social = mountSocial(f, mux)
	f.testbed = mountTestbed(f.social, mux)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.authHeaders[r.URL.Path] = r.Header.Get("Authorization")
		f.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// issue makes a token pair for uid; callers hold mu.
func (f *fakeServer) issue(uid string) *trellisv1.Tokens {
	f.n++
	acc, ref := fmt.Sprintf("acc-%d", f.n), fmt.Sprintf("ref-%d", f.n)
	f.access[acc] = uid
	f.refresh[ref] = uid
	now := time.Now()
	return &trellisv1.Tokens{
		AccessToken:          acc,
		AccessTokenExpiresAt: timestamppb.New(now.Add(f.accessTTL)),
		RefreshToken:         ref,
		SessionId:            "sess-1",
		SessionExpiresAt:     timestamppb.New(now.Add(24 * time.Hour)),
	}
}

// grant makes tok a valid access token for uid, for tests that write the
// credentials file themselves.
func (f *fakeServer) grant(tok, uid string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.access[tok] = uid
}

func (f *fakeServer) grantRefresh(tok, uid string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refresh[tok] = uid
}

func (f *fakeServer) header(proc string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.authHeaders[proc]
}

func (f *fakeServer) caller(h http.Header) (string, error) {
	tok, ok := strings.CutPrefix(h.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	defer f.mu.Unlock()
	if uid, valid := f.access[tok]; ok && valid {
		return uid, nil
	}
	return "", connect.NewError(connect.CodeUnauthenticated, errors.New("invalid or expired credentials"))
}

func (f *fakeServer) Login(_ context.Context, req *connect.Request[trellisv1.LoginRequest]) (*connect.Response[trellisv1.LoginResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.passwords = append(f.passwords, req.Msg.GetPassword())
	if req.Msg.GetPassword() != fakePassword {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("wrong user id or password"))
	}
	resp := &trellisv1.LoginResponse{Tokens: f.issue(req.Msg.GetUid())}
	if req.Msg.GetIssueClientCertificate() {
		resp.ClientCertificatePem, resp.ClientKeyPem = fakeClientCertificate(req.Msg.GetUid())
	}
	return connect.NewResponse(resp), nil
}

func (f *fakeServer) Refresh(_ context.Context, req *connect.Request[trellisv1.RefreshRequest]) (*connect.Response[trellisv1.RefreshResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refreshCalls++
	uid, ok := f.refresh[req.Msg.GetRefreshToken()]
	if !ok {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("refresh token spent or unknown"))
	}
	delete(f.refresh, req.Msg.GetRefreshToken())
	return connect.NewResponse(&trellisv1.RefreshResponse{Tokens: f.issue(uid)}), nil
}

func (f *fakeServer) Logout(_ context.Context, req *connect.Request[trellisv1.LogoutRequest]) (*connect.Response[trellisv1.LogoutResponse], error) {
	if _, err := f.caller(req.Header()); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logoutCalls++
	clear(f.access)
	clear(f.refresh)
	return connect.NewResponse(&trellisv1.LogoutResponse{}), nil
}

func (f *fakeServer) WhoAmI(_ context.Context, req *connect.Request[trellisv1.WhoAmIRequest]) (*connect.Response[trellisv1.WhoAmIResponse], error) {
	uid, err := f.caller(req.Header())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.WhoAmIResponse{Uid: uid, SessionId: "sess-1"}), nil
}

func fakeUser(uid string) *trellisv1.User {
	return &trellisv1.User{
		Uid:           uid,
		Email:         uid + "@example.org",
		EmailVerified: true,
		State:         trellisv1.UserState_USER_STATE_ACTIVE,
		CreatedAt:     timestamppb.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)),
	}
}

func (f *fakeServer) GetUser(_ context.Context, req *connect.Request[trellisv1.GetUserRequest]) (*connect.Response[trellisv1.GetUserResponse], error) {
	uid, err := f.caller(req.Header())
	if err != nil {
		return nil, err
	}
	if req.Msg.GetUid() != "" {
		uid = req.Msg.GetUid()
	}
	return connect.NewResponse(&trellisv1.GetUserResponse{User: fakeUser(uid)}), nil
}

// ListUsers serves users u0..u4 two per page.
func (f *fakeServer) ListUsers(_ context.Context, req *connect.Request[trellisv1.ListUsersRequest]) (*connect.Response[trellisv1.ListUsersResponse], error) {
	if _, err := f.caller(req.Header()); err != nil {
		return nil, err
	}
	start := 0
	if tok := req.Msg.GetPageToken(); tok != "" {
		fmt.Sscanf(tok, "p%d", &start)
	}
	resp := &trellisv1.ListUsersResponse{}
	for i := start; i < 5 && i < start+2; i++ {
		resp.Users = append(resp.Users, fakeUser(fmt.Sprintf("u%d", i)))
	}
	if start+2 < 5 {
		resp.NextPageToken = fmt.Sprintf("p%d", start+2)
	}
	return connect.NewResponse(resp), nil
}

func (f *fakeServer) GetUserProfile(_ context.Context, req *connect.Request[trellisv1.GetUserProfileRequest]) (*connect.Response[trellisv1.GetUserProfileResponse], error) {
	uid, err := f.caller(req.Header())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.GetUserProfileResponse{Uid: uid, Attributes: []*trellisv1.ProfileAttribute{
		{Name: "name", Value: "Alice Liddell", Access: trellisv1.AttributeAccess_ATTRIBUTE_ACCESS_READ_WRITE},
		{Name: "phone", Value: "+1 310 555 0100", Access: trellisv1.AttributeAccess_ATTRIBUTE_ACCESS_READ_WRITE},
	}}), nil
}

// SetUserProfile refuses "phone" values with letters, like the real format
// check, and reports every attribute.
func (f *fakeServer) SetUserProfile(_ context.Context, req *connect.Request[trellisv1.SetUserProfileRequest]) (*connect.Response[trellisv1.SetUserProfileResponse], error) {
	if _, err := f.caller(req.Header()); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.setProfile = append(f.setProfile, req.Msg)
	f.mu.Unlock()
	resp := &trellisv1.SetUserProfileResponse{}
	for _, k := range sortedKeys(req.Msg.GetSet()) {
		v := req.Msg.GetSet()[k]
		switch {
		case k == "phone" && strings.ContainsAny(v, "abcdefghijklmnopqrstuvwxyz"):
			resp.Changes = append(resp.Changes, &trellisv1.AttributeChange{Name: k, Rule: "format", Reason: "a telephone number"})
		case k == "name" && v == "Alice Liddell":
			resp.Changes = append(resp.Changes, &trellisv1.AttributeChange{Name: k})
		default:
			resp.Changes = append(resp.Changes, &trellisv1.AttributeChange{Name: k, Changed: true})
		}
	}
	for _, k := range req.Msg.GetClear() {
		resp.Changes = append(resp.Changes, &trellisv1.AttributeChange{Name: k, Changed: true})
	}
	return connect.NewResponse(resp), nil
}

func (f *fakeServer) GetProfileDescription(context.Context, *connect.Request[trellisv1.GetProfileDescriptionRequest]) (*connect.Response[trellisv1.GetProfileDescriptionResponse], error) {
	return connect.NewResponse(&trellisv1.GetProfileDescriptionResponse{Attributes: []*trellisv1.AttributeDescription{
		{Name: "phone", Description: "Telephone number", Access: trellisv1.AttributeAccess_ATTRIBUTE_ACCESS_READ_WRITE, DataType: trellisv1.AttributeDataType_ATTRIBUTE_DATA_TYPE_STRING, FormatDescription: "a telephone number", OrderingHint: 130},
		{Name: "name", Description: "Full name", Access: trellisv1.AttributeAccess_ATTRIBUTE_ACCESS_READ_WRITE, DataType: trellisv1.AttributeDataType_ATTRIBUTE_DATA_TYPE_STRING, OrderingHint: 10},
	}}), nil
}

// Register refuses a malformed uid the way the server does: invalid argument
// with a FieldViolations detail.
func (f *fakeServer) Register(_ context.Context, req *connect.Request[trellisv1.RegisterRequest]) (*connect.Response[trellisv1.RegisterResponse], error) {
	f.mu.Lock()
	f.registered = append(f.registered, req.Msg)
	f.mu.Unlock()
	if strings.ContainsAny(req.Msg.GetUid(), "!A") {
		cerr := connect.NewError(connect.CodeInvalidArgument, errors.New("invalid registration"))
		d, err := connect.NewErrorDetail(&trellisv1.FieldViolations{Violations: []*trellisv1.FieldViolation{
			{Field: "uid", Rule: "uid.format", Description: "lower-case letters, digits and _ only"},
			{Field: "profile.phone", Rule: "profile.format", Description: "a telephone number"},
		}})
		if err != nil {
			return nil, err
		}
		cerr.AddDetail(d)
		return nil, cerr
	}
	u := fakeUser(req.Msg.GetUid())
	u.State = trellisv1.UserState_USER_STATE_PENDING_EMAIL
	return connect.NewResponse(&trellisv1.RegisterResponse{User: u}), nil
}

func (f *fakeServer) ChangePassword(_ context.Context, req *connect.Request[trellisv1.ChangePasswordRequest]) (*connect.Response[trellisv1.ChangePasswordResponse], error) {
	if _, err := f.caller(req.Header()); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.changePW = append(f.changePW, req.Msg)
	return connect.NewResponse(&trellisv1.ChangePasswordResponse{}), nil
}

func (f *fakeServer) SetUserState(_ context.Context, req *connect.Request[trellisv1.SetUserStateRequest]) (*connect.Response[trellisv1.SetUserStateResponse], error) {
	if _, err := f.caller(req.Header()); err != nil {
		return nil, err
	}
	u := fakeUser(req.Msg.GetUid())
	u.State = req.Msg.GetState()
	return connect.NewResponse(&trellisv1.SetUserStateResponse{User: u}), nil
}

func (f *fakeServer) ListOutbox(_ context.Context, req *connect.Request[trellisv1.ListOutboxRequest]) (*connect.Response[trellisv1.ListOutboxResponse], error) {
	if _, err := f.caller(req.Header()); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ListOutboxResponse{Messages: []*trellisv1.OutboxMessage{{
		Id:        7,
		CreatedAt: timestamppb.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)),
		To:        "alice@example.org",
		Subject:   "Confirm your e-mail",
		Body:      "Your token: tok-123\n\x1b[31mno escapes\n",
	}}}), nil
}

func (f *fakeServer) ListAuditEvents(_ context.Context, req *connect.Request[trellisv1.ListAuditEventsRequest]) (*connect.Response[trellisv1.ListAuditEventsResponse], error) {
	if _, err := f.caller(req.Header()); err != nil {
		return nil, err
	}
	return connect.NewResponse(&trellisv1.ListAuditEventsResponse{Events: []*trellisv1.AuditEvent{{
		Id: 1, Time: req.Msg.GetSince(), Actor: req.Msg.GetActor(), Operation: "trellis.v1.Users/Register", Object: "user:bob", Outcome: "ok",
	}}}), nil
}

func (f *fakeServer) GetVersion(context.Context, *connect.Request[trellisv1.GetVersionRequest]) (*connect.Response[trellisv1.GetVersionResponse], error) {
	return connect.NewResponse(&trellisv1.GetVersionResponse{ApiVersion: "v1", Version: "v9.9.9", GoVersion: "go1.26"}), nil
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }

// env is one test's client environment: a config directory and a server.
type env struct {
	t      *testing.T
	srv    *fakeServer
	dir    string
	server string
}

// newEnv points the client at a fresh fake server and config directory through
// the environment, as the end-to-end test does, and clears TRELLIS_TOKEN so
// that the developer's own cannot leak in.
func newEnv(t *testing.T) *env {
	t.Helper()
	srv := newFakeServer(t)
	e := &env{t: t, srv: srv, dir: filepath.Join(t.TempDir(), "config", "trellis"), server: srv.URL}
	t.Setenv(EnvConfigDir, e.dir)
	t.Setenv(EnvServer, srv.URL)
	t.Setenv(EnvToken, "")
	return e
}

type result struct {
	out, err string
	code     int
}

// run executes one command line the way main does.
func (e *env) run(stdin string, args ...string) result {
	e.t.Helper()
	var out, errb bytes.Buffer
	streams := Streams{In: strings.NewReader(stdin), Out: &out, Err: &errb}
	root := NewRoot(streams)
	root.SetArgs(args)
	code := Execute(root, streams)
	return result{out: out.String(), err: errb.String(), code: code}
}

// login saves credentials directly, as if `trellis login` had run, with an
// access token valid for ttl.
func (e *env) login(uid string, ttl time.Duration) *credentials {
	e.t.Helper()
	c := &credentials{
		Server:               e.server,
		UID:                  uid,
		AccessToken:          "acc-saved",
		AccessTokenExpiresAt: time.Now().Add(ttl),
		RefreshToken:         "ref-saved",
		SessionID:            "sess-1",
		SessionExpiresAt:     time.Now().Add(24 * time.Hour),
	}
	if err := (credStore{dir: e.dir}).save(c); err != nil {
		e.t.Fatal(err)
	}
	e.srv.grant("acc-saved", uid)
	e.srv.grantRefresh("ref-saved", uid)
	return c
}

func (e *env) credentials() *credentials {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, credentialsFileName))
	if err != nil {
		e.t.Fatal(err)
	}
	var c credentials
	if err := json.Unmarshal(b, &c); err != nil {
		e.t.Fatal(err)
	}
	return &c
}
