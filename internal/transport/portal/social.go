package portal

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/policy"
	"github.com/trellis-testbed/trellis/internal/service"
)

// pageSize is how many rows a list page shows.
const pageSize = 20

// projectRow is a project as a list shows it, with the caller's rights.
type projectRow struct {
	*service.ProjectView
	Member bool
	Rights domain.Rights
	// Via names the project through which the rights come, when nested.
	Via []string
}

// standing returns the caller's membership in a project, direct or through
// nesting, as the service lists the members.
func (h *Portal) standing(ctx context.Context, p *auth.Principal, v *service.ProjectView) projectRow {
	row := projectRow{ProjectView: v}
	if v.State != domain.ProjectApproved {
		row.Member = v.Owner == p.UID
		return row
	}
	members, err := h.svc.Social.ListProjectMembers(ctx, p, v.Name, true)
	if err != nil {
		return row
	}
	for _, m := range members {
		if m.UID == p.UID {
			row.Member = true
			row.Rights |= m.Rights
			if m.Via != "" {
				row.Via = append(row.Via, m.Via)
			}
		}
	}
	return row
}

type dashboardPage struct {
	Projects []projectRow
	// MoreProjects: the caller sees more projects than the dashboard lists.
	MoreProjects bool
	Urgent       []*domain.Notification
}

func (dashboardPage) title() string { return "Dashboard" }

// dashboardProjects is how many projects the dashboard reads, of which it
// lists those the caller belongs to (an administrator reads every project,
// so more would cost each dashboard a page of reads for nothing).
const dashboardProjects = pageSize

func (h *Portal) home(w http.ResponseWriter, r *http.Request) {
	s := h.load(w, r)
	if s.caller == nil {
		if s.ended {
			h.sessionEnded(w, r, s)
			return
		}
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
		return
	}
	ctx, p := r.Context(), s.caller
	views, next, err := h.svc.Social.ListProjects(ctx, p, service.ProjectQuery{Member: p.UID, IncludePending: true, PageSize: dashboardProjects})
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	page := dashboardPage{MoreProjects: next != ""}
	for _, v := range views {
		if row := h.standing(ctx, p, v); row.Member || v.Owner == p.UID {
			page.Projects = append(page.Projects, row)
		}
	}
	// Requests waiting for the caller arrive as notifications (urgent
	// ones for approvals), listed here; the dashboard does not ask
	// ListRequests, which for an administrator weighs every project and
	// circle of the testbed (docs/benchmarks.md).
	q := service.NotificationQuery{PageSize: 5}
	q.UnreadOnly, q.UrgentOnly = true, true
	if page.Urgent, _, err = h.svc.Social.ListNotifications(ctx, p, q); err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.render(w, r, s, http.StatusOK, "dashboard", page)
}

type projectsPage struct {
	Projects []projectRow
	Next     string
	// First: this is not the first page.
	Paged bool
}

func (projectsPage) title() string { return "Projects" }

func (h *Portal) projects(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	ctx, p := r.Context(), s.caller
	after := r.URL.Query().Get("after")
	views, next, err := h.svc.Social.ListProjects(ctx, p, service.ProjectQuery{IncludePending: true, PageSize: pageSize, PageToken: after})
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	page := projectsPage{Next: next, Paged: after != ""}
	for _, v := range views {
		page.Projects = append(page.Projects, h.standing(ctx, p, v))
	}
	h.render(w, r, s, http.StatusOK, "projects", page)
}

type projectPage struct {
	Project  projectRow
	Members  []policy.Member
	Requests []service.RequestView
	// CanAdd: the service says the caller may add members.
	CanAdd   bool
	Rights   []string
	Form     *form
	Outcomes []service.Outcome
	Notice   string
}

func (p projectPage) title() string { return "Project " + p.Project.Name }

func (h *Portal) project(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	notice := ""
	switch r.URL.Query().Get("done") {
	case "requested":
		notice = "Your request is sent. The project exists once an administrator approves it; you will be notified."
	case "created":
		notice = "The project is created."
	}
	h.showProject(w, r, s, http.StatusOK, newForm(), nil, notice)
}

