package cli

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
	"github.com/trellis-testbed/trellis/internal/auth/password"
	"github.com/trellis-testbed/trellis/internal/auth/scram"
)

// scramFake serves the challenge exchange for one account, alice, whose
// password is fakePassword. An impostor answers with a signature of its own:
// it does not hold alice's verifier.
type scramFake struct {
	trellisv1connect.UnimplementedAuthHandler
	v        *scram.Verifier
	impostor bool

	mu         sync.Mutex
	challenges map[string]*scram.Challenge
	received   []*trellisv1.ChallengeResponseRequest
}

func (f *scramFake) RequestChallenge(_ context.Context, r *connect.Request[trellisv1.RequestChallengeRequest]) (*connect.Response[trellisv1.RequestChallengeResponse], error) {
	c := f.v.Challenge()
	f.mu.Lock()
	f.challenges["ch-1"] = c
	f.mu.Unlock()
	return connect.NewResponse(&trellisv1.RequestChallengeResponse{
		ChallengeId: "ch-1", Type: scram.Type, ExpiresAt: timestamppb.New(time.Now().Add(2 * time.Minute)),
		ScramArgon2Id: &trellisv1.ScramArgon2IdChallenge{
			Salt: c.Salt, MemoryKib: c.Params.MemoryKiB, Time: c.Params.Time, Threads: uint32(c.Params.Threads),
			KeyLength: c.Params.KeyLen, ServerNonce: c.ServerNonce,
		},
	}), nil
}

func (f *scramFake) ChallengeResponse(_ context.Context, r *connect.Request[trellisv1.ChallengeResponseRequest]) (*connect.Response[trellisv1.ChallengeResponseResponse], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.received = append(f.received, r.Msg)
	c := f.challenges[r.Msg.ChallengeId]
	delete(f.challenges, r.Msg.ChallengeId)
	if c == nil {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("challenge_id: used"))
	}
	am := scram.AuthMessage(r.Msg.Uid, r.Msg.ChallengeId, c, r.Msg.ClientNonce)
	if !f.v.Verify(am, r.Msg.ClientProof) && !f.impostor {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("invalid uid or password"))
	}
	sig := f.v.ServerSignature(am)
	if f.impostor {
		sig = scram.Nonce(scram.ProofLen)
	}
	now := time.Now()
	return connect.NewResponse(&trellisv1.ChallengeResponseResponse{
		Tokens: &trellisv1.Tokens{
			AccessToken: "acc-scram", AccessTokenExpiresAt: timestamppb.New(now.Add(5 * time.Minute)),
			RefreshToken: "ref-scram", SessionId: "sess-scram", SessionExpiresAt: timestamppb.New(now.Add(24 * time.Hour)),
		},
		ServerSignature: sig,
	}), nil
}

func newScramEnv(t *testing.T, impostor bool) (*env, *scramFake) {
	t.Helper()
	v, err := scram.NewVerifier(fakePassword, password.TestParams())
	if err != nil {
		t.Fatal(err)
	}
	f := &scramFake{v: v, impostor: impostor, challenges: map[string]*scram.Challenge{}}
	mux := http.NewServeMux()
	mux.Handle(trellisv1connect.NewAuthHandler(f))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	e := &env{t: t, dir: filepath.Join(t.TempDir(), "config", "trellis"), server: srv.URL}
	t.Setenv(EnvConfigDir, e.dir)
	t.Setenv(EnvServer, srv.URL)
	t.Setenv(EnvToken, "")
	return e, f
}

func TestLoginChallenge(t *testing.T) {
	e, f := newScramEnv(t, false)
	r := e.run(fakePassword+"\n", "login", "alice", "--challenge", "--password-stdin")
	if r.code != 0 {
		t.Fatalf("login --challenge: code %d, stderr %q", r.code, r.err)
	}
	if !strings.HasPrefix(r.out, "Logged in as alice") {
		t.Errorf("stdout = %q", r.out)
	}
	if c := e.credentials(); c.UID != "alice" || c.AccessToken != "acc-scram" || c.RefreshToken != "ref-scram" {
		t.Errorf("saved credentials %+v", c)
	}
	// The password never crossed the wire; a proof did, for alice.
	if len(f.received) != 1 {
		t.Fatalf("the server received %d answers", len(f.received))
	}
	got := f.received[0]
	if got.Password != "" || got.Uid != "alice" || len(got.ClientProof) != scram.ProofLen || len(got.ClientNonce) != scram.NonceLen {
		t.Errorf("answer sent: password %q, uid %q, proof %d bytes, nonce %d bytes", got.Password, got.Uid, len(got.ClientProof), len(got.ClientNonce))
	}
	if strings.Contains(r.out+r.err, fakePassword) || strings.Contains(r.err, "plain HTTP") {
		t.Errorf("output: %q %q", r.out, r.err)
	}
}

func TestLoginChallengeWrongPassword(t *testing.T) {
	e, _ := newScramEnv(t, false)
	r := e.run("not the password\n", "login", "alice", "--challenge", "--password-stdin")
	if r.code == 0 || !strings.Contains(r.err, "invalid uid or password") {
		t.Fatalf("code %d, stderr %q", r.code, r.err)
	}
	if _, err := os.Stat(filepath.Join(e.dir, credentialsFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("credentials saved after a refusal: %v", err)
	}
}

// TestLoginChallengeImpostor: a server that does not hold the account's
// verifier cannot sign; its tokens are not saved.
func TestLoginChallengeImpostor(t *testing.T) {
	e, _ := newScramEnv(t, true)
	r := e.run(fakePassword+"\n", "login", "alice", "--challenge", "--password-stdin")
	if r.code == 0 || !strings.Contains(r.err, "signature") {
		t.Fatalf("code %d, stderr %q", r.code, r.err)
	}
	if _, err := os.Stat(filepath.Join(e.dir, credentialsFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an impostor's tokens were saved: %v", err)
	}
	if strings.Contains(r.err, "acc-scram") {
		t.Errorf("stderr shows a token: %q", r.err)
	}
}
