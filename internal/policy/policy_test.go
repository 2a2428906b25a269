package policy

import (
	"slices"
	"strings"
	"testing"

	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/domain"
)

// fixture builds a small graph:
//
//	dept (approved, owner dora): members dora, dan{add_user}
//	  └ lab nested with {realize_experiment}
//	lab (approved, owner lee): members lee, lou{add_user,remove_user}
//	  └ team nested with {add_user}
//	team (approved, owner tim): members tim, tia{}
//	idea (pending, owner ida)
//	circles: lee:friends {lou: add_user, liv: none}; lab:ops (owned by lab)
//	users also: root (admin), nobody (no project), off (locked)
func fixture() *graph {
	g := newGraph()
	for _, u := range []string{"dora", "dan", "lee", "lou", "tim", "tia", "ida", "liv", "nobody"} {
		g.users[u] = userNode{active: true}
	}
	g.users["root"] = userNode{active: true, admin: true}
	g.users["off"] = userNode{active: false}
	r := domain.RightsOf
	put := func(name, owner string, approved bool, members map[string]domain.Rights, children map[string]domain.Rights) {
		g.putProject(name, &projectNode{name: name, owner: owner, approved: approved, members: members, children: children})
	}
	put("team", "tim", true, map[string]domain.Rights{"tim": domain.ProjectRights, "tia": 0}, map[string]domain.Rights{})
	put("lab", "lee", true, map[string]domain.Rights{"lee": domain.ProjectRights, "lou": r(domain.AddUser, domain.RemoveUser)}, map[string]domain.Rights{"team": r(domain.AddUser)})
	put("dept", "dora", true, map[string]domain.Rights{"dora": domain.ProjectRights, "dan": r(domain.AddUser)}, map[string]domain.Rights{"lab": r(domain.RealizeExperiment)})
	put("idea", "ida", false, map[string]domain.Rights{"ida": domain.ProjectRights}, map[string]domain.Rights{})
	g.putCircle("lee:friends", &circleNode{id: "lee:friends", owner: "lee", members: map[string]domain.Rights{"lou": r(domain.AddUser), "liv": 0}})
	g.putCircle("lab:ops", &circleNode{id: "lab:ops", owner: "lab", members: map[string]domain.Rights{}})
	return g
}

