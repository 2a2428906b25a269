package cli

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
	"github.com/trellis-testbed/trellis/internal/app/apptest"
	"github.com/trellis-testbed/trellis/internal/auth/password"
	"github.com/trellis-testbed/trellis/internal/auth/scram"
)

func TestLoginChallenge(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	srv.NewUser(t, "alice")
	srv.NewUser(t, "bob")

	e := newEnv(t, srv)
	r := e.run(apptest.Password+"\n", "login", "alice", "--challenge", "--password-stdin")
	if r.code != 0 {
		t.Fatalf("login --challenge: code %d, stderr %q", r.code, r.err)
	}
	if !strings.HasPrefix(r.out, "Logged in as alice") {
		t.Errorf("stdout = %q", r.out)
	}
	c := e.credentials()
	if c.UID != "alice" || c.RefreshToken == "" || whoAmI(t, srv, c.AccessToken) != "alice" {
		t.Errorf("saved credentials %+v", c)
	}
	if strings.Contains(r.out+r.err, apptest.Password) || strings.Contains(r.err, "plain HTTP") {
		t.Errorf("output: %q %q", r.out, r.err)
	}
	// The password never crossed the wire: the server's record shows a
	// challenge answered, and no password login.
	events := must(srv.Admin(t).Admin.ListAuditEvents(bg, req(&trellisv1.ListAuditEventsRequest{Object: "user:alice"})))(t).GetEvents()
	var ops []string
	for _, ev := range events {
		ops = append(ops, ev.GetOperation())
	}
	if !slices.Contains(ops, trellisv1connect.AuthChallengeResponseProcedure[1:]) || slices.Contains(ops, trellisv1connect.AuthLoginProcedure[1:]) {
		t.Errorf("alice's audit record: %q", ops)
	}

	t.Run("wrong password", func(t *testing.T) {
		e := newEnv(t, srv)
		r := e.run("not the password\n", "login", "bob", "--challenge", "--password-stdin")
		if r.code != 1 || r.err != "error: invalid uid or password\n" {
			t.Fatalf("code %d, stderr %q", r.code, r.err)
		}
		if _, err := os.Stat(e.credentialsPath()); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("credentials saved after a refusal: %v", err)
		}
	})
}

// A server that does not hold the account's verifier cannot sign its
// answer; its tokens are not saved. A real Trellis always can, so this one
// test keeps a tiny impostor: it plays the challenge correctly (with a
// verifier of its own for the password it was told) and signs with noise.
func TestLoginChallengeImpostor(t *testing.T) {
	t.Parallel()
	const pw = "correct horse"
	v, err := scram.NewVerifier(pw, password.TestParams())
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(trellisv1connect.NewAuthHandler(&impostor{v: v}))
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)

	e := &env{t: t, dir: t.TempDir(), server: hs.URL}
	r := e.run(pw+"\n", "login", "alice", "--challenge", "--password-stdin")
	if r.code == 0 || !strings.Contains(r.err, "signature") {
		t.Fatalf("code %d, stderr %q", r.code, r.err)
	}
	if _, err := os.Stat(e.credentialsPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an impostor's tokens were saved: %v", err)
	}
	if strings.Contains(r.err, "acc-impostor") {
		t.Errorf("stderr shows a token: %q", r.err)
	}
}

type impostor struct {
	trellisv1connect.UnimplementedAuthHandler
	v *scram.Verifier
	c *scram.Challenge // one login at a time
}

func (f *impostor) RequestChallenge(context.Context, *connect.Request[trellisv1.RequestChallengeRequest]) (*connect.Response[trellisv1.RequestChallengeResponse], error) {
	f.c = f.v.Challenge()
	return connect.NewResponse(&trellisv1.RequestChallengeResponse{
		ChallengeId: "ch-1", Type: scram.Type, ExpiresAt: timestamppb.New(time.Now().Add(2 * time.Minute)),
		ScramArgon2Id: &trellisv1.ScramArgon2IdChallenge{
			Salt: f.c.Salt, MemoryKib: f.c.Params.MemoryKiB, Time: f.c.Params.Time, Threads: uint32(f.c.Params.Threads),
			KeyLength: f.c.Params.KeyLen, ServerNonce: f.c.ServerNonce,
		},
	}), nil
}

func (f *impostor) ChallengeResponse(context.Context, *connect.Request[trellisv1.ChallengeResponseRequest]) (*connect.Response[trellisv1.ChallengeResponseResponse], error) {
	now := time.Now()
	return connect.NewResponse(&trellisv1.ChallengeResponseResponse{
		Tokens: &trellisv1.Tokens{
			AccessToken: "acc-impostor", AccessTokenExpiresAt: timestamppb.New(now.Add(5 * time.Minute)),
			RefreshToken: "ref-impostor", SessionId: "sess-impostor", SessionExpiresAt: timestamppb.New(now.Add(24 * time.Hour)),
		},
		ServerSignature: scram.Nonce(scram.ProofLen),
	}), nil
}
