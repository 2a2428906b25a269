package app_test

import (
	"connectrpc.com/connect"
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/policy"
	"github.com/trellis-testbed/trellis/internal/store"
)

// maxPageSize is the largest page the contract documents.
const maxPageSize = 1000

// pagedRows is how many rows each listing gets: more than a page of the
// largest size, so the listing needs a second page.
const pagedRows = maxPageSize + 7

// listPage reads one page of a listing as the admin: the rows' keys and
// the next page's token.
type listPage func(ctx context.Context, h *harness, tok, pageToken string) ([]string, string, error)

// pagedListing is one listing operation: how to add its i-th row through
// the store (nil: it lists another listing's rows), and how to read a page
// of it.
type pagedListing struct {
	op   string
	add  func(ctx context.Context, tx store.Tx, i int, at time.Time) error
	list listPage
}

func keys[T any](rows []T, key func(T) string) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = key(r)
	}
	return out
}

var pagedListings = []pagedListing{
	{"trellis.v1.Users/ListUsers",
		func(ctx context.Context, tx store.Tx, i int, at time.Time) error {
			return tx.Users().Create(ctx, &domain.User{UID: fmt.Sprintf("u%04d", i), Email: fmt.Sprintf("u%04d@uni.example.edu", i),
				EmailVerified: true, State: domain.UserActive, CreatedAt: at, UpdatedAt: at}, "x")
		},
		func(ctx context.Context, h *harness, tok, pt string) ([]string, string, error) {
			r, err := h.users.ListUsers(ctx, req(&trellisv1.ListUsersRequest{PageSize: maxPageSize, PageToken: pt}, tok))
			if err != nil {
				return nil, "", err
			}
			return keys(r.Msg.Users, (*trellisv1.User).GetUid), r.Msg.NextPageToken, nil
		}},
	{"trellis.v1.Admin/ListAuditEvents",
		func(ctx context.Context, tx store.Tx, i int, at time.Time) error {
			return tx.Audit().Append(ctx, &domain.AuditEvent{Time: at, Actor: "ops", Operation: "paging.test", Object: fmt.Sprintf("thing:%d", i), Outcome: "ok"})
		},
		func(ctx context.Context, h *harness, tok, pt string) ([]string, string, error) {
			r, err := h.admin.ListAuditEvents(ctx, req(&trellisv1.ListAuditEventsRequest{PageSize: maxPageSize, PageToken: pt, Operation: "paging.test"}, tok))
			if err != nil {
				return nil, "", err
			}
			return keys(r.Msg.Events, func(e *trellisv1.AuditEvent) string { return strconv.FormatInt(e.GetId(), 10) }), r.Msg.NextPageToken, nil
		}},
	{"trellis.v1.Admin/ListOutbox",
		func(ctx context.Context, tx store.Tx, i int, at time.Time) error {
			return tx.Outbox().Append(ctx, &domain.Mail{CreatedAt: at, To: "paged@uni.example.edu", Subject: "page", Body: strconv.Itoa(i)})
		},
		func(ctx context.Context, h *harness, tok, pt string) ([]string, string, error) {
			r, err := h.admin.ListOutbox(ctx, req(&trellisv1.ListOutboxRequest{PageSize: maxPageSize, PageToken: pt, To: "paged@uni.example.edu"}, tok))
			if err != nil {
				return nil, "", err
			}
			return keys(r.Msg.Messages, func(m *trellisv1.OutboxMessage) string { return strconv.FormatInt(m.GetId(), 10) }), r.Msg.NextPageToken, nil
		}},
	// (The server fails deliveries for a site that does not exist while
	// the test lists them: done ones are listed too.)
	{"trellis.v1.Providers/ListDeliveries",
		func(ctx context.Context, tx store.Tx, i int, at time.Time) error {
			return tx.Deliveries().Enqueue(ctx, &domain.Delivery{ID: fmt.Sprintf("d-%04d", i), Provider: "paged", Kind: domain.DeliveryDisconnect,
				Key: strconv.Itoa(i), Payload: []byte(`{}`), CreatedAt: at, NextAttempt: at})
		},
		func(ctx context.Context, h *harness, tok, pt string) ([]string, string, error) {
			r, err := trellisv1connect.NewProvidersClient(h.http, h.url).ListDeliveries(ctx, req(&trellisv1.ListDeliveriesRequest{PageSize: maxPageSize, PageToken: pt, Provider: "paged", IncludeDone: true}, tok))
			if err != nil {
				return nil, "", err
			}
			return keys(r.Msg.Deliveries, (*trellisv1.Delivery).GetId), r.Msg.NextPageToken, nil
		}},
	{"trellis.v1.Notifications/List",
		func(ctx context.Context, tx store.Tx, i int, at time.Time) error {
			return tx.Notifications().Create(ctx, &domain.Notification{Recipient: "ops", Text: strconv.Itoa(i), CreatedAt: at})
		},
		func(ctx context.Context, h *harness, tok, pt string) ([]string, string, error) {
			r, err := h.notifications.List(ctx, req(&trellisv1.NotificationsListRequest{PageSize: maxPageSize, PageToken: pt}, tok))
			if err != nil {
				return nil, "", err
			}
			return keys(r.Msg.Notifications, func(n *trellisv1.Notification) string { return strconv.FormatInt(n.GetId(), 10) }), r.Msg.NextPageToken, nil
		}},
	{"trellis.v1.Projects/ListProjects",
		func(ctx context.Context, tx store.Tx, i int, at time.Time) error {
			return tx.Projects().Create(ctx, &domain.Project{Name: fmt.Sprintf("p%04d", i), Owner: "ops", State: domain.ProjectApproved, CreatedAt: at, ApprovedAt: at})
		},
		func(ctx context.Context, h *harness, tok, pt string) ([]string, string, error) {
			r, err := h.projects.ListProjects(ctx, req(&trellisv1.ListProjectsRequest{PageSize: maxPageSize, PageToken: pt}, tok))
			if err != nil {
				return nil, "", err
			}
			return keys(r.Msg.Projects, (*trellisv1.Project).GetName), r.Msg.NextPageToken, nil
		}},
	{"trellis.v1.Circles/ListCircles",
		func(ctx context.Context, tx store.Tx, i int, at time.Time) error {
			name := fmt.Sprintf("c%04d", i)
			return tx.Circles().Create(ctx, &domain.Circle{ID: "ops:" + name, Owner: "ops", Name: name, CreatedAt: at})
		},
		func(ctx context.Context, h *harness, tok, pt string) ([]string, string, error) {
			r, err := h.circles.ListCircles(ctx, req(&trellisv1.ListCirclesRequest{PageSize: maxPageSize, PageToken: pt, Owner: "ops"}, tok))
			if err != nil {
				return nil, "", err
			}
			return keys(r.Msg.Circles, (*trellisv1.Circle).GetId), r.Msg.NextPageToken, nil
		}},
	{"trellis.v1.Experiments/ListExperiments",
		func(ctx context.Context, tx store.Tx, i int, at time.Time) error {
			name := fmt.Sprintf("x%04d", i)
			return tx.Experiments().Create(ctx, &domain.Experiment{ID: "ops:" + name, Owner: "ops", Name: name, Creator: "ops", CreatedAt: at})
		},
		func(ctx context.Context, h *harness, tok, pt string) ([]string, string, error) {
			r, err := h.experiments.ListExperiments(ctx, req(&trellisv1.ListExperimentsRequest{PageSize: maxPageSize, PageToken: pt}, tok))
			if err != nil {
				return nil, "", err
			}
			return keys(r.Msg.Experiments, (*trellisv1.Experiment).GetId), r.Msg.NextPageToken, nil
		}},
	{"trellis.v1.Libraries/ListLibraries",
		func(ctx context.Context, tx store.Tx, i int, at time.Time) error {
			name := fmt.Sprintf("l%04d", i)
			return tx.Libraries().Create(ctx, &domain.Library{ID: "ops:" + name, Owner: "ops", Name: name, Creator: "ops", CreatedAt: at})
		},
		func(ctx context.Context, h *harness, tok, pt string) ([]string, string, error) {
			r, err := h.libraries.ListLibraries(ctx, req(&trellisv1.ListLibrariesRequest{PageSize: maxPageSize, PageToken: pt}, tok))
			if err != nil {
				return nil, "", err
			}
			return keys(r.Msg.Libraries, (*trellisv1.Library).GetId), r.Msg.NextPageToken, nil
		}},
	{"trellis.v1.Libraries/ListLibraryExperiments",
		// The rows listed above: ListLibraries' first library holds
		// ListExperiments' experiments.
		func(ctx context.Context, tx store.Tx, i int, at time.Time) error {
			return tx.Libraries().AddExperiment(ctx, "ops:l0000", fmt.Sprintf("ops:x%04d", i))
		},
		func(ctx context.Context, h *harness, tok, pt string) ([]string, string, error) {
			r, err := h.libraries.ListLibraryExperiments(ctx, req(&trellisv1.ListLibraryExperimentsRequest{Id: "ops:l0000", PageSize: maxPageSize, PageToken: pt}, tok))
			if connect.CodeOf(err) == connect.CodeNotFound && pt == "" {
				return nil, "", nil // the baseline, before the library was made
			}
			if err != nil {
				return nil, "", err
			}
			return keys(r.Msg.Experiments, (*trellisv1.Experiment).GetId), r.Msg.NextPageToken, nil
		}},
	{"trellis.v1.Resources/ListResources",
		func(ctx context.Context, tx store.Tx, i int, at time.Time) error {
			return tx.Resources().Create(ctx, &domain.Resource{Name: fmt.Sprintf("n%04d", i), Kind: domain.KindNode, Provider: "site1",
				Attributes: map[string]string{"cores": "4"}, State: domain.ResourceAvailable, CreatedAt: at})
		},
		func(ctx context.Context, h *harness, tok, pt string) ([]string, string, error) {
			r, err := h.resources.ListResources(ctx, req(&trellisv1.ListResourcesRequest{PageSize: maxPageSize, PageToken: pt}, tok))
			if err != nil {
				return nil, "", err
			}
			return keys(r.Msg.Resources, (*trellisv1.Resource).GetName), r.Msg.NextPageToken, nil
		}},
	{"trellis.v1.Realizations/ListRealizations",
		func(ctx context.Context, tx store.Tx, i int, at time.Time) error {
			return tx.Realizations().Create(ctx, &domain.Realization{ID: fmt.Sprintf("r%04d", i), Experiment: "ops:x", Project: "ops",
				Owner: "ops", State: domain.RealizationAllocated, LeaseExpires: at.Add(24 * time.Hour), CreatedAt: at})
		},
		func(ctx context.Context, h *harness, tok, pt string) ([]string, string, error) {
			r, err := h.realizations.ListRealizations(ctx, req(&trellisv1.ListRealizationsRequest{PageSize: maxPageSize, PageToken: pt}, tok))
			if err != nil {
				return nil, "", err
			}
			return keys(r.Msg.Realizations, (*trellisv1.Realization).GetId), r.Msg.NextPageToken, nil
		}},
	{"trellis.v1.Realizations/ListAllRealizations",
		nil, // lists ListRealizations' rows
		func(ctx context.Context, h *harness, tok, pt string) ([]string, string, error) {
			r, err := h.realizations.ListAllRealizations(ctx, req(&trellisv1.ListAllRealizationsRequest{PageSize: maxPageSize, PageToken: pt}, tok))
			if err != nil {
				return nil, "", err
			}
			return keys(r.Msg.Realizations, (*trellisv1.Realization).GetId), r.Msg.NextPageToken, nil
		}},
}

