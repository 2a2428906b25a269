package cli

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
)

// fakeAPITokens is the fake server's API tokens, kept beside it.
type fakeAPITokens struct {
	mu      sync.Mutex
	created []*trellisv1.CreateAPITokenRequest
	tokens  []*trellisv1.APIToken
}

var fakeTokenState sync.Map // *fakeServer -> *fakeAPITokens

func (f *fakeServer) apiTokens() *fakeAPITokens {
	v, _ := fakeTokenState.LoadOrStore(f, &fakeAPITokens{})
	return v.(*fakeAPITokens)
}

const fakeAPITokenValue = "trls_aaaaaaaaaaaaaaaaaaaaaaaaaa_SECRETSECRETSECRETSECRETSECRETSECRETSEC"

func (f *fakeServer) CreateAPIToken(_ context.Context, req *connect.Request[trellisv1.CreateAPITokenRequest]) (*connect.Response[trellisv1.CreateAPITokenResponse], error) {
	if _, err := f.caller(req.Header()); err != nil {
		return nil, err
	}
	s := f.apiTokens()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.created = append(s.created, req.Msg)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	t := &trellisv1.APIToken{
		Name: req.Msg.Name, Scopes: req.Msg.Scopes, CreatedAt: timestamppb.New(now),
		ExpiresAt: timestamppb.New(now.Add(req.Msg.GetExpires().AsDuration())),
	}
	s.tokens = append(s.tokens, t)
	return connect.NewResponse(&trellisv1.CreateAPITokenResponse{Token: fakeAPITokenValue, ApiToken: t}), nil
}

func (f *fakeServer) ListAPITokens(_ context.Context, req *connect.Request[trellisv1.ListAPITokensRequest]) (*connect.Response[trellisv1.ListAPITokensResponse], error) {
	if _, err := f.caller(req.Header()); err != nil {
		return nil, err
	}
	s := f.apiTokens()
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := &trellisv1.ListAPITokensResponse{}
	for _, t := range s.tokens {
		resp.ApiTokens = append(resp.ApiTokens, proto.CloneOf(t))
	}
	return connect.NewResponse(resp), nil
}

func (f *fakeServer) RevokeAPIToken(_ context.Context, req *connect.Request[trellisv1.RevokeAPITokenRequest]) (*connect.Response[trellisv1.RevokeAPITokenResponse], error) {
	if _, err := f.caller(req.Header()); err != nil {
		return nil, err
	}
	s := f.apiTokens()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		if t.Name == req.Msg.Name {
			t.RevokedAt = timestamppb.New(time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC))
			return connect.NewResponse(&trellisv1.RevokeAPITokenResponse{}), nil
		}
	}
	return nil, notFound("API token " + req.Msg.Name)
}

func TestTokenCreatePrintsTheTokenOnce(t *testing.T) {
	e := newEnv(t)
	e.login("alice", time.Hour)
	r := e.run("", "token", "create", "ci", "--scope", "read", "--scope", "trellis.v1.Experiments/*", "--expires", "30d")
	if r.code != 0 {
		t.Fatalf("code %d, err %q", r.code, r.err)
	}
	// The token alone on standard output, for $(...); the rest on stderr.
	if r.out != fakeAPITokenValue+"\n" {
		t.Errorf("stdout %q, want the token alone", r.out)
	}
	if !strings.Contains(r.err, "shown this once") || strings.Contains(r.err, "SECRET") {
		t.Errorf("stderr %q", r.err)
	}
	s := e.srv.apiTokens()
	got := s.created[0]
	if got.Name != "ci" || strings.Join(got.Scopes, " ") != "read trellis.v1.Experiments/*" || got.GetExpires().AsDuration() != 30*24*time.Hour {
		t.Errorf("sent %v", got)
	}

	// 12h form; without --expires the server's default applies.
	if r := e.run("", "token", "create", "short", "--scope", "all", "--expires", "12h"); r.code != 0 {
		t.Fatalf("code %d, err %q", r.code, r.err)
	}
	if d := s.created[1].GetExpires().AsDuration(); d != 12*time.Hour {
		t.Errorf("expires %v", d)
	}
	if r := e.run("", "token", "create", "dflt", "--scope", "read"); r.code != 0 || s.created[2].Expires != nil {
		t.Fatalf("code %d, err %q, expires %v", r.code, r.err, s.created[2].Expires)
	}

	// The list shows no secret; revoke marks one revoked.
	if r := e.run("", "token", "revoke", "ci"); r.code != 0 || !strings.Contains(r.out, "Revoked API token ci") {
		t.Fatalf("revoke: code %d, out %q, err %q", r.code, r.out, r.err)
	}
	r = e.run("", "token", "list")
	if r.code != 0 || !strings.Contains(r.out, "LAST USED") || !strings.Contains(r.out, "revoked") || !strings.Contains(r.out, "never") ||
		strings.Contains(r.out, "SECRET") {
		t.Fatalf("list: code %d, out %q, err %q", r.code, r.out, r.err)
	}
	if r := e.run("", "token", "revoke", "nope"); r.code == 0 {
		t.Fatalf("revoking an unknown token succeeded: %q", r.out)
	}
}

func TestTokenCreateUsage(t *testing.T) {
	e := newEnv(t)
	e.login("alice", time.Hour)
	for _, args := range [][]string{
		{"token", "create", "ci"}, // no scope
		{"token", "create", "ci", "--scope", "read", "--expires", "soon"}, // bad duration
		{"token", "create", "ci", "--scope", "read", "--expires", "-1d"},  // not positive
		{"token", "create", "--scope", "read"},                            // no name
	} {
		r := e.run("", args...)
		if r.code != 1 || !strings.HasPrefix(r.err, "error: ") {
			t.Errorf("%v: code %d, err %q; want a refusal before any request", args, r.code, r.err)
		}
	}
	if n := len(e.srv.apiTokens().created); n != 0 {
		t.Errorf("%d requests sent for bad command lines", n)
	}
}
