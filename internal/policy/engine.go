package policy

import (
	"context"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/changefeed"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

// Engine decides from the membership graph, kept in memory and current.
type Engine struct {
	st   store.Store
	feed *changefeed.Follower
	log  *slog.Logger

	mu sync.RWMutex
	g  *graph
	// stale is set when an incremental reload failed: the next decision
	// reloads everything first.
	stale bool
}

// NewEngine loads the graph and subscribes to the change feed. The feed
// must have been created before, so that nothing committed between its
// start and the load is missed (reloading is idempotent).
func NewEngine(ctx context.Context, st store.Store, feed *changefeed.Follower, log *slog.Logger) (*Engine, error) {
	e := &Engine{st: st, feed: feed, log: log}
	if err := e.reloadAll(ctx); err != nil {
		return nil, err
	}
	feed.On(store.ChangeUser, func(uid string) {
		e.reload(func(ctx context.Context, tx store.Tx) (func(*graph), error) { return loadUser(ctx, tx, uid) })
	})
	feed.On(store.ChangeProject, func(name string) {
		e.reload(func(ctx context.Context, tx store.Tx) (func(*graph), error) { return loadProject(ctx, tx, name) })
	})
	feed.On(store.ChangeCircle, func(id string) {
		e.reload(func(ctx context.Context, tx store.Tx) (func(*graph), error) { return loadCircle(ctx, tx, id) })
	})
	for _, kind := range []string{store.ChangeExperiment, store.ChangeLibrary, store.ChangeRealization} {
		feed.On(kind, func(id string) {
			e.reload(func(ctx context.Context, tx store.Tx) (func(*graph), error) { return loadObject(ctx, tx, kind, id) })
		})
	}
	feed.OnReset(func() {
		e.mu.Lock()
		e.stale = true
		e.mu.Unlock()
	})
	return e, nil
}

// reload applies one change: it reads from the store without holding the
// graph's lock, so decisions go on meanwhile, then applies what it read
// under the lock. The change feed calls it from one goroutine, in order.
// On failure it marks the graph stale rather than deciding from a graph it
// knows to be wrong.
func (e *Engine) reload(load func(ctx context.Context, tx store.Tx) (func(*graph), error)) {
	ctx := context.Background()
	var apply func(*graph)
	err := e.st.View(ctx, func(tx store.Tx) error {
		var err error
		apply, err = load(ctx, tx)
		return err
	})
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		e.log.Warn("policy graph reload failed; reloading everything on next use", "err", err)
		e.stale = true
		return
	}
	apply(e.g)
}

// reloadAll builds the graph from scratch.
func (e *Engine) reloadAll(ctx context.Context) error {
	g := newGraph()
	err := e.st.View(ctx, func(tx store.Tx) error {
		for after := ""; ; {
			users, err := tx.Users().List(ctx, "", store.Page{After: after, Limit: 1000})
			if err != nil {
				return err
			}
			for _, u := range users {
				g.users[u.UID] = userNode{admin: u.Admin, active: u.State == domain.UserActive}
			}
			if len(users) < 1000 {
				break
			}
			after = users[len(users)-1].UID
		}
		projects, err := tx.Projects().All(ctx)
		if err != nil {
			return err
		}
		for _, p := range projects {
			g.projects[p.Name] = newProjectNode(p)
		}
		members, err := tx.Projects().AllMembers(ctx)
		if err != nil {
			return err
		}
		for _, m := range members {
			if p := g.projects[m.Group]; p != nil {
				p.members[m.UID] = m.Rights
				index(g.userProjects, m.UID, m.Group, true)
			}
		}
		children, err := tx.Projects().AllChildren(ctx)
		if err != nil {
			return err
		}
		for _, c := range children {
			if p, ch := g.projects[c.Parent], g.projects[c.Child]; p != nil && ch != nil {
				p.children[c.Child] = c.Rights
				ch.parents[c.Parent] = true
			}
		}
		for _, p := range g.projects {
			index(g.ownedProjects, p.owner, p.name, true)
		}
		circles, err := tx.Circles().All(ctx)
		if err != nil {
			return err
		}
		for _, c := range circles {
			g.circles[c.ID] = &circleNode{id: c.ID, owner: c.Owner, members: map[string]domain.Rights{}}
			index(g.ownedCircles, c.Owner, c.ID, true)
		}
		cmembers, err := tx.Circles().AllMembers(ctx)
		if err != nil {
			return err
		}
		for _, m := range cmembers {
			if c := g.circles[m.Group]; c != nil {
				c.members[m.UID] = m.Rights
				index(g.userCircles, m.UID, m.Group, true)
			}
		}
		return loadObjects(ctx, tx, g)
	})
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.g, e.stale = g, false
	e.mu.Unlock()
	return nil
}

