package portal

import (
	"crypto/x509"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/service"
	"github.com/trellis-testbed/trellis/internal/store"
)

// The administrators' pages. Each calls the service's own operation, whose
// rule (admin, in internal/service/rules.go) refuses anyone else: the
// portal shows that refusal, and hides the links only as a courtesy.

// adminNav is what the administration's sub-navigation needs.
type adminNav struct {
	// Section is the current page's.
	Section string
	// Outbox: no mail server is set, so the outbox is how mail is read.
	Outbox bool
}

func (h *Portal) adminNav(section string) adminNav {
	return adminNav{Section: section, Outbox: !h.svc.Config().MailDelivered}
}

// pager is a list page's links: the first page, the next one; each keeps
// the page's filters.
type pager struct {
	First, Next string
}

func pageLinks(path string, filters url.Values, after, next string) pager {
	var p pager
	link := func(token string) string {
		q := url.Values{}
		for k, v := range filters {
			if len(v) > 0 && v[0] != "" {
				q[k] = v
			}
		}
		if token != "" {
			q.Set("after", token)
		}
		if len(q) == 0 {
			return path
		}
		return path + "?" + q.Encode()
	}
	if after != "" {
		p.First = link("")
	}
	if next != "" {
		p.Next = link(next)
	}
	return p
}

// adminDone reads the notice a redirect after a change asks for.
func adminDone(r *http.Request, notices map[string]string) string {
	return notices[r.URL.Query().Get("done")]
}

// --- users ---------------------------------------------------------------

type adminUsersPage struct {
	Admin  adminNav
	Users  []*domain.User
	Query  string
	Pager  pager
	Notice string
	States []domain.UserState
}

func (adminUsersPage) title() string { return "Users" }

func (h *Portal) adminUsers(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	after := r.URL.Query().Get("after")
	users, next, err := h.svc.Accounts.ListUsers(r.Context(), s.caller, q, pageSize, after)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.render(w, r, s, http.StatusOK, "adminusers", adminUsersPage{
		Admin: h.adminNav("users"), Users: users, Query: q,
		Pager:  pageLinks("/admin/users", url.Values{"q": {q}}, after, next),
		Notice: adminDone(r, map[string]string{"state": "Account state changed.", "admin": "Administrator flag changed."}),
		States: []domain.UserState{domain.UserActive, domain.UserLocked, domain.UserDisabled},
	})
}

// backTo is where a change on a list page returns: the list as it was.
func backTo(r *http.Request, path, done string) string {
	q, _ := url.ParseQuery(r.PostForm.Get("back"))
	q.Set("done", done)
	return path + "?" + q.Encode()
}

func (h *Portal) adminSetUserState(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok || !h.checkForm(w, r, s) {
		return
	}
	// Decoded as the API decodes its enum: the service takes a state.
	state, err := domain.ParseUserState("state", r.PostForm.Get("state"))
	if err == nil {
		_, err = h.svc.Accounts.SetUserState(r.Context(), s.caller, r.PathValue("uid"), state)
	}
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, backTo(r, "/admin/users", "state"), http.StatusSeeOther)
}

func (h *Portal) adminSetAdmin(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok || !h.checkForm(w, r, s) {
		return
	}
	if _, err := h.svc.Accounts.SetAdmin(r.Context(), s.caller, r.PathValue("uid"), r.PostForm.Get("admin") == "true"); err != nil {
		h.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, backTo(r, "/admin/users", "admin"), http.StatusSeeOther)
}

// --- realizations ----------------------------------------------------------

type adminRealizationsPage struct {
	Admin        adminNav
	Realizations []*service.RealizationView
	Ended        bool
	Pager        pager
	Notice       string
}

func (adminRealizationsPage) title() string { return "All realizations" }

