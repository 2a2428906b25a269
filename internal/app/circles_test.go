package app_test

import (
	"context"
	"slices"
	"testing"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
)

func TestCircleLifecycle(t *testing.T) {
	h := newHarness(t, sqlite)
	ctx := context.Background()
	adminTok := h.bootstrapAdmin()
	ann, bob, cat := h.newUser("ann"), h.newUser("bob"), h.newUser("cat")
	h.approvedProject(adminTok, ann, "lab")
	// bob and cat need standing to join circles: make them members of lab.
	for _, pair := range []struct {
		uid string
		tok string
	}{{"bob", bob}, {"cat", cat}} {
		add, err := h.projects.AddUsers(ctx, req(&trellisv1.ProjectsAddUsersRequest{Name: "lab", Uids: []string{pair.uid}}, ann))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.notifications.AcceptRequest(ctx, req(&trellisv1.AcceptRequestRequest{Id: add.Msg.Outcomes[0].RequestId}, pair.tok)); err != nil {
			t.Fatal(err)
		}
	}

	created, err := h.circles.CreateCircle(ctx, req(&trellisv1.CreateCircleRequest{Id: "ann:readers", Description: "paper readers"}, ann))
	if err != nil || len(created.Msg.Circle.Members) != 1 || !created.Msg.Circle.Members[0].Owner {
		t.Fatalf("create: %v %v", created, err)
	}
	_, err = h.circles.CreateCircle(ctx, req(&trellisv1.CreateCircleRequest{Id: "ann:readers"}, ann))
	wantCode(t, err, connect.CodeAlreadyExists)

	// bob asks to join; ann accepts. cat is invited with add_user.
	join, err := h.circles.JoinCircle(ctx, req(&trellisv1.JoinCircleRequest{Id: "ann:readers"}, bob))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.notifications.AcceptRequest(ctx, req(&trellisv1.AcceptRequestRequest{Id: join.Msg.RequestId}, ann)); err != nil {
		t.Fatal(err)
	}
	inv, err := h.circles.AddUsers(ctx, req(&trellisv1.CirclesAddUsersRequest{Id: "ann:readers", Uids: []string{"cat"}, Rights: []string{"add_user"}}, ann))
	if err != nil {
		t.Fatal(err)
	}
	// cat declines first... then is invited again and accepts.
	if _, err := h.notifications.DeclineRequest(ctx, req(&trellisv1.DeclineRequestRequest{Id: inv.Msg.Outcomes[0].RequestId, Reason: "busy"}, cat)); err != nil {
		t.Fatal(err)
	}
	if ns := h.notificationsOf(ann); len(ns) == 0 || ns[0].Sender != "cat" {
		t.Fatalf("ann not told of the decline: %v", ns)
	}
	inv, _ = h.circles.AddUsers(ctx, req(&trellisv1.CirclesAddUsersRequest{Id: "ann:readers", Uids: []string{"cat"}, Rights: []string{"add_user"}}, ann))
	if _, err := h.notifications.AcceptRequest(ctx, req(&trellisv1.AcceptRequestRequest{Id: inv.Msg.Outcomes[0].RequestId}, cat)); err != nil {
		t.Fatal(err)
	}
	c, err := h.circles.GetCircle(ctx, req(&trellisv1.GetCircleRequest{Id: "ann:readers"}, bob))
	if err != nil || len(c.Msg.Circle.Members) != 3 {
		t.Fatalf("members: %v %v", c, err)
	}

	// bob (no add_user) may not invite; cat (add_user) may not remove.
	_, err = h.circles.AddUsers(ctx, req(&trellisv1.CirclesAddUsersRequest{Id: "ann:readers", Uids: []string{"ops"}}, bob))
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = h.circles.RemoveUsers(ctx, req(&trellisv1.CirclesRemoveUsersRequest{Id: "ann:readers", Uids: []string{"bob"}}, cat))
	wantCode(t, err, connect.CodePermissionDenied)
	// ann gives cat remove_user too; cat removes bob.
	if _, err := h.circles.ChangeRights(ctx, req(&trellisv1.CirclesChangeRightsRequest{Id: "ann:readers", Uid: "cat", Rights: []string{"add_user,remove_user"}}, ann)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.circles.RemoveUsers(ctx, req(&trellisv1.CirclesRemoveUsersRequest{Id: "ann:readers", Uids: []string{"bob"}}, cat)); err != nil {
		t.Fatal(err)
	}
	_, err = h.circles.GetCircle(ctx, req(&trellisv1.GetCircleRequest{Id: "ann:readers"}, bob))
	wantCode(t, err, connect.CodeNotFound)

	// Listings show what each may read.
	list, err := h.circles.ListCircles(ctx, req(&trellisv1.ListCirclesRequest{}, cat))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range list.Msg.Circles {
		ids = append(ids, c.Id)
	}
	for _, want := range []string{"ann:readers", "cat:cat", "lab:lab"} {
		if !slices.Contains(ids, want) {
			t.Errorf("cat's circles %v lack %s", ids, want)
		}
	}
	if slices.Contains(ids, "ann:ann") {
		t.Errorf("cat sees ann's own circle: %v", ids)
	}

	// Profiles: the description given at creation, per-attribute outcomes.
	prof, err := h.circles.GetCircleProfile(ctx, req(&trellisv1.GetCircleProfileRequest{Id: "ann:readers"}, cat))
	if err != nil || prof.Msg.Attributes[0].Value != "paper readers" {
		t.Fatalf("circle profile: %v %v", prof, err)
	}
	set, err := h.circles.SetCircleProfile(ctx, req(&trellisv1.SetCircleProfileRequest{Id: "ann:readers", Set: map[string]string{"email": "not-an-address", "description": "journal club"}}, ann))
	if err != nil || len(set.Msg.Changes) != 2 {
		t.Fatalf("set circle profile: %v %v", set, err)
	}
	for _, ch := range set.Msg.Changes {
		if (ch.Name == "email") == ch.Changed {
			t.Errorf("change %v", ch)
		}
	}
	// Only the owner sets the profile.
	_, err = h.circles.SetCircleProfile(ctx, req(&trellisv1.SetCircleProfileRequest{Id: "ann:readers", Set: map[string]string{"description": "x"}}, cat))
	wantCode(t, err, connect.CodePermissionDenied)

	// Ownership passes to a member; the old owner then cannot remove it.
	if _, err := h.circles.SetOwner(ctx, req(&trellisv1.CirclesSetOwnerRequest{Id: "ann:readers", Uid: "cat"}, ann)); err != nil {
		t.Fatal(err)
	}
	_, err = h.circles.RemoveCircle(ctx, req(&trellisv1.RemoveCircleRequest{Id: "ann:readers"}, ann))
	if err == nil {
		t.Fatal("the former owner removed the circle")
	}
	if _, err := h.circles.RemoveCircle(ctx, req(&trellisv1.RemoveCircleRequest{Id: "ann:readers"}, cat)); err != nil {
		t.Fatal(err)
	}
	_, err = h.circles.GetCircle(ctx, req(&trellisv1.GetCircleRequest{Id: "ann:readers"}, cat))
	wantCode(t, err, connect.CodeNotFound)
}

func TestProjectProfileAndRemoval(t *testing.T) {
	h := newHarness(t, postgres)
	ctx := context.Background()
	adminTok := h.bootstrapAdmin()
	ann, bob := h.newUser("ann"), h.newUser("bob")
	h.approvedProject(adminTok, ann, "lab")
	add, _ := h.projects.AddUsers(ctx, req(&trellisv1.ProjectsAddUsersRequest{Name: "lab", Uids: []string{"bob"}}, ann))
	if _, err := h.notifications.AcceptRequest(ctx, req(&trellisv1.AcceptRequestRequest{Id: add.Msg.Outcomes[0].RequestId}, bob)); err != nil {
		t.Fatal(err)
	}
	set, err := h.projects.SetProjectProfile(ctx, req(&trellisv1.SetProjectProfileRequest{Name: "lab", Set: map[string]string{"funders": "NSF", "URL": "ftp://nope"}}, ann))
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range set.Msg.Changes {
		if (ch.Name == "funders") != ch.Changed || (ch.Name == "URL" && ch.Rule != "format") {
			t.Errorf("change %v", ch)
		}
	}
	prof, err := h.projects.GetProjectProfile(ctx, req(&trellisv1.GetProjectProfileRequest{Name: "lab"}, bob))
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]string{}
	for _, a := range prof.Msg.Attributes {
		vals[a.Name] = a.Value
	}
	if vals["funders"] != "NSF" || vals["description"] != "research on lab" {
		t.Fatalf("profile %v", vals)
	}
	// A member is no owner: no profile edits, no removal.
	_, err = h.projects.SetProjectProfile(ctx, req(&trellisv1.SetProjectProfileRequest{Name: "lab", Set: map[string]string{"funders": "x"}}, bob))
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = h.projects.RemoveProject(ctx, req(&trellisv1.RemoveProjectRequest{Name: "lab"}, bob))
	wantCode(t, err, connect.CodePermissionDenied)
	// A circle of the project goes with it; members are told.
	if _, err := h.circles.CreateCircle(ctx, req(&trellisv1.CreateCircleRequest{Id: "lab:ops"}, ann)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.projects.RemoveProject(ctx, req(&trellisv1.RemoveProjectRequest{Name: "lab"}, ann)); err != nil {
		t.Fatal(err)
	}
	_, err = h.circles.GetCircle(ctx, req(&trellisv1.GetCircleRequest{Id: "lab:ops"}, adminTok))
	wantCode(t, err, connect.CodeNotFound)
	if ns := h.notificationsOf(bob); len(ns) == 0 || ns[0].Text != "ann removed project lab" {
		t.Fatalf("bob's notifications: %v", ns)
	}
	// The name is free again.
	if _, err := h.projects.RequestProject(ctx, req(&trellisv1.RequestProjectRequest{Name: "lab", Description: "again"}, ann)); err != nil {
		t.Fatalf("recreating: %v", err)
	}
}