// loadObjects adds every experiment, library and realization (ended ones
// too: their record stays readable) with their grants.
func loadObjects(ctx context.Context, tx store.Tx, g *graph) error {
	nodes := map[string]*objectNode{}
	exps, err := tx.Experiments().All(ctx)
	if err != nil {
		return err
	}
	for _, x := range exps {
		k := domain.ExperimentObject(x.ID)
		nodes[k] = &objectNode{key: k, owner: x.Owner, grants: map[string]domain.Rights{}}
	}
	libs, err := tx.Libraries().All(ctx)
	if err != nil {
		return err
	}
	for _, l := range libs {
		k := domain.LibraryObject(l.ID)
		nodes[k] = &objectNode{key: k, owner: l.Owner, grants: map[string]domain.Rights{}}
	}
	rs, err := tx.Realizations().All(ctx)
	if err != nil {
		return err
	}
	for _, r := range rs {
		k := domain.RealizationObject(r.ID)
		nodes[k] = &objectNode{key: k, owner: r.Owner, project: r.Project, grants: map[string]domain.Rights{}}
	}
	grants, err := tx.Grants().All(ctx)
	if err != nil {
		return err
	}
	for _, gr := range grants {
		if n := nodes[gr.Object]; n != nil {
			n.grants[gr.Circle] = gr.Rights
		}
	}
	for k, n := range nodes {
		g.putObject(k, n)
	}
	return nil
}

// loadObject reads one experiment, library or realization and its grants.
func loadObject(ctx context.Context, tx store.Tx, kind, id string) (func(*graph), error) {
	key := kind + ":" + id
	n := &objectNode{key: key, grants: map[string]domain.Rights{}}
	var err error
	switch kind {
	case store.ChangeExperiment:
		var x *domain.Experiment
		if x, err = tx.Experiments().Get(ctx, id); err == nil {
			n.owner = x.Owner
		}
	case store.ChangeLibrary:
		var l *domain.Library
		if l, err = tx.Libraries().Get(ctx, id); err == nil {
			n.owner = l.Owner
		}
	default:
		var r *domain.Realization
		if r, err = tx.Realizations().Get(ctx, id); err == nil {
			n.owner, n.project = r.Owner, r.Project
		}
	}
	if domain.HasCode(err, domain.CodeNotFound) {
		return func(g *graph) { g.putObject(key, nil) }, nil
	}
	if err != nil {
		return nil, err
	}
	grants, err := tx.Grants().List(ctx, key)
	if err != nil {
		return nil, err
	}
	for _, gr := range grants {
		n.grants[gr.Circle] = gr.Rights
	}
	return func(g *graph) { g.putObject(key, n) }, nil
}

func newProjectNode(p *domain.Project) *projectNode {
	return &projectNode{
		name: p.Name, owner: p.Owner, approved: p.State == domain.ProjectApproved,
		members: map[string]domain.Rights{}, children: map[string]domain.Rights{}, parents: map[string]bool{},
	}
}

// load* read one object's part of the graph and return how to put it in.
func loadUser(ctx context.Context, tx store.Tx, uid string) (func(*graph), error) {
	u, err := tx.Users().Get(ctx, uid)
	if domain.HasCode(err, domain.CodeNotFound) {
		return func(g *graph) { delete(g.users, uid) }, nil
	}
	if err != nil {
		return nil, err
	}
	n := userNode{admin: u.Admin, active: u.State == domain.UserActive}
	return func(g *graph) { g.users[uid] = n }, nil
}

