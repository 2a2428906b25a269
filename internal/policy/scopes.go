package policy

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/trellis-testbed/trellis/internal/domain"

	// The contract's descriptors, which classify operations for scopes.
	_ "github.com/trellis-testbed/trellis/gen/trellis/v1"
	_ "github.com/trellis-testbed/trellis/gen/trellis/v1/ext/auth/oidc/v1"
)

// API token scopes. A scope names what a token may do, within what its
// user may: scopes only ever narrow a user's rights, never widen them.
const (
	// ScopeRead allows the operations the contract marks as having no
	// side effects (idempotency_level = NO_SIDE_EFFECTS).
	ScopeRead = "read"
	// ScopeAll allows whatever the token's user may do.
	ScopeAll = "all"
)

// contractPackage is the protobuf package of the API contract; the
// authentication backends' operations live in packages under it
// (trellis.v1.ext.auth.*).
const contractPackage = "trellis.v1"

// ContractServices calls fn with every service of the contract, the
// backends' extensions included.
func ContractServices(fn func(protoreflect.ServiceDescriptor)) {
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if pkg := string(fd.Package()); pkg == contractPackage || strings.HasPrefix(pkg, contractPackage+".") {
			for i := range fd.Services().Len() {
				fn(fd.Services().Get(i))
			}
		}
		return true
	})
}

// opCreateAPIToken needs ScopeAll whatever the scopes say: a leaked narrow
// token (say, one a CI job holds to read experiments) must not be able to
// mint a broad one, which would turn a small leak into a full compromise.
const opCreateAPIToken = "trellis.v1.Auth/CreateAPIToken"

// contract is what the scopes are checked against, read once from the
// contract's descriptors rather than kept by hand, so that a new operation
// is classified by the option in its .proto file.
var contract = sync.OnceValue(func() (c struct {
	ops      map[string]bool // operation -> has no side effects
	services map[string]bool // "trellis.v1.Users", ...
}) {
	c.ops, c.services = map[string]bool{}, map[string]bool{}
	ContractServices(func(sd protoreflect.ServiceDescriptor) {
		c.services[string(sd.FullName())] = true
		for j := range sd.Methods().Len() {
			md := sd.Methods().Get(j)
			opts, _ := md.Options().(*descriptorpb.MethodOptions)
			c.ops[string(sd.FullName())+"/"+string(md.Name())] =
				opts.GetIdempotencyLevel() == descriptorpb.MethodOptions_NO_SIDE_EFFECTS
		}
	})
	return c
})

// ReadOnlyOperations returns the operations ScopeRead allows, sorted.
func ReadOnlyOperations() []string {
	var out []string
	for op, ro := range contract().ops {
		if ro {
			out = append(out, op)
		}
	}
	sort.Strings(out)
	return out
}

// ParseScopes checks the scopes a request asks for, naming field in its
// errors, and returns them normalized: sorted, without duplicates, and
// just [ScopeAll] when ScopeAll is among them.
func ParseScopes(field string, scopes []string) ([]string, error) {
	if len(scopes) == 0 {
		return nil, domain.Invalid(field, field+".required",
			`an API token needs at least one scope: "read", "all", or operations such as "trellis.v1.Experiments/*"`)
	}
	c := contract()
	var vs domain.Violations
	out := make([]string, 0, len(scopes))
	for _, s := range scopes {
		switch svc, method, _ := strings.Cut(s, "/"); {
		case s == ScopeAll:
			return []string{ScopeAll}, nil
		case s == ScopeRead:
		case method == "*" && c.services[svc]:
		case c.ops[s]:
		default:
			vs.Add(field, field+".unknown", fmt.Sprintf(
				`unknown scope %q: want "read", "all", a service's operations ("trellis.v1.Experiments/*") or one operation ("trellis.v1.Realizations/Realize")`, s))
			continue
		}
		out = append(out, s)
	}
	if err := vs.Err(); err != nil {
		return nil, err
	}
	sort.Strings(out)
	return slices.Compact(out), nil
}

// EncodeScopes and DecodeScopes turn normalized scopes into the text the
// store keeps and back. No scope holds a space.
func EncodeScopes(scopes []string) string { return strings.Join(scopes, " ") }

func DecodeScopes(s string) []string { return strings.Fields(s) }

// ScopeAllows reports whether scopes allow op. Nil scopes (a login's
// credentials) allow everything; the operation's rule still applies, so
// scopes can only narrow what a user may do.
func ScopeAllows(scopes []string, op string) bool {
	if scopes == nil {
		return true
	}
	if slices.Contains(scopes, ScopeAll) {
		return true
	}
	if op == opCreateAPIToken {
		return false
	}
	svc, _, _ := strings.Cut(op, "/")
	for _, s := range scopes {
		switch {
		case s == ScopeRead:
			if contract().ops[op] {
				return true
			}
		case s == op, s == svc+"/*":
			return true
		}
	}
	return false
}

// ScopeDenied is the refusal of op to a token whose scopes do not allow it.
func ScopeDenied(scopes []string, op string) error {
	msg := fmt.Sprintf("this API token's scopes (%s) do not include %s", strings.Join(scopes, ", "), op)
	if op == opCreateAPIToken {
		msg += `: only a token scoped "all" may create tokens`
	}
	return domain.PermissionDenied("%s", msg)
}
