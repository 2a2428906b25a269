package alloc

import (
	"fmt"
	"testing"

	"github.com/trellis-testbed/trellis/internal/domain"
)

func TestParseFilters(t *testing.T) {
	tests := []struct {
		exprs []string
		want  string // the constraints, or the error
	}{
		{nil, "[]"},
		{[]string{"", "  "}, "[]"},
		{[]string{"cores>=8 arch=x86_64"}, "[cores>=8 arch=x86_64]"},
		{[]string{"cores >= 8", "arch= x86_64  site !=s1", "memory_gb >64"}, "[cores>=8 arch=x86_64 site!=s1 memory_gb>64]"},
		{[]string{"cores>=8", "arch"}, `filter[1]: "arch" is not a constraint: write attr=value, attr!=value or attr>=N (also <=, >, <)`},
		{[]string{"cores>=many x=1 Bad=2"}, "filter[0]: cores>=many compares an order: the value must be a number; " +
			`filter[0]: attribute name "Bad": lower-case letters, digits and '_', starting with a letter`},
	}
	for _, tt := range tests {
		cs, err := ParseFilters("filter", tt.exprs)
		got := fmt.Sprint(cs)
		if err != nil {
			got = err.Error()
			if domain.CodeOf(err) != domain.CodeInvalidArgument {
				t.Errorf("%q: code %v", tt.exprs, domain.CodeOf(err))
			}
		}
		if got != tt.want {
			t.Errorf("%q: got %s, want %s", tt.exprs, got, tt.want)
		}
	}
}

func TestFilter(t *testing.T) {
	pool := []domain.Resource{
		res("a", "cores=8", "arch=x86_64"),
		res("b", "cores=16", "arch=aarch64"),
		res("c", "cores=32"),
	}
	for expr, want := range map[string]string{
		"":                     "a b c",
		"cores>=16":            "b c",
		"arch!=x86_64":         "b c",
		"arch=x86_64 cores>16": "",
		"gpu=1":                "",
	} {
		cs, err := ParseFilters("filter", []string{expr})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, r := range Filter(pool, cs) {
			names = append(names, r.Name)
		}
		if got := fmt.Sprint(names); got != "["+want+"]" {
			t.Errorf("%q: got %s, want [%s]", expr, got, want)
		}
	}
}
