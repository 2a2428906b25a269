package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/reflect/protoreflect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
	"github.com/trellis-testbed/trellis/internal/policy"
	"github.com/trellis-testbed/trellis/internal/service"
)

// samples are request bodies aimed at the victim's account, project and
// circle, valid enough that only the authorization rule can refuse them.
var samples = map[string]string{
	"trellis.v1.Projects/GetProject":              `{"name":"vproj"}`,
	"trellis.v1.Projects/GetProjectProfile":       `{"name":"vproj"}`,
	"trellis.v1.Projects/SetProjectProfile":       `{"name":"vproj","set":{"funders":"x"}}`,
	"trellis.v1.Projects/AddUsers":                `{"name":"vproj","uids":["stranger"]}`,
	"trellis.v1.Projects/RemoveUsers":             `{"name":"vproj","uids":["victim"]}`,
	"trellis.v1.Projects/ChangeRights":            `{"name":"vproj","uid":"victim","rights":["add_user"]}`,
	"trellis.v1.Projects/SetOwner":                `{"name":"vproj","uid":"stranger"}`,
	"trellis.v1.Projects/AddChildProject":         `{"parent":"vproj","child":"vproj2"}`,
	"trellis.v1.Projects/RemoveChildProject":      `{"parent":"vproj","child":"vproj2"}`,
	"trellis.v1.Projects/RemoveProject":           `{"name":"vproj"}`,
	"trellis.v1.Projects/ListMembers":             `{"name":"vproj"}`,
	"trellis.v1.Circles/CreateCircle":             `{"id":"vproj:new"}`,
	"trellis.v1.Circles/RemoveCircle":             `{"id":"victim:pals"}`,
	"trellis.v1.Circles/GetCircle":                `{"id":"victim:pals"}`,
	"trellis.v1.Circles/AddUsers":                 `{"id":"victim:pals","uids":["stranger"]}`,
	"trellis.v1.Circles/JoinCircle":               `{"id":"victim:pals"}`,
	"trellis.v1.Circles/RemoveUsers":              `{"id":"victim:pals","uids":["victim"]}`,
	"trellis.v1.Circles/ChangeRights":             `{"id":"victim:pals","uid":"victim","rights":["add_user"]}`,
	"trellis.v1.Circles/SetOwner":                 `{"id":"victim:pals","uid":"stranger"}`,
	"trellis.v1.Circles/GetCircleProfile":         `{"id":"victim:pals"}`,
	"trellis.v1.Circles/SetCircleProfile":         `{"id":"victim:pals","set":{"description":"x"}}`,
	"trellis.v1.Notifications/Send":               `{"toProject":"vproj","text":"hello"}`,
	"trellis.v1.Experiments/CreateExperiment":     `{"id":"victim:new"}`,
	"trellis.v1.Experiments/GetExperiment":        `{"id":"victim:exp"}`,
	"trellis.v1.Experiments/AddAspects":           `{"id":"victim:exp","aspects":[{"type":"data","name":"d","content":"AA=="}]}`,
	"trellis.v1.Experiments/ChangeAspects":        `{"id":"victim:exp","changes":[{"type":"layout","name":"main","revision":"1","content":"bm9kZXM6IFtdCg=="}]}`,
	"trellis.v1.Experiments/RemoveAspects":        `{"id":"victim:exp","aspects":[{"type":"layout","name":"main"}]}`,
	"trellis.v1.Experiments/ChangeAccess":         `{"id":"victim:exp","circle":"stranger:stranger","rights":["read"]}`,
	"trellis.v1.Experiments/GetExperimentProfile": `{"id":"victim:exp"}`,
	"trellis.v1.Experiments/SetExperimentProfile": `{"id":"victim:exp","set":{"description":"x"}}`,
	"trellis.v1.Experiments/RemoveExperiment":     `{"id":"victim:exp"}`,
	"trellis.v1.Experiments/SetOwner":             `{"id":"victim:exp","uid":"stranger"}`,
	"trellis.v1.Experiments/ExportExperiment":     `{"id":"victim:exp"}`,
	"trellis.v1.Experiments/ImportExperiment":     `{"id":"victim:copy","document":"e30="}`,
	"trellis.v1.Libraries/CreateLibrary":          `{"id":"victim:new"}`,
	"trellis.v1.Libraries/GetLibrary":             `{"id":"victim:lib"}`,
	"trellis.v1.Libraries/AddExperiments":         `{"id":"victim:lib","experiments":["victim:exp"]}`,
	"trellis.v1.Libraries/RemoveExperiments":      `{"id":"victim:lib","experiments":["victim:exp"]}`,
	"trellis.v1.Libraries/ChangeAccess":           `{"id":"victim:lib","circle":"stranger:stranger","rights":["read"]}`,
	"trellis.v1.Libraries/GetLibraryProfile":      `{"id":"victim:lib"}`,
	"trellis.v1.Libraries/SetLibraryProfile":      `{"id":"victim:lib","set":{"description":"x"}}`,
	"trellis.v1.Libraries/RemoveLibrary":          `{"id":"victim:lib"}`,
	"trellis.v1.Libraries/SetOwner":               `{"id":"victim:lib","uid":"stranger"}`,
	"trellis.v1.Libraries/ListLibraryExperiments": `{"id":"victim:lib"}`,
	"trellis.v1.Resources/RegisterResource":       `{"name":"stolen","kind":"node","provider":"x"}`,
	"trellis.v1.Resources/GetResource":            `{"name":"mnode"}`,
	"trellis.v1.Resources/SetResourceState":       `{"name":"mnode","state":"down"}`,
	"trellis.v1.Resources/RemoveResource":         `{"name":"mnode"}`,
	"trellis.v1.Realizations/Realize":             `{"experiment":"victim:exp","project":"vproj"}`,
	"trellis.v1.Realizations/GetRealization":      `{"id":"{{rid}}"}`,
	"trellis.v1.Realizations/Renew":               `{"id":"{{rid}}","lease":"3600s"}`,
	"trellis.v1.Realizations/ChangeBindings":      `{"id":"{{rid}}","bindings":[{"element":"a","resource":"mnode"}]}`,
	"trellis.v1.Realizations/ChangeAccess":        `{"id":"{{rid}}","circle":"stranger:stranger","rights":["read"]}`,
	"trellis.v1.Realizations/Release":             `{"id":"{{rid}}"}`,
	"trellis.v1.Realizations/ForceRelease":        `{"id":"{{rid}}"}`,
	"trellis.v1.Policy/Check":                     `{"uid":"victim","action":"project.read","object":"project:vproj"}`,
	"trellis.v1.Policy/Explain":                   `{"uid":"victim","action":"project.read","object":"project:vproj"}`,
	"trellis.v1.Policy/ListAllowed":               `{"uid":"victim","action":"project.read","kind":"project"}`,
	"trellis.v1.OidcClients/AddClient":            `{"name":"evil","redirectUris":["https://evil.example/cb"]}`,
	"trellis.v1.OidcClients/RemoveClient":         `{"name":"notebooks"}`,
	"trellis.v1.Users/RemoveUser":                 `{"uid":"victim"}`,
	"trellis.v1.Projects/ImportProjects":          `{"projects":[{"name":"stolen","owner":"stranger","description":"x"}]}`,
	"trellis.v1.Users/CreateUser":                 `{"uid":"mallory","email":"mallory@example.org","password":"mallory's long password","profile":{"name":"M"}}`,
	"trellis.v1.Users/ImportUsers":                `{"users":[{"uid":"mallory","email":"mallory@example.org","profile":{"name":"M"}}]}`,
}

