package app_test

import (
	"context"
	"strings"
	"testing"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
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
	h.addProvider(adminTok, "site1")
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
	// Nor does a project take the closed uid: what the account owned
	// (alice:exp) still carries its name.
	_, err = h.projects.RequestProject(ctx, req(&trellisv1.RequestProjectRequest{Name: "alice", Description: "squatting"}, bob))
	wantCode(t, err, connect.CodeInvalidArgument)
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

// TestCreateAndImportUsers: accounts made by admins and migrated in,
// through the API, on both stores.
func TestCreateAndImportUsers(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		t.Run(string(kind), func(t *testing.T) { testCreateAndImportUsers(t, kind) })
	}
}

// legacyAccounts are accounts of an older testbed, each with its password
// hashed in one of the formats such testbeds keep.
var legacyAccounts = []struct{ uid, hash, password string }{
	{"ada", "$2y$10$lPNMqPYyio8O/NomW4F4a.gmK1eIfEBtc0XWMxUlUW5Gx9Sp/ddbO", "analytical engine 1843"},
	{"babbage", "$6$Kq3hY8pLm2$7YgpiFFbcp54sfkOw.35AcbjpbPV0Uxkafeoke0KM9aRDDMe54iBpOd6gct35NGQ2nYudf/qs5bTAqPUAzTJu.", "difference engine 1822"},
	{"hopper", "$1$x7Gq2LpA$5xL0QPjcWwCD0bVZ1dnyT0", "cobol compiler 1959"},
	{"hamilton", "pbkdf2_sha256$260000$Zt9wQe4rUx1p$IVQNFUJChkh3t3Ooja5oHQjHZHqX00lS4EFTXJ7Wf8g=", "lunar module 1969"},
}