// TestPagedListingsCovered: every operation of the contract that takes a
// page_size has a row in pagedListings.
func TestPagedListingsCovered(t *testing.T) {
	var covered []string
	for _, l := range pagedListings {
		covered = append(covered, l.op)
	}
	policy.ContractServices(func(svc protoreflect.ServiceDescriptor) {
		for j := 0; j < svc.Methods().Len(); j++ {
			m := svc.Methods().Get(j)
			op := string(svc.FullName()) + "/" + string(m.Name())
			if m.Input().Fields().ByName("page_size") != nil && !slices.Contains(covered, op) {
				t.Errorf("%s pages: add it to pagedListings", op)
			}
		}
	})
}

// TestPagingAtMaximum lists every paged listing at the largest page size
// with more rows than a page holds, on both stores: the first page is full
// and says where the next starts, and the pages hold every row once.
func TestPagingAtMaximum(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		t.Run(string(kind), func(t *testing.T) { testPagingAtMaximum(t, kind) })
	}
}

func testPagingAtMaximum(t *testing.T, kind storeKind) {
	ctx := context.Background()
	st := openStore(t, kind)
	first := newServer(t, st)
	tok := first.bootstrapAdmin()
	listAll := func(t *testing.T, h *harness, tok string, list listPage) [][]string {
		t.Helper()
		var pages [][]string
		pt := ""
		for {
			rows, next, err := list(ctx, h, tok, pt)
			if err != nil {
				t.Fatal(err)
			}
			pages = append(pages, rows)
			if next == "" || len(pages) > 3 {
				return pages
			}
			pt = next
		}
	}
	baseline := map[string]int{}
	for _, l := range pagedListings {
		pages := listAll(t, first, tok, l.list)
		if len(pages) != 1 {
			t.Fatalf("%s: %d pages before the rows were added", l.op, len(pages))
		}
		baseline[l.op] = len(pages[0])
	}
	// The rows go in through the store, in bulk; a new replica then loads
	// them (the policy graph included) as any replica starting would.
	at := time.Now().UTC().Truncate(time.Millisecond)
	for _, l := range pagedListings {
		if l.add == nil {
			continue
		}
		err := st.Update(ctx, func(tx store.Tx) error {
			for i := range pagedRows {
				if err := l.add(ctx, tx, i, at); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s: adding rows: %v", l.op, err)
		}
	}
	h := newServer(t, st)
	tok = h.login("ops", adminPassword).AccessToken // its own issuer
	for _, l := range pagedListings {
		t.Run(l.op, func(t *testing.T) {
			pages := listAll(t, h, tok, l.list)
			want := baseline[l.op] + pagedRows
			var sizes []int
			seen := map[string]bool{}
			for _, p := range pages {
				sizes = append(sizes, len(p))
				for _, k := range p {
					if seen[k] {
						t.Errorf("%s listed twice", k)
					}
					seen[k] = true
				}
			}
			if wantSizes := []int{maxPageSize, want - maxPageSize}; !slices.Equal(sizes, wantSizes) {
				t.Errorf("page sizes %v, want %v", sizes, wantSizes)
			}
		})
	}
}