func (h *Portal) adminRealizations(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	ended := r.URL.Query().Get("ended") != ""
	after := r.URL.Query().Get("after")
	rs, next, err := h.svc.Testbed.ListAllRealizations(r.Context(), s.caller, ended, pageSize, after)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	filters := url.Values{}
	if ended {
		filters.Set("ended", "1")
	}
	h.render(w, r, s, http.StatusOK, "adminrealizations", adminRealizationsPage{
		Admin: h.adminNav("realizations"), Realizations: rs, Ended: ended,
		Pager:  pageLinks("/admin/realizations", filters, after, next),
		Notice: adminDone(r, map[string]string{"released": "Realization released; its resources are free and its owner is notified."}),
	})
}

func (h *Portal) adminForceRelease(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok || !h.checkForm(w, r, s) {
		return
	}
	if _, err := h.svc.Testbed.ForceRelease(r.Context(), s.caller, r.PathValue("id"), strings.TrimSpace(r.PostForm.Get("reason"))); err != nil {
		h.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, backTo(r, "/admin/realizations", "released"), http.StatusSeeOther)
}

// --- resources -------------------------------------------------------------

type adminResourcesPage struct {
	Admin     adminNav
	Resources []*store.BoundResource
	Filter    map[string]string
	Pager     pager
	Notice    string
	States    []domain.ResourceState
	Kinds     []domain.ResourceKind
	Form      *form
}

func (adminResourcesPage) title() string { return "Resources" }

func (h *Portal) adminResources(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	qs := r.URL.Query()
	f := newForm()
	filters := url.Values{}
	for _, k := range []string{"state", "kind", "provider", "attr"} {
		v := strings.TrimSpace(qs.Get(k))
		f.Values[k] = v
		filters.Set(k, v)
	}
	q := service.ResourceQuery{State: f.Values["state"], Kind: f.Values["kind"], Provider: f.Values["provider"], PageSize: pageSize, PageToken: qs.Get("after")}
	if a := f.Values["attr"]; a != "" {
		q.Filters = strings.Fields(a)
	}
	page := adminResourcesPage{
		Admin: h.adminNav("resources"), Form: f,
		Notice: adminDone(r, map[string]string{"state": "Resource state changed."}),
		States: []domain.ResourceState{domain.ResourceAvailable, domain.ResourceMaintenance, domain.ResourceDown},
		Kinds:  []domain.ResourceKind{domain.KindNode, domain.KindImage, domain.KindNetwork, domain.KindExternal},
	}
	rs, next, err := h.svc.Testbed.ListResources(r.Context(), s.caller, q)
	if err != nil {
		// A bad filter is the visitor's to fix: said next to it.
		if !f.explain(err, "state", "kind", "provider", "filters") {
			h.fail(w, r, s, err)
			return
		}
		if e, ok := f.Errors["filters"]; ok {
			f.Errors["attr"] = e
		}
		h.render(w, r, s, statusOf(domain.CodeOf(err)), "adminresources", page)
		return
	}
	page.Resources = rs
	page.Pager = pageLinks("/admin/resources", filters, qs.Get("after"), next)
	h.render(w, r, s, http.StatusOK, "adminresources", page)
}

func (h *Portal) adminSetResourceState(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok || !h.checkForm(w, r, s) {
		return
	}
	if _, err := h.svc.Testbed.SetResourceState(r.Context(), s.caller, r.PathValue("name"), r.PostForm.Get("state")); err != nil {
		h.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, backTo(r, "/admin/resources", "state"), http.StatusSeeOther)
}

// --- services and OIDC clients --------------------------------------------

type adminClientsPage struct {
	Admin    adminNav
	Services []*store.Service
	Clients  []*domain.OIDCClient
	// ServiceForm and ClientForm are the forms to add one.
	ServiceForm, ClientForm *form
	// Secret is the secret just made, shown this once, for SecretOf.
	Secret, SecretOf string
	Notice           string
}

func (adminClientsPage) title() string { return "Services and OIDC clients" }

func (h *Portal) adminClients(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	h.showClients(w, r, s, http.StatusOK, adminClientsPage{Notice: adminDone(r, map[string]string{
		"service-removed": "Service removed: its tokens are refused from now on.",
		"client-removed":  "OIDC client removed.",
	})})
}