// userSamples are the samples an admin may also run in the matrix without
// spoiling the others.
var userSamples = map[string]string{
	"trellis.v1.Users/GetUser":        `{"uid":"victim"}`,
	"trellis.v1.Users/GetUserProfile": `{"uid":"victim"}`,
	"trellis.v1.Users/SetUserProfile": `{"uid":"victim","set":{"title":"pwned"}}`,
	"trellis.v1.Users/ChangePassword": `{"uid":"victim","newPassword":"the stranger chose this"}`,
	"trellis.v1.Users/SetUserState":   `{"uid":"victim","state":"USER_STATE_LOCKED"}`,
	"trellis.v1.Users/SetAdmin":       `{"uid":"victim","admin":true}`,
	"trellis.v1.Users/AddSSHKey":      `{"uid":"victim","publicKey":"` + victimSSHKey + `"}`,
	"trellis.v1.Users/ListSSHKeys":    `{"uid":"victim"}`,
	"trellis.v1.Users/RemoveSSHKey":   `{"uid":"victim","fingerprint":"` + victimSSHFingerprint + `"}`,

	"trellis.v1.Admin/ListAttributes":  `{"kind":"PROFILE_KIND_USER"}`,
	"trellis.v1.Admin/AddAttribute":    `{"kind":"PROFILE_KIND_USER","attribute":{"name":"orcid","optional":true}}`,
	"trellis.v1.Admin/ChangeAttribute": `{"kind":"PROFILE_KIND_USER","name":"name","description":"the name people know you by"}`,
	"trellis.v1.Admin/RemoveAttribute": `{"kind":"PROFILE_KIND_USER","name":"title"}`,
}