func testCreateAndImportUsers(t *testing.T, kind storeKind) {
	h := newHarness(t, kind)
	ctx := context.Background()
	adminTok := h.bootstrapAdmin()
	profile := func(name string) map[string]string {
		return map[string]string{"name": name, "phone": "+1 310 555 0100"}
	}
	storedHash := func(uid string) string {
		t.Helper()
		var hash string
		if err := h.srv.Store.View(ctx, func(tx store.Tx) (err error) {
			hash, err = tx.Users().PasswordHash(ctx, uid)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return hash
	}

	// CreateUser: active at once, no mail, an admin if asked.
	cr, err := h.users.CreateUser(ctx, req(&trellisv1.CreateUserRequest{Uid: "carol", Email: "carol@lab.example.org", Password: userPassword, Profile: profile("Carol Shaw"), Admin: true}, adminTok))
	if err != nil {
		t.Fatal(err)
	}
	if u := cr.Msg.User; u.State != trellisv1.UserState_USER_STATE_ACTIVE || !u.EmailVerified || !u.Admin {
		t.Errorf("created %v", u)
	}
	var mail []*domain.Mail
	if err := h.srv.Store.View(ctx, func(tx store.Tx) (err error) {
		mail, err = tx.Outbox().List(ctx, store.OutboxFilter{To: "carol@lab.example.org", Limit: 1})
		return err
	}); err != nil || len(mail) != 0 {
		t.Errorf("mail to the created account: %v %v", mail, err)
	}
	who, err := h.auth.WhoAmI(ctx, req(&trellisv1.WhoAmIRequest{}, h.login("carol", userPassword).AccessToken))
	if err != nil || !who.Msg.Admin {
		t.Errorf("carol: %v %v", who, err)
	}
	_, err = h.users.CreateUser(ctx, req(&trellisv1.CreateUserRequest{Uid: "carol", Email: "c2@lab.example.org", Password: userPassword, Profile: profile("Carol Shaw")}, adminTok))
	wantCode(t, err, connect.CodeAlreadyExists)
	if !strings.Contains(err.Error(), `uid "cshaw" is free`) {
		t.Errorf("no suggestion: %v", err)
	}
	// A taken address is not a taken uid: no suggestion.
	_, err = h.users.CreateUser(ctx, req(&trellisv1.CreateUserRequest{Uid: "carol2", Email: "carol@lab.example.org", Password: userPassword, Profile: profile("C")}, adminTok))
	wantCode(t, err, connect.CodeAlreadyExists)
	if strings.Contains(err.Error(), "is free") {
		t.Errorf("suggestion for a taken address: %v", err)
	}
	_, err = h.users.CreateUser(ctx, req(&trellisv1.CreateUserRequest{Uid: "dan", Email: "dan@lab.example.org", Password: "short", Profile: profile("D")}, adminTok))
	wantCode(t, err, connect.CodeInvalidArgument)

	// ImportUsers refuses a bad batch whole, naming each field.
	var batch []*trellisv1.ImportedUser
	for _, a := range legacyAccounts {
		batch = append(batch, &trellisv1.ImportedUser{Uid: a.uid, Email: a.uid + "@old.example.org", Profile: profile(a.uid), PasswordHash: a.hash})
	}
	bad := append([]*trellisv1.ImportedUser{}, batch...)
	bad = append(bad,
		&trellisv1.ImportedUser{Uid: "ada", Email: "ada2@old.example.org", Profile: profile("dup")},
		&trellisv1.ImportedUser{Uid: "eve", Email: "eve@old.example.org", Profile: profile("eve"), PasswordHash: "{SSHA}c2VjcmV0c2FsdA=="},
		&trellisv1.ImportedUser{Uid: "mal", Email: "mal@old.example.org", Profile: profile("mal"), State: "sleeping"},
	)
	_, err = h.users.ImportUsers(ctx, req(&trellisv1.ImportUsersRequest{Users: bad}, adminTok))
	wantCode(t, err, connect.CodeInvalidArgument)
	v := violations(err)
	for field, rule := range map[string]string{"users[4].uid": "uid.duplicate", "users[5].password_hash": "password_hash.format", "users[6].state": "state.unknown"} {
		if v[field] != rule {
			t.Errorf("violation of %s = %q, want %q (all: %v)", field, v[field], rule, v)
		}
	}
	if strings.Contains(err.Error(), "c2VjcmV0") {
		t.Errorf("the refusal shows the hash: %v", err)
	}
	// A uid taken on the server refuses the batch too, and nothing is
	// written.
	taken := append(append([]*trellisv1.ImportedUser{}, batch...), &trellisv1.ImportedUser{Uid: "carol", Email: "carol@old.example.org", Profile: profile("carol")})
	_, err = h.users.ImportUsers(ctx, req(&trellisv1.ImportUsersRequest{Users: taken}, adminTok))
	wantCode(t, err, connect.CodeAlreadyExists)
	if !strings.Contains(err.Error(), "users[4]") {
		t.Errorf("refusal does not name the entry: %v", err)
	}
	_, err = h.users.GetUser(ctx, req(&trellisv1.GetUserRequest{Uid: "ada"}, adminTok))
	wantCode(t, err, connect.CodeNotFound)

	ir, err := h.users.ImportUsers(ctx, req(&trellisv1.ImportUsersRequest{Users: batch}, adminTok))
	if err != nil {
		t.Fatal(err)
	}
	if len(ir.Msg.Users) != len(batch) {
		t.Fatalf("imported %d", len(ir.Msg.Users))
	}
	for _, a := range legacyAccounts {
		t.Run(a.uid, func(t *testing.T) {
			if got := storedHash(a.uid); got != a.hash {
				t.Fatalf("stored hash before the first login is not the imported one")
			}
			_, err := h.auth.Login(ctx, req(&trellisv1.LoginRequest{Uid: a.uid, Password: a.password + "!"}, ""))
			wantCode(t, err, connect.CodeUnauthenticated)
			if got := storedHash(a.uid); got != a.hash {
				t.Fatalf("a failed login changed the stored hash")
			}
			h.login(a.uid, a.password)
			if got := storedHash(a.uid); !strings.HasPrefix(got, "$argon2id$") {
				t.Fatalf("after the first login the stored hash is not argon2id")
			}
			h.login(a.uid, a.password) // and the new hash verifies
			_, err = h.auth.Login(ctx, req(&trellisv1.LoginRequest{Uid: a.uid, Password: a.password + "!"}, ""))
			wantCode(t, err, connect.CodeUnauthenticated)
		})
	}
	// No answer or audit record carries a legacy hash.
	evs, err := h.admin.ListAuditEvents(ctx, req(&trellisv1.ListAuditEventsRequest{PageSize: 1000}, adminTok))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs.Msg.Events {
		for _, a := range legacyAccounts {
			if strings.Contains(e.String(), a.hash[len(a.hash)-12:]) {
				t.Errorf("audit event carries %s's hash: %v", a.uid, e)
			}
		}
	}

	// Projects follow their users: approved at once, with members and
	// rights; a bad batch is refused whole, naming each field.
	_, err = h.projects.ImportProjects(ctx, req(&trellisv1.ImportProjectsRequest{Projects: []*trellisv1.ImportedProject{
		{Name: "engines", Owner: "nobody1", Description: "d"},
		{Name: "engines", Owner: "ada", Description: "d", Members: []*trellisv1.ImportedMember{{Uid: "hopper", Rights: []string{"fly"}}}},
	}}, adminTok))
	wantCode(t, err, connect.CodeInvalidArgument)
	v = violations(err)
	if v["projects[1].name"] != "name.duplicate" || v["projects[1].members[0].rights"] != "rights.unknown" {
		t.Errorf("violations %v", v)
	}
	_, err = h.projects.ImportProjects(ctx, req(&trellisv1.ImportProjectsRequest{Projects: []*trellisv1.ImportedProject{
		{Name: "engines", Owner: "ada", Description: "d"},
		{Name: "apollo", Owner: "nobody1", Description: "d"},
	}}, adminTok))
	wantCode(t, err, connect.CodeInvalidArgument)
	if v := violations(err); v["projects[1].owner"] != "uid.unknown" {
		t.Errorf("violations %v", v)
	}
	_, err = h.projects.GetProject(ctx, req(&trellisv1.GetProjectRequest{Name: "engines"}, adminTok))
	wantCode(t, err, connect.CodeNotFound)
	pr, err := h.projects.ImportProjects(ctx, req(&trellisv1.ImportProjectsRequest{Projects: []*trellisv1.ImportedProject{
		{Name: "engines", Owner: "babbage", Description: "Mechanical computation", Members: []*trellisv1.ImportedMember{{Uid: "ada", Rights: []string{"add_user", "realize_experiment"}}}},
	}}, adminTok))
	if err != nil {
		t.Fatal(err)
	}
	if len(pr.Msg.Names) != 1 {
		t.Errorf("imported %v", pr.Msg.Names)
	}
	ada := h.login("ada", "analytical engine 1843").AccessToken
	ms, err := h.projects.ListMembers(ctx, req(&trellisv1.ListMembersRequest{Name: "engines"}, ada))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range ms.Msg.Members {
		got[m.Uid] = strings.Join(m.Rights, ",")
	}
	if got["ada"] != "add_user,realize_experiment" || got["babbage"] == "" || len(got) != 2 {
		t.Errorf("members %v", got)
	}
	_, err = h.projects.ImportProjects(ctx, req(&trellisv1.ImportProjectsRequest{Projects: []*trellisv1.ImportedProject{{Name: "engines", Owner: "ada", Description: "d"}}}, adminTok))
	wantCode(t, err, connect.CodeAlreadyExists)
	_, err = h.projects.ImportProjects(ctx, req(&trellisv1.ImportProjectsRequest{Projects: []*trellisv1.ImportedProject{{Name: "hopper", Owner: "ada", Description: "d"}}}, adminTok))
	wantCode(t, err, connect.CodeInvalidArgument)
}
