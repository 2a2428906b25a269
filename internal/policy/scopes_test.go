package policy

import (
	"slices"
	"testing"

	"github.com/trellis-testbed/trellis/internal/domain"
)

func TestReadScopeFollowsTheContract(t *testing.T) {
	ro := ReadOnlyOperations()
	for _, op := range []string{"trellis.v1.Auth/WhoAmI", "trellis.v1.Auth/ListAPITokens", "trellis.v1.Users/GetUser"} {
		if !slices.Contains(ro, op) {
			t.Errorf("%s is not read-only; read-only: %v", op, ro)
		}
	}
	for _, op := range []string{"trellis.v1.Auth/CreateAPIToken", "trellis.v1.Experiments/CreateExperiment"} {
		if slices.Contains(ro, op) {
			t.Errorf("%s counted read-only", op)
		}
	}
}

func TestScopeAllows(t *testing.T) {
	for _, c := range []struct {
		scopes []string
		op     string
		want   bool
	}{
		{nil, "trellis.v1.Auth/CreateAPIToken", true},
		{[]string{"all"}, "trellis.v1.Auth/CreateAPIToken", true},
		{[]string{"read"}, "trellis.v1.Users/GetUser", true},
		{[]string{"read"}, "trellis.v1.Users/SetUserProfile", false},
		{[]string{"trellis.v1.Experiments/*"}, "trellis.v1.Experiments/CreateExperiment", true},
		{[]string{"trellis.v1.Experiments/*"}, "trellis.v1.ExperimentsX/CreateExperiment", false},
		{[]string{"trellis.v1.Realizations/Realize"}, "trellis.v1.Realizations/Realize", true},
		{[]string{"trellis.v1.Realizations/Realize"}, "trellis.v1.Realizations/Release", false},
		{[]string{"trellis.v1.Auth/*"}, "trellis.v1.Auth/CreateAPIToken", false},
		{[]string{"trellis.v1.Auth/CreateAPIToken"}, "trellis.v1.Auth/CreateAPIToken", false},
		{[]string{}, "trellis.v1.Auth/WhoAmI", false},
	} {
		if got := ScopeAllows(c.scopes, c.op); got != c.want {
			t.Errorf("ScopeAllows(%v, %s) = %v, want %v", c.scopes, c.op, got, c.want)
		}
	}
}

func TestParseScopes(t *testing.T) {
	got, err := ParseScopes("scopes", []string{"trellis.v1.Experiments/*", "read", "read"})
	if err != nil || !slices.Equal(got, []string{"read", "trellis.v1.Experiments/*"}) {
		t.Fatalf("ParseScopes = %v, %v", got, err)
	}
	if got, _ := ParseScopes("scopes", []string{"read", "all"}); !slices.Equal(got, []string{"all"}) {
		t.Errorf("all with others = %v", got)
	}
	for _, bad := range [][]string{nil, {"write"}, {"trellis.v1.Nope/*"}, {"trellis.v1.Users/Nope"}, {"trellis.v1.Users/*x"}, {"read all"}} {
		_, err := ParseScopes("scopes", bad)
		if domain.CodeOf(err) != domain.CodeInvalidArgument {
			t.Errorf("ParseScopes(%q) = %v", bad, err)
		}
	}
	if got := DecodeScopes(EncodeScopes([]string{"read", "trellis.v1.Auth/*"})); !slices.Equal(got, []string{"read", "trellis.v1.Auth/*"}) {
		t.Errorf("round trip = %v", got)
	}
}