func (h *Portal) showClients(w http.ResponseWriter, r *http.Request, s *session, status int, p adminClientsPage) {
	var err error
	if p.Services, err = h.svc.Federation.ListServices(r.Context(), s.caller); err != nil {
		h.fail(w, r, s, err)
		return
	}
	if p.Clients, err = h.svc.Federation.ListOIDCClients(r.Context(), s.caller); err != nil {
		h.fail(w, r, s, err)
		return
	}
	if p.ServiceForm == nil {
		p.ServiceForm = newForm()
	}
	if p.ClientForm == nil {
		p.ClientForm = newForm()
	}
	p.Admin = h.adminNav("clients")
	h.render(w, r, s, status, "adminclients", p)
}

func (h *Portal) adminAddService(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok || !h.checkForm(w, r, s) {
		return
	}
	f := newForm()
	name, key := strings.TrimSpace(r.PostForm.Get("name")), strings.TrimSpace(r.PostForm.Get("public_key"))
	f.Values["name"], f.Values["public_key"] = name, key
	svc, secret, err := h.svc.Federation.RegisterService(r.Context(), s.caller, name, key, key == "")
	if err != nil {
		if !f.explain(err, "name", "public_key") {
			h.fail(w, r, s, err)
			return
		}
		h.showClients(w, r, s, statusOf(domain.CodeOf(err)), adminClientsPage{ServiceForm: f})
		return
	}
	p := adminClientsPage{Notice: "Service " + svc.Name + " registered."}
	if secret != "" {
		p.Secret, p.SecretOf = secret, "service "+svc.Name
	}
	h.showClients(w, r, s, http.StatusOK, p)
}