func loadProject(ctx context.Context, tx store.Tx, name string) (func(*graph), error) {
	p, err := tx.Projects().Get(ctx, name)
	if domain.HasCode(err, domain.CodeNotFound) {
		return func(g *graph) { g.putProject(name, nil) }, nil
	}
	if err != nil {
		return nil, err
	}
	n := newProjectNode(p)
	members, err := tx.Projects().Members(ctx, name)
	if err != nil {
		return nil, err
	}
	for _, m := range members {
		n.members[m.UID] = m.Rights
	}
	children, err := tx.Projects().Children(ctx, name)
	if err != nil {
		return nil, err
	}
	for _, c := range children {
		n.children[c.Child] = c.Rights
	}
	return func(g *graph) { g.putProject(name, n) }, nil
}

func loadCircle(ctx context.Context, tx store.Tx, id string) (func(*graph), error) {
	c, err := tx.Circles().Get(ctx, id)
	if domain.HasCode(err, domain.CodeNotFound) {
		return func(g *graph) { g.putCircle(id, nil) }, nil
	}
	if err != nil {
		return nil, err
	}
	n := &circleNode{id: id, owner: c.Owner, members: map[string]domain.Rights{}}
	members, err := tx.Circles().Members(ctx, id)
	if err != nil {
		return nil, err
	}
	for _, m := range members {
		n.members[m.UID] = m.Rights
	}
	return func(g *graph) { g.putCircle(id, n) }, nil
}

