package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
	"github.com/trellis-testbed/trellis/internal/aspect"
	"github.com/trellis-testbed/trellis/internal/auth/token"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/materialize"
	"github.com/trellis-testbed/trellis/internal/materialize/netns"
	"github.com/trellis-testbed/trellis/internal/materialize/sim"
)

// Delivery kinds the materializer does (domain.DeliveryMaterialize …).
const (
	kindMaterialize   = "materialize"
	kindChange        = "change"
	kindDematerialize = "dematerialize"
)

// Materialization drivers a site's config may name ("driver").
const (
	DriverNone  = ""
	DriverSim   = "sim"
	DriverNetns = "netns"
)

// matJob is a materialization delivery the site accepted and has not yet
// finished reporting: kept in the state file, so a restart resumes it.
type matJob struct {
	Kind       string          `json:"kind"`
	Generation int64           `json:"generation"`
	Payload    json.RawMessage `json:"payload"`
	Accepted   time.Time       `json:"accepted"`
}

// matPayload is a materialize, change or dematerialize delivery's
// (service.MaterializePayload at the centre).
type matPayload struct {
	Realization string           `json:"realization"`
	Generation  int64            `json:"generation"`
	Layout      *layoutPayload   `json:"layout,omitempty"`
	Bindings    []domain.Binding `json:"bindings"`
}

type layoutPayload struct {
	Nodes []string    `json:"nodes"`
	Links [][2]string `json:"links"`
}

// reporter sends a report to the centre, signed with the site's key.
type reporter func(ctx context.Context, r *trellisv1.ReportStateRequest) error

// materializer runs the site's driver for the centre's materialization
// deliveries: it accepts a delivery by recording it (the inbox then
// acknowledges it), works asynchronously, one realization's jobs in order,
// and reports each node's and link's state to the centre, retrying while
// the centre is down. After a restart, Recover finishes or undoes what a
// crash interrupted and the recorded jobs run again (drivers are
// idempotent).
type materializer struct {
	driver materialize.Driver // nil: this site does not materialize
	name   string
	state  *state
	report reporter
	audit  *auditLog
	log    *slog.Logger
	// retry spaces report attempts while the centre is down.
	retryBase, retryMax time.Duration

	mu      sync.Mutex
	ctx     context.Context // set by run; jobs accepted before wait for it
	running map[string]bool // realizations with a worker
	idle    *sync.Cond      // signalled when a worker ends
}

// drivers are the materialization drivers a config may name, besides
// none: the built-in sim and netns, and those RegisterDriver adds.
var (
	driversMu sync.Mutex
	drivers   = map[string]func(dataDir string) (materialize.Driver, error){
		DriverSim: func(string) (materialize.Driver, error) { return sim.New(sim.Options{}), nil },
		DriverNetns: func(dir string) (materialize.Driver, error) {
			return netns.New(netns.Options{StateDir: filepath.Join(dir, "netns")})
		},
	}
)

// RegisterDriver makes a driver available to provider.json's "driver"
// under name: a site that builds its own binary registers its driver from
// an init function of a package it links in (docs/materialize.md). open
// gets the site's data directory for the driver's own state.
func RegisterDriver(name string, open func(dataDir string) (materialize.Driver, error)) {
	driversMu.Lock()
	defer driversMu.Unlock()
	if name == DriverNone || open == nil {
		panic("provider: RegisterDriver needs a name and an opener")
	}
	if _, dup := drivers[name]; dup {
		panic("provider: driver " + name + " registered twice")
	}
	drivers[name] = open
}

// knownDriver reports whether a config may name the driver.
func knownDriver(name string) bool {
	driversMu.Lock()
	defer driversMu.Unlock()
	_, ok := drivers[name]
	return ok || name == DriverNone
}

// newDriver makes the driver a config names (nil for none).
func newDriver(name, dataDir string) (materialize.Driver, error) {
	if name == DriverNone {
		return nil, nil
	}
	driversMu.Lock()
	open, ok := drivers[name]
	driversMu.Unlock()
	if !ok {
		return nil, fmt.Errorf("driver %q is not known: %s, %s, a registered one or empty (none)", name, DriverSim, DriverNetns)
	}
	return open(dataDir)
}

func newMaterializer(d materialize.Driver, name string, st *state, rep reporter, aud *auditLog, log *slog.Logger) *materializer {
	m := &materializer{driver: d, name: name, state: st, report: rep, audit: aud, log: log,
		retryBase: time.Second, retryMax: time.Minute, running: map[string]bool{}}
	m.idle = sync.NewCond(&m.mu)
	return m
}

// register adds the materializer's delivery handlers to the inbox.
func (m *materializer) register(in *inbox) {
	for _, k := range []string{kindMaterialize, kindChange, kindDematerialize} {
		in.handle(k, m.accept)
	}
}