// The victim's SSH key, and its fingerprint as ssh-keygen -l prints it.
const (
	victimSSHKey         = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPV2x8xN/qWHfVW/2KB4rnJjgDQVGGL0bFL1Qec6K0zi victim@laptop"
	victimSSHFingerprint = "SHA256:xnziPtDyMOQRfPFVzOYqD3QI+8/YlQR8GQ2sDDkBeOQ"
)

// streams call each streaming operation with a bearer token (or none) and
// return its error.
var streams = map[string]func(ctx context.Context, h *harness, tok string) error{
	"trellis.v1.Notifications/Watch": func(ctx context.Context, h *harness, tok string) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		s, err := trellisv1connect.NewNotificationsClient(h.http, h.url).Watch(ctx, req(&trellisv1.NotificationsWatchRequest{}, tok))
		if err != nil {
			return err
		}
		defer s.Close()
		for s.Receive() {
		}
		return s.Err()
	},
	"trellis.v1.Realizations/Watch": func(ctx context.Context, h *harness, tok string) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		s, err := trellisv1connect.NewRealizationsClient(h.http, h.url).Watch(ctx, req(&trellisv1.RealizationsWatchRequest{Id: matrixRID}, tok))
		if err != nil {
			return err
		}
		defer s.Close()
		for s.Receive() {
		}
		return s.Err()
	},
}

// matrixRID is the victim's realization in the matrix, for streams that
// name it.
var matrixRID string

// call posts a JSON request the way any HTTP client can and returns the
// Connect error code ("" on success).
func (h *harness) call(t *testing.T, op, body, tok string) string {
	t.Helper()
	code, _ := h.callBody(t, op, body, tok)
	return code
}

// callBody is call that also returns the answer's body.
func (h *harness) callBody(t *testing.T, op, body, tok string) (string, string) {
	t.Helper()
	r, err := http.NewRequest(http.MethodPost, h.url+"/"+op, bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/json")
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := h.http.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		return "", string(b)
	}
	var e struct{ Code string }
	if err := json.Unmarshal(b, &e); err != nil || e.Code == "" {
		t.Fatalf("%s: status %d, body %q", op, resp.StatusCode, b)
	}
	return e.Code, string(b)
}

// strangerCodes pins what an unrelated, powerless user gets from each
// operation that names the victim's things, where it is not not_found
// (objects a caller may not know exist are not found; a refusal that
// reveals nothing is permission_denied), and from the operations every
// authenticated caller may call ("" is success).
var strangerCodes = map[string]string{
	"trellis.v1.Experiments/CreateExperiment": "permission_denied", // only victim may create victim:*
	"trellis.v1.Experiments/ImportExperiment": "permission_denied",
	"trellis.v1.Libraries/CreateLibrary":      "permission_denied",
}

