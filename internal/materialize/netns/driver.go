//go:build linux

package netns

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/materialize"
)

// Options configure a Driver.
type Options struct {
	// StateDir holds the journal (created 0700 if missing). One process at
	// a time uses it: New locks it.
	StateDir string
	// Prefix starts the name of every namespace the driver makes (1 to 8
	// lower-case letters and digits, starting with a letter); DefaultPrefix
	// when empty. Recover removes namespaces with this prefix that belong
	// to no realization of the journal, so two drivers on one machine must
	// have different prefixes.
	Prefix string
	// Observer, when set, receives every element's change of state.
	Observer materialize.Observer
}

// Driver is the netns driver.
type Driver struct {
	opts  Options
	names names
	j     journal
	lock  *os.File

	// Operations share all; Recover takes it alone. Operations on one
	// realization also hold its own lock.
	all    sync.RWMutex
	mu     sync.Mutex
	realms map[string]*realmLock

	// failpoint, set by tests, makes the element fail just after it
	// starts being made.
	failpoint func(kind materialize.Kind, name string) error
}

var (
	_ materialize.Driver   = (*Driver)(nil)
	_ materialize.Executor = (*Driver)(nil)
)

// New opens the state directory and locks it. Call Recover before
// anything else, as the Driver interface says.
func New(opts Options) (*Driver, error) {
	if opts.StateDir == "" {
		return nil, errors.New("netns: a state directory is required")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if !prefixRule.MatchString(opts.Prefix) {
		return nil, fmt.Errorf("netns: prefix %q is not 1 to 8 lower-case letters and digits starting with a letter", opts.Prefix)
	}
	if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("netns: create state directory: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(opts.StateDir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("netns: open state lock: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("netns: state directory %s is in use by another process: %w", opts.StateDir, err)
	}
	return &Driver{
		opts:   opts,
		names:  names{prefix: opts.Prefix},
		j:      journal{dir: opts.StateDir},
		lock:   lock,
		realms: map[string]*realmLock{},
	}, nil
}

// Close releases the state directory. What the driver made stays.
func (d *Driver) Close() error { return d.lock.Close() }

// Prefix is the prefix of the driver's namespaces.
func (d *Driver) Prefix() string { return d.opts.Prefix }

// Namespace is the name of node's namespace in realization, for tools
// that enter it (ip netns exec NAME ...).
func (d *Driver) Namespace(realization, node string) string {
	return d.names.nodeNS(realization, node)
}

// FabricNamespace is the name of the namespace that holds a realization's
// LAN bridges.
func (d *Driver) FabricNamespace(realization string) string {
	return d.names.fabricNS(realization)
}

// realmLock is one realization's lock, counted so that the map keeps only
// the realizations someone is working on.
type realmLock struct {
	sync.Mutex
	users int
}

// lockRealm serializes operations on one realization.
func (d *Driver) lockRealm(id string) func() {
	d.all.RLock()
	d.mu.Lock()
	m, ok := d.realms[id]
	if !ok {
		m = &realmLock{}
		d.realms[id] = m
	}
	m.users++
	d.mu.Unlock()
	m.Lock()
	return func() {
		m.Unlock()
		d.mu.Lock()
		if m.users--; m.users == 0 {
			delete(d.realms, id)
		}
		d.mu.Unlock()
		d.all.RUnlock()
	}
}

// validate checks a plan as every driver does, and the names this one
// derives from it.
func validate(p materialize.Plan) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if err := checkNames(p); err != nil {
		return domain.Invalid("plan.links", "materialize.link.name_hash", err.Error())
	}
	return checkShaping(p)
}

// record reads the journal of id, refusing another realization whose
// tag is the same.
func (d *Driver) record(id string) (*record, error) {
	rec, err := d.j.read(d.names.tag(id))
	if err != nil {
		return nil, domain.Internal(err, "read the journal")
	}
	if rec != nil && rec.Realization != id {
		return nil, domain.AlreadyExists("realization %s has the same name tag as the materialized %s; it cannot be materialized beside it", id, rec.Realization)
	}
	return rec, nil
}