// accept records a delivery as a job and starts it; the inbox then
// acknowledges the delivery.
func (m *materializer) accept(_ context.Context, d *Delivery) (string, error) {
	if m.driver == nil {
		return "", refused(http.StatusUnprocessableEntity, "this site has no materialization driver: set \"driver\" (sim or netns) in %s", ConfigFile)
	}
	var p matPayload
	if err := json.Unmarshal(d.Payload, &p); err != nil || p.Realization == "" || len(p.Realization) > 128 || p.Generation < 1 {
		return "", refused(http.StatusBadRequest, "%s payload: a realization and a generation are required", d.Kind)
	}
	if d.Kind != kindDematerialize {
		// Refuse a plan the driver cannot build now, before anything is
		// made, naming the element (the centre gives the delivery up).
		if len(p.Bindings) > 0 {
			if _, err := planOf(&p); err != nil {
				return "", refused(http.StatusUnprocessableEntity, "%s of %s: %v", d.Kind, p.Realization, err)
			}
		}
	}
	detail := fmt.Sprintf("%s %s generation %d", d.Kind, p.Realization, p.Generation)
	if err := m.state.putJob(p.Realization, &matJob{Kind: d.Kind, Generation: p.Generation, Payload: d.Payload, Accepted: time.Now().UTC()}); err != nil {
		return detail, err
	}
	m.start(p.Realization)
	return detail + ": accepted", nil
}

// run recovers the driver and resumes the recorded jobs, then serves jobs
// until ctx ends, and waits for the workers.
func (m *materializer) run(ctx context.Context) error {
	if m.driver != nil {
		if _, err := m.driver.Recover(ctx); err != nil {
			return fmt.Errorf("recovering the materialization driver: %w", err)
		}
	}
	m.mu.Lock()
	m.ctx = ctx
	m.mu.Unlock()
	for _, id := range m.state.jobIDs() {
		m.start(id)
	}
	<-ctx.Done()
	m.mu.Lock()
	for len(m.running) > 0 {
		m.idle.Wait()
	}
	m.mu.Unlock()
	return nil
}

// start runs the jobs of a realization in a worker, unless one runs.
func (m *materializer) start(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx == nil || m.running[id] {
		return // run starts it; or the running worker takes the new job
	}
	m.running[id] = true
	ctx := m.ctx
	go m.work(ctx, id)
}

// work does the realization's recorded job until none is left: a job
// recorded while it worked (a newer generation) is done next.
func (m *materializer) work(ctx context.Context, id string) {
	defer func() {
		m.mu.Lock()
		delete(m.running, id)
		m.idle.Broadcast()
		m.mu.Unlock()
	}()
	for ctx.Err() == nil {
		j, ok := m.state.job(id)
		if !ok {
			return
		}
		rep := m.do(ctx, id, j)
		if ctx.Err() != nil {
			return // resumed at the next start
		}
		if err := m.send(ctx, rep); err != nil {
			m.log.Warn("materialization report refused by the centre; dropping it", "realization", id, "err", err)
		}
		// Done with this generation, unless a newer one came meanwhile.
		if err := m.state.finishJob(id, j.Generation); err != nil {
			m.log.Error("recording a finished materialization job failed", "realization", id, "err", err)
			return
		}
	}
}

// do runs one job on the driver and returns its final report.
func (m *materializer) do(ctx context.Context, id string, j *matJob) *trellisv1.ReportStateRequest {
	rep := &trellisv1.ReportStateRequest{Realization: id, Operation: j.Kind, Generation: j.Generation, Done: true}
	var p matPayload
	_ = json.Unmarshal(j.Payload, &p)
	var st materialize.Status
	var err error
	switch {
	case m.driver == nil:
		// Accepted under a config that had a driver; this one has none.
		err = errors.New("this site has no materialization driver any more")
	case j.Kind == kindDematerialize || len(p.Bindings) == 0:
		err = m.driver.Dematerialize(ctx, id)
	default:
		var plan materialize.Plan
		if plan, err = planOf(&p); err != nil {
			break
		}
		// The centre hears that the site is at work before a long build.
		progress := &trellisv1.ReportStateRequest{Realization: id, Operation: j.Kind, Generation: j.Generation}
		for _, n := range plan.Nodes {
			progress.Elements = append(progress.Elements, &trellisv1.ElementState{Kind: "node", Name: n.Name, State: string(materialize.StateCreating)})
		}
		for _, l := range plan.Links {
			progress.Elements = append(progress.Elements, &trellisv1.ElementState{Kind: "link", Name: l.Name, State: string(materialize.StateCreating)})
		}
		if err := m.send(ctx, progress); err != nil {
			m.log.Warn("materialization progress refused by the centre", "realization", id, "err", err)
		}
		if j.Kind == kindChange {
			st, err = m.driver.Change(ctx, plan)
			if domain.HasCode(err, domain.CodeNotFound) {
				// Not made here yet (its first nodes at this site).
				st, err = m.driver.Materialize(ctx, plan)
			}
		} else {
			st, err = m.driver.Materialize(ctx, plan)
		}
	}
	rep.Elements = elementsOf(st)
	if err != nil {
		rep.Error = err.Error()
		if len(rep.Error) > 1000 {
			rep.Error = rep.Error[:1000]
		}
	}
	e := auditEntry{Op: j.Kind, Outcome: "ok", Detail: fmt.Sprintf("realization %s generation %d with driver %s", id, j.Generation, m.name)}
	if err != nil {
		e.Outcome, e.Reason = "failed", rep.Error
	}
	m.audit.write(e)
	return rep
}

