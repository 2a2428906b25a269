package portal

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trellis-testbed/trellis/internal/aspect"
	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/policy"
	"github.com/trellis-testbed/trellis/internal/service"
	"github.com/trellis-testbed/trellis/internal/transport/portal/topology"
)

// The experiment pages: the list (mine, shared with me, all), a new
// experiment from a layout file or pasted text, and an experiment's page
// with the picture of its topology, its aspects and who may use it, from
// which it is realized.

type experimentsPage struct {
	Experiments []*service.ExperimentView
	// View is "mine", "shared" or "all".
	View  string
	Next  string
	Paged bool
}

func (experimentsPage) title() string { return "Experiments" }

func (h *Portal) experiments(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	q := service.ExperimentQuery{PageSize: pageSize, PageToken: r.URL.Query().Get("after")}
	view := r.URL.Query().Get("view")
	switch view {
	case "shared":
		q.Shared = true
	case "all":
	default:
		view, q.Owner = "mine", s.caller.UID
	}
	xs, next, err := h.svc.Testbed.ListExperiments(r.Context(), s.caller, q)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.render(w, r, s, http.StatusOK, "experiments", experimentsPage{Experiments: xs, View: view, Next: next, Paged: q.PageToken != ""})
}

type newExperimentPage struct {
	Form *form
	// Owners are the namespaces offered: the caller's uid and its projects.
	Owners []string
}

func (newExperimentPage) title() string { return "New experiment" }

func (h *Portal) newExperimentForm(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	f := newForm()
	f.Values["id"] = s.caller.UID + ":"
	h.showNewExperiment(w, r, s, http.StatusOK, f)
}

func (h *Portal) showNewExperiment(w http.ResponseWriter, r *http.Request, s *session, status int, f *form) {
	h.render(w, r, s, status, "newexperiment", newExperimentPage{Form: f, Owners: h.myProjects(r, s.caller)})
}

// myProjects names approved projects the caller may read (for a
// researcher, those it belongs to), for the forms that suggest them (a
// namespace, the project of a realization); any other may be typed, and
// the service decides whether each use is allowed. A page of them: an
// administrator reads every project of the testbed.
func (h *Portal) myProjects(r *http.Request, p *auth.Principal) []string {
	views, _, err := h.svc.Social.ListProjects(r.Context(), p, service.ProjectQuery{Member: p.UID, PageSize: pageSize})
	if err != nil {
		return nil
	}
	var out []string
	for _, v := range views {
		if v.State == domain.ProjectApproved {
			out = append(out, v.Name)
		}
	}
	return out
}

// formTokenMatches compares a parsed form's token with the session's, as
// checkForm does.
func (h *Portal) formTokenMatches(r *http.Request, s *session) bool {
	got := r.PostForm.Get(csrfField)
	return s.csrf != "" && got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) == 1
}

// maxUpload bounds a new experiment's form: the largest layout, pasted or
// uploaded, and the rest of the form.
const maxUpload = 2*aspect.MaxLayoutSize + maxFormBytes

// checkUpload is checkForm for a multipart form (a file upload).
func (h *Portal) checkUpload(w http.ResponseWriter, r *http.Request, s *session) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxUpload)
	if err := r.ParseMultipartForm(maxUpload); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		h.render(w, r, s, http.StatusBadRequest, "error", errorPage{Title: "That form could not be read", Message: "The form sent was malformed or too large (a layout is at most 1 MiB)."})
		return false
	} else if err != nil {
		// A form without a file field (no script, or a test) is a plain one.
		if err := r.ParseForm(); err != nil {
			h.render(w, r, s, http.StatusBadRequest, "error", errorPage{Title: "That form could not be read", Message: "The form sent was malformed or too large."})
			return false
		}
	}
	if !h.formTokenMatches(r, s) {
		h.staleForm(w, r, s)
		return false
	}
	return true
}

func (h *Portal) createExperiment(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok || !h.checkUpload(w, r, s) {
		return
	}
	f := newForm()
	id := strings.TrimSpace(r.PostForm.Get("id"))
	desc := strings.TrimSpace(r.PostForm.Get("description"))
	layout := r.PostForm.Get("layout")
	f.Values["id"], f.Values["description"] = id, desc
	if file, hdr, err := r.FormFile("layout_file"); err == nil {
		b, err := io.ReadAll(io.LimitReader(file, aspect.MaxLayoutSize+1))
		file.Close()
		if err != nil {
			h.fail(w, r, s, err)
			return
		}
		if len(b) > 0 {
			// The file wins over pasted text; drawn again, the form shows
			// the file's text, which a file field cannot keep.
			layout = string(b)
			f.Values["file"] = hdr.Filename
		}
	}
	f.Values["layout"] = layout
	var aspects []service.AspectInput
	if strings.TrimSpace(layout) != "" {
		aspects = []service.AspectInput{{Type: aspect.TypeLayout, Name: "main", Content: []byte(layout)}}
	}
	x, err := h.svc.Testbed.CreateExperiment(r.Context(), s.caller, id, desc, nil, aspects)
	if err != nil {
		if !explainAspects(f, err, "layout", "id", "description") {
			h.fail(w, r, s, err)
			return
		}
		h.showNewExperiment(w, r, s, statusOf(domain.CodeOf(err)), f)
		return
	}
	http.Redirect(w, r, "/experiments/"+url.PathEscape(x.ID)+"?done=created", http.StatusSeeOther)
}