func TestDecide(t *testing.T) {
	g := fixture()
	const allowed = -1
	tests := []struct {
		uid, action, object string
		want                domain.Code
	}{
		// Direct rights, ownership, administration.
		{"lou", ProjectAddUser, "project:lab", allowed},
		{"lou", ProjectRealizeExperiment, "project:lab", domain.CodePermissionDenied},
		{"lee", ProjectRealizeExperiment, "project:lab", allowed},
		{"root", ProjectRemoveUser, "project:team", allowed},
		{"lou", ProjectOwn, "project:lab", domain.CodePermissionDenied},
		{"lee", ProjectOwn, "project:lab", allowed},
		// Nesting: team's members get add_user in lab; lab's (and so
		// team's) members get realize_experiment in dept, nothing else.
		{"tia", ProjectAddUser, "project:lab", allowed},
		{"tia", ProjectRemoveUser, "project:lab", domain.CodePermissionDenied},
		{"tia", ProjectRealizeExperiment, "project:dept", allowed},
		{"lou", ProjectRealizeExperiment, "project:dept", allowed},
		{"lou", ProjectAddUser, "project:dept", domain.CodePermissionDenied},
		{"tia", ProjectRead, "project:dept", allowed},
		// Nesting does not flow downwards.
		{"dan", ProjectRead, "project:lab", domain.CodeNotFound},
		// Outsiders learn nothing.
		{"nobody", ProjectRead, "project:lab", domain.CodeNotFound},
		{"nobody", ProjectAddUser, "project:lab", domain.CodeNotFound},
		{"lou", ProjectRead, "project:missing", domain.CodeNotFound},
		// Pending projects: their owner sees them and can do nothing yet.
		{"ida", ProjectRead, "project:idea", allowed},
		{"ida", ProjectAddUser, "project:idea", domain.CodeFailedPrecondition},
		{"lee", ProjectRead, "project:idea", domain.CodeNotFound},
		// Inactive accounts can do nothing.
		{"off", ProjectRead, "project:lab", domain.CodePermissionDenied},
		// Circles.
		{"liv", CircleRead, "circle:lee:friends", allowed},
		{"liv", CircleAddUser, "circle:lee:friends", domain.CodePermissionDenied},
		{"lou", CircleAddUser, "circle:lee:friends", allowed},
		{"lee", CircleRemoveUser, "circle:lee:friends", allowed},
		{"lou", CircleOwn, "circle:lee:friends", domain.CodePermissionDenied},
		{"nobody", CircleRead, "circle:lee:friends", domain.CodeNotFound},
		{"lee", CircleAddUser, "circle:lab:ops", allowed}, // project owner administers its circles
		{"lou", CircleRead, "circle:lab:ops", domain.CodeNotFound},
		// Automatic circles follow their owner and are read-only.
		{"tia", CircleRead, "circle:lab:lab", allowed},
		{"dan", CircleRead, "circle:lab:lab", domain.CodeNotFound},
		{"lee", CircleAddUser, "circle:lab:lab", domain.CodeFailedPrecondition},
		{"liv", CircleRead, "circle:liv:liv", allowed},
		{"lou", CircleRead, "circle:liv:liv", domain.CodeNotFound},
		// Creating circles.
		{"lou", CircleCreate, "circle:lou:pals", allowed},
		{"lou", CircleCreate, "circle:lee:pals", domain.CodePermissionDenied},
		{"nobody", CircleCreate, "circle:nobody:pals", domain.CodePermissionDenied},
		{"lee", CircleCreate, "circle:lab:new", allowed},
		{"lou", CircleCreate, "circle:lab:new", domain.CodePermissionDenied},
		{"lou", CircleCreate, "circle:lou:lou", domain.CodeInvalidArgument},
		// Nonsense.
		{"lou", "project.fly", "project:lab", domain.CodeInvalidArgument},
		{"lou", ProjectRead, "experiment:x", domain.CodeInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.uid+" "+tt.action+" "+tt.object, func(t *testing.T) {
			d := g.decide(tt.uid, tt.action, tt.object, true)
			if tt.want == allowed {
				if !d.Allowed {
					t.Fatalf("refused: %v (%s)", d.Err, d.Reason)
				}
			} else if d.Allowed || domain.CodeOf(d.Err) != tt.want {
				t.Fatalf("decision %v (%s), want %v", d.Err, d.Reason, tt.want)
			}
			if len(d.Reasons) == 0 {
				t.Fatal("a decision without reasons")
			}
		})
	}
}

func TestExplainChain(t *testing.T) {
	g := fixture()
	d := g.decide("tia", ProjectRealizeExperiment, "project:dept", true)
	want := []string{
		"tia is a member of project team with rights none",
		"project team is nested in project lab",
		"members of project lab get rights realize_experiment in project dept",
	}
	if !slices.Equal(d.Reasons, want) {
		t.Fatalf("reasons:\n%s\nwant:\n%s", strings.Join(d.Reasons, "\n"), strings.Join(want, "\n"))
	}
	d = g.decide("nobody", ProjectAddUser, "project:lab", true)
	if d.Allowed || !strings.Contains(d.Err.Error(), "not found") {
		t.Fatalf("outsider: %+v", d)
	}
	// A powerless user's refusal says what it can do.
	d = g.decide("nobody", CircleCreate, "circle:nobody:pals", true)
	if !strings.Contains(d.Err.Error(), "trellis project join") {
		t.Fatalf("powerless refusal lacks the hint: %v", d.Err)
	}
}

func TestEffectiveMembers(t *testing.T) {
	g := fixture()
	// lou belongs to dept directly as well as through lab: a direct
	// member, with the rights of both, via nothing.
	g.projects["dept"].members["lou"] = domain.RightsOf(domain.AddUser)
	got := g.effectiveMembers(g.projects["dept"])
	want := map[string]effective{
		"dora": {rights: domain.ProjectRights, direct: true},
		"dan":  {rights: domain.RightsOf(domain.AddUser), direct: true},
		"lee":  {rights: domain.RightsOf(domain.RealizeExperiment), via: "lab"},
		"lou":  {rights: domain.RightsOf(domain.AddUser, domain.RealizeExperiment), direct: true},
		"tim":  {rights: domain.RightsOf(domain.RealizeExperiment), via: "team"},
		"tia":  {rights: domain.RightsOf(domain.RealizeExperiment), via: "team"},
	}
	if len(got) != len(want) {
		t.Fatalf("members %v", got)
	}
	for uid, w := range want {
		if got[uid] != w {
			t.Errorf("%s: %+v, want %+v", uid, got[uid], w)
		}
		// effectiveMembers and grant must agree.
		for _, right := range []domain.Right{domain.AddUser, domain.RealizeExperiment} {
			has := g.grant(uid, g.projects["dept"], domain.RightsOf(right), 0, false) != nil
			if has != got[uid].rights.Has(domain.RightsOf(right)) {
				t.Errorf("%s %s: grant says %v, effective members say %v", uid, right, has, got[uid].rights)
			}
		}
	}
}