func (h *Portal) showProject(w http.ResponseWriter, r *http.Request, s *session, status int, f *form, outcomes []service.Outcome, notice string) {
	ctx, p := r.Context(), s.caller
	name := r.PathValue("name")
	v, err := h.svc.Social.GetProject(ctx, p, name)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	page := projectPage{Project: h.standing(ctx, p, v), Form: f, Outcomes: outcomes, Notice: notice, Rights: domain.ProjectRights.Names()}
	if v.State == domain.ProjectApproved {
		if page.Members, err = h.svc.Social.ListProjectMembers(ctx, p, name, false); err != nil {
			h.fail(w, r, s, err)
			return
		}
		d, err := h.svc.Social.Check(ctx, p, "", policy.ProjectAddUser, domain.ProjectObject(name))
		if err != nil {
			h.fail(w, r, s, err)
			return
		}
		page.CanAdd = d.Allowed
	}
	reqs, err := h.svc.Social.ListRequests(ctx, p)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	for _, q := range reqs {
		if q.Object == domain.ProjectObject(name) {
			page.Requests = append(page.Requests, q)
		}
	}
	h.render(w, r, s, status, "project", page)
}

func (h *Portal) addMembers(w http.ResponseWriter, r *http.Request) {
	h.addUsers(w, r, "name", h.svc.Social.AddProjectUsers, h.showProject)
}

// addUsers serves the "add members" form of projects and circles alike:
// add is the service's operation, show draws the page again with the
// outcome of each uid (422 when one failed) or the form's error.
func (h *Portal) addUsers(w http.ResponseWriter, r *http.Request, param string,
	add func(context.Context, *auth.Principal, string, []string, []string) ([]service.Outcome, error),
	show func(http.ResponseWriter, *http.Request, *session, int, *form, []service.Outcome, string)) {
	s, ok := h.signedIn(w, r)
	if !ok || !h.checkForm(w, r, s) {
		return
	}
	f := newForm()
	raw := r.PostForm.Get("uids")
	f.Values["uids"] = raw
	uids := strings.FieldsFunc(raw, func(c rune) bool { return c == ',' || c == ' ' || c == '\n' || c == '\r' || c == '\t' })
	rights := r.PostForm["rights"]
	for _, x := range rights {
		f.Values["right:"+x] = "on"
	}
	outcomes, err := add(r.Context(), s.caller, r.PathValue(param), uids, rights)
	if err != nil {
		if !f.explain(err, "uids", "rights") {
			h.fail(w, r, s, err)
			return
		}
		show(w, r, s, statusOf(domain.CodeOf(err)), f, nil, "")
		return
	}
	status := http.StatusOK
	for _, o := range outcomes {
		if o.Outcome == "failed" {
			status = http.StatusUnprocessableEntity
		}
	}
	show(w, r, s, status, newForm(), outcomes, "")
}

type newProjectPage struct {
	Form        *form
	Description domain.Attribute
}

func (newProjectPage) title() string { return "Request a project" }

func (h *Portal) newProjectForm(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	h.showNewProject(w, r, s, http.StatusOK, newForm())
}

func (h *Portal) showNewProject(w http.ResponseWriter, r *http.Request, s *session, status int, f *form) {
	d, err := h.svc.Social.GetProjectProfileDescription(r.Context(), s.caller)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	desc, _ := d.Lookup("description")
	h.render(w, r, s, status, "newproject", newProjectPage{Form: f, Description: desc})
}

func (h *Portal) requestProject(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok || !h.checkForm(w, r, s) {
		return
	}
	f := newForm()
	name := strings.TrimSpace(r.PostForm.Get("name"))
	desc := strings.TrimSpace(r.PostForm.Get("description"))
	f.Values["name"], f.Values["description"] = name, desc
	proj, _, err := h.svc.Social.RequestProject(r.Context(), s.caller, name, desc, nil, false)
	if err != nil {
		if !f.explain(err, "name", "description") {
			h.fail(w, r, s, err)
			return
		}
		h.showNewProject(w, r, s, statusOf(domain.CodeOf(err)), f)
		return
	}
	done := "created"
	if proj.State == domain.ProjectPending {
		done = "requested"
	}
	http.Redirect(w, r, "/projects/"+url.PathEscape(proj.Name)+"?done="+done, http.StatusSeeOther)
}

// notificationRow is a notification with the request it carries, when the
// caller may still answer it.
type notificationRow struct {
	*domain.Notification
	Request *service.RequestView
}

type notificationsPage struct {
	Urgent []notificationRow
	All    []notificationRow
	Next   string
	Paged  bool
	Notice string
}

func (notificationsPage) title() string { return "Notifications" }

