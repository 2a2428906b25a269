package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/trellis-testbed/trellis/internal/app/apptest"
	"github.com/trellis-testbed/trellis/internal/buildinfo"
)

// TestErrorsAsJSON: with --output json a failing command prints one JSON
// object on standard error, {"error": {...}}, and nothing on standard
// output, whatever failed: the server's refusal (with its field
// violations), the command line, or the client itself.
func TestErrorsAsJSON(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	srv.NewUser(t, "alice")
	alice := as(t, srv, "alice")
	for _, tc := range []struct {
		name       string
		e          *env
		args       []string
		code       string
		violations []string
		help       bool
	}{
		{"not found", alice, []string{"user", "show", "nosuchuser"}, "not_found", nil, false},
		{"field violations", newEnv(t, srv), []string{"user", "register", "--uid", "Bad Uid", "--email", "nope", "--name", "B", "--phone", "x", "--password-stdin"},
			"invalid_argument", []string{"uid", "email"}, false},
		{"usage", alice, []string{"user", "show", "a", "b"}, "usage", nil, true},
		{"unknown flag", alice, []string{"user", "show", "--bogus"}, "usage", nil, true},
		{"unknown command", alice, []string{"user", "shw"}, "usage", nil, true},
		{"local", alice, []string{"experiment", "create", "alice:x", "--layout", "/nonexistent/layout.yaml"}, "unknown", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.e.run("a password of some length\n", append([]string{"--output", "json"}, tc.args...)...)
			if r.code != 1 || r.out != "" {
				t.Fatalf("exit %d, stdout %q (stderr %q): want exit 1 and nothing on stdout", r.code, r.out, r.err)
			}
			var got struct {
				Error struct {
					Code, Message, Help string
					Violations          []struct{ Field, Description, Rule string }
				}
			}
			dec := json.NewDecoder(strings.NewReader(r.err))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&got); err != nil || dec.More() {
				t.Fatalf("stderr is not one JSON error object (%v): %q", err, r.err)
			}
			e := got.Error
			if e.Code != tc.code || e.Message == "" || (e.Help != "") != tc.help {
				t.Errorf("error %+v, want code %s (help: %v)", e, tc.code, tc.help)
			}
			var fields []string
			for _, v := range e.Violations {
				fields = append(fields, v.Field)
				if v.Description == "" || v.Rule == "" {
					t.Errorf("violation %+v lacks its description or rule", v)
				}
			}
			for _, f := range tc.violations {
				if !strings.Contains(strings.Join(fields, ","), f) {
					t.Errorf("violations %v, want one about %s", fields, f)
				}
			}
		})
	}
	// Text stays for people.
	if r := alice.run("", "user", "show", "nosuchuser"); r.code != 1 || !strings.HasPrefix(r.err, "error: ") {
		t.Errorf("text error: %+v", r)
	}
}

// TestVersionFlag: --version answers from the binary alone, with the
// module version the build recorded.
func TestVersionFlag(t *testing.T) {
	t.Parallel()
	r := offline(t).exec("", "--version")
	if r.code != 0 || !strings.HasPrefix(r.out, "trellis "+buildinfo.Version()) {
		t.Fatalf("--version: %+v, want trellis %s", r, buildinfo.Version())
	}
}

// TestFlagPlaceholders: no flag's help names its value with a phrase.
// pflag takes the first `quoted` word of a usage as the value's name, so a
// quoted example ("`serve --tls-auto`") shows up as a nonsense placeholder.
func TestFlagPlaceholders(t *testing.T) {
	root := NewRoot(Streams{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &bytes.Buffer{}})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		check := func(f *pflag.Flag) {
			if name, _ := pflag.UnquoteUsage(f); strings.ContainsAny(name, " -") {
				t.Errorf("%s --%s: placeholder %q", c.CommandPath(), f.Name, name)
			}
		}
		c.LocalFlags().VisitAll(check)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