func TestWouldCycle(t *testing.T) {
	g := fixture()
	for _, tt := range []struct {
		parent, child string
		cycle         bool
	}{
		{"team", "dept", true}, // dept ⊃ lab ⊃ team
		{"team", "lab", true},
		{"lab", "lab", true},
		{"dept", "idea", false},
		{"team", "idea", false},
	} {
		if got := g.wouldCycle(tt.parent, tt.child); got != tt.cycle {
			t.Errorf("nest %s in %s: cycle=%v, want %v", tt.child, tt.parent, got, tt.cycle)
		}
	}
}

func TestGraphUpdates(t *testing.T) {
	g := fixture()
	// Removing lab drops the nesting both ways and the memberships.
	g.putProject("lab", nil)
	if g.decide("tia", ProjectRealizeExperiment, "project:dept", true).Allowed {
		t.Fatal("nesting survived the removal of the middle project")
	}
	if _, ok := g.userProjects["lou"]["lab"]; ok {
		t.Fatal("membership index kept a removed project")
	}
	// Reloading a project keeps its parents consistent.
	g = fixture()
	lab := g.projects["lab"]
	g.putProject("lab", &projectNode{name: "lab", owner: "lee", approved: true, members: lab.members, children: map[string]domain.Rights{}})
	if !g.projects["lab"].parents["dept"] {
		t.Fatal("reloaded project lost its parent")
	}
	if g.projects["team"].parents["lab"] {
		t.Fatal("unnested child still lists the parent")
	}
}

