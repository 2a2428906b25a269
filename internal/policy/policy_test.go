package policy

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/domain"
)

// contractOperations walks the API contract's descriptors.
func contractOperations(t *testing.T) []string {
	t.Helper()
	var ops []string
	protoregistry.GlobalFiles.RangeFilesByPackage("trellis.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := 0; i < fd.Services().Len(); i++ {
			svc := fd.Services().Get(i)
			for j := 0; j < svc.Methods().Len(); j++ {
				ops = append(ops, string(svc.FullName())+"/"+string(svc.Methods().Get(j).Name()))
			}
		}
		return true
	})
	if len(ops) == 0 {
		t.Fatal("no operations found in the contract")
	}
	slices.Sort(ops)
	return ops
}

// TestEveryOperationHasExactlyOneRule fails when an operation of the
// contract has no rule, or a rule names an operation the contract lacks.
func TestEveryOperationHasExactlyOneRule(t *testing.T) {
	ops := contractOperations(t)
	for _, op := range ops {
		if _, ok := Rules[op]; !ok {
			t.Errorf("operation %s has no authorization rule in policy.Rules", op)
		}
	}
	for op, r := range Rules {
		if !slices.Contains(ops, op) {
			t.Errorf("rule %v names %s, which the contract does not have", r, op)
		}
		if r.Kind == SelfOrAdmin {
			md := requestDescriptor(t, op)
			if fd := md.Fields().ByName(protoreflect.Name(r.Field)); fd == nil || fd.Kind() != protoreflect.StringKind {
				t.Errorf("%s: rule field %q is not a string field of %s", op, r.Field, md.FullName())
			}
		}
	}
}

func requestDescriptor(t *testing.T, op string) protoreflect.MessageDescriptor {
	t.Helper()
	svcName, method, _ := cut(op)
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svcName))
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	return d.(protoreflect.ServiceDescriptor).Methods().ByName(protoreflect.Name(method)).Input()
}

func cut(op string) (string, string, bool) {
	for i := len(op) - 1; i >= 0; i-- {
		if op[i] == '/' {
			return op[:i], op[i+1:], true
		}
	}
	return op, "", false
}

// TestPublicOperations pins the operations anyone may call: widening this
// set must be a deliberate change to this list.
func TestPublicOperations(t *testing.T) {
	want := []string{
		"trellis.v1.ApiInfo/GetVersion",
		"trellis.v1.Auth/Login",
		"trellis.v1.Auth/Refresh",
		"trellis.v1.Users/ConfirmEmail",
		"trellis.v1.Users/GetProfileDescription",
		"trellis.v1.Users/Register",
		"trellis.v1.Users/RequestPasswordReset",
		"trellis.v1.Users/ResendConfirmation",
		"trellis.v1.Users/ResetPassword",
	}
	var got []string
	for op, r := range Rules {
		if r.Kind == Public {
			got = append(got, op)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("public operations = %v\nwant %v", got, want)
	}
}

func TestAuthorize(t *testing.T) {
	alice := &auth.Principal{UID: "alice"}
	root := &auth.Principal{UID: "ops", Admin: true}
	getBob := &trellisv1.GetUserRequest{Uid: "bob"}
	getSelf := &trellisv1.GetUserRequest{}
	tests := []struct {
		name       string
		p          *auth.Principal
		op         string
		req        proto.Message
		code       domain.Code // -1: allowed
		wantTarget string
	}{
		{"public anonymous", nil, "trellis.v1.Auth/Login", &trellisv1.LoginRequest{}, -1, ""},
		{"authenticated anonymous", nil, "trellis.v1.Auth/WhoAmI", nil, domain.CodeUnauthenticated, ""},
		{"authenticated", alice, "trellis.v1.Auth/WhoAmI", nil, -1, ""},
		{"self empty uid", alice, "trellis.v1.Users/GetUser", getSelf, -1, "alice"},
		{"self own uid", alice, "trellis.v1.Users/GetUser", &trellisv1.GetUserRequest{Uid: "alice"}, -1, "alice"},
		{"self other uid hidden", alice, "trellis.v1.Users/GetUser", getBob, domain.CodeNotFound, ""},
		{"self other uid admin", root, "trellis.v1.Users/GetUser", getBob, -1, "bob"},
		{"self anonymous", nil, "trellis.v1.Users/GetUser", getBob, domain.CodeUnauthenticated, ""},
		{"admin refused", alice, "trellis.v1.Users/ListUsers", &trellisv1.ListUsersRequest{}, domain.CodePermissionDenied, ""},
		{"admin allowed", root, "trellis.v1.Users/ListUsers", &trellisv1.ListUsersRequest{}, -1, ""},
		{"unknown operation", root, "trellis.v1.Users/DropTables", nil, domain.CodePermissionDenied, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Authorize(tt.p, tt.op, tt.req)
			if tt.code == -1 {
				if !d.Allowed || d.Err != nil {
					t.Fatalf("denied: %v (%s)", d.Err, d.Reason)
				}
				if d.Target != tt.wantTarget {
					t.Fatalf("target %q, want %q", d.Target, tt.wantTarget)
				}
				return
			}
			if d.Allowed || domain.CodeOf(d.Err) != tt.code || d.Reason == "" {
				t.Fatalf("decision %+v, want refusal with %v and a reason", d, tt.code)
			}
		})
	}
}