// read runs fn on a graph as fresh as the store was when read was called.
func (e *Engine) read(ctx context.Context, fn func(g *graph)) error {
	if err := e.feed.Barrier(ctx); err != nil {
		return domain.Internal(err, "policy: catching up with the store failed")
	}
	e.mu.RLock()
	stale := e.stale
	e.mu.RUnlock()
	if stale {
		if err := e.reloadAll(ctx); err != nil {
			return domain.Internal(err, "policy: reloading the membership graph failed")
		}
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	fn(e.g)
	return nil
}

// Authorize applies an operation's rule to the caller and what the
// request names. The service layer calls it first in every operation.
func (e *Engine) Authorize(ctx context.Context, p *auth.Principal, op string, rule Rule, t Target) Decision {
	if !needsGraph(p, rule, t) {
		return authorize(nil, p, op, rule, t)
	}
	var d Decision
	if err := e.read(ctx, func(g *graph) { d = authorize(g, p, op, rule, t) }); err != nil {
		return deny(err, "graph unavailable")
	}
	return d
}

// Check decides whether uid may perform action on object. An allowed
// decision carries no reasons; Explain gives them.
func (e *Engine) Check(ctx context.Context, uid, action, object string) Decision {
	return e.decide(ctx, uid, action, object, false)
}

// Explain is Check with the chain of reasons, allowed or not.
func (e *Engine) Explain(ctx context.Context, uid, action, object string) Decision {
	return e.decide(ctx, uid, action, object, true)
}

func (e *Engine) decide(ctx context.Context, uid, action, object string, why bool) Decision {
	var d Decision
	if err := e.read(ctx, func(g *graph) { d = g.decide(uid, action, object, why) }); err != nil {
		return deny(err, "graph unavailable")
	}
	return d
}

// ListAllowed lists the objects of kind ("project" or "circle") on which
// uid may perform action.
func (e *Engine) ListAllowed(ctx context.Context, uid, action, kind string) ([]string, error) {
	switch kind {
	case "project", "circle", "experiment", "library", "realization":
	default:
		return nil, domain.Invalid("kind", "kind.unknown", "kind is project, circle, experiment, library or realization")
	}
	var out []string
	err := e.read(ctx, func(g *graph) {
		var objects []string
		switch {
		case g.users[uid].admin:
			objects = g.objectsOf(kind, uid)
		case kind == "project" || kind == "circle":
			objects = g.candidates(uid, kind)
		default:
			objects = g.objectCandidates(uid, kind)
		}
		for _, obj := range objects {
			if g.decide(uid, action, obj, false).Allowed {
				out = append(out, obj)
			}
		}
	})
	return out, err
}

// Member is one user's standing in a group, as the graph has it.
type Member struct {
	UID    string
	Rights domain.Rights
	Owner  bool
	Via    string
}

// ProjectMembers lists a project's members; effective adds those who belong
// through nested projects.
func (e *Engine) ProjectMembers(ctx context.Context, name string, effective bool) ([]Member, error) {
	var out []Member
	var missing bool
	err := e.read(ctx, func(g *graph) {
		p := g.projects[name]
		if p == nil {
			missing = true
			return
		}
		if effective {
			for uid, m := range g.effectiveMembers(p) {
				out = append(out, Member{UID: uid, Rights: m.rights, Owner: uid == p.owner, Via: m.via})
			}
		} else {
			for uid, r := range p.members {
				out = append(out, Member{UID: uid, Rights: r, Owner: uid == p.owner})
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if missing {
		return nil, domain.NotFound("project %q not found", name)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UID < out[j].UID })
	return out, nil
}

// Holders lists the users who may perform action on object: whom to ask
// when someone wants to join.
func (e *Engine) Holders(ctx context.Context, action, object string) ([]string, error) {
	var out []string
	err := e.read(ctx, func(g *graph) {
		candidates := map[string]bool{}
		kind, name, _ := strings.Cut(object, ":")
		if kind == "project" {
			if p := g.projects[name]; p != nil {
				candidates[p.owner] = true
				for uid := range g.effectiveMembers(p) {
					candidates[uid] = true
				}
			}
		} else if c := g.circles[name]; c != nil {
			candidates[c.owner] = true
			for uid := range c.members {
				candidates[uid] = true
			}
			if p := g.projects[c.owner]; p != nil {
				candidates[p.owner] = true
				for uid := range g.effectiveMembers(p) {
					candidates[uid] = true
				}
			}
		}
		for uid := range candidates {
			// Admins may do everything but are asked only when they
			// belong, not for every project on the testbed.
			if d := g.decide(uid, action, object, false); d.Allowed && !(g.users[uid].admin && !g.belongs(uid, object)) {
				out = append(out, uid)
			}
		}
	})
	sort.Strings(out)
	return out, err
}

// belongs reports whether uid is in the project or circle itself.
func (g *graph) belongs(uid, object string) bool {
	kind, name, _ := strings.Cut(object, ":")
	if kind == "project" {
		p := g.projects[name]
		return p != nil && (p.owner == uid || g.memberOf(uid, p, 0, false) != nil)
	}
	c := g.circles[name]
	if c == nil {
		return false
	}
	_, ok := c.members[uid]
	return ok || c.owner == uid
}

// CircleMembers lists who is in a circle, automatic circles included.
func (e *Engine) CircleMembers(ctx context.Context, id string) ([]Member, error) {
	var out []Member
	var missing bool
	err := e.read(ctx, func(g *graph) {
		owner, _, _ := strings.Cut(id, ":")
		switch {
		case domain.AutomaticCircle(id) && g.projects[owner] != nil:
			p := g.projects[owner]
			for uid, m := range g.effectiveMembers(p) {
				out = append(out, Member{UID: uid, Via: m.via, Owner: uid == p.owner})
			}
			if _, ok := g.effectiveMembers(p)[p.owner]; !ok {
				out = append(out, Member{UID: p.owner, Owner: true})
			}
		case domain.AutomaticCircle(id):
			if _, ok := g.users[owner]; !ok {
				missing = true
				return
			}
			out = append(out, Member{UID: owner, Owner: true})
		default:
			c := g.circles[id]
			if c == nil {
				missing = true
				return
			}
			for uid, r := range c.members {
				out = append(out, Member{UID: uid, Rights: r, Owner: uid == c.owner})
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if missing {
		return nil, domain.NotFound("circle %q not found", id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UID < out[j].UID })
	return out, nil
}

// Admins lists the testbed's active administrators, who are asked to vet
// projects.
func (e *Engine) Admins(ctx context.Context) ([]string, error) {
	var out []string
	err := e.read(ctx, func(g *graph) {
		for uid, u := range g.users {
			if u.admin && u.active {
				out = append(out, uid)
			}
		}
	})
	sort.Strings(out)
	return out, err
}

// Powerful reports whether uid is an admin or a member of an approved project.
func (e *Engine) Powerful(ctx context.Context, uid string) (bool, error) {
	var ok bool
	err := e.read(ctx, func(g *graph) { ok = g.powerful(uid) })
	return ok, err
}

// Admin reports whether uid is an administrator, as the graph knows it.
func (e *Engine) Admin(ctx context.Context, uid string) (bool, error) {
	var ok bool
	err := e.read(ctx, func(g *graph) { ok = g.users[uid].admin })
	return ok, err
}
