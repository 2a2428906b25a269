package main_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
	"github.com/trellis-testbed/trellis/internal/dataset"
	"github.com/trellis-testbed/trellis/internal/store/pgtest"
	"github.com/trellis-testbed/trellis/internal/store/sqlstore"
)

// api is a Go client of one running server, logged in as the admin.
type api struct {
	tok          string
	experiments  trellisv1connect.ExperimentsClient
	resources    trellisv1connect.ResourcesClient
	realizations trellisv1connect.RealizationsClient
	projects     trellisv1connect.ProjectsClient
	providers    trellisv1connect.ProvidersClient
}

func connectAPI(t *testing.T, url, uid, pw string) *api {
	t.Helper()
	hc := &http.Client{Timeout: 60 * time.Second}
	resp, err := trellisv1connect.NewAuthClient(hc, url).Login(context.Background(), connect.NewRequest(&trellisv1.LoginRequest{Uid: uid, Password: pw}))
	if err != nil {
		t.Fatal(err)
	}
	bearer := connect.WithInterceptors(connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+resp.Msg.Tokens.AccessToken)
			return next(ctx, req)
		}
	}))
	return &api{
		tok:          resp.Msg.Tokens.AccessToken,
		experiments:  trellisv1connect.NewExperimentsClient(hc, url, bearer),
		resources:    trellisv1connect.NewResourcesClient(hc, url, bearer),
		realizations: trellisv1connect.NewRealizationsClient(hc, url, bearer),
		projects:     trellisv1connect.NewProjectsClient(hc, url, bearer),
		providers:    trellisv1connect.NewProvidersClient(hc, url, bearer),
	}
}

const adminPW = "sesame for the testbed admin"

