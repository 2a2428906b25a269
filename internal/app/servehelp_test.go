package app_test

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/trellis-testbed/trellis/internal/app"
)

// TestServeHelpListsEnvironment: `trellis serve --help` names every
// environment variable this package reads (every "TRELLIS_…" string in its
// source), in its Environment section.
func TestServeHelpListsEnvironment(t *testing.T) {
	root, admin := &cobra.Command{Use: "trellis"}, &cobra.Command{Use: "admin"}
	root.AddCommand(admin)
	app.AddCommands(root, admin)
	var help bytes.Buffer
	root.SetOut(&help)
	root.SetArgs([]string{"serve", "--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	_, env, ok := strings.Cut(help.String(), "\nEnvironment")
	if !ok {
		t.Fatalf("serve --help has no Environment section:\n%s", help.String())
	}
	env, _, _ = strings.Cut(env, "\nUsage:")

	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`^TRELLIS_[A-Z0-9_]+$`)
	read := map[string]bool{}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil && name.MatchString(s) {
					read[s] = true
				}
			}
			return true
		})
	}
	if len(read) < 10 {
		t.Fatalf("found %d environment variables in the source; the scan is broken", len(read))
	}
	for v := range read {
		if !regexp.MustCompile(`(?m)^\s+` + v + `\s+--`).MatchString(env) {
			t.Errorf("serve --help does not list %s:\n%s", v, env)
		}
	}
}