// explainOrRefuse is explain, and a refusal is the form's too: creating
// in a namespace, or naming an object, that the caller may not use is
// most often a slip of the value given, which is kept, with the
// service's words above the form.
func explainOrRefuse(f *form, err error, fields ...string) bool {
	var de *domain.Error
	if errors.As(err, &de) && de.Code == domain.CodePermissionDenied {
		f.Error = de.Message
		return true
	}
	return f.explain(err, fields...)
}

// explainAspects puts a service error on a form whose aspect field is
// named aspectField: every problem of the aspects (their violations are
// "aspects[0].layout.nodes[1].name" and the like) goes next to it, one a
// line, with the line of the document each names; the rest as
// explainOrRefuse does.
func explainAspects(f *form, err error, aspectField string, fields ...string) bool {
	var de *domain.Error
	if !errors.As(err, &de) {
		return false
	}
	rest := *de
	rest.Violations = nil
	var problems []string
	for _, v := range de.Violations {
		if strings.HasPrefix(v.Field, "aspects") || strings.HasPrefix(v.Field, "layout") {
			problems = append(problems, v.Description)
			continue
		}
		rest.Violations = append(rest.Violations, v)
	}
	if len(problems) == 0 {
		return explainOrRefuse(f, err, fields...)
	}
	if de.Code != domain.CodeInvalidArgument {
		return false
	}
	f.Errors[aspectField] = strings.Join(problems, "\n")
	if len(rest.Violations) > 0 {
		f.explain(&rest, fields...)
	}
	return true
}

type experimentPage struct {
	X *service.ExperimentView
	// Aspects are those the experiment was given; Derived counts the
	// read-only views derived from them (one per node of a layout).
	Aspects []*service.AspectView
	Derived int
	// Picture is the topology drawn from the layout aspects; empty when
	// the experiment has none.
	Picture template.HTML
	// CanShare, CanRealize: the service says the caller may change
	// access, may realize.
	CanShare, CanRealize bool
	Rights               []string
	Projects             []string
	Access, Realize      *form
	Notice               string
}

func (p experimentPage) title() string { return "Experiment " + p.X.ID }

func (h *Portal) experiment(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	notice := ""
	switch r.URL.Query().Get("done") {
	case "created":
		notice = "The experiment is created."
	case "shared":
		notice = "Access changed."
	}
	h.showExperiment(w, r, s, http.StatusOK, newForm(), newForm(), notice)
}

func (h *Portal) showExperiment(w http.ResponseWriter, r *http.Request, s *session, status int, access, realize *form, notice string) {
	ctx, p := r.Context(), s.caller
	id := r.PathValue("id")
	x, err := h.svc.Testbed.GetExperiment(ctx, p, id, true)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	page := experimentPage{X: x, Access: access, Realize: realize, Notice: notice, Rights: domain.ExperimentRights.Names()}
	var parts []aspect.Part
	for _, a := range x.Aspects {
		if a.DerivedFrom != "" {
			page.Derived++
			continue
		}
		page.Aspects = append(page.Aspects, a)
		if a.Type == aspect.TypeLayout {
			parts = append(parts, aspect.Part{Name: a.Name, Content: a.Content})
		}
		a.Content = nil // not drawn; let it go
	}
	if len(parts) > 0 {
		page.Picture = drawing(parts)
	}
	object := domain.ExperimentObject(id)
	if page.CanShare, err = h.allowed(r, p, policy.ExperimentModifyAccess, object); err != nil {
		h.fail(w, r, s, err)
		return
	}
	if page.CanRealize, err = h.allowed(r, p, policy.ExperimentRealize, object); err != nil {
		h.fail(w, r, s, err)
		return
	}
	if page.CanRealize && len(parts) > 0 {
		page.Projects = h.myProjects(r, p)
	}
	h.render(w, r, s, status, "experiment", page)
}

