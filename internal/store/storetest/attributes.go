package storetest

import (
	"context"
	"fmt"
	"maps"
	"testing"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

var attributeTests = []test{
	{"SeededWithBuiltins", func(t *testing.T, s store.Store) {
		for _, c := range []struct {
			kind string
			want *domain.ProfileDescription
		}{
			{store.ProfileUser, domain.UserProfile},
			{store.ProfileProject, domain.ProjectProfile},
			{store.ProfileCircle, domain.CircleProfile},
			{store.ProfileExperiment, domain.ExperimentProfile},
			{store.ProfileLibrary, domain.LibraryProfile},
		} {
			var got []domain.Attribute
			view(t, s, func(ctx context.Context, tx store.Tx) (err error) {
				got, err = tx.Profiles().Attributes(ctx, c.kind)
				return err
			})
			built, err := domain.BuildProfileDescription(got)
			ok(t, err)
			want := c.want.Attributes()
			if len(got) != len(want) {
				t.Fatalf("%s: %d attributes seeded, want %d", c.kind, len(got), len(want))
			}
			for i, a := range built.Attributes() {
				if a.Name != want[i].Name || a.Description != want[i].Description || a.Access != want[i].Access ||
					a.Optional != want[i].Optional || a.DataType != want[i].DataType || a.Format != want[i].Format ||
					a.FormatDescription != want[i].FormatDescription || a.LengthHint != want[i].LengthHint ||
					a.OrderingHint != want[i].OrderingHint || a.MaxLength != want[i].MaxLength || a.System != want[i].System {
					t.Errorf("%s attribute %d: seeded %+v, built-in %+v", c.kind, i, a, want[i])
				}
			}
		}
	}},
	{"AddChangeRemove", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice")
		a := domain.Attribute{Name: "orcid", Description: "ORCID iD", Access: domain.ReadWrite, Optional: true,
			DataType: domain.TypeString, Format: `[0-9]{4}(-[0-9]{4}){3}`, FormatDescription: "an ORCID iD",
			LengthHint: 19, OrderingHint: 5, MaxLength: 19}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			if err := tx.Profiles().AddAttribute(ctx, store.ProfileUser, a); err != nil {
				return err
			}
			return tx.Profiles().Set(ctx, store.ProfileUser, "alice", map[string]string{"orcid": "0000-0001-2345-6789", "title": "Dr"})
		})
		err := tryUpdate(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Profiles().AddAttribute(ctx, store.ProfileUser, a)
		})
		wantCode(t, err, domain.CodeAlreadyExists, "orcid")
		// The same name in another kind is another attribute.
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Profiles().AddAttribute(ctx, store.ProfileProject, a)
		})

		a.Description, a.Access, a.System = "Researcher id", domain.ReadOnly, true
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Profiles().UpdateAttribute(ctx, store.ProfileUser, a)
		})
		var got []domain.Attribute
		view(t, s, func(ctx context.Context, tx store.Tx) (err error) {
			got, err = tx.Profiles().Attributes(ctx, store.ProfileUser)
			return err
		})
		if got[1].Name != "orcid" || got[1].Description != "Researcher id" || got[1].Access != domain.ReadOnly || !got[1].System || got[1].Format != a.Format {
			t.Fatalf("after update, second attribute (by ordering hint) = %+v", got[1])
		}

		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Profiles().RemoveAttribute(ctx, store.ProfileUser, "orcid")
		})
		var values map[string]string
		view(t, s, func(ctx context.Context, tx store.Tx) (err error) {
			if got, err = tx.Profiles().Attributes(ctx, store.ProfileUser); err != nil {
				return err
			}
			values, err = tx.Profiles().Get(ctx, store.ProfileUser, "alice")
			return err
		})
		for _, g := range got {
			if g.Name == "orcid" {
				t.Fatal("removed attribute still listed")
			}
		}
		if _, has := values["orcid"]; has || values["title"] != "Dr" {
			t.Fatalf("after removal, profile = %v; want the orcid value gone, the title kept", values)
		}
		view(t, s, func(ctx context.Context, tx store.Tx) (err error) {
			if got, err = tx.Profiles().Attributes(ctx, store.ProfileProject); err != nil {
				return err
			}
			if len(got) != len(domain.ProjectProfile.Attributes())+1 {
				t.Errorf("project attributes = %d; removing the user's orcid touched the project's", len(got))
			}
			return nil
		})

		for _, fn := range []func(ctx context.Context, tx store.Tx) error{
			func(ctx context.Context, tx store.Tx) error {
				return tx.Profiles().UpdateAttribute(ctx, store.ProfileUser, a)
			},
			func(ctx context.Context, tx store.Tx) error {
				return tx.Profiles().RemoveAttribute(ctx, store.ProfileUser, "orcid")
			},
		} {
			wantCode(t, tryUpdate(t, s, fn), domain.CodeNotFound, "orcid")
		}
	}},
	{"ValuesOfManyObjects", func(t *testing.T, s store.Store) {
		// More ids than one statement binds, most without the attribute.
		var ids []string
		for i := range 700 {
			ids = append(ids, fmt.Sprintf("owner:x%03d", i))
		}
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			for _, id := range []string{"owner:x001", "owner:x650", "owner:other"} {
				if err := tx.Profiles().Set(ctx, store.ProfileExperiment, id, map[string]string{"description": "about " + id, "note": "n"}); err != nil {
					return err
				}
			}
			// The same id under another kind is not an experiment's.
			return tx.Profiles().Set(ctx, store.ProfileLibrary, "owner:x002", map[string]string{"description": "a library"})
		})
		var got map[string]string
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			var err error
			got, err = tx.Profiles().Values(ctx, store.ProfileExperiment, "description", ids)
			return err
		})
		want := map[string]string{"owner:x001": "about owner:x001", "owner:x650": "about owner:x650"}
		if !maps.Equal(got, want) {
			t.Errorf("Values = %v, want %v", got, want)
		}
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			none, err := tx.Profiles().Values(ctx, store.ProfileExperiment, "description", nil)
			if err == nil && len(none) != 0 {
				t.Errorf("Values of no ids = %v", none)
			}
			return err
		})
	}},
}