func TestAuthorizeRules(t *testing.T) {
	g := fixture()
	lou := &auth.Principal{UID: "lou"}
	root := &auth.Principal{UID: "root"}
	nobody := &auth.Principal{UID: "nobody"}
	var (
		public        = Rule{Kind: Public}
		authenticated = Rule{Kind: Authenticated}
		self          = Rule{Kind: SelfOrAdmin}
		admin         = Rule{Kind: Admin}
		powerful      = Rule{Kind: Powerful}
		readProject   = Rule{Kind: Object, Checks: []ObjectCheck{{ProjectRead, "project"}}}
		ownProject    = Rule{Kind: Object, Checks: []ObjectCheck{{ProjectOwn, "project"}}}
		addUser       = Rule{Kind: Object, Checks: []ObjectCheck{{ProjectAddUser, "project"}}}
		removeUser    = Rule{Kind: Object, SelfOK: true, Checks: []ObjectCheck{{ProjectRemoveUser, "project"}}}
		nest          = Rule{Kind: Object, Checks: []ObjectCheck{{ProjectAddUser, "project"}, {ProjectOwn, "project"}}}
		either        = Rule{Kind: Object, Any: true, Checks: []ObjectCheck{{ProjectRemoveUser, "project"}, {ProjectOwn, "project"}}}
	)
	tests := []struct {
		name string
		p    *auth.Principal
		rule Rule
		t    Target
		want domain.Code
	}{
		{"public anonymous", nil, public, None, -1},
		{"authenticated anonymous", nil, authenticated, None, domain.CodeUnauthenticated},
		{"object anonymous", nil, readProject, On("name", "lab"), domain.CodeUnauthenticated},
		{"self other uid hidden", lou, self, Account("uid", "lee"), domain.CodeNotFound},
		{"self empty uid", lou, self, Account("uid", ""), -1},
		{"self admin other uid", root, self, Account("uid", "lee"), -1},
		{"admin refused", lou, admin, None, domain.CodePermissionDenied},
		{"admin allowed", root, admin, None, -1},
		{"object allowed", lou, addUser, On("name", "lab"), -1},
		{"object refused", lou, ownProject, On("name", "lab"), domain.CodePermissionDenied},
		{"object hidden", nobody, readProject, On("name", "lab"), domain.CodeNotFound},
		{"object missing name", lou, readProject, On("name", ""), domain.CodeInvalidArgument},
		{"object malformed name", lou, readProject, On("name", "no spaces"), domain.CodeInvalidArgument},
		{"object target missing", lou, readProject, None, domain.CodeInternal},
		{"leaving needs no right", &auth.Principal{UID: "tia"}, removeUser, On("name", "team").ActingOn([]string{"tia"}), -1},
		{"removing others needs the right", &auth.Principal{UID: "tia"}, removeUser, On("name", "team").ActingOn([]string{"tim"}), domain.CodePermissionDenied},
		{"nesting needs both sides", lou, nest, On("parent", "lab").And("child", "team"), domain.CodeNotFound},
		{"nesting allowed", &auth.Principal{UID: "dora"}, nest, On("parent", "dept").And("child", "dept"), -1},
		{"either side may unnest", &auth.Principal{UID: "dora"}, either, On("parent", "lab").And("child", "dept"), -1},
		{"powerless refused", nobody, powerful, None, domain.CodePermissionDenied},
		{"listing own", lou, Rule{Kind: Listing, Checks: []ObjectCheck{{ProjectRead, "project"}}}, Account("member", ""), -1},
		{"listing about another hidden", lou, Rule{Kind: Listing, Checks: []ObjectCheck{{ProjectRead, "project"}}}, Account("member", "lee"), domain.CodeNotFound},
		{"listing about another by admin", root, Rule{Kind: Listing, Checks: []ObjectCheck{{ProjectRead, "project"}}}, Account("member", "lee"), -1},
		{"unknown rule kind", root, Rule{}, None, domain.CodePermissionDenied},
		{"personal for the user", lou, Rule{Kind: Authenticated, Personal: true}, None, -1},
		{"personal refuses an acting service", &auth.Principal{UID: "lou", Actor: "service:runner"}, Rule{Kind: Authenticated, Personal: true}, None, domain.CodePermissionDenied},
		{"personal refuses an acting service even for an admin", &auth.Principal{UID: "root", Actor: "service:runner"}, Rule{Kind: Powerful, Personal: true}, None, domain.CodePermissionDenied},
		{"acting service may do what is not personal", &auth.Principal{UID: "lou", Actor: "service:runner"}, authenticated, None, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Decision
			if needsGraph(tt.p, tt.rule, tt.t) {
				d = authorize(g, tt.p, "test/Op", tt.rule, tt.t)
			} else {
				d = authorize(nil, tt.p, "test/Op", tt.rule, tt.t)
			}
			if tt.want == -1 {
				if !d.Allowed {
					t.Fatalf("refused: %v (%s)", d.Err, d.Reason)
				}
				return
			}
			if d.Allowed || domain.CodeOf(d.Err) != tt.want {
				t.Fatalf("decision %+v, want %v", d, tt.want)
			}
		})
	}
}

// TestCandidatesMissNothing: listings decide only a user's candidates; for
// every user and action, that must allow exactly what deciding every object
// allows.
func TestCandidatesMissNothing(t *testing.T) {
	g := fixture()
	every := func(kind string) []string {
		var out []string
		for name := range g.projects {
			if kind == "project" {
				out = append(out, "project:"+name)
			} else {
				out = append(out, "circle:"+name+":"+name)
			}
		}
		if kind == "circle" {
			for id := range g.circles {
				out = append(out, "circle:"+id)
			}
			for uid := range g.users {
				out = append(out, "circle:"+uid+":"+uid)
			}
		}
		return out
	}
	for uid, u := range g.users {
		if u.admin {
			continue
		}
		for _, action := range Actions() {
			kind, _, _ := strings.Cut(action, ".")
			var want, got []string
			for _, obj := range every(kind) {
				if g.decide(uid, action, obj, true).Allowed {
					want = append(want, obj)
				}
			}
			for _, obj := range g.candidates(uid, kind) {
				if g.decide(uid, action, obj, true).Allowed {
					got = append(got, obj)
				}
			}
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("%s %s: candidates allow %v, every object %v", uid, action, got, want)
			}
		}
	}
}

