// Package sim is a materialization driver that keeps everything in memory.
// It behaves as a real driver does (validation, address assignment,
// idempotence, rollback on failure, recovery after a crash, the same
// events), so the centre's and the provider's tests can use it on any
// machine, and it can be told to fail: a node or link that will not start,
// or a crash after a given number of steps.
package sim

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/materialize"
)

// ErrCrashed is what an operation returns when CrashAfter stops it. The
// driver then refuses everything but Recover, as a restarted process would
// start with Recover.
var ErrCrashed = errors.New("sim: crashed (as told by CrashAfter)")

// Options configure a Driver.
type Options struct {
	// Observer, when set, receives every element's change of state.
	Observer materialize.Observer
	// Exec, when set, answers Exec; without it Exec echoes argv.
	Exec func(realization, node string, argv []string) ([]byte, error)
}

// Driver is the in-memory driver. The zero value is not usable; call New.
type Driver struct {
	opts Options

	mu         sync.Mutex
	reals      map[string]*realization
	failNodes  map[string]string // node name -> reason
	failLinks  map[string]string
	crashAfter int // steps left before the crash; 0: none planned
	crashed    bool
}

// realization is one realization's record and its "objects".
type realization struct {
	plan     materialize.Plan  // the target, addresses assigned
	prev     *materialize.Plan // during a Change: the plan to return to
	applying bool              // an operation was interrupted while making plan
	removing bool              // a Dematerialize was interrupted
	nodes    map[string]bool   // nodes that exist
	links    map[string]bool   // links that exist
}

var (
	_ materialize.Driver   = (*Driver)(nil)
	_ materialize.Executor = (*Driver)(nil)
)

// New returns an empty driver.
func New(opts Options) *Driver {
	return &Driver{opts: opts, reals: map[string]*realization{}, failNodes: map[string]string{}, failLinks: map[string]string{}}
}

// FailNode makes every later attempt to create a node of this name, in any
// realization, fail with reason, until Heal.
func (d *Driver) FailNode(name, reason string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.failNodes[name] = reason
}

// FailLink is FailNode for links.
func (d *Driver) FailLink(name, reason string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.failLinks[name] = reason
}

// Heal forgets every failure FailNode and FailLink asked for.
func (d *Driver) Heal() {
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(d.failNodes)
	clear(d.failLinks)
}

// CrashAfter makes the next operations stop dead after steps more element
// creations or removals, leaving their work half-done, and return
// ErrCrashed; from then on only Recover is served.
func (d *Driver) CrashAfter(steps int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.crashAfter = steps
}

// Objects lists every element that exists, as "realization/node/name" and
// "realization/link/name", sorted: what a leak check compares.
func (d *Driver) Objects() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for id, r := range d.reals {
		for n := range r.nodes {
			out = append(out, id+"/node/"+n)
		}
		for l := range r.links {
			out = append(out, id+"/link/"+l)
		}
	}
	sort.Strings(out)
	return out
}