// authenticatedCodes pins what the stranger gets from the operations any
// authenticated caller may call, with the sample (or empty) request; ""
// is success. The answer must then mention none of the victim's things.
var authenticatedCodes = map[string]string{
	"trellis.v1.Auth/CreateAPIToken":           "invalid_argument", // a name is required
	"trellis.v1.Auth/RevokeAPIToken":           "invalid_argument",
	"trellis.v1.Auth/IssueSSHCertificate":      "invalid_argument", // a public key is required
	"trellis.v1.Projects/RequestProject":       "invalid_argument",
	"trellis.v1.Projects/JoinProject":          "invalid_argument",
	"trellis.v1.Notifications/Mark":            "invalid_argument",
	"trellis.v1.ext.auth.oidc.v1.Login/Unlink": "invalid_argument",
	"trellis.v1.Notifications/AcceptRequest":   "not_found",
	"trellis.v1.Notifications/DeclineRequest":  "not_found",
	"trellis.v1.Users/CloseAccount":            "invalid_argument", // the password is required
}

// victimMarks are strings that name the victim's things: no answer to the
// stranger may contain one.
var victimMarks = []string{"victim", "vproj", "mnode"}

// TestAuthorizationMatrix calls every operation of the contract without
// credentials and as an unrelated user, on both stores, and expects the
// one exact answer each rule gives; then as an admin, and expects the rule
// to let it through.
func TestAuthorizationMatrix(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		t.Run(string(kind), func(t *testing.T) { testAuthorizationMatrix(t, kind) })
	}
}