func (d *Driver) Materialize(ctx context.Context, p materialize.Plan) (materialize.Status, error) {
	if err := validate(p); err != nil {
		return materialize.Status{}, err
	}
	defer d.lockRealm(p.Realization)()
	id, tag := p.Realization, d.names.tag(p.Realization)
	rec, err := d.record(id)
	if err != nil {
		return materialize.Status{}, err
	}
	if rec != nil {
		if rec.Phase == phaseRemoving {
			return materialize.Status{}, domain.FailedPrecondition("realization %s is being removed; dematerialize it again, then materialize", id)
		}
		want, err := materialize.Assign(p, &rec.Plan)
		if err != nil {
			return materialize.Status{}, err
		}
		if !want.Equal(rec.Plan) {
			return materialize.Status{}, domain.FailedPrecondition("realization %s is materialized with another plan; use Change", id)
		}
		// The same plan again: converge, which changes nothing when
		// everything is in place and repairs what is not.
		op := d.newOp(ctx, rec.Plan)
		err = op.apply(rec.Prev)
		op.close()
		if err != nil {
			return op.status(err, &rec.Plan), err
		}
		if rec.Phase != phaseReady {
			rec.Phase, rec.Prev = phaseReady, nil
			if err := d.j.write(tag, rec); err != nil {
				return materialize.Status{}, domain.Internal(err, "write the journal")
			}
		}
		return op.status(nil, nil), nil
	}
	want, err := materialize.Assign(p, nil)
	if err != nil {
		return materialize.Status{}, err
	}
	// Intent first: after a crash from here on, Recover finds the record.
	rec = &record{Realization: id, Phase: phaseApplying, Plan: want}
	if err := d.j.write(tag, rec); err != nil {
		return materialize.Status{}, domain.Internal(err, "write the journal")
	}
	op := d.newOp(ctx, want)
	err = op.apply(nil)
	op.close()
	if err != nil {
		st := op.status(err, nil)
		// Undo everything, even if ctx is what failed.
		if uerr := d.teardown(context.WithoutCancel(ctx), want, op.touched); uerr != nil {
			return st, errors.Join(err, fmt.Errorf("undo %s: %w (Recover will finish)", id, uerr))
		}
		if rerr := d.j.remove(tag); rerr != nil {
			return st, errors.Join(err, rerr)
		}
		return st, err
	}
	rec.Phase = phaseReady
	if err := d.j.write(tag, rec); err != nil {
		return materialize.Status{}, domain.Internal(err, "write the journal")
	}
	return op.status(nil, nil), nil
}

func (d *Driver) Change(ctx context.Context, p materialize.Plan) (materialize.Status, error) {
	if err := validate(p); err != nil {
		return materialize.Status{}, err
	}
	defer d.lockRealm(p.Realization)()
	id, tag := p.Realization, d.names.tag(p.Realization)
	rec, err := d.record(id)
	if err != nil {
		return materialize.Status{}, err
	}
	if rec == nil || rec.Phase == phaseRemoving {
		return materialize.Status{}, domain.NotFound("realization %s is not materialized", id)
	}
	want, err := materialize.Assign(p, &rec.Plan)
	if err != nil {
		return materialize.Status{}, err
	}
	prev := rec.Plan
	rec = &record{Realization: id, Phase: phaseApplying, Plan: want, Prev: &prev}
	if err := d.j.write(tag, rec); err != nil {
		return materialize.Status{}, domain.Internal(err, "write the journal")
	}
	op := d.newOp(ctx, want)
	err = op.apply(&prev)
	op.close()
	if err != nil {
		st := op.status(err, &prev)
		// Back to the previous plan, which removes what this call made.
		back := d.newOp(context.WithoutCancel(ctx), prev)
		berr := back.apply(&want)
		back.close()
		if berr != nil {
			return st, errors.Join(err, fmt.Errorf("return %s to its previous plan: %w (Recover will finish)", id, berr))
		}
		if werr := d.j.write(tag, &record{Realization: id, Phase: phaseReady, Plan: prev}); werr != nil {
			return st, errors.Join(err, werr)
		}
		return st, err
	}
	rec.Phase, rec.Prev = phaseReady, nil
	if err := d.j.write(tag, rec); err != nil {
		return materialize.Status{}, domain.Internal(err, "write the journal")
	}
	return op.status(nil, nil), nil
}