func (h *Portal) adminRemoveService(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok || !h.checkForm(w, r, s) {
		return
	}
	if err := h.svc.Federation.RemoveService(r.Context(), s.caller, r.PathValue("name")); err != nil {
		h.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/admin/clients?done=service-removed", http.StatusSeeOther)
}

func (h *Portal) adminAddClient(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok || !h.checkForm(w, r, s) {
		return
	}
	f := newForm()
	name, uris := strings.TrimSpace(r.PostForm.Get("name")), r.PostForm.Get("redirect_uris")
	public := r.PostForm.Get("public") == "on"
	f.Values["name"], f.Values["redirect_uris"] = name, uris
	if public {
		f.Values["public"] = "on"
	}
	c, secret, err := h.svc.Federation.AddOIDCClient(r.Context(), s.caller, name, strings.Fields(uris), public)
	if err != nil {
		if !f.explain(err, "name", "redirect_uris") {
			h.fail(w, r, s, err)
			return
		}
		h.showClients(w, r, s, statusOf(domain.CodeOf(err)), adminClientsPage{ClientForm: f})
		return
	}
	p := adminClientsPage{Notice: "OIDC client " + c.ID + " added."}
	if secret != "" {
		p.Secret, p.SecretOf = secret, "OIDC client "+c.ID
	}
	h.showClients(w, r, s, http.StatusOK, p)
}

func (h *Portal) adminRemoveClient(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok || !h.checkForm(w, r, s) {
		return
	}
	if err := h.svc.Federation.RemoveOIDCClient(r.Context(), s.caller, r.PathValue("name")); err != nil {
		h.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/admin/clients?done=client-removed", http.StatusSeeOther)
}

// --- audit log ---------------------------------------------------------------

type adminAuditPage struct {
	Admin  adminNav
	Events []*domain.AuditEvent
	Form   *form
	Pager  pager
}

func (adminAuditPage) title() string { return "Audit log" }

// auditTime is how the filter's times are typed: a datetime-local field,
// read as UTC.
const auditTime = "2006-01-02T15:04"

func (h *Portal) adminAudit(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	qs := r.URL.Query()
	f := newForm()
	filters := url.Values{}
	for _, k := range []string{"actor", "operation", "object", "since", "until"} {
		v := strings.TrimSpace(qs.Get(k))
		f.Values[k] = v
		filters.Set(k, v)
	}
	q := service.AuditQuery{Actor: f.Values["actor"], Operation: f.Values["operation"], Object: f.Values["object"], PageSize: pageSize, PageToken: qs.Get("after")}
	for _, k := range []string{"since", "until"} {
		v := f.Values[k]
		if v == "" {
			continue
		}
		t, err := time.ParseInLocation(auditTime, v, time.UTC)
		if err != nil {
			f.Errors[k] = "a date and time, such as 2026-12-05T09:30 (UTC)"
			continue
		}
		if k == "since" {
			q.Since = t
		} else {
			q.Until = t
		}
	}
	page := adminAuditPage{Admin: h.adminNav("audit"), Form: f}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Until.After(q.Since) {
		f.Errors["until"] = "until must be later than since"
	}
	if f.HasErrors() {
		h.render(w, r, s, http.StatusBadRequest, "adminaudit", page)
		return
	}
	evs, next, err := h.svc.Accounts.ListAuditEvents(r.Context(), s.caller, q)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	page.Events, page.Pager = evs, pageLinks("/admin/audit", filters, qs.Get("after"), next)
	h.render(w, r, s, http.StatusOK, "adminaudit", page)
}

// --- outbox --------------------------------------------------------------------

type adminOutboxPage struct {
	Admin adminNav
	Mail  []*domain.Mail
	To    string
	Pager pager
}

func (adminOutboxPage) title() string { return "Outbox" }

func (h *Portal) adminOutbox(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	to := strings.TrimSpace(r.URL.Query().Get("to"))
	after := r.URL.Query().Get("after")
	mail, next, err := h.svc.Accounts.ListOutbox(r.Context(), s.caller, to, pageSize, after)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.render(w, r, s, http.StatusOK, "adminoutbox", adminOutboxPage{
		Admin: h.adminNav("outbox"), Mail: mail, To: to,
		Pager: pageLinks("/admin/outbox", url.Values{"to": {to}}, after, next),
	})
}

// --- certificate authority ---------------------------------------------------

type adminCAPage struct {
	Admin   adminNav
	Rotated *service.CARotation
	Error   string
	// Past are the rotations the audit log records, newest first.
	Past []*domain.AuditEvent
}

func (adminCAPage) title() string { return "Certificate authority" }

// Issuing describes the new issuing certificate.
func (p adminCAPage) Issuing() *x509.Certificate {
	if p.Rotated == nil {
		return nil
	}
	return p.Rotated.Issuing
}

// rotateOp is the rotation's operation, as the audit log names it.
const rotateOp = "trellis.v1.Admin/RotateCertificateAuthority"

// showCA draws the rotation's form with the past rotations, read from the
// audit log (an administrator's read: anyone else is refused there).
func (h *Portal) showCA(w http.ResponseWriter, r *http.Request, s *session, status int, p adminCAPage) {
	past, _, err := h.svc.Accounts.ListAuditEvents(r.Context(), s.caller, service.AuditQuery{Operation: rotateOp, PageSize: 5})
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	p.Admin, p.Past = h.adminNav("ca"), past
	h.render(w, r, s, status, "adminca", p)
}

func (h *Portal) adminCA(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	h.showCA(w, r, s, http.StatusOK, adminCAPage{})
}

func (h *Portal) adminRotateCA(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok || !h.checkForm(w, r, s) {
		return
	}
	if r.PostForm.Get("confirm") != "yes" {
		h.showCA(w, r, s, http.StatusBadRequest, adminCAPage{Error: "Tick the box to confirm the rotation: nothing was changed."})
		return
	}
	rot, err := h.svc.Accounts.RotateCertificateAuthority(r.Context(), s.caller)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.showCA(w, r, s, http.StatusOK, adminCAPage{Rotated: rot})
}