func testAuthorizationMatrix(t *testing.T, kind storeKind) {
	h := newHarness(t, kind)
	ctx := context.Background()
	adminTok := h.bootstrapAdmin()
	victim := h.newUser("victim")
	stranger := h.newUser("stranger")
	leaver := h.newUser("leaver") // logs out in the matrix
	// The victim holds the SSH key the samples name: there is something
	// for the stranger to take, and for the admin to remove.
	if code := h.call(t, "trellis.v1.Users/AddSSHKey", userSamples["trellis.v1.Users/AddSSHKey"], victim); code != "" {
		t.Fatalf("victim adding an SSH key: %s", code)
	}
	// The victim has an approved project with a nested one, and a circle.
	for _, name := range []string{"vproj", "vproj2"} {
		resp, err := h.projects.RequestProject(ctx, req(&trellisv1.RequestProjectRequest{Name: name, Description: "victim's"}, victim))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Msg.RequestId == "" {
			continue // the victim is powerful by now: no vetting
		}
		if _, err := h.projects.ApproveProject(ctx, req(&trellisv1.ApproveProjectRequest{Name: name}, adminTok)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.circles.CreateCircle(ctx, req(&trellisv1.CreateCircleRequest{Id: "victim:pals"}, victim)); err != nil {
		t.Fatal(err)
	}
	// ... an experiment realized on a node, and a library.
	h.addProvider(adminTok, "site1")
	if _, err := h.resources.RegisterResource(ctx, req(&trellisv1.RegisterResourceRequest{Name: "mnode", Kind: "node", Provider: "site1"}, adminTok)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.experiments.CreateExperiment(ctx, req(&trellisv1.CreateExperimentRequest{Id: "victim:exp", Aspects: []*trellisv1.AspectInput{{Type: "layout", Name: "main", Content: []byte("nodes:\n  - name: a\n")}}}, victim)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.libraries.CreateLibrary(ctx, req(&trellisv1.CreateLibraryRequest{Id: "victim:lib"}, victim)); err != nil {
		t.Fatal(err)
	}
	rz, err := h.realizations.Realize(ctx, req(&trellisv1.RealizeRequest{Experiment: "victim:exp", Project: "vproj"}, victim))
	if err != nil {
		t.Fatal(err)
	}
	rid := rz.Msg.Realization.Id
	matrixRID = rid

	var ops []string
	policy.ContractServices(func(svc protoreflect.ServiceDescriptor) {
		for j := 0; j < svc.Methods().Len(); j++ {
			m := svc.Methods().Get(j)
			if op := string(svc.FullName()) + "/" + string(m.Name()); (m.IsStreamingClient() || m.IsStreamingServer()) && streams[op] == nil {
				t.Errorf("%s is streaming: add it to streams", op)
			}
			ops = append(ops, string(svc.FullName())+"/"+string(m.Name()))
		}
	})
	slices.Sort(ops)
	for _, op := range ops {
		o, ok := service.Operation(op)
		if !ok {
			t.Errorf("%s has no authorization rule", op)
			continue
		}
		rule := o.Rule
		if rule.Kind == policy.Public {
			continue // pinned by policy.TestPublicOperations
		}
		t.Run(op, func(t *testing.T) {
			if stream := streams[op]; stream != nil {
				if code := connect.CodeOf(stream(ctx, h, "")); code != connect.CodeUnauthenticated {
					t.Errorf("stream without credentials: %v, want unauthenticated", code)
				}
				switch rule.Kind {
				case policy.Authenticated, policy.Listing:
				case policy.Object:
					// Objects the stranger cannot see are "not found".
					if code := connect.CodeOf(stream(ctx, h, stranger)); code != connect.CodeNotFound {
						t.Errorf("stream as an unrelated user: %v, want not found", code)
					}
				default:
					t.Errorf("streams are checked for credentials and objects only; rule %v needs more", rule)
				}
				return
			}
			body := strings.ReplaceAll(samples[op], "{{rid}}", rid)
			if body == "" {
				body = userSamples[op]
			}
			if body == "" {
				body = "{}"
				if rule.Kind == policy.SelfOrAdmin {
					body = `{"uid":"victim"}`
				}
			}
			if code := h.call(t, op, body, ""); code != "unauthenticated" {
				t.Errorf("without credentials: %q, want unauthenticated", code)
			}
			if code := h.call(t, op, body, "not-a-token"); code != "unauthenticated" {
				t.Errorf("with a bogus token: %q, want unauthenticated", code)
			}
			switch rule.Kind {
			case policy.SelfOrAdmin:
				// The stranger learns nothing: the victim is "not found".
				if code := h.call(t, op, body, stranger); code != "not_found" {
					t.Errorf("as an unrelated user: %q, want not_found", code)
				}
			case policy.Admin:
				if code := h.call(t, op, body, stranger); code != "permission_denied" {
					t.Errorf("as an unrelated user: %q, want permission_denied", code)
				}
			case policy.Object:
				// Objects the stranger cannot see are "not found"; those it
				// may know of but not touch are "permission denied".
				want := strangerCodes[op]
				if want == "" {
					want = "not_found"
				}
				if code := h.call(t, op, body, stranger); code != want {
					t.Errorf("as an unrelated user: %q, want %q", code, want)
				}
			case policy.Powerful:
				if code := h.call(t, op, body, stranger); code != "permission_denied" {
					t.Errorf("as a powerless user: %q, want permission_denied", code)
				}
			case policy.Site:
				// A site's own operation: no user passes, an admin neither.
				for _, tok := range []string{stranger, adminTok} {
					if code := h.call(t, op, body, tok); code != "permission_denied" {
						t.Errorf("as a user: %q, want permission_denied", code)
					}
				}
			case policy.Authenticated, policy.Listing, policy.Consent:
				// Acts only on what the caller owns or is party to, or
				// shows only what it may see: the stranger gets its own
				// (empty) share and nothing of the victim's.
				tok := stranger
				if op == "trellis.v1.Auth/Logout" {
					tok = leaver
				}
				code, answer := h.callBody(t, op, body, tok)
				if want := authenticatedCodes[op]; code != want {
					t.Errorf("as an unrelated user: %q, want %q (%s)", code, want, answer)
				}
				for _, m := range victimMarks {
					if strings.Contains(answer, m) {
						t.Errorf("the answer to an unrelated user names %q: %s", m, answer)
					}
				}
			default:
				t.Fatalf("rule kind %v not covered by the matrix", rule.Kind)
			}
		})
	}
	// Nothing the stranger tried took effect.
	if code := h.call(t, "trellis.v1.Users/GetUserProfile", `{"uid":"victim"}`, adminTok); code != "" {
		t.Fatalf("admin reading victim's profile: %s", code)
	}
	h.login("victim", userPassword)
	// The victim's project is intact.
	if code := h.call(t, "trellis.v1.Projects/ListMembers", `{"name":"vproj"}`, victim); code != "" {
		t.Fatalf("victim's project: %s", code)
	}
	// And the rules do let the right caller through.
	for op, body := range userSamples {
		if code := h.call(t, op, body, adminTok); code == "unauthenticated" || code == "permission_denied" || code == "not_found" {
			t.Errorf("%s as admin: %s", op, code)
		}
	}
}
