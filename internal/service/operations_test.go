package service

import (
	"context"
	"log/slog"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/auth/keys"
	"github.com/trellis-testbed/trellis/internal/auth/password"
	"github.com/trellis-testbed/trellis/internal/auth/sshca"
	"github.com/trellis-testbed/trellis/internal/auth/x509ca"
	"github.com/trellis-testbed/trellis/internal/changefeed"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/policy"
	"github.com/trellis-testbed/trellis/internal/store/sqlstore"
)

// newTestService builds a Service on a fresh embedded store.
func newTestService(t *testing.T) *Service {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "trellis.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	km := keys.NewManager(st, nil, keys.Options{})
	if err := km.Init(ctx); err != nil {
		t.Fatal(err)
	}
	ca, err := sshca.Load(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	xca, err := x509ca.Load(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	feed, err := changefeed.New(ctx, st, log)
	if err != nil {
		t.Fatal(err)
	}
	engine, err := policy.NewEngine(ctx, st, feed, log)
	if err != nil {
		t.Fatal(err)
	}
	return New(Config{}, Deps{
		Store: st, Hasher: &password.Hasher{Params: password.TestParams()}, Keys: km, SSHCA: ca, X509CA: xca,
		Feed: feed, Engine: engine, Log: log,
	})
}

// areas are the types whose exported methods are operations.
func areas(s *Service) []any { return []any{s.Accounts, s.Social, s.Testbed, s.Federation, s.Sites} }

var (
	ctxType       = reflect.TypeFor[context.Context]()
	principalType = reflect.TypeFor[*auth.Principal]()
	errorType     = reflect.TypeFor[error]()
)

// TestEveryOperationAuthorizesFirst calls every exported method of every
// area, found by reflection, as an anonymous caller with zero arguments,
// and fails unless the method's first act is to authorize an operation of
// the rule table, and unless an operation whose rule is not public refuses
// the anonymous caller. A new method that forgets to authorize fails here
// without anyone having to list it.
func TestEveryOperationAuthorizesFirst(t *testing.T) {
	s := newTestService(t)
	authorized := map[string]bool{}
	for _, area := range areas(s) {
		v := reflect.ValueOf(area)
		typ := v.Type()
		for i := range typ.NumMethod() {
			m := typ.Method(i)
			name := typ.Elem().Name() + "." + m.Name
			ft := m.Type // receiver first
			if ft.NumIn() < 3 || ft.In(1) != ctxType || ft.In(2) != principalType {
				t.Errorf("%s: an operation takes (ctx context.Context, caller *auth.Principal, ...)", name)
				continue
			}
			if ft.NumOut() == 0 || ft.Out(ft.NumOut()-1) != errorType {
				t.Errorf("%s: an operation returns an error last", name)
				continue
			}
			var seen []*Op
			ctx := context.WithValue(context.Background(), authorizeHookKey{}, func(o *Op) { seen = append(seen, o) })
			args := []reflect.Value{v, reflect.ValueOf(ctx), reflect.Zero(principalType)}
			for j := 3; j < ft.NumIn(); j++ {
				at := ft.In(j)
				if at.Kind() == reflect.Pointer && at.Elem().Kind() == reflect.Struct {
					args = append(args, reflect.New(at.Elem()))
				} else {
					args = append(args, reflect.Zero(at))
				}
			}
			out, panicked := call(m.Func, args)
			if len(seen) == 0 {
				t.Errorf("%s does not authorize (panicked: %v)", name, panicked)
				continue
			}
			op := seen[0]
			if ops[op.Name] != op {
				t.Errorf("%s authorized %s, which is not in the rule table", name, op.Name)
				continue
			}
			authorized[op.Name] = true
			if op.Rule.Kind == policy.Public {
				continue
			}
			if len(seen) != 1 {
				t.Errorf("%s authorized %d times for an anonymous caller", name, len(seen))
			}
			err, _ := out[len(out)-1].Interface().(error)
			if domain.CodeOf(err) != domain.CodeUnauthenticated {
				t.Errorf("%s (%s, %v) let an anonymous caller through: %v", name, op.Name, op.Rule, err)
			}
		}
	}
	// Every operation of the contract is some method's.
	for _, op := range contractOperations(t) {
		if !authorized[op] && !transportOnly[op] {
			t.Errorf("no service method authorizes %s", op)
		}
	}
}

// transportOnly are the contract's operations that touch no service state,
// answered by the transport itself.
var transportOnly = map[string]bool{
	"trellis.v1.ApiInfo/GetVersion": true,
}

func call(f reflect.Value, args []reflect.Value) (out []reflect.Value, panicked any) {
	defer func() { panicked = recover() }()
	return f.Call(args), nil
}

// contractOperations walks the API contract's descriptors.
func contractOperations(t *testing.T) []string {
	t.Helper()
	var out []string
	policy.ContractServices(func(svc protoreflect.ServiceDescriptor) {
		for j := range svc.Methods().Len() {
			out = append(out, string(svc.FullName())+"/"+string(svc.Methods().Get(j).Name()))
		}
	})
	if len(out) == 0 {
		t.Fatal("no operations found in the contract")
	}
	slices.Sort(out)
	return out
}

// TestEveryOperationHasExactlyOneRule fails when an operation of the
// contract has no rule, or the table names a contract operation that does
// not exist.
func TestEveryOperationHasExactlyOneRule(t *testing.T) {
	contract := contractOperations(t)
	for _, op := range contract {
		o, ok := Operation(op)
		if !ok {
			t.Errorf("operation %s has no authorization rule", op)
			continue
		}
		if o.Rule.Kind == 0 {
			t.Errorf("operation %s has an empty rule", op)
		}
	}
	for _, o := range Operations() {
		if strings.HasPrefix(o.Name, "trellis.v1.") && !slices.Contains(contract, o.Name) {
			t.Errorf("rule %v names %s, which the contract does not have", o.Rule, o.Name)
		}
	}
}

// TestPublicOperations pins the operations anyone may call: widening this
// set must be a deliberate change to this list.
func TestPublicOperations(t *testing.T) {
	want := []string{
		OpBasicAuth, // the password is the credential
		"oidc.login",
		"oidc.provider/AuthRequest",
		"oidc.provider/AuthenticateClient",
		"oidc.provider/Client",
		"oidc.provider/EndAuthRequest",
		"oidc.provider/EndSession",
		"oidc.provider/RedeemCode",
		"oidc.provider/SaveCode",
		"oidc.provider/StartAuthRequest",
		"oidc.provider/TokenClaims",
		"oidc.provider/User",
		"oidc.revoke",
		"oidc.token",
		"oidc_backend.callback",
		"oidc_backend.link",
		"trellis.v1.Admin/Bootstrap",              // the one-time bootstrap token is the credential
		"trellis.v1.ApiInfo/GetClientCertificate", // unbound: authenticates nothing until a login binds it
		"trellis.v1.ApiInfo/GetSSHCertificateAuthority",
		"trellis.v1.ApiInfo/GetServerCertificate",
		"trellis.v1.ApiInfo/GetVersion",
		"trellis.v1.ApiInfo/GetValidPermissions", // the same vocabulary for everyone
		"trellis.v1.Auth/ChallengeResponse",
		"trellis.v1.Auth/ExchangeToken", // the user's token and the service's proof are the credentials
		"trellis.v1.Auth/Login",
		"trellis.v1.Auth/Refresh",
		"trellis.v1.Auth/RequestChallenge",
		"trellis.v1.Providers/RegisterSite", // the one-time registration token is the credential
		"trellis.v1.Users/ConfirmEmail",
		"trellis.v1.Users/GetProfileDescription",
		"trellis.v1.Users/Register",
		"trellis.v1.Users/RequestPasswordReset",
		"trellis.v1.Users/ResendConfirmation",
		"trellis.v1.Users/ResetPassword",
		"trellis.v1.ext.auth.oidc.v1.Login/FinishLogin", // the poll secret is the credential
		"trellis.v1.ext.auth.oidc.v1.Login/StartLogin",
	}
	slices.Sort(want)
	var got []string
	for _, o := range Operations() {
		if o.Rule.Kind == policy.Public {
			got = append(got, o.Name)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("public operations = %v\nwant %v", got, want)
	}
}