// allowed asks the service whether the caller may act on object, to offer
// a form or not; the action itself is decided again when the form is sent.
func (h *Portal) allowed(r *http.Request, p *auth.Principal, action, object string) (bool, error) {
	d, err := h.svc.Social.Check(r.Context(), p, "", action, object)
	if err != nil {
		return false, err
	}
	return d.Allowed, nil
}

// drawings remember pictures by the layout they draw: a drawing is a pure
// function of the layout, costs milliseconds at a few hundred nodes, and a
// page is read far more often than its layout changes.
var drawings = struct {
	sync.Mutex
	m     map[[32]byte]template.HTML
	bytes int
}{m: map[[32]byte]template.HTML{}}

// maxDrawings and maxDrawingBytes bound the cache (a drawing of 2,000
// nodes weighs about 500 KB): past either, it starts over.
const (
	maxDrawings     = 256
	maxDrawingBytes = 16 << 20
)

func drawing(parts []aspect.Part) template.HTML {
	hash := sha256.New()
	for _, p := range parts {
		// Length-prefixed, so two lists of parts never hash alike.
		hash.Write([]byte(strconv.Itoa(len(p.Content)) + ":"))
		hash.Write(p.Content)
	}
	var key [32]byte
	hash.Sum(key[:0])
	drawings.Lock()
	svg, ok := drawings.m[key]
	drawings.Unlock()
	if ok {
		return svg
	}
	// topology.Draw escapes every name it writes: its SVG is safe HTML.
	svg = template.HTML(topology.Draw(topology.FromLayout(aspect.LayoutOf(parts))))
	drawings.Lock()
	if len(drawings.m) >= maxDrawings || drawings.bytes+len(svg) > maxDrawingBytes {
		clear(drawings.m)
		drawings.bytes = 0
	}
	drawings.m[key] = svg
	drawings.bytes += len(svg)
	drawings.Unlock()
	return svg
}

func (h *Portal) changeExperimentAccess(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok || !h.checkForm(w, r, s) {
		return
	}
	f := newForm()
	circle := strings.TrimSpace(r.PostForm.Get("circle"))
	rights := r.PostForm["rights"]
	f.Values["circle"] = circle
	for _, x := range rights {
		f.Values["right:"+x] = "on"
	}
	id := r.PathValue("id")
	if _, err := h.svc.Testbed.ChangeExperimentAccess(r.Context(), s.caller, id, circle, rights); err != nil {
		// A circle that is not found is the field's; an experiment the
		// caller may not read fails again, on the page, as not found.
		var de *domain.Error
		switch {
		case errors.As(err, &de) && de.Code == domain.CodeNotFound:
			f.Errors["circle"] = de.Message
		case !f.explain(err, "circle", "rights"):
			h.fail(w, r, s, err)
			return
		}
		h.showExperiment(w, r, s, statusOf(domain.CodeOf(err)), f, newForm(), "")
		return
	}
	http.Redirect(w, r, "/experiments/"+url.PathEscape(id)+"?done=shared#access", http.StatusSeeOther)
}

func (h *Portal) realize(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok || !h.checkForm(w, r, s) {
		return
	}
	f := newForm()
	project := strings.TrimSpace(r.PostForm.Get("project"))
	leaseText := strings.TrimSpace(r.PostForm.Get("lease"))
	f.Values["project"], f.Values["lease"] = project, leaseText
	lease, ok := parseLease(leaseText)
	if !ok {
		f.Errors["lease"] = "a lease is a duration such as 90m, 4h or 2d; leave it empty for the testbed's default"
		h.showExperiment(w, r, s, http.StatusBadRequest, newForm(), f, "")
		return
	}
	rz, err := h.svc.Testbed.Realize(r.Context(), s.caller, r.PathValue("id"), project, lease)
	if err != nil {
		// A project the caller may not use is not found or refused: the
		// form's to show, the choice kept. An experiment the caller may
		// not read fails again, on the page, as not found.
		var de *domain.Error
		switch {
		case errors.As(err, &de) && de.Code == domain.CodeNotFound:
			f.Errors["project"] = de.Message
		case !explainOrRefuse(f, err, "project", "lease"):
			h.fail(w, r, s, err)
			return
		}
		h.showExperiment(w, r, s, statusOf(domain.CodeOf(err)), newForm(), f, "")
		return
	}
	http.Redirect(w, r, "/realizations/"+url.PathEscape(rz.ID)+"?done=realized", http.StatusSeeOther)
}

// parseLease reads a lease: a Go duration (90m, 4h) or whole days (2d);
// empty is the testbed's default (zero).
func parseLease(s string) (time.Duration, bool) {
	if s == "" {
		return 0, true
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > 3650 {
			return 0, false
		}
		return time.Duration(n) * 24 * time.Hour, true
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, false
	}
	return d, true
}