func (d *Driver) Dematerialize(ctx context.Context, id string) error {
	defer d.lockRealm(id)()
	tag := d.names.tag(id)
	rec, err := d.record(id)
	if err != nil {
		return err
	}
	if rec == nil {
		// Nothing recorded; remove whatever carries the name anyway.
		return d.teardown(ctx, materialize.Plan{Realization: id}, nil)
	}
	rec.Phase = phaseRemoving
	if err := d.j.write(tag, rec); err != nil {
		return domain.Internal(err, "write the journal")
	}
	if err := d.teardown(ctx, rec.Plan, all); err != nil {
		return fmt.Errorf("dematerialize %s: %w", id, err)
	}
	if err := d.j.remove(tag); err != nil {
		return domain.Internal(err, "write the journal")
	}
	return nil
}

// all, given to teardown, reports the removal of every element.
var all = map[elemKey]bool(nil)

// teardown removes every namespace of p's realization, reporting the
// nodes and links of p (those of only, when only is not nil) as they go.
func (d *Driver) teardown(ctx context.Context, p materialize.Plan, only map[elemKey]bool) error {
	id := p.Realization
	report := func(k materialize.Kind, name string) bool {
		return only == nil || only[elemKey{k, name}]
	}
	for _, l := range p.Links {
		if report(materialize.KindLink, l.Name) {
			d.emit(id, materialize.KindLink, l.Name, materialize.StateRemoving, "")
		}
	}
	found, err := listNS(d.names.realmPrefix(id))
	if err != nil {
		return err
	}
	present := map[string]bool{}
	for _, ns := range found {
		present[ns] = true
	}
	var errs []error
	fabric := d.names.fabricNS(id)
	for _, n := range p.Nodes {
		ns := d.names.nodeNS(id, n.Name)
		if !present[ns] {
			continue
		}
		delete(present, ns)
		if err := ctx.Err(); err != nil {
			return err
		}
		if report(materialize.KindNode, n.Name) {
			d.emit(id, materialize.KindNode, n.Name, materialize.StateRemoving, "")
		}
		if err := deleteNS(ns); err != nil {
			errs = append(errs, err)
			continue
		}
		if report(materialize.KindNode, n.Name) {
			d.emit(id, materialize.KindNode, n.Name, materialize.StateRemoved, "")
		}
	}
	// Namespaces of nodes the plan does not have (a crash during a
	// change), and the fabric last.
	rest := make([]string, 0, len(present))
	for ns := range present {
		if ns != fabric {
			rest = append(rest, ns)
		}
	}
	sort.Strings(rest)
	if present[fabric] {
		rest = append(rest, fabric)
	}
	for _, ns := range rest {
		if err := deleteNS(ns); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, l := range p.Links {
		if report(materialize.KindLink, l.Name) {
			d.emit(id, materialize.KindLink, l.Name, materialize.StateRemoved, "")
		}
	}
	return nil
}

func (d *Driver) Status(ctx context.Context, id string) (materialize.Status, error) {
	defer d.lockRealm(id)()
	rec, err := d.record(id)
	if err != nil {
		return materialize.Status{}, err
	}
	if rec == nil {
		return materialize.Status{}, domain.NotFound("realization %s is not materialized", id)
	}
	return d.inspect(rec), nil
}

func (d *Driver) Recover(ctx context.Context) ([]materialize.Status, error) {
	d.all.Lock()
	defer d.all.Unlock()
	recs, err := d.j.all()
	if err != nil {
		return nil, domain.Internal(err, "read the journal")
	}
	tags := make([]string, 0, len(recs))
	for tag := range recs {
		tags = append(tags, tag)
	}
	sort.Strings(tags)
	var errs []error
	for _, tag := range tags {
		rec := recs[tag]
		if err := d.recoverOne(ctx, tag, rec); err != nil {
			errs = append(errs, fmt.Errorf("recover %s: %w", rec.Realization, err))
		}
	}
	// Sweep: namespaces of ours that no record accounts for.
	recs, err = d.j.all()
	if err != nil {
		return nil, domain.Internal(err, "read the journal")
	}
	found, err := listNS(d.opts.Prefix + "-")
	if err != nil {
		return nil, err
	}
	for _, ns := range found {
		if tag, ours := d.names.tagOf(ns); ours && recs[tag] == nil {
			if err := deleteNS(ns); err != nil {
				errs = append(errs, fmt.Errorf("sweep: %w", err))
			}
		}
	}
	var out []materialize.Status
	for _, tag := range tags {
		if rec := recs[tag]; rec != nil {
			out = append(out, d.inspect(rec))
		}
	}
	return out, errors.Join(errs...)
}

// recoverOne finishes what rec says was under way: a removal is finished;
// a making is finished, or else undone (back to the previous plan of a
// change, or removed); a ready realization is checked and repaired, since
// a reboot empties /run/netns.
func (d *Driver) recoverOne(ctx context.Context, tag string, rec *record) error {
	if rec.Phase == phaseRemoving {
		if err := d.teardown(ctx, rec.Plan, all); err != nil {
			return err
		}
		return d.j.remove(tag)
	}
	op := d.newOp(ctx, rec.Plan)
	err := op.apply(rec.Prev)
	op.close()
	switch {
	case err == nil:
		if rec.Phase != phaseReady {
			rec.Phase, rec.Prev = phaseReady, nil
			return d.j.write(tag, rec)
		}
		return nil
	case rec.Phase == phaseReady:
		return err // leave it for Status to report and the owner to decide
	case rec.Prev != nil:
		back := d.newOp(ctx, *rec.Prev)
		berr := back.apply(&rec.Plan)
		back.close()
		if berr != nil {
			return errors.Join(err, berr)
		}
		return errors.Join(err, d.j.write(tag, &record{Realization: rec.Realization, Phase: phaseReady, Plan: *rec.Prev}))
	default:
		if terr := d.teardown(ctx, rec.Plan, all); terr != nil {
			return errors.Join(err, terr)
		}
		return errors.Join(err, d.j.remove(tag))
	}
}

func (d *Driver) Exec(ctx context.Context, id, node string, argv []string) ([]byte, error) {
	if len(argv) == 0 {
		return nil, domain.Invalid("argv", "materialize.exec.argv", "a command is needed")
	}
	unlock := d.lockRealm(id)
	rec, err := d.record(id)
	ns := d.names.nodeNS(id, node)
	var known bool
	if rec != nil {
		_, known = rec.Plan.Node(node)
	}
	unlock()
	if err != nil {
		return nil, err
	}
	if !known || !nsExists(ns) {
		return nil, domain.NotFound("node %s of realization %s is not materialized", node, id)
	}
	var out []byte
	err = InNamespace(ns, func() error {
		var err error
		out, err = exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
		return err
	})
	if err != nil {
		return out, fmt.Errorf("exec %s in node %s: %w", argv[0], node, err)
	}
	return out, nil
}

func (d *Driver) emit(id string, k materialize.Kind, name string, s materialize.State, reason string) {
	if d.opts.Observer != nil {
		d.opts.Observer(materialize.Event{Realization: id, Kind: k, Name: name, State: s, Reason: reason})
	}
}

// retry runs a netlink dump again when the kernel says it was interrupted
// by a concurrent change, which the library reports rather than hides.
func retry[T any](dump func() (T, error)) (T, error) {
	var v T
	var err error
	for range 5 {
		v, err = dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return v, err
}
