package portal

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/policy"
	"github.com/trellis-testbed/trellis/internal/service"
)

// The library pages: the libraries the caller may read (with the form to
// make one), and a library's page with its experiments, added and
// removed there.

type librariesPage struct {
	Libraries []*service.LibraryView
	Form      *form
	Next      string
	Paged     bool
}

func (librariesPage) title() string { return "Libraries" }

func (h *Portal) libraries(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	f := newForm()
	f.Values["id"] = s.caller.UID + ":"
	h.showLibraries(w, r, s, http.StatusOK, f)
}

func (h *Portal) showLibraries(w http.ResponseWriter, r *http.Request, s *session, status int, f *form) {
	after := r.URL.Query().Get("after")
	ls, next, err := h.svc.Testbed.ListLibraries(r.Context(), s.caller, "", "", pageSize, after)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.render(w, r, s, status, "libraries", librariesPage{Libraries: ls, Form: f, Next: next, Paged: after != ""})
}

func (h *Portal) createLibrary(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok || !h.checkForm(w, r, s) {
		return
	}
	f := newForm()
	id, desc := strings.TrimSpace(r.PostForm.Get("id")), strings.TrimSpace(r.PostForm.Get("description"))
	f.Values["id"], f.Values["description"] = id, desc
	l, err := h.svc.Testbed.CreateLibrary(r.Context(), s.caller, id, desc, nil)
	if err != nil {
		if !explainOrRefuse(f, err, "id", "description") {
			h.fail(w, r, s, err)
			return
		}
		h.showLibraries(w, r, s, statusOf(domain.CodeOf(err)), f)
		return
	}
	http.Redirect(w, r, "/libraries/"+url.PathEscape(l.ID)+"?done=created", http.StatusSeeOther)
}

type libraryPage struct {
	L           *service.LibraryView
	Experiments []*service.ExperimentView
	Next        string
	Paged       bool
	// CanAdd, CanRemove: the service says the caller may add, remove.
	CanAdd, CanRemove bool
	Form              *form
	Notice            string
}

func (p libraryPage) title() string { return "Library " + p.L.ID }

func (h *Portal) library(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	notice := ""
	switch r.URL.Query().Get("done") {
	case "created":
		notice = "The library is created."
	case "added":
		notice = "Experiment added."
	case "removed":
		notice = "Experiment removed."
	}
	h.showLibrary(w, r, s, http.StatusOK, newForm(), notice)
}

func (h *Portal) showLibrary(w http.ResponseWriter, r *http.Request, s *session, status int, f *form, notice string) {
	ctx, p := r.Context(), s.caller
	id := r.PathValue("id")
	l, err := h.svc.Testbed.GetLibrary(ctx, p, id)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	after := r.URL.Query().Get("after")
	xs, next, err := h.svc.Testbed.ListLibraryExperiments(ctx, p, id, pageSize, after)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	page := libraryPage{L: l, Experiments: xs, Next: next, Paged: after != "", Form: f, Notice: notice}
	object := domain.LibraryObject(id)
	if page.CanAdd, err = h.allowed(r, p, policy.LibraryAddExperiment, object); err != nil {
		h.fail(w, r, s, err)
		return
	}
	if page.CanRemove, err = h.allowed(r, p, policy.LibraryRemoveExperiment, object); err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.render(w, r, s, status, "library", page)
}

func (h *Portal) addLibraryExperiment(w http.ResponseWriter, r *http.Request) {
	h.changeLibrary(w, r, true)
}

func (h *Portal) removeLibraryExperiment(w http.ResponseWriter, r *http.Request) {
	h.changeLibrary(w, r, false)
}

func (h *Portal) changeLibrary(w http.ResponseWriter, r *http.Request, add bool) {
	s, ok := h.signedIn(w, r)
	if !ok || !h.checkForm(w, r, s) {
		return
	}
	f := newForm()
	x := strings.TrimSpace(r.PostForm.Get("experiment"))
	f.Values["experiment"] = x
	id := r.PathValue("id")
	var err error
	done := "added"
	if add {
		_, err = h.svc.Testbed.AddLibraryExperiments(r.Context(), s.caller, id, []string{x})
	} else {
		done = "removed"
		_, err = h.svc.Testbed.RemoveLibraryExperiments(r.Context(), s.caller, id, []string{x})
	}
	if err != nil {
		// The service names the experiment by its place in the request;
		// an experiment the caller may not read is not found, said next
		// to the field (a library it may not read fails on the page).
		var de *domain.Error
		switch {
		case errors.As(err, &de) && de.Code == domain.CodeNotFound:
			f.Errors["experiment"] = de.Message
		case !explainOrRefuse(f, renameField(err, "experiments", "experiment"), "experiment"):
			h.fail(w, r, s, err)
			return
		}
		h.showLibrary(w, r, s, statusOf(domain.CodeOf(err)), f, "")
		return
	}
	http.Redirect(w, r, "/libraries/"+url.PathEscape(id)+"?done="+done, http.StatusSeeOther)
}

// renameField gives the violations of a list field ("experiments[0]") the
// name of the form's one field.
func renameField(err error, list, field string) error {
	var de *domain.Error
	if !errors.As(err, &de) {
		return err
	}
	out := *de
	out.Violations = nil
	for _, v := range de.Violations {
		if v.Field == list || strings.HasPrefix(v.Field, list+"[") {
			v.Field = field
		}
		out.Violations = append(out.Violations, v)
	}
	return &out
}