func (d *Driver) Materialize(ctx context.Context, p materialize.Plan) (materialize.Status, error) {
	if err := p.Validate(); err != nil {
		return materialize.Status{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.crashed {
		return materialize.Status{}, crashedErr()
	}
	r, exists := d.reals[p.Realization]
	if exists {
		// Same plan: converge (a no-op when everything is there).
		want, err := materialize.Assign(p, &r.plan)
		if err != nil {
			return materialize.Status{}, err
		}
		if !want.Equal(r.plan) {
			return materialize.Status{}, domain.FailedPrecondition("realization %s is materialized with another plan; use Change", p.Realization)
		}
		// A failure here is undone back to the same plan, not removed:
		// the realization was complete before this call.
		same := r.plan
		err = d.apply(ctx, r, r.plan)
		return status(r, err), d.finish(r, &same, err)
	}
	want, err := materialize.Assign(p, nil)
	if err != nil {
		return materialize.Status{}, err
	}
	r = &realization{plan: want, applying: true, nodes: map[string]bool{}, links: map[string]bool{}}
	d.reals[p.Realization] = r
	err = d.apply(ctx, r, want)
	st := status(r, err)
	return st, d.finish(r, nil, err)
}

func (d *Driver) Change(ctx context.Context, p materialize.Plan) (materialize.Status, error) {
	if err := p.Validate(); err != nil {
		return materialize.Status{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.crashed {
		return materialize.Status{}, crashedErr()
	}
	r, ok := d.reals[p.Realization]
	if !ok {
		return materialize.Status{}, domain.NotFound("realization %s is not materialized", p.Realization)
	}
	want, err := materialize.Assign(p, &r.plan)
	if err != nil {
		return materialize.Status{}, err
	}
	prev := r.plan
	r.plan, r.prev, r.applying = want, &prev, true
	err = d.apply(ctx, r, want)
	st := status(r, err)
	return st, d.finish(r, &prev, err)
}

// finish ends an operation: on success the record is complete; on a
// failure what was made is undone (back to prev, or removed entirely);
// after a crash everything stays as it is, for Recover.
func (d *Driver) finish(r *realization, prev *materialize.Plan, err error) error {
	switch {
	case errors.Is(err, ErrCrashed):
		return err
	case err == nil:
		r.applying, r.prev = false, nil
		return nil
	case prev != nil:
		r.plan = *prev
		r.prev = nil
		d.force(r, *prev)
		r.applying = false
	default:
		d.force(r, materialize.Plan{Realization: r.plan.Realization})
		delete(d.reals, r.plan.Realization)
	}
	return err
}

// force brings r to p without failures or crashes: the rollback path.
func (d *Driver) force(r *realization, p materialize.Plan) {
	failNodes, failLinks, crash := d.failNodes, d.failLinks, d.crashAfter
	d.failNodes, d.failLinks, d.crashAfter = nil, nil, 0
	_ = d.apply(context.Background(), r, p)
	d.failNodes, d.failLinks, d.crashAfter = failNodes, failLinks, crash
}

// apply makes r's objects those of p: removes links then nodes that p
// lacks, then makes the nodes then the links that are missing.
func (d *Driver) apply(ctx context.Context, r *realization, p materialize.Plan) error {
	id := r.plan.Realization
	for _, name := range sortedKeys(r.links) {
		if _, ok := p.Link(name); !ok {
			if err := d.step(ctx); err != nil {
				return err
			}
			d.emit(id, materialize.KindLink, name, materialize.StateRemoving, "")
			delete(r.links, name)
			d.emit(id, materialize.KindLink, name, materialize.StateRemoved, "")
		}
	}
	for _, name := range sortedKeys(r.nodes) {
		if _, ok := p.Node(name); !ok {
			if err := d.step(ctx); err != nil {
				return err
			}
			d.emit(id, materialize.KindNode, name, materialize.StateRemoving, "")
			delete(r.nodes, name)
			d.emit(id, materialize.KindNode, name, materialize.StateRemoved, "")
		}
	}
	for _, n := range p.Nodes {
		if r.nodes[n.Name] {
			continue
		}
		if err := d.step(ctx); err != nil {
			return err
		}
		d.emit(id, materialize.KindNode, n.Name, materialize.StateCreating, "")
		if reason, bad := d.failNodes[n.Name]; bad {
			d.emit(id, materialize.KindNode, n.Name, materialize.StateFailed, reason)
			return &materialize.ElementError{Kind: materialize.KindNode, Name: n.Name, Err: errors.New(reason)}
		}
		r.nodes[n.Name] = true
		d.emit(id, materialize.KindNode, n.Name, materialize.StateReady, "")
	}
	for _, l := range p.Links {
		if r.links[l.Name] {
			continue
		}
		if err := d.step(ctx); err != nil {
			return err
		}
		d.emit(id, materialize.KindLink, l.Name, materialize.StateCreating, "")
		if reason, bad := d.failLinks[l.Name]; bad {
			d.emit(id, materialize.KindLink, l.Name, materialize.StateFailed, reason)
			return &materialize.ElementError{Kind: materialize.KindLink, Name: l.Name, Err: errors.New(reason)}
		}
		r.links[l.Name] = true
		d.emit(id, materialize.KindLink, l.Name, materialize.StateReady, "")
	}
	return nil
}

// step counts down to a planned crash and honours cancellation.
func (d *Driver) step(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	if d.crashAfter > 0 {
		d.crashAfter--
		if d.crashAfter == 0 {
			d.crashed = true
			return ErrCrashed
		}
	}
	return nil
}

func (d *Driver) emit(id string, k materialize.Kind, name string, s materialize.State, reason string) {
	if d.opts.Observer != nil {
		d.opts.Observer(materialize.Event{Realization: id, Kind: k, Name: name, State: s, Reason: reason})
	}
}

func (d *Driver) Status(_ context.Context, id string) (materialize.Status, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, ok := d.reals[id]
	if !ok {
		return materialize.Status{}, domain.NotFound("realization %s is not materialized", id)
	}
	return status(r, nil), nil
}

// status reports r's target plan: what exists is ready, the element that
// failed is failed, the rest pending.
func status(r *realization, failure error) materialize.Status {
	var fe *materialize.ElementError
	errors.As(failure, &fe)
	st := materialize.Status{Realization: r.plan.Realization}
	for _, n := range r.plan.Nodes {
		ns := materialize.NodeStatus{Name: n.Name, State: materialize.StatePending, Router: n.Router, Location: "sim:" + r.plan.Realization + "/" + n.Name}
		switch {
		case fe != nil && fe.Kind == materialize.KindNode && fe.Name == n.Name:
			ns.State, ns.Reason = materialize.StateFailed, fe.Err.Error()
		case r.nodes[n.Name]:
			ns.State = materialize.StateReady
		}
		st.Nodes = append(st.Nodes, ns)
	}
	ifaces := map[string]int{}
	for _, l := range r.plan.Links {
		ls := materialize.LinkStatus{Name: l.Name, State: materialize.StatePending, Constraints: l.Constraints}
		if len(l.Endpoints) > 0 {
			ls.Subnet = l.Endpoints[0].Address.Masked()
		}
		for _, e := range l.Endpoints {
			ls.Attachments = append(ls.Attachments, materialize.Attachment{Node: e.Node, Interface: fmt.Sprintf("eth%d", ifaces[e.Node]), Address: e.Address})
			ifaces[e.Node]++
		}
		switch {
		case fe != nil && fe.Kind == materialize.KindLink && fe.Name == l.Name:
			ls.State, ls.Reason = materialize.StateFailed, fe.Err.Error()
		case r.links[l.Name]:
			ls.State = materialize.StateReady
		}
		st.Links = append(st.Links, ls)
	}
	return st
}

func (d *Driver) Dematerialize(ctx context.Context, id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.crashed {
		return crashedErr()
	}
	r, ok := d.reals[id]
	if !ok {
		return nil
	}
	r.removing = true
	if err := d.apply(ctx, r, materialize.Plan{Realization: id}); err != nil {
		return err
	}
	delete(d.reals, id)
	return nil
}

func (d *Driver) Recover(ctx context.Context) ([]materialize.Status, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.crashed, d.crashAfter = false, 0
	var errs []error
	for _, id := range sortedKeys(d.reals) {
		r := d.reals[id]
		switch {
		case r.removing:
			d.force(r, materialize.Plan{Realization: id})
			delete(d.reals, id)
		case r.applying:
			// Finish what was asked; if that fails, undo it.
			err := d.apply(ctx, r, r.plan)
			if ferr := d.finish(r, r.prev, err); ferr != nil {
				errs = append(errs, fmt.Errorf("recover %s: %w", id, ferr))
			}
		}
	}
	var out []materialize.Status
	for _, id := range sortedKeys(d.reals) {
		out = append(out, status(d.reals[id], nil))
	}
	return out, errors.Join(errs...)
}

func (d *Driver) Exec(_ context.Context, id, node string, argv []string) ([]byte, error) {
	d.mu.Lock()
	r, ok := d.reals[id]
	exists := ok && r.nodes[node]
	d.mu.Unlock()
	if !exists {
		return nil, domain.NotFound("node %s of realization %s is not materialized", node, id)
	}
	if d.opts.Exec != nil {
		return d.opts.Exec(id, node, argv)
	}
	return fmt.Appendf(nil, "%q\n", argv), nil
}

func crashedErr() error {
	return fmt.Errorf("%w; call Recover", ErrCrashed)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
