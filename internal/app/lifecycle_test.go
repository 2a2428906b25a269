package app_test

import (
	"context"
	"strings"
	"testing"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
)

// TestCloseAccount: a user closes their own account, through the API, on
// both stores: refused while it owns a project or holds a live
// realization (naming them), with a wrong password, and for the last
// administrator; once closed, every credential of the account stops at
// once, the uid is kept from reuse, and the audit record keeps it.
func TestCloseAccount(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		t.Run(string(kind), func(t *testing.T) { testCloseAccount(t, kind) })
	}
}

func testCloseAccount(t *testing.T, kind storeKind) {
	h := newHarness(t, kind)
	ctx := context.Background()
	adminTok := h.bootstrapAdmin()
	alice := h.newUser("alice")
	aliceLogin := h.login("alice", userPassword)
	h.newUser("bob")

	// Things that are erased with the account: an SSH key, an API token,
	// a circle membership.
	if _, err := h.users.AddSSHKey(ctx, req(&trellisv1.AddSSHKeyRequest{Uid: "alice", PublicKey: victimSSHKey}, alice)); err != nil {
		t.Fatal(err)
	}
	tr, err := h.auth.CreateAPIToken(ctx, req(&trellisv1.CreateAPITokenRequest{Name: "ci", Scopes: []string{"read"}}, alice))
	if err != nil {
		t.Fatal(err)
	}
	apiTok := tr.Msg.Token
	// Things that keep it open: a project and a live realization.
	if resp, err := h.projects.RequestProject(ctx, req(&trellisv1.RequestProjectRequest{Name: "aproj", Description: "alice's"}, alice)); err != nil {
		t.Fatal(err)
	} else if resp.Msg.RequestId != "" {
		if _, err := h.projects.ApproveProject(ctx, req(&trellisv1.ApproveProjectRequest{Name: "aproj"}, adminTok)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.resources.RegisterResource(ctx, req(&trellisv1.RegisterResourceRequest{Name: "n1", Kind: "node", Provider: "site1"}, adminTok)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.experiments.CreateExperiment(ctx, req(&trellisv1.CreateExperimentRequest{Id: "alice:exp", Aspects: []*trellisv1.AspectInput{{Type: "layout", Name: "main", Content: []byte("nodes:\n  - name: a\n")}}}, alice)); err != nil {
		t.Fatal(err)
	}
	rz, err := h.realizations.Realize(ctx, req(&trellisv1.RealizeRequest{Experiment: "alice:exp", Project: "aproj"}, alice))
	if err != nil {
		t.Fatal(err)
	}
	rid := rz.Msg.Realization.Id

	closeAs := func(tok, pw string) error {
		_, err := h.users.CloseAccount(ctx, req(&trellisv1.CloseAccountRequest{Password: pw}, tok))
		return err
	}
	err = closeAs(alice, userPassword)
	wantCode(t, err, connect.CodeFailedPrecondition)
	for _, name := range []string{"aproj", rid} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("refusal does not name %s: %v", name, err)
		}
	}
	// An admin is refused alike.
	_, err = h.users.RemoveUser(ctx, req(&trellisv1.RemoveUserRequest{Uid: "alice"}, adminTok))
	wantCode(t, err, connect.CodeFailedPrecondition)
	if _, err := h.realizations.ForceRelease(ctx, req(&trellisv1.ForceReleaseRequest{Id: rid}, adminTok)); err != nil {
		t.Fatal(err)
	}
	err = closeAs(alice, userPassword)
	wantCode(t, err, connect.CodeFailedPrecondition)
	if !strings.Contains(err.Error(), "aproj") || strings.Contains(err.Error(), rid) {
		t.Errorf("refusal after the release: %v", err)
	}
	if _, err := h.projects.RemoveProject(ctx, req(&trellisv1.RemoveProjectRequest{Name: "aproj"}, alice)); err != nil {
		t.Fatal(err)
	}

	// The password is required and must be right.
	err = closeAs(alice, "")
	wantCode(t, err, connect.CodeInvalidArgument)
	err = closeAs(alice, "not the password")
	wantCode(t, err, connect.CodeInvalidArgument)
	if v := violations(err); v["password"] != "password.wrong" {
		t.Errorf("violations %v", v)
	}
	// The last administrator stays.
	wantCode(t, closeAs(adminTok, adminPassword), connect.CodeFailedPrecondition)
	// An admin closes its own account with its password, not RemoveUser.
	_, err = h.users.RemoveUser(ctx, req(&trellisv1.RemoveUserRequest{Uid: "ops"}, adminTok))
	wantCode(t, err, connect.CodeFailedPrecondition)

	if err := closeAs(alice, userPassword); err != nil {
		t.Fatalf("close: %v", err)
	}
	// Every credential stops at once: the access token, the refresh
	// token, the API token, the password.
	_, err = h.auth.WhoAmI(ctx, req(&trellisv1.WhoAmIRequest{}, alice))
	wantCode(t, err, connect.CodeUnauthenticated)
	_, err = h.auth.WhoAmI(ctx, req(&trellisv1.WhoAmIRequest{}, apiTok))
	wantCode(t, err, connect.CodeUnauthenticated)
	_, err = h.auth.Refresh(ctx, req(&trellisv1.RefreshRequest{RefreshToken: aliceLogin.RefreshToken}, ""))
	wantCode(t, err, connect.CodeUnauthenticated)
	_, err = h.auth.Login(ctx, req(&trellisv1.LoginRequest{Uid: "alice", Password: userPassword}, ""))
	wantCode(t, err, connect.CodeUnauthenticated)
	// The account is gone, its uid is not given out again, and the
	// refusal suggests a free one.
	_, err = h.users.GetUser(ctx, req(&trellisv1.GetUserRequest{Uid: "alice"}, adminTok))
	wantCode(t, err, connect.CodeNotFound)
	_, err = h.users.Register(ctx, req(&trellisv1.RegisterRequest{Uid: "alice", Email: "alice2@uni.example.edu", Password: userPassword, Profile: map[string]string{"name": "Alice Liddell", "phone": "+1 310 555 0100"}}, ""))
	wantCode(t, err, connect.CodeAlreadyExists)
	if !strings.Contains(err.Error(), `uid "aliddell" is free`) {
		t.Errorf("no suggestion: %v", err)
	}
	_, err = h.users.CreateUser(ctx, req(&trellisv1.CreateUserRequest{Uid: "alice", Email: "alice3@uni.example.edu", Password: userPassword, Profile: map[string]string{"name": "A", "phone": "+1 310 555 0100"}}, adminTok))
	wantCode(t, err, connect.CodeAlreadyExists)
	// Its SSH key is free for another account.
	bob := h.login("bob", userPassword).AccessToken
	if _, err := h.users.AddSSHKey(ctx, req(&trellisv1.AddSSHKeyRequest{Uid: "bob", PublicKey: victimSSHKey}, bob)); err != nil {
		t.Errorf("the closed account's SSH key is still registered: %v", err)
	}
	// The audit record keeps the uid.
	evs, err := h.admin.ListAuditEvents(ctx, req(&trellisv1.ListAuditEventsRequest{Operation: "trellis.v1.Users/CloseAccount"}, adminTok))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range evs.Msg.Events {
		found = found || (e.Object == "user:alice" && e.Outcome == "ok")
	}
	if !found {
		t.Errorf("no audit record of the closing: %v", evs.Msg.Events)
	}

	// An admin removes bob; his session ends at once.
	if _, err := h.users.RemoveUser(ctx, req(&trellisv1.RemoveUserRequest{Uid: "bob"}, adminTok)); err != nil {
		t.Fatal(err)
	}
	_, err = h.auth.WhoAmI(ctx, req(&trellisv1.WhoAmIRequest{}, bob))
	wantCode(t, err, connect.CodeUnauthenticated)
	_, err = h.users.RemoveUser(ctx, req(&trellisv1.RemoveUserRequest{Uid: "bob"}, adminTok))
	wantCode(t, err, connect.CodeNotFound)
}
