package portal

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/policy"
	"github.com/trellis-testbed/trellis/internal/service"
)

// The circle pages: the circles the caller may read (with the form to make
// one), and a circle's page with its members, where members are added:
// each is asked and joins once they accept, as the service has it.

type circlesPage struct {
	Circles []*service.CircleView
	Form    *form
	Next    string
	Paged   bool
}

func (circlesPage) title() string { return "Circles" }

func (h *Portal) circles(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	f := newForm()
	f.Values["id"] = s.caller.UID + ":"
	h.showCircles(w, r, s, http.StatusOK, f)
}

func (h *Portal) showCircles(w http.ResponseWriter, r *http.Request, s *session, status int, f *form) {
	after := r.URL.Query().Get("after")
	cs, next, err := h.svc.Social.ListCircles(r.Context(), s.caller, "", pageSize, after)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.render(w, r, s, status, "circles", circlesPage{Circles: cs, Form: f, Next: next, Paged: after != ""})
}

func (h *Portal) createCircle(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok || !h.checkForm(w, r, s) {
		return
	}
	f := newForm()
	id, desc := strings.TrimSpace(r.PostForm.Get("id")), strings.TrimSpace(r.PostForm.Get("description"))
	f.Values["id"], f.Values["description"] = id, desc
	c, err := h.svc.Social.CreateCircle(r.Context(), s.caller, id, desc, nil)
	if err != nil {
		if !explainOrRefuse(f, err, "id", "description") {
			h.fail(w, r, s, err)
			return
		}
		h.showCircles(w, r, s, statusOf(domain.CodeOf(err)), f)
		return
	}
	http.Redirect(w, r, "/circles/"+url.PathEscape(c.ID)+"?done=created", http.StatusSeeOther)
}

type circlePage struct {
	C           *service.CircleView
	Description string
	// CanAdd: the service says the caller may add members.
	CanAdd   bool
	Rights   []string
	Form     *form
	Outcomes []service.Outcome
	Notice   string
}

func (p circlePage) title() string { return "Circle " + p.C.ID }

func (h *Portal) circle(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	notice := ""
	if r.URL.Query().Get("done") == "created" {
		notice = "The circle is created; you are its first member."
	}
	h.showCircle(w, r, s, http.StatusOK, newForm(), nil, notice)
}

func (h *Portal) showCircle(w http.ResponseWriter, r *http.Request, s *session, status int, f *form, outcomes []service.Outcome, notice string) {
	ctx, p := r.Context(), s.caller
	id := r.PathValue("id")
	c, err := h.svc.Social.GetCircle(ctx, p, id)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	page := circlePage{C: c, Form: f, Outcomes: outcomes, Notice: notice, Rights: domain.CircleRights.Names()}
	if !c.Automatic {
		prof, err := h.svc.Social.GetCircleProfile(ctx, p, id)
		if err != nil {
			h.fail(w, r, s, err)
			return
		}
		for _, v := range prof {
			if v.Name == "description" {
				page.Description = v.Value
			}
		}
		if page.CanAdd, err = h.allowed(r, p, policy.CircleAddUser, domain.CircleObject(id)); err != nil {
			h.fail(w, r, s, err)
			return
		}
	}
	h.render(w, r, s, status, "circle", page)
}

func (h *Portal) addCircleMembers(w http.ResponseWriter, r *http.Request) {
	h.addUsers(w, r, "id", h.svc.Social.AddCircleUsers, h.showCircle)
}
