package app_test

import (
	"context"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
	"github.com/trellis-testbed/trellis/internal/store"
)

func TestProfileAttributes(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		t.Run(string(kind), func(t *testing.T) { testProfileAttributes(t, kind) })
	}
}

func describesUser(t *testing.T, c trellisv1connect.UsersClient, name string) *trellisv1.AttributeDescription {
	t.Helper()
	resp, err := c.GetProfileDescription(context.Background(), req(&trellisv1.GetProfileDescriptionRequest{}, ""))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range resp.Msg.Attributes {
		if a.Name == name {
			return a
		}
	}
	return nil
}

func testProfileAttributes(t *testing.T, kind storeKind) {
	st := openStore(t, kind)
	h := newServer(t, st)
	other := newServer(t, st) // another replica sees definitions at once
	ctx := context.Background()
	adminTok := h.bootstrapAdmin()
	ann := h.newUser("ann")
	user := trellisv1.ProfileKind_PROFILE_KIND_USER
	// Both replicas have the user description cached.
	for _, c := range []trellisv1connect.UsersClient{h.users, other.users} {
		if a := describesUser(t, c, "orcid"); a != nil {
			t.Fatalf("orcid described before it was added: %v", a)
		}
	}
	// The replica that wrote sees its change at once; the other once it has
	// read the change feed (its poller does that every FeedInterval).
	syncOther := func() {
		t.Helper()
		if err := other.srv.Feed.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// A required user attribute with a format.
	added, err := h.admin.AddAttribute(ctx, req(&trellisv1.AddAttributeRequest{Kind: user, MaxLength: 19, Attribute: &trellisv1.AttributeDescription{
		Name: "orcid", Description: "ORCID iD", Format: `[0-9]{4}(-[0-9]{4}){3}`, FormatDescription: "an ORCID iD: 0000-0002-1825-0097",
		LengthHint: 19, OrderingHint: 35,
	}}, adminTok))
	if err != nil {
		t.Fatal(err)
	}
	if a := added.Msg.Attribute; a.System || a.MaxLength != 19 || a.Attribute.Access != trellisv1.AttributeAccess_ATTRIBUTE_ACCESS_READ_WRITE ||
		a.Attribute.DataType != trellisv1.AttributeDataType_ATTRIBUTE_DATA_TYPE_STRING {
		t.Fatalf("added %v; want read-write string, not system, max 19", a)
	}
	if _, err := h.admin.AddAttribute(ctx, req(&trellisv1.AddAttributeRequest{Kind: user, Attribute: &trellisv1.AttributeDescription{Name: "orcid"}}, adminTok)); connect.CodeOf(err) != connect.CodeAlreadyExists {
		t.Fatalf("adding orcid twice: %v", err)
	}
	for _, c := range []struct {
		name string
		r    *trellisv1.AddAttributeRequest
		want string
	}{
		{"bad format", &trellisv1.AddAttributeRequest{Kind: user, Attribute: &trellisv1.AttributeDescription{Name: "x", Format: "(["}}, "format"},
		{"bad name", &trellisv1.AddAttributeRequest{Kind: user, Attribute: &trellisv1.AttributeDescription{Name: "no spaces"}}, "name"},
		{"no kind", &trellisv1.AddAttributeRequest{Attribute: &trellisv1.AttributeDescription{Name: "x"}}, "kind"},
		{"huge limit", &trellisv1.AddAttributeRequest{Kind: user, MaxLength: 1 << 30, Attribute: &trellisv1.AttributeDescription{Name: "x"}}, "max_length"},
	} {
		_, err := h.admin.AddAttribute(ctx, req(c.r, adminTok))
		if _, ok := violations(err)[c.want]; !ok || connect.CodeOf(err) != connect.CodeInvalidArgument {
			t.Errorf("%s: %v; want invalid %s", c.name, err, c.want)
		}
	}
	if a := describesUser(t, h.users, "orcid"); a == nil {
		t.Fatal("the writing replica does not describe orcid")
	}
	if a := describesUser(t, other.users, "orcid"); a != nil {
		// Not an error in itself, but this test is meant to show the feed
		// at work: if the poller already ran, say so.
		t.Log("the other replica's poller ran before the explicit sync")
	}
	syncOther()
	for _, c := range []trellisv1connect.UsersClient{h.users, other.users} {
		if a := describesUser(t, c, "orcid"); a == nil || a.Optional || a.Format == "" {
			t.Fatalf("profile description reports orcid as %v", a)
		}
	}

	// Registration without it, or with a malformed one, is refused naming it.
	reg := func(uid string, profile map[string]string) error {
		_, err := other.users.Register(ctx, req(&trellisv1.RegisterRequest{Uid: uid, Email: uid + "@uni.example.edu", Password: userPassword, Profile: profile}, ""))
		return err
	}
	base := map[string]string{"name": "Bo", "phone": "+1 310 555 0100"}
	with := func(k, v string) map[string]string {
		m := map[string]string{k: v}
		for a, b := range base {
			m[a] = b
		}
		return m
	}
	if v := violations(reg("bo", base)); v["profile.orcid"] != "profile.required" {
		t.Errorf("register without orcid: violations %v", v)
	}
	if v := violations(reg("bo", with("orcid", "12-34"))); v["profile.orcid"] != "profile.format" {
		t.Errorf("register with a bad orcid: violations %v", v)
	}
	if err := reg("bo", with("orcid", "0000-0002-1825-0097")); err != nil {
		t.Fatalf("register with orcid: %v", err)
	}

	// Built-in attributes are rows too: the e-mail's format changes by data.
	uni := `[^@\s]+@uni\.example\.edu`
	if _, err := h.admin.ChangeAttribute(ctx, req(&trellisv1.ChangeAttributeRequest{Kind: user, Name: "email", Format: &uni, FormatDescription: proto.String("an address at uni.example.edu")}, adminTok)); err != nil {
		t.Fatal(err)
	}
	syncOther()
	_, err = other.users.Register(ctx, req(&trellisv1.RegisterRequest{Uid: "cy", Email: "cy@elsewhere.example.com", Password: userPassword, Profile: with("orcid", "0000-0002-1825-0097")}, ""))
	if v := violations(err); v["profile.email"] != "profile.format" {
		t.Errorf("register with an e-mail outside the new format: %v (violations %v)", err, v)
	}
	// …but the system depends on it: not removable, not made optional.
	if _, err := h.admin.RemoveAttribute(ctx, req(&trellisv1.RemoveAttributeRequest{Kind: user, Name: "email"}, adminTok)); connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Errorf("removing email: %v", err)
	}
	_, err = h.admin.ChangeAttribute(ctx, req(&trellisv1.ChangeAttributeRequest{Kind: user, Name: "email", Optional: proto.Bool(true)}, adminTok))
	if v := violations(err); v["optional"] != "system" {
		t.Errorf("making email optional: %v", err)
	}

	// Read-only attributes: admins set them, owners cannot.
	project := trellisv1.ProfileKind_PROFILE_KIND_PROJECT
	if _, err := h.admin.AddAttribute(ctx, req(&trellisv1.AddAttributeRequest{Kind: project, Attribute: &trellisv1.AttributeDescription{
		Name: "grant", Access: trellisv1.AttributeAccess_ATTRIBUTE_ACCESS_READ_ONLY, Optional: true, DataType: trellisv1.AttributeDataType_ATTRIBUTE_DATA_TYPE_LIST,
		Format: `[A-Z]{2,4}-[0-9]+`, FormatDescription: "grant numbers such as NSF-123",
	}}, adminTok)); err != nil {
		t.Fatal(err)
	}
	h.approvedProject(adminTok, ann, "lab")
	set := func(tok, v string) *trellisv1.AttributeChange {
		t.Helper()
		resp, err := h.projects.SetProjectProfile(ctx, req(&trellisv1.SetProjectProfileRequest{Name: "lab", Set: map[string]string{"grant": v}}, tok))
		if err != nil {
			t.Fatal(err)
		}
		return resp.Msg.Changes[0]
	}
	if c := set(ann, "NSF-1"); c.Changed || c.Rule != "read_only" {
		t.Errorf("owner sets a read-only attribute: %v", c)
	}
	if c := set(adminTok, "NSF-1, NIH-x"); c.Changed || c.Rule != "format" {
		t.Errorf("admin sets a list with a bad item: %v", c)
	}
	if c := set(adminTok, "NSF-1, NIH-22"); !c.Changed {
		t.Errorf("admin sets a read-only attribute: %v", c)
	}
	prof, err := h.projects.GetProjectProfile(ctx, req(&trellisv1.GetProjectProfileRequest{Name: "lab"}, ann))
	if err != nil {
		t.Fatal(err)
	}
	if !hasValue(prof.Msg.Attributes, "grant", "NSF-1, NIH-22") {
		t.Errorf("project profile %v lacks the grant the admin set", prof.Msg.Attributes)
	}

	// Removing a definition removes its values.
	if _, err := h.admin.RemoveAttribute(ctx, req(&trellisv1.RemoveAttributeRequest{Kind: project, Name: "grant"}, adminTok)); err != nil {
		t.Fatal(err)
	}
	var values map[string]string
	if err := st.View(ctx, func(tx store.Tx) (err error) {
		values, err = tx.Profiles().Get(ctx, store.ProfileProject, "lab")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, has := values["grant"]; has {
		t.Errorf("after removal the stored project profile still has grant: %v", values)
	}
	if _, err := h.admin.RemoveAttribute(ctx, req(&trellisv1.RemoveAttributeRequest{Kind: project, Name: "grant"}, adminTok)); connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("removing it twice: %v", err)
	}

	// The other kinds: a required circle attribute refuses creation.
	circle := trellisv1.ProfileKind_PROFILE_KIND_CIRCLE
	if _, err := h.admin.AddAttribute(ctx, req(&trellisv1.AddAttributeRequest{Kind: circle, Attribute: &trellisv1.AttributeDescription{Name: "topic"}}, adminTok)); err != nil {
		t.Fatal(err)
	}
	_, err = h.circles.CreateCircle(ctx, req(&trellisv1.CreateCircleRequest{Id: "ann:readers"}, ann))
	if v := violations(err); v["profile.topic"] != "profile.required" {
		t.Errorf("create a circle without a required attribute: %v", err)
	}
	for _, k := range []trellisv1.ProfileKind{user, project, circle, trellisv1.ProfileKind_PROFILE_KIND_EXPERIMENT, trellisv1.ProfileKind_PROFILE_KIND_LIBRARY} {
		resp, err := h.admin.ListAttributes(ctx, req(&trellisv1.ListAttributesRequest{Kind: k}, adminTok))
		if err != nil || len(resp.Msg.Attributes) == 0 {
			t.Errorf("list %v: %v", k, err)
		}
	}
	if _, err := h.admin.ListAttributes(ctx, req(&trellisv1.ListAttributesRequest{Kind: user}, ann)); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("a user lists attribute definitions: %v", err)
	}
}

func hasValue(attrs []*trellisv1.ProfileAttribute, name, value string) bool {
	for _, a := range attrs {
		if a.Name == name && a.Value == value {
			return true
		}
	}
	return false
}
