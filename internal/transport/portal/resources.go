package portal

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/service"
	"github.com/trellis-testbed/trellis/internal/store"
)

// The resource pages: the inventory, filtered by attributes (the filter
// language of the CLI and the layout's constraints: cores>=8 arch=x86_64),
// kind, state and provider; and a resource's page.

type resourcesPage struct {
	Resources []resourceRow
	Form      *form
	// Query is the filter as a query string, for the pager's links.
	Query string
	Kinds []domain.ResourceKind
	// States are the states a resource may be in.
	States []domain.ResourceState
	Next   string
	Paged  bool
}

func (resourcesPage) title() string { return "Resources" }

// resourceRow is a resource with its attributes in name order.
type resourceRow struct {
	*store.BoundResource
	Attrs []attr
}

type attr struct{ Name, Value string }

func rowOf(r *store.BoundResource) resourceRow {
	row := resourceRow{BoundResource: r}
	for k, v := range r.Attributes {
		row.Attrs = append(row.Attrs, attr{k, v})
	}
	slices.SortFunc(row.Attrs, func(a, b attr) int { return strings.Compare(a.Name, b.Name) })
	return row
}

func (h *Portal) resources(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	in := r.URL.Query()
	f := newForm()
	q := service.ResourceQuery{PageSize: pageSize, PageToken: in.Get("after")}
	keep := url.Values{}
	for _, name := range []string{"filter", "kind", "state", "provider"} {
		v := strings.TrimSpace(in.Get(name))
		f.Values[name] = v
		if v != "" {
			keep.Set(name, v)
		}
	}
	if v := f.Values["filter"]; v != "" {
		q.Filters = []string{v}
	}
	q.Kind, q.State, q.Provider = f.Values["kind"], f.Values["state"], f.Values["provider"]
	page := resourcesPage{Form: f, Query: keep.Encode(), Paged: q.PageToken != "",
		Kinds:  []domain.ResourceKind{domain.KindNode, domain.KindImage, domain.KindNetwork, domain.KindExternal},
		States: []domain.ResourceState{domain.ResourceAvailable, domain.ResourceMaintenance, domain.ResourceDown}}
	rs, next, err := h.svc.Testbed.ListResources(r.Context(), s.caller, q)
	if err != nil {
		// A bad filter is the form's: the service names it filters[0].
		if !f.explain(renameField(err, "filters", "filter"), "filter", "kind", "state", "provider") {
			h.fail(w, r, s, err)
			return
		}
		h.render(w, r, s, statusOf(domain.CodeOf(err)), "resources", page)
		return
	}
	page.Next = next
	for _, x := range rs {
		page.Resources = append(page.Resources, rowOf(x))
	}
	h.render(w, r, s, http.StatusOK, "resources", page)
}

type resourcePage struct{ R resourceRow }

func (p resourcePage) title() string { return "Resource " + p.R.Name }

func (h *Portal) resource(w http.ResponseWriter, r *http.Request) {
	s, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	x, err := h.svc.Testbed.GetResource(r.Context(), s.caller, r.PathValue("name"))
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.render(w, r, s, http.StatusOK, "resource", resourcePage{R: rowOf(x)})
}