func (h *Portal) notifications(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	ctx, p := r.Context(), s.caller
	reqs, err := h.svc.Social.ListRequests(ctx, p)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	byID := map[string]*service.RequestView{}
	for i := range reqs {
		if reqs[i].Actionable {
			byID[reqs[i].ID] = &reqs[i]
		}
	}
	rows := func(ns []*domain.Notification) []notificationRow {
		out := make([]notificationRow, 0, len(ns))
		for _, n := range ns {
			out = append(out, notificationRow{Notification: n, Request: byID[n.RequestID]})
		}
		return out
	}
	after := r.URL.Query().Get("after")
	page := notificationsPage{Paged: after != ""}
	switch r.URL.Query().Get("done") {
	case "accepted":
		page.Notice = "Request accepted."
	case "declined":
		page.Notice = "Request declined."
	}
	// Urgent unread ones come first, above the list, on its first page.
	if after == "" {
		q := service.NotificationQuery{PageSize: pageSize}
		q.UrgentOnly, q.UnreadOnly = true, true
		urgent, _, err := h.svc.Social.ListNotifications(ctx, p, q)
		if err != nil {
			h.fail(w, r, s, err)
			return
		}
		page.Urgent = rows(urgent)
	}
	all, next, err := h.svc.Social.ListNotifications(ctx, p, service.NotificationQuery{PageSize: pageSize, PageToken: after})
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	if after == "" {
		// Shown once: those listed as urgent are left out below.
		all = slices.DeleteFunc(all, func(n *domain.Notification) bool { return n.Urgent && !n.Read })
	}
	page.All, page.Next = rows(all), next
	h.render(w, r, s, http.StatusOK, "notifications", page)
}

func (h *Portal) markRead(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok || !h.checkForm(w, r, s) {
		return
	}
	var ids []int64
	for _, v := range r.PostForm["id"] {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			h.render(w, r, s, http.StatusBadRequest, "error", errorPage{Title: "That did not work", Message: "id: not a notification id"})
			return
		}
		ids = append(ids, id)
	}
	read := true
	if _, err := h.svc.Social.MarkNotifications(r.Context(), s.caller, ids, &read, nil); err != nil {
		h.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/notifications", http.StatusSeeOther)
}

func (h *Portal) acceptRequest(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok || !h.checkForm(w, r, s) {
		return
	}
	if err := h.svc.Social.AcceptRequest(r.Context(), s.caller, r.PathValue("id")); err != nil {
		h.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/notifications?done=accepted", http.StatusSeeOther)
}

func (h *Portal) declineRequest(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok || !h.checkForm(w, r, s) {
		return
	}
	if err := h.svc.Social.DeclineRequest(r.Context(), s.caller, r.PathValue("id"), strings.TrimSpace(r.PostForm.Get("reason"))); err != nil {
		h.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/notifications?done=declined", http.StatusSeeOther)
}

// approvalsPage lists the project approvals that wait for the caller: the
// service lists them for administrators (every approval waits for any
// one of them) and refuses anyone else's answer.
type approvalsPage struct {
	Admin    adminNav
	Requests []service.RequestView
	Page     int
	Pages    int
	Notice   string
}

func (approvalsPage) title() string { return "Project approvals" }

func (h *Portal) approvals(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	reqs, err := h.svc.Social.ListRequests(r.Context(), s.caller)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	reqs = slices.DeleteFunc(reqs, func(q service.RequestView) bool {
		return q.Kind != domain.RequestProjectApproval || !q.Actionable
	})
	// ListRequests answers at once (pending approvals are few); the
	// page is cut here.
	n, _ := strconv.Atoi(r.URL.Query().Get("page"))
	pages := max(1, (len(reqs)+pageSize-1)/pageSize)
	n = min(max(n, 1), pages)
	page := approvalsPage{Admin: h.adminNav("approvals"), Requests: reqs[(n-1)*pageSize : min(len(reqs), n*pageSize)], Page: n, Pages: pages}
	switch r.URL.Query().Get("done") {
	case "approved":
		page.Notice = "Project approved; its owner is notified."
	case "rejected":
		page.Notice = "Project rejected; its owner is notified."
	}
	h.render(w, r, s, http.StatusOK, "approvals", page)
}

func (h *Portal) approve(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok || !h.checkForm(w, r, s) {
		return
	}
	if _, err := h.svc.Social.ApproveProject(r.Context(), s.caller, r.PathValue("name")); err != nil {
		h.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/admin/approvals?done=approved", http.StatusSeeOther)
}

func (h *Portal) reject(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok || !h.checkForm(w, r, s) {
		return
	}
	if err := h.svc.Social.RejectProject(r.Context(), s.caller, r.PathValue("name"), strings.TrimSpace(r.PostForm.Get("reason"))); err != nil {
		h.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/admin/approvals?done=rejected", http.StatusSeeOther)
}
