package portal

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/policy"
	"github.com/trellis-testbed/trellis/internal/service"
)

// The realization pages: the caller's realizations, and a realization's
// page with its state, lease and bindings, renewed and released from
// there. A live realization's page refreshes its state by itself (the
// portal's script polls the page while it is open).

type realizationsPage struct {
	Realizations []*service.RealizationView
	Ended        bool
	Next         string
	Paged        bool
}

func (realizationsPage) title() string { return "Realizations" }

func (h *Portal) realizations(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	after, ended := r.URL.Query().Get("after"), r.URL.Query().Get("ended") == "1"
	rs, next, err := h.svc.Testbed.ListRealizations(r.Context(), s.caller, ended, pageSize, after)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.render(w, r, s, http.StatusOK, "realizations", realizationsPage{Realizations: rs, Ended: ended, Next: next, Paged: after != ""})
}

type realizationPage struct {
	R                    *service.RealizationView
	Live                 bool
	CanRenew, CanRelease bool
	Form                 *form
	Notice               string
}

func (p realizationPage) title() string { return "Realization " + p.R.ID }

func (h *Portal) realization(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	notice := ""
	switch r.URL.Query().Get("done") {
	case "realized":
		notice = "Realized: every node of the layout is bound to a resource."
	case "renewed":
		notice = "The lease is renewed."
	case "released":
		notice = "Released: its resources are free again."
	}
	h.showRealization(w, r, s, http.StatusOK, newForm(), notice)
}

func (h *Portal) showRealization(w http.ResponseWriter, r *http.Request, s *session, status int, f *form, notice string) {
	ctx, p := r.Context(), s.caller
	id := r.PathValue("id")
	rz, err := h.svc.Testbed.GetRealization(ctx, p, id)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	page := realizationPage{R: rz, Live: rz.State.Live(), Form: f, Notice: notice}
	if page.Live {
		object := domain.RealizationObject(id)
		if page.CanRenew, err = h.allowed(r, p, policy.RealizationModify, object); err != nil {
			h.fail(w, r, s, err)
			return
		}
		if page.CanRelease, err = h.allowed(r, p, policy.RealizationRelease, object); err != nil {
			h.fail(w, r, s, err)
			return
		}
	}
	h.render(w, r, s, status, "realization", page)
}

func (h *Portal) renew(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok || !h.checkForm(w, r, s) {
		return
	}
	f := newForm()
	text := strings.TrimSpace(r.PostForm.Get("lease"))
	f.Values["lease"] = text
	lease, ok := parseLease(text)
	if !ok {
		f.Errors["lease"] = "a lease is a duration such as 90m, 4h or 2d; leave it empty for the testbed's default"
		h.showRealization(w, r, s, http.StatusBadRequest, f, "")
		return
	}
	id := r.PathValue("id")
	if _, err := h.svc.Testbed.Renew(r.Context(), s.caller, id, lease); err != nil {
		if !f.explain(err, "lease") {
			h.fail(w, r, s, err)
			return
		}
		h.showRealization(w, r, s, statusOf(domain.CodeOf(err)), f, "")
		return
	}
	http.Redirect(w, r, "/realizations/"+url.PathEscape(id)+"?done=renewed", http.StatusSeeOther)
}

func (h *Portal) release(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok || !h.checkForm(w, r, s) {
		return
	}
	id := r.PathValue("id")
	if _, err := h.svc.Testbed.Release(r.Context(), s.caller, id); err != nil {
		h.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/realizations/"+url.PathEscape(id)+"?done=released", http.StatusSeeOther)
}
