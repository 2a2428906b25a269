package storetest

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

var (
	rightsAdd     = domain.RightsOf(domain.AddUser)
	rightsManage  = domain.RightsOf(domain.AddUser, domain.RemoveUser)
	rightsRealize = domain.RightsOf(domain.RealizeExperiment)
)

func newProject(name, owner string) *domain.Project {
	return &domain.Project{
		Name: name, Owner: owner, State: domain.ProjectApproved,
		CreatedAt: t0, ApprovedAt: at(time.Minute),
	}
}

func pendingProject(name, owner string) *domain.Project {
	p := newProject(name, owner)
	p.State, p.Vetting, p.ApprovedAt = domain.ProjectPending, true, time.Time{}
	return p
}

// createProjects creates approved projects owned by owner, who must exist.
func createProjects(t *testing.T, s store.Store, owner string, names ...string) {
	t.Helper()
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, n := range names {
			if err := tx.Projects().Create(ctx, newProject(n, owner)); err != nil {
				return err
			}
		}
		return nil
	})
}

// member makes a membership added addedMin minutes after t0.
func member(group, uid string, rights domain.Rights, addedMin int) *domain.Membership {
	return &domain.Membership{Group: group, UID: uid, Rights: rights, AddedAt: at(time.Duration(addedMin) * time.Minute)}
}

func projectNames(ps []*domain.Project) string {
	return fmtList(ps, func(p *domain.Project) string { return p.Name })
}

func memberships(ms []*domain.Membership) string {
	return fmtList(ms, func(m *domain.Membership) string { return m.Group + "/" + m.UID + "=" + m.Rights.String() })
}

func edges(cs []*domain.ProjectChild) string {
	return fmtList(cs, func(c *domain.ProjectChild) string { return c.Parent + "<" + c.Child + "=" + c.Rights.String() })
}

// errCase is one call that must fail with code and a message holding words.
type errCase struct {
	name  string
	fn    func(ctx context.Context, tx store.Tx) error
	code  domain.Code
	words []string
}

// wantErrors runs every case in one transaction, which must stay usable
// after each expected error (PostgreSQL aborts a transaction on a failed
// statement unless the store guards it).
func wantErrors(t *testing.T, s store.Store, cases []errCase) {
	t.Helper()
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				wantCode(t, c.fn(ctx, tx), c.code, c.words...)
			})
		}
		// Still usable: a read succeeds.
		_, err := tx.Users().List(ctx, "", store.Page{})
		return err
	})
}