// TestRealizationRaceTwoProcesses: 50 realizations compete for one pool
// through two server processes on one PostgreSQL. No resource is bound
// twice, and every loser is told which node could not be placed.
func TestRealizationRaceTwoProcesses(t *testing.T) {
	db := pgtest.NewDatabase(t)
	base := &cli{t: t}
	base.ok(adminPW+"\n", "admin", "bootstrap", "--uid", "ops", "--email", "ops@testbed.example.org", "--password-stdin", "--database", db)
	// Replicas share the key-encryption key (and the public URL).
	kek := filepath.Join(t.TempDir(), "trellis.kek")
	if err := os.WriteFile(kek, []byte(hex.EncodeToString(bytes.Repeat([]byte{7}, 32))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--database", db, "--public-url", "https://trellis.test", "--kek-file", kek}
	a := launch(t, t.TempDir(), flags...)
	b := launch(t, t.TempDir(), flags...)
	ca, cb := connectAPI(t, a.url, "ops", adminPW), connectAPI(t, b.url, "ops", adminPW)
	ctx := context.Background()

	if _, err := ca.providers.AddProvider(ctx, connect.NewRequest(&trellisv1.AddProviderRequest{Name: "site1", Url: "https://site1.example.org:7800"})); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := ca.resources.RegisterResource(ctx, connect.NewRequest(&trellisv1.RegisterResourceRequest{
			Name: fmt.Sprintf("n%02d", i), Kind: "node", Provider: "site1", Attributes: map[string]string{"cores": "8"},
		})); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ca.projects.RequestProject(ctx, connect.NewRequest(&trellisv1.RequestProjectRequest{Name: "ops-lab", Description: "race"})); err != nil {
		t.Fatal(err)
	}
	layout := "nodes:\n  - name: x\n  - name: y\n  - name: z\n"
	if _, err := ca.experiments.CreateExperiment(ctx, connect.NewRequest(&trellisv1.CreateExperimentRequest{
		Id: "ops:trio", Aspects: []*trellisv1.AspectInput{{Type: "layout", Name: "main", Content: []byte(layout)}},
	})); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	won, lost := 0, 0
	var wg sync.WaitGroup
	for i := range 50 {
		c := ca
		if i%2 == 1 {
			c = cb
		}
		wg.Go(func() {
			_, err := c.realizations.Realize(ctx, connect.NewRequest(&trellisv1.RealizeRequest{Experiment: "ops:trio", Project: "ops-lab"}))
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				won++
				return
			}
			lost++
			if connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), "cannot be placed") {
				t.Errorf("a loser was not told why: %v", err)
			}
		})
	}
	wg.Wait()
	if won != 6 || lost != 44 {
		t.Fatalf("won %d, lost %d: 20 nodes hold six 3-node realizations", won, lost)
	}
	all, err := cb.realizations.ListAllRealizations(ctx, connect.NewRequest(&trellisv1.ListAllRealizationsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	holder := map[string]string{}
	for _, r := range all.Msg.Realizations {
		for _, bd := range r.Bindings {
			if other, dup := holder[bd.Resource]; dup {
				t.Errorf("resource %s bound by %s and %s", bd.Resource, other, r.Id)
			}
			holder[bd.Resource] = r.Id
		}
	}
	if len(holder) != 18 {
		t.Fatalf("%d resources bound, want 18", len(holder))
	}
}

// TestKilledMidRealization kills the server while it realizes a large
// layout and checks, after a restart, that the store holds the whole
// realization or none of it.
func TestKilledMidRealization(t *testing.T) {
	dataDir := t.TempDir()
	ctx := context.Background()
	// Inventory straight into the embedded store, before the server runs.
	st, err := sqlstore.Open(ctx, dataDir+"/trellis.db")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err == nil {
		err = dataset.Nodes(ctx, st, 3000, 7)
	}
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	base := &cli{t: t}
	base.ok(adminPW+"\n", "admin", "bootstrap", "--uid", "ops", "--email", "ops@testbed.example.org", "--password-stdin", "--data-dir", dataDir)
	s := launch(t, dataDir)
	c := connectAPI(t, s.url, "ops", adminPW)
	if _, err := c.projects.RequestProject(ctx, connect.NewRequest(&trellisv1.RequestProjectRequest{Name: "ops-lab", Description: "crash"})); err != nil {
		t.Fatal(err)
	}
	if _, err := c.experiments.CreateExperiment(ctx, connect.NewRequest(&trellisv1.CreateExperimentRequest{
		Id: "ops:big", Aspects: []*trellisv1.AspectInput{{Type: "layout", Name: "main", Content: dataset.Layout(2500)}},
	})); err != nil {
		t.Fatal(err)
	}
	// Kill the server once it has the whole request: it is then reading
	// the layout, choosing the nodes or writing the bindings.
	sent := make(chan struct{})
	var once sync.Once // a retried request is written twice
	trace := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { once.Do(func() { close(sent) }) },
	})
	go func() {
		_, _ = c.realizations.Realize(trace, connect.NewRequest(&trellisv1.RealizeRequest{Experiment: "ops:big", Project: "ops-lab"}))
	}()
	select {
	case <-sent:
	case <-time.After(30 * time.Second):
		t.Fatal("the realize request was not sent within 30 s")
	}
	s.kill(t)

	s2 := launch(t, dataDir)
	c2 := connectAPI(t, s2.url, "ops", adminPW)
	all, err := c2.realizations.ListAllRealizations(ctx, connect.NewRequest(&trellisv1.ListAllRealizationsRequest{IncludeEnded: true}))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range all.Msg.Realizations {
		if len(r.Bindings) != 2500 {
			t.Fatalf("realization %s has %d of 2500 bindings after the crash", r.Id, len(r.Bindings))
		}
	}
	bound := 0
	for page := ""; ; {
		res, err := c2.resources.ListResources(ctx, connect.NewRequest(&trellisv1.ListResourcesRequest{PageSize: 1000, PageToken: page}))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res.Msg.Resources {
			if r.Realization != "" {
				bound++
			}
		}
		if page = res.Msg.NextPageToken; page == "" {
			break
		}
	}
	if bound != 2500*len(all.Msg.Realizations) {
		t.Fatalf("%d resources bound for %d realizations of 2500 nodes", bound, len(all.Msg.Realizations))
	}
	t.Logf("after the crash: %d realization(s), %d resources bound", len(all.Msg.Realizations), bound)
	// And the restarted server realizes it whole.
	if _, err := c2.realizations.Realize(ctx, connect.NewRequest(&trellisv1.RealizeRequest{Experiment: "ops:big", Project: "ops-lab"})); err != nil {
		t.Fatal(err)
	}
}
