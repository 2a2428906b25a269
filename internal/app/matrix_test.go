package app_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/trellis-testbed/trellis/internal/policy"
)

// samples are request bodies aimed at the victim's account, valid enough
// that only the authorization rule can refuse them.
var samples = map[string]string{
	"trellis.v1.Users/GetUser":        `{"uid":"victim"}`,
	"trellis.v1.Users/GetUserProfile": `{"uid":"victim"}`,
	"trellis.v1.Users/SetUserProfile": `{"uid":"victim","set":{"title":"pwned"}}`,
	"trellis.v1.Users/ChangePassword": `{"uid":"victim","newPassword":"the stranger chose this"}`,
	"trellis.v1.Users/SetUserState":   `{"uid":"victim","state":"USER_STATE_LOCKED"}`,
	"trellis.v1.Users/SetAdmin":       `{"uid":"victim","admin":true}`,
}

// call posts a JSON request the way any HTTP client can and returns the
// Connect error code ("" on success).
func (h *harness) call(t *testing.T, op, body, tok string) string {
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
		return ""
	}
	var e struct{ Code string }
	if err := json.Unmarshal(b, &e); err != nil || e.Code == "" {
		t.Fatalf("%s: status %d, body %q", op, resp.StatusCode, b)
	}
	return e.Code
}

// TestAuthorizationMatrix calls every operation of the contract without
// credentials and as an unrelated user, and expects refusal; then as an
// admin, and expects the rule to let it through.
func TestAuthorizationMatrix(t *testing.T) {
	h := newHarness(t, sqlite)
	adminTok := h.bootstrapAdmin()
	h.newUser("victim")
	stranger := h.newUser("stranger")

	var ops []string
	protoregistry.GlobalFiles.RangeFilesByPackage("trellis.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := 0; i < fd.Services().Len(); i++ {
			svc := fd.Services().Get(i)
			for j := 0; j < svc.Methods().Len(); j++ {
				m := svc.Methods().Get(j)
				if m.IsStreamingClient() || m.IsStreamingServer() {
					t.Errorf("%s is streaming: extend the matrix to streams", m.FullName())
				}
				ops = append(ops, string(svc.FullName())+"/"+string(m.Name()))
			}
		}
		return true
	})
	slices.Sort(ops)
	for _, op := range ops {
		rule, ok := policy.Rules[op]
		if !ok {
			t.Errorf("%s has no authorization rule", op)
			continue
		}
		if rule.Kind == policy.Public {
			continue // pinned by policy.TestPublicOperations
		}
		t.Run(op, func(t *testing.T) {
			body := samples[op]
			if body == "" {
				body = "{}"
				if rule.Kind == policy.SelfOrAdmin {
					body = `{"` + rule.Field + `":"victim"}`
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
			case policy.Authenticated:
				// Acts only on the caller's own session: nothing of anyone
				// else's to refuse.
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
	// And the rules do let the right caller through.
	for op, body := range samples {
		if code := h.call(t, op, body, adminTok); code == "unauthenticated" || code == "permission_denied" || code == "not_found" {
			t.Errorf("%s as admin: %s", op, code)
		}
	}
}