var projectTests = []test{
	// Users and projects share one namespace; a removed project frees its
	// name, a user's uid is never freed.
	{"SharedNamespace", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice")
		err := tryUpdate(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Projects().Create(ctx, newProject("alice", "alice"))
		})
		wantCode(t, err, domain.CodeAlreadyExists, "alice", "namespace")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Projects().Create(ctx, newProject("lab", "alice"))
		})
		err = tryUpdate(t, s, func(ctx context.Context, tx store.Tx) error {
			u := newUser("lab")
			u.Email = "lab-user@example.org"
			return tx.Users().Create(ctx, u, "h")
		})
		wantCode(t, err, domain.CodeAlreadyExists, "lab", "namespace")
		err = tryUpdate(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Projects().Create(ctx, newProject("lab", "alice"))
		})
		wantCode(t, err, domain.CodeAlreadyExists, "project", "lab")
		// A failed create leaves the transaction usable and claims nothing.
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			u := newUser("carol")
			u.Email = "alice@example.org" // taken: the create fails
			wantCode(t, tx.Users().Create(ctx, u, "h"), domain.CodeAlreadyExists, "e-mail")
			return tx.Projects().Create(ctx, newProject("carol", "alice"))
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Projects().Delete(ctx, "lab"))
			return tx.Projects().Delete(ctx, "carol")
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			u := newUser("lab")
			u.Email = "lab-user@example.org"
			return tx.Users().Create(ctx, u, "h")
		})
	}},
	{"CreateGet", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice")
		approved, pending := newProject("lab", "alice"), pendingProject("vetted", "alice")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Projects().Create(ctx, approved))
			return tx.Projects().Create(ctx, pending)
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			for _, want := range []*domain.Project{approved, pending} {
				got, err := tx.Projects().Get(ctx, want.Name)
				ok(t, err)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("Get(%s) = %+v, want %+v", want.Name, got, want)
				}
			}
			return nil
		})
	}},
	{"Errors", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice", "bob")
		createProjects(t, s, "alice", "lab", "sub")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Projects().AddChild(ctx, &domain.ProjectChild{Parent: "lab", Child: "sub"}))
			return tx.Projects().SetMember(ctx, member("lab", "alice", rightsManage, 0))
		})
		p := tx2proj
		wantErrors(t, s, []errCase{
			{"CreateDuplicate", p(func(ctx context.Context, ps store.Projects) error {
				return ps.Create(ctx, newProject("lab", "bob"))
			}), domain.CodeAlreadyExists, []string{`project "lab" already exists`}},
			{"CreateUnknownOwner", p(func(ctx context.Context, ps store.Projects) error {
				return ps.Create(ctx, newProject("new", "zed"))
			}), domain.CodeNotFound, []string{`user "zed" not found`}},
			{"Get", p(func(ctx context.Context, ps store.Projects) error {
				_, err := ps.Get(ctx, "nope")
				return err
			}), domain.CodeNotFound, []string{`project "nope" not found`}},
			{"Update", p(func(ctx context.Context, ps store.Projects) error {
				return ps.Update(ctx, newProject("nope", "alice"))
			}), domain.CodeNotFound, []string{`project "nope" not found`}},
			{"UpdateUnknownOwner", p(func(ctx context.Context, ps store.Projects) error {
				return ps.Update(ctx, newProject("lab", "zed"))
			}), domain.CodeNotFound, []string{`user "zed" not found`}},
			{"Delete", p(func(ctx context.Context, ps store.Projects) error {
				return ps.Delete(ctx, "nope")
			}), domain.CodeNotFound, []string{`project "nope" not found`}},
			{"SetMemberUnknownProject", p(func(ctx context.Context, ps store.Projects) error {
				return ps.SetMember(ctx, member("nope", "bob", rightsAdd, 0))
			}), domain.CodeNotFound, []string{`project "nope" not found`}},
			{"SetMemberUnknownUser", p(func(ctx context.Context, ps store.Projects) error {
				return ps.SetMember(ctx, member("lab", "zed", rightsAdd, 0))
			}), domain.CodeNotFound, []string{`user "zed" not found`}},
			{"RemoveMemberNotMember", p(func(ctx context.Context, ps store.Projects) error {
				return ps.RemoveMember(ctx, "lab", "bob")
			}), domain.CodeNotFound, []string{"bob is not a member of project lab"}},
			{"RemoveMemberUnknownProject", p(func(ctx context.Context, ps store.Projects) error {
				return ps.RemoveMember(ctx, "nope", "bob")
			}), domain.CodeNotFound, []string{`project "nope" not found`}},
			{"MemberNotMember", p(func(ctx context.Context, ps store.Projects) error {
				_, err := ps.Member(ctx, "lab", "bob")
				return err
			}), domain.CodeNotFound, []string{"bob is not a member of project lab"}},
			{"MemberUnknownProject", p(func(ctx context.Context, ps store.Projects) error {
				_, err := ps.Member(ctx, "nope", "alice")
				return err
			}), domain.CodeNotFound, []string{`project "nope" not found`}},
			{"MembersUnknownProject", p(func(ctx context.Context, ps store.Projects) error {
				_, err := ps.Members(ctx, "nope")
				return err
			}), domain.CodeNotFound, []string{`project "nope" not found`}},
			{"AddChildDuplicate", p(func(ctx context.Context, ps store.Projects) error {
				return ps.AddChild(ctx, &domain.ProjectChild{Parent: "lab", Child: "sub", Rights: rightsAdd})
			}), domain.CodeAlreadyExists, []string{"project sub is already nested in lab"}},
			{"AddChildUnknownParent", p(func(ctx context.Context, ps store.Projects) error {
				return ps.AddChild(ctx, &domain.ProjectChild{Parent: "nope", Child: "sub"})
			}), domain.CodeNotFound, []string{`project "nope" not found`}},
			{"AddChildUnknownChild", p(func(ctx context.Context, ps store.Projects) error {
				return ps.AddChild(ctx, &domain.ProjectChild{Parent: "lab", Child: "nope"})
			}), domain.CodeNotFound, []string{`project "nope" not found`}},
			{"RemoveChildNotNested", p(func(ctx context.Context, ps store.Projects) error {
				return ps.RemoveChild(ctx, "sub", "lab")
			}), domain.CodeNotFound, []string{"project lab is not nested in sub"}},
			{"RemoveChildUnknown", p(func(ctx context.Context, ps store.Projects) error {
				return ps.RemoveChild(ctx, "lab", "nope")
			}), domain.CodeNotFound, []string{`project "nope" not found`}},
			{"ChildrenUnknown", p(func(ctx context.Context, ps store.Projects) error {
				_, err := ps.Children(ctx, "nope")
				return err
			}), domain.CodeNotFound, []string{`project "nope" not found`}},
			{"ParentsUnknown", p(func(ctx context.Context, ps store.Projects) error {
				_, err := ps.Parents(ctx, "nope")
				return err
			}), domain.CodeNotFound, []string{`project "nope" not found`}},
		})
		// Nothing the failed calls tried was written.
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			all, err := tx.Projects().All(ctx)
			ok(t, err)
			if got := projectNames(all); got != "[lab sub]" {
				t.Errorf("All = %s", got)
			}
			ms, err := tx.Projects().AllMembers(ctx)
			ok(t, err)
			if got := memberships(ms); got != "[lab/alice=add_user,remove_user]" {
				t.Errorf("AllMembers = %s", got)
			}
			cs, err := tx.Projects().AllChildren(ctx)
			ok(t, err)
			if got := edges(cs); got != "[lab<sub=none]" {
				t.Errorf("AllChildren = %s", got)
			}
			return nil
		})
	}},
	{"Update", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice", "bob")
		p := pendingProject("lab", "alice")
		update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.Projects().Create(ctx, p) })
		// Update writes Owner, State, Vetting and ApprovedAt, not CreatedAt.
		next := &domain.Project{Name: "lab", Owner: "bob", State: domain.ProjectApproved, Vetting: false,
			CreatedAt: at(time.Hour), ApprovedAt: at(2 * time.Hour)}
		update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.Projects().Update(ctx, next) })
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			got, err := tx.Projects().Get(ctx, "lab")
			ok(t, err)
			want := *next
			want.CreatedAt = p.CreatedAt
			if !reflect.DeepEqual(got, &want) {
				t.Errorf("after Update: %+v, want %+v", got, &want)
			}
			return nil
		})
	}},
	{"List", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice")
		createProjects(t, s, "alice", "lab", "lab-a", "lab-b", "labx", "other", "zoo")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Projects().Create(ctx, pendingProject("lab-p", "alice")))
			return tx.Projects().Create(ctx, pendingProject("pend", "alice"))
		})
		for _, c := range []struct {
			name string
			f    store.ProjectFilter
			want string
		}{
			{"Approved", store.ProjectFilter{}, "[lab lab-a lab-b labx other zoo]"},
			{"IncludePending", store.ProjectFilter{IncludePending: true}, "[lab lab-a lab-b lab-p labx other pend zoo]"},
			{"Prefix", store.ProjectFilter{Prefix: "lab-"}, "[lab-a lab-b]"},
			{"PrefixPending", store.ProjectFilter{Prefix: "lab-", IncludePending: true}, "[lab-a lab-b lab-p]"},
			{"PrefixNone", store.ProjectFilter{Prefix: "q"}, "[]"},
			{"NamesNil", store.ProjectFilter{Names: nil, Page: store.Page{Limit: 2}}, "[lab lab-a]"},
			{"NamesEmpty", store.ProjectFilter{Names: []string{}, IncludePending: true}, "[]"},
			{"Names", store.ProjectFilter{Names: []string{"zoo", "pend", "lab", "ghost"}}, "[lab zoo]"},
			{"NamesPending", store.ProjectFilter{Names: []string{"zoo", "pend", "lab"}, IncludePending: true}, "[lab pend zoo]"},
			{"NamesPrefixPage", store.ProjectFilter{Names: []string{"lab", "lab-a", "lab-b", "zoo"}, Prefix: "lab",
				Page: store.Page{After: "lab", Limit: 1}}, "[lab-a]"},
			{"After", store.ProjectFilter{Page: store.Page{After: "labx"}}, "[other zoo]"},
			{"AfterLast", store.ProjectFilter{Page: store.Page{After: "zoo"}}, "[]"},
		} {
			t.Run(c.name, func(t *testing.T) {
				view(t, s, func(ctx context.Context, tx store.Tx) error {
					ps, err := tx.Projects().List(ctx, c.f)
					ok(t, err)
					if got := projectNames(ps); got != c.want {
						t.Errorf("List(%+v) = %s, want %s", c.f, got, c.want)
					}
					return nil
				})
			})
		}
	}},
	{"ListPages", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice")
		var names []string
		for i := range 7 {
			names = append(names, fmt.Sprintf("p%02d", i))
		}
		createProjects(t, s, "alice", names...)
		var got []string
		page := store.Page{Limit: 3}
		for range 10 {
			var ps []*domain.Project
			view(t, s, func(ctx context.Context, tx store.Tx) (err error) {
				ps, err = tx.Projects().List(ctx, store.ProjectFilter{Page: page})
				return err
			})
			if len(ps) > 3 {
				t.Fatalf("a page of %d, limit 3", len(ps))
			}
			if len(ps) == 0 {
				break
			}
			for _, p := range ps {
				got = append(got, p.Name)
			}
			page.After = ps[len(ps)-1].Name
		}
		if !reflect.DeepEqual(got, names) {
			t.Errorf("pages gave %v, want %v", got, names)
		}
	}},
	{"Members", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice", "bob", "carol")
		createProjects(t, s, "alice", "lab", "zoo", "empty")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ps := tx.Projects()
			ok(t, ps.SetMember(ctx, member("lab", "carol", rightsRealize, 2)))
			ok(t, ps.SetMember(ctx, member("lab", "alice", rightsManage, 1)))
			ok(t, ps.SetMember(ctx, member("lab", "bob", rightsAdd, 3)))
			ok(t, ps.SetMember(ctx, member("zoo", "bob", 0, 4)))
			// Updating rights keeps when bob joined.
			return ps.SetMember(ctx, member("lab", "bob", rightsManage|rightsRealize, 9))
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			ps := tx.Projects()
			m, err := ps.Member(ctx, "lab", "bob")
			ok(t, err)
			if want := member("lab", "bob", rightsManage|rightsRealize, 3); !reflect.DeepEqual(m, want) {
				t.Errorf("Member(lab, bob) = %+v, want %+v", m, want)
			}
			ms, err := ps.Members(ctx, "lab")
			ok(t, err)
			if got, want := memberships(ms), "[lab/alice=add_user,remove_user lab/bob=add_user,remove_user,realize_experiment lab/carol=realize_experiment]"; got != want {
				t.Errorf("Members(lab) = %s, want %s", got, want)
			}
			ms, err = ps.Members(ctx, "empty")
			ok(t, err)
			if len(ms) != 0 {
				t.Errorf("Members(empty) = %s", memberships(ms))
			}
			ms, err = ps.MembershipsOf(ctx, "bob")
			ok(t, err)
			if got, want := memberships(ms), "[lab/bob=add_user,remove_user,realize_experiment zoo/bob=none]"; got != want {
				t.Errorf("MembershipsOf(bob) = %s, want %s", got, want)
			}
			ms, err = ps.MembershipsOf(ctx, "ghost")
			ok(t, err)
			if len(ms) != 0 {
				t.Errorf("MembershipsOf(ghost) = %s", memberships(ms))
			}
			return nil
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Projects().RemoveMember(ctx, "lab", "bob"))
			_, err := tx.Projects().Member(ctx, "lab", "bob")
			wantCode(t, err, domain.CodeNotFound, "bob is not a member of project lab")
			ms, err := tx.Projects().MembershipsOf(ctx, "bob")
			ok(t, err)
			if got := memberships(ms); got != "[zoo/bob=none]" {
				t.Errorf("after RemoveMember: MembershipsOf(bob) = %s", got)
			}
			return nil
		})
	}},
	{"Children", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice")
		createProjects(t, s, "alice", "a", "b", "c", "d")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ps := tx.Projects()
			ok(t, ps.AddChild(ctx, &domain.ProjectChild{Parent: "a", Child: "c", Rights: rightsRealize}))
			ok(t, ps.AddChild(ctx, &domain.ProjectChild{Parent: "a", Child: "b", Rights: rightsAdd}))
			ok(t, ps.AddChild(ctx, &domain.ProjectChild{Parent: "d", Child: "c"}))
			return nil
		})
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			ps := tx.Projects()
			for _, c := range []struct {
				name string
				fn   func(context.Context, string) ([]*domain.ProjectChild, error)
				arg  string
				want string
			}{
				{"Children(a)", ps.Children, "a", "[a<b=add_user a<c=realize_experiment]"},
				{"Children(c)", ps.Children, "c", "[]"},
				{"Parents(c)", ps.Parents, "c", "[a<c=realize_experiment d<c=none]"},
				{"Parents(a)", ps.Parents, "a", "[]"},
			} {
				got, err := c.fn(ctx, c.arg)
				ok(t, err)
				if edges(got) != c.want {
					t.Errorf("%s = %s, want %s", c.name, edges(got), c.want)
				}
			}
			return nil
		})
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ok(t, tx.Projects().RemoveChild(ctx, "a", "c"))
			err := tx.Projects().RemoveChild(ctx, "a", "c")
			wantCode(t, err, domain.CodeNotFound, "project c is not nested in a")
			cs, err := tx.Projects().AllChildren(ctx)
			ok(t, err)
			if got := edges(cs); got != "[a<b=add_user d<c=none]" {
				t.Errorf("AllChildren after RemoveChild = %s", got)
			}
			return nil
		})
	}},
	{"DeleteCascades", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice", "bob")
		createProjects(t, s, "alice", "top", "mid", "leaf", "other")
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			ps := tx.Projects()
			ok(t, ps.AddChild(ctx, &domain.ProjectChild{Parent: "top", Child: "mid"}))
			ok(t, ps.AddChild(ctx, &domain.ProjectChild{Parent: "mid", Child: "leaf"}))
			ok(t, ps.AddChild(ctx, &domain.ProjectChild{Parent: "top", Child: "leaf"}))
			for _, g := range []string{"top", "mid", "other"} {
				ok(t, ps.SetMember(ctx, member(g, "bob", rightsAdd, 0)))
			}
			return nil
		})
		// mid is a child (of top) and a parent (of leaf): both edges go.
		update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.Projects().Delete(ctx, "mid") })
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			ps := tx.Projects()
			_, err := ps.Get(ctx, "mid")
			wantCode(t, err, domain.CodeNotFound, `project "mid" not found`)
			ms, err := ps.AllMembers(ctx)
			ok(t, err)
			if got := memberships(ms); got != "[other/bob=add_user top/bob=add_user]" {
				t.Errorf("AllMembers after Delete(mid) = %s", got)
			}
			cs, err := ps.AllChildren(ctx)
			ok(t, err)
			if got := edges(cs); got != "[top<leaf=none]" {
				t.Errorf("AllChildren after Delete(mid) = %s", got)
			}
			return nil
		})
		// A new project of the same name starts clean.
		createProjects(t, s, "alice", "mid")
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			ms, err := tx.Projects().Members(ctx, "mid")
			ok(t, err)
			cs, err := tx.Projects().Children(ctx, "mid")
			ok(t, err)
			ps, err := tx.Projects().Parents(ctx, "mid")
			ok(t, err)
			if len(ms)+len(cs)+len(ps) != 0 {
				t.Errorf("recreated mid has members %s, children %s, parents %s", memberships(ms), edges(cs), edges(ps))
			}
			return nil
		})
	}},
	{"ConcurrentCreate", func(t *testing.T, s store.Store) {
		createUsers(t, s, "alice")
		errs := race(t, s, func(ctx context.Context, tx store.Tx, i int) error {
			return tx.Projects().Create(ctx, newProject("lab", "alice"))
		})
		exactlyOne(t, errs, domain.CodeAlreadyExists)
	}},
	{"ConcurrentDeleteAndSetMember", func(t *testing.T, s store.Store) {
		// A membership added while its project is deleted is either
		// deleted with it or refused: no row outlives the project.
		createUsers(t, s, "alice", "bob")
		for round := range rounds {
			name := fmt.Sprintf("p%d", round)
			createProjects(t, s, "alice", name)
			errDel, errSet := concurrently(t, s,
				func(ctx context.Context, tx store.Tx) error { return tx.Projects().Delete(ctx, name) },
				func(ctx context.Context, tx store.Tx) error {
					return tx.Projects().SetMember(ctx, member(name, "bob", rightsAdd, 0))
				})
			if errDel != nil {
				t.Fatalf("round %d: Delete: %v", round, errDel)
			}
			if errSet != nil && domain.CodeOf(errSet) != domain.CodeNotFound {
				t.Fatalf("round %d: SetMember: %v", round, errSet)
			}
		}
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			ms, err := tx.Projects().AllMembers(ctx)
			ok(t, err)
			if len(ms) != 0 {
				t.Errorf("memberships outlived their projects: %s", memberships(ms))
			}
			return nil
		})
	}},
	{"ConcurrentAcceptAndRemove", testAcceptAndRemove},
}