// send reports to the centre, retrying with back-off while it cannot be
// reached or is unavailable; a refusal (the centre's answer) ends it.
func (m *materializer) send(ctx context.Context, r *trellisv1.ReportStateRequest) error {
	wait := m.retryBase
	for {
		err := m.report(ctx, r)
		if err == nil || ctx.Err() != nil {
			return err
		}
		switch connect.CodeOf(err) {
		case connect.CodeUnavailable, connect.CodeUnknown, connect.CodeInternal, connect.CodeDeadlineExceeded, connect.CodeAborted, connect.CodeResourceExhausted:
		default:
			var ce *connect.Error
			if errors.As(err, &ce) {
				return err
			}
		}
		m.log.Info("the centre did not take a materialization report; retrying", "realization", r.Realization, "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, m.retryMax)
	}
}

// planOf derives the plan of this site's part of a realization.
func planOf(p *matPayload) (materialize.Plan, error) {
	l := &aspect.Layout{}
	if p.Layout != nil {
		for _, n := range p.Layout.Nodes {
			l.Nodes = append(l.Nodes, aspect.Node{Name: n})
		}
		for _, k := range p.Layout.Links {
			l.Links = append(l.Links, aspect.Link{A: k[0], B: k[1]})
		}
	}
	return materialize.FromLayout(p.Realization, l, p.Bindings)
}

// elementsOf is a driver's status as the centre's elements.
func elementsOf(st materialize.Status) []*trellisv1.ElementState {
	var out []*trellisv1.ElementState
	for _, n := range st.Nodes {
		out = append(out, &trellisv1.ElementState{Kind: "node", Name: n.Name, State: string(n.State), Reason: n.Reason, Address: n.Location})
	}
	for _, l := range st.Links {
		var addrs []string
		for _, a := range l.Attachments {
			if a.Address.IsValid() {
				addrs = append(addrs, a.Node+"="+a.Address.String())
			}
		}
		out = append(out, &trellisv1.ElementState{Kind: "link", Name: l.Name, State: string(l.State), Reason: l.Reason, Address: strings.Join(addrs, " ")})
	}
	return out
}

// putJob records a realization's job, replacing an older generation's; a
// job older than the one recorded is ignored (a stale delivery).
func (s *state) putJob(id string, j *matJob) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.data.Jobs[id]; ok && old.Generation > j.Generation {
		return nil
	}
	if s.data.Jobs == nil {
		s.data.Jobs = map[string]*matJob{}
	}
	s.data.Jobs[id] = j
	return s.saveLocked()
}

func (s *state) job(id string) (*matJob, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.data.Jobs[id]
	if !ok {
		return nil, false
	}
	c := *j
	return &c, true
}

func (s *state) jobIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.data.Jobs))
	for id := range s.data.Jobs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// finishJob forgets a realization's job of generation gen (not a newer
// one recorded since).
func (s *state) finishJob(id string, gen int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j, ok := s.data.Jobs[id]; !ok || j.Generation != gen {
		return nil
	}
	delete(s.data.Jobs, id)
	return s.saveLocked()
}

// newMaterializer makes the server's materializer with the configured
// driver, reporting to the centre with JWTs signed by the site's key.
func (s *Server) newMaterializer(hc *http.Client) error {
	d, err := newDriver(s.cfg.Driver, s.dir)
	if err != nil {
		return err
	}
	rz := trellisv1connect.NewRealizationsClient(hc, s.cfg.Central)
	rep := func(ctx context.Context, r *trellisv1.ReportStateRequest) error {
		jwt, err := token.SignAssertion(s.key, "provider:"+s.cfg.Name, s.cfg.CentreAudience, time.Now(), 2*time.Minute)
		if err != nil {
			return err
		}
		req := connect.NewRequest(r)
		req.Header().Set("Authorization", "Bearer "+jwt)
		_, err = rz.ReportState(ctx, req)
		return err
	}
	s.mat = newMaterializer(d, s.cfg.Driver, s.state, rep, s.audit, s.log)
	s.mat.register(s.inbox)
	return nil
}
