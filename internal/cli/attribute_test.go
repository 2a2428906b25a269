package cli

import (
	"slices"
	"strings"
	"testing"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/app/apptest"
)

func TestAdminAttribute(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	srv.NewUser(t, "alice")
	admin := as(t, srv, apptest.AdminUID)
	alice := as(t, srv, "alice")
	describeLibrary := func() *trellisv1.AttributeDescription {
		resp := must(srv.As(t, "alice").Libraries.GetProfileDescription(bg, req(&trellisv1.LibrariesGetProfileDescriptionRequest{})))(t)
		for _, a := range resp.GetAttributes() {
			if a.GetName() == "topic" {
				return a
			}
		}
		return nil
	}
	steps := []struct {
		name     string
		e        *env
		args     []string
		wantCode int
		wantOut  string // substring of stdout
		wantErr  string // substring of stderr
		check    func(t *testing.T)
	}{
		{
			name: "add", e: admin,
			args:    []string{"admin", "attribute", "add", "library", "topic", "--required", "--type", "list", "--format", "[a-z]+", "--format-description", "lower-case words", "--description", "Topics", "--order", "5", "--max-length", "100"},
			wantOut: "Added library attribute topic.\n",
			check: func(t *testing.T) {
				a := describeLibrary()
				if a == nil || a.GetOptional() || a.GetFormat() != "[a-z]+" || a.GetDataType() != trellisv1.AttributeDataType_ATTRIBUTE_DATA_TYPE_LIST || a.GetOrderingHint() != 5 {
					t.Errorf("library profile description reports topic as %v", a)
				}
			},
		},
		{
			name: "list", e: admin, args: []string{"admin", "attribute", "list", "library"},
			wantOut: "topic        list    read_write  yes       100   5      no      [a-z]+  Topics\n",
		},
		{
			name: "a required attribute refuses creation, naming it", e: admin,
			args: []string{"library", "create", apptest.AdminUID + ":papers"}, wantCode: 1,
			wantErr: "profile.topic: attribute is required (profile.required)",
		},
		{
			name: "given, it is kept", e: admin,
			args:    []string{"library", "create", apptest.AdminUID + ":papers", "--profile", "topic=networks, security"},
			wantOut: "Created library",
			check: func(t *testing.T) {
				p := must(srv.Admin(t).Libraries.GetLibraryProfile(bg, req(&trellisv1.GetLibraryProfileRequest{Id: apptest.AdminUID + ":papers"})))(t)
				if !slices.ContainsFunc(p.GetAttributes(), func(a *trellisv1.ProfileAttribute) bool {
					return a.GetName() == "topic" && a.GetValue() == "networks, security"
				}) {
					t.Errorf("library profile %v lacks the topic given", p.GetAttributes())
				}
			},
		},
		{
			name: "change", e: admin, args: []string{"admin", "attribute", "change", "library", "topic", "--optional", "--access", "read-only"},
			wantOut: "Changed library attribute topic.\n",
			check: func(t *testing.T) {
				a := describeLibrary()
				if a == nil || !a.GetOptional() || a.GetAccess() != trellisv1.AttributeAccess_ATTRIBUTE_ACCESS_READ_ONLY || a.GetFormat() != "[a-z]+" {
					t.Errorf("after change, topic is %v; want optional, read-only, format kept", a)
				}
			},
		},
		{
			name: "a system attribute stays", e: admin, args: []string{"admin", "attribute", "remove", "user", "email"}, wantCode: 1,
			wantErr: "the system depends on user profile attribute \"email\"",
		},
		{
			name: "not for users", e: alice, args: []string{"admin", "attribute", "list", "user"}, wantCode: 1,
			wantErr: "administrators only",
		},
		{
			name: "remove", e: admin, args: []string{"admin", "attribute", "remove", "library", "topic"},
			wantOut: "Removed library attribute topic and its values.\n",
			check: func(t *testing.T) {
				if a := describeLibrary(); a != nil {
					t.Errorf("removed topic still described: %v", a)
				}
				p := must(srv.Admin(t).Libraries.GetLibraryProfile(bg, req(&trellisv1.GetLibraryProfileRequest{Id: apptest.AdminUID + ":papers"})))(t)
				for _, a := range p.GetAttributes() {
					if a.GetName() == "topic" {
						t.Errorf("removed topic still in the library's profile: %v", a)
					}
				}
			},
		},
		{
			name: "unknown kind", e: admin, args: []string{"admin", "attribute", "list", "widget"}, wantCode: 1,
			wantErr: `kind "widget": want user, project, circle, experiment or library`,
		},
		{
			name: "bad access", e: admin, args: []string{"admin", "attribute", "add", "user", "x", "--access", "sometimes"}, wantCode: 1,
			wantErr: `--access "sometimes"`,
		},
	}
	for _, s := range steps {
		r := s.e.run("", s.args...)
		if r.code != s.wantCode || !strings.Contains(r.out, s.wantOut) || !strings.Contains(r.err, s.wantErr) {
			t.Fatalf("%s: code %d, out %q, err %q; want %d, out with %q, err with %q", s.name, r.code, r.out, r.err, s.wantCode, s.wantOut, s.wantErr)
		}
		if s.check != nil {
			s.check(t)
		}
	}
}