// tx2proj adapts a function of Projects to an errCase function.
func tx2proj(fn func(ctx context.Context, ps store.Projects) error) func(context.Context, store.Tx) error {
	return func(ctx context.Context, tx store.Tx) error { return fn(ctx, tx.Projects()) }
}

// rounds is how many times the two-party races run: one round shows little,
// as the scheduler often runs one side entirely first.
const rounds = 30

// concurrently runs a and b in two Updates at once and returns their errors.
func concurrently(t *testing.T, s store.Store, a, b func(ctx context.Context, tx store.Tx) error) (errA, errB error) {
	t.Helper()
	ctx := ctxFor(t)
	var start, done sync.WaitGroup
	start.Add(1)
	done.Go(func() {
		start.Wait()
		errA = s.Update(ctx, func(tx store.Tx) error { return a(ctx, tx) })
	})
	done.Go(func() {
		start.Wait()
		errB = s.Update(ctx, func(tx store.Tx) error { return b(ctx, tx) })
	})
	start.Done()
	done.Wait()
	return errA, errB
}

// testAcceptAndRemove races the acceptance of bob's request to join lab (A:
// delete the request, then add the membership; a request already gone
// fails A) against bob's removal (B: remove the membership, then withdraw
// the request, each "not found" being fine). Serializability leaves two
// outcomes, and the store must produce one of them every round:
//
//   - A before B: A deletes the request and adds bob; B then removes bob
//     and finds the request gone.
//   - B before A: B finds no membership and deletes the request; A then
//     finds the request gone and fails with not-found, adding nothing.
//
// Either way the request is gone and bob is not a member; and what B saw
// tells which order it was: B removed a membership exactly when A
// committed, and deleted the request exactly when A failed. A lost update
// (B's removal missing A's insert, or both deleting the request) shows as
// bob left a member or as B's view contradicting A's outcome.
func testAcceptAndRemove(t *testing.T, s store.Store) {
	createUsers(t, s, "alice", "bob")
	createProjects(t, s, "alice", "lab")
	var aFirst int
	for round := range rounds {
		id := fmt.Sprintf("join-%d", round)
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			return tx.Requests().Create(ctx, newRequest(id, domain.RequestProjectJoin, "project:lab", "bob", "bob", hour))
		})
		// B's view in the attempt that committed: an attempt that is
		// run again overwrites them.
		var bRemoved, bDeleted bool
		errA, errB := concurrently(t, s,
			func(ctx context.Context, tx store.Tx) error {
				if err := tx.Requests().Delete(ctx, id); err != nil {
					return err
				}
				return tx.Projects().SetMember(ctx, member("lab", "bob", rightsAdd, 0))
			},
			func(ctx context.Context, tx store.Tx) error {
				err := tx.Projects().RemoveMember(ctx, "lab", "bob")
				if err != nil && domain.CodeOf(err) != domain.CodeNotFound {
					return err
				}
				bRemoved = err == nil
				err = tx.Requests().Delete(ctx, id)
				if err != nil && domain.CodeOf(err) != domain.CodeNotFound {
					return err
				}
				bDeleted = err == nil
				return nil
			})
		if errB != nil {
			t.Fatalf("round %d: B (remove) failed: %v", round, errB)
		}
		switch {
		case errA == nil:
			aFirst++
			if !bRemoved || bDeleted {
				t.Errorf("round %d: A committed, but B removed a membership: %v, deleted the request: %v; want true, false",
					round, bRemoved, bDeleted)
			}
		case domain.CodeOf(errA) == domain.CodeNotFound:
			if bRemoved || !bDeleted {
				t.Errorf("round %d: A failed, but B removed a membership: %v, deleted the request: %v; want false, true",
					round, bRemoved, bDeleted)
			}
		default:
			t.Fatalf("round %d: A (accept) failed: %v", round, errA)
		}
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.Requests().Get(ctx, id)
			if domain.CodeOf(err) != domain.CodeNotFound {
				t.Errorf("round %d: the request is still there (err %v)", round, err)
			}
			m, err := tx.Projects().Member(ctx, "lab", "bob")
			if domain.CodeOf(err) != domain.CodeNotFound {
				t.Errorf("round %d: bob is a member (%+v, err %v) after his removal", round, m, err)
			}
			return nil
		})
	}
	t.Logf("accept serialized first in %d of %d rounds", aFirst, rounds)
}