func TestDecideObjects(t *testing.T) {
	g := fixture()
	r := domain.RightsOf
	// lee's own experiment, shared read with lee:friends (lou, liv);
	// lab's experiment; a realization of lou's, read-shared with lab:lab.
	g.putObject("experiment:lee:e1", &objectNode{key: "experiment:lee:e1", owner: "lee", grants: map[string]domain.Rights{"lee:friends": r(domain.Read)}})
	g.putObject("experiment:lab:e2", &objectNode{key: "experiment:lab:e2", owner: "liv", grants: map[string]domain.Rights{"team:team": r(domain.Read, domain.Realize)}})
	g.putObject("realization:r1", &objectNode{key: "realization:r1", owner: "lou", project: "lab", grants: map[string]domain.Rights{"lab:lab": r(domain.Read)}})
	g.putObject("library:lee:lib", &objectNode{key: "library:lee:lib", owner: "lee", grants: map[string]domain.Rights{}})
	const allowed = -1
	tests := []struct {
		uid, action, object string
		want                domain.Code
	}{
		{"lee", ExperimentModify, "experiment:lee:e1", allowed}, // owner
		{"lou", ExperimentRead, "experiment:lee:e1", allowed},   // via lee:friends
		{"lou", ExperimentModify, "experiment:lee:e1", domain.CodePermissionDenied},
		{"tia", ExperimentRead, "experiment:lee:e1", domain.CodeNotFound}, // no standing at all
		{"liv", ExperimentOwn, "experiment:lab:e2", allowed},              // its creator owns it
		{"lee", ExperimentOwn, "experiment:lab:e2", domain.CodeNotFound},  // lab's owner does not own it (and holds no grant)
		{"lee", ExperimentRemove, "experiment:lab:e2", allowed},           // but may remove what was made in lab's namespace
		{"liv", ExperimentRemove, "experiment:lab:e2", allowed},           // as its owner may
		{"lou", ExperimentOwn, "experiment:lab:e2", domain.CodeNotFound},  // lou holds no grant
		{"tia", ExperimentRemove, "experiment:lab:e2", domain.CodePermissionDenied},
		{"lee", LibraryRemove, "library:lee:lib", allowed},
		{"lou", ExperimentRemove, "experiment:lee:e1", domain.CodePermissionDenied}, // lou reads it; lee:* is no project
		{"tia", ExperimentRealize, "experiment:lab:e2", allowed},                    // via the automatic circle team:team
		{"tia", ExperimentModify, "experiment:lab:e2", domain.CodePermissionDenied},
		{"root", ExperimentModify, "experiment:lab:e2", allowed},
		{"lou", RealizationRelease, "realization:r1", allowed}, // owner
		{"tia", RealizationRead, "realization:r1", allowed},    // lab:lab holds nested team members
		{"tia", RealizationRelease, "realization:r1", domain.CodePermissionDenied},
		{"dan", RealizationRead, "realization:r1", domain.CodeNotFound},
		{"lou", ExperimentCreate, "experiment:lou:new", allowed},
		{"lou", ExperimentCreate, "experiment:lab:new", domain.CodePermissionDenied},
		{"lee", ExperimentCreate, "experiment:lab:new", allowed},
		{"nobody", ExperimentCreate, "experiment:nobody:new", domain.CodePermissionDenied},
		{"lee", LibraryAddExperiment, "library:lee:lib", allowed},
		{"lou", LibraryRead, "library:lee:lib", domain.CodeNotFound},
		{"lou", ExperimentRead, "experiment:lee:missing", domain.CodeNotFound},
		{"lou", LibraryRead, "experiment:lee:e1", domain.CodeInvalidArgument}, // action of another kind
	}
	for _, tt := range tests {
		t.Run(tt.uid+" "+tt.action+" "+tt.object, func(t *testing.T) {
			d := g.decide(tt.uid, tt.action, tt.object, true)
			if tt.want == allowed {
				if !d.Allowed {
					t.Fatalf("refused: %v (%s)", d.Err, d.Reason)
				}
				return
			}
			if d.Allowed || domain.CodeOf(d.Err) != tt.want {
				t.Fatalf("decision %v (%s), want %v", d.Err, d.Reason, tt.want)
			}
		})
	}
	// Listings find objects through ownership, projects and circles.
	got := g.objectCandidates("tia", "experiment")
	if !slices.Contains(got, "experiment:lab:e2") || slices.Contains(got, "experiment:lee:e1") {
		t.Fatalf("tia's experiment candidates: %v", got)
	}
	got = g.objectCandidates("lou", "experiment")
	if !slices.Contains(got, "experiment:lee:e1") {
		t.Fatalf("lou's experiment candidates: %v", got)
	}
}
