package app_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/trellis-testbed/trellis/internal/app"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/policy"
	"github.com/trellis-testbed/trellis/internal/store"
	"github.com/trellis-testbed/trellis/internal/store/pgtest"
)

// storeConfig opens a fresh migrated store and returns it with the
// configuration an operator's command would name it by.
func storeConfig(t *testing.T, kind storeKind) (store.Store, app.StoreConfig) {
	t.Helper()
	var sc app.StoreConfig
	if kind == postgres {
		sc.Database = migrated.NewDatabase(t)
	} else {
		sc.DataDir = t.TempDir()
	}
	st, err := app.OpenStore(context.Background(), sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, sc
}

// everyListing reads every page of every paged listing as the caller of
// tok: the listings' keys by operation.
func everyListing(t *testing.T, h *harness, tok string) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, l := range pagedListings {
		pt := ""
		for {
			rows, next, err := l.list(context.Background(), h, tok, pt)
			if err != nil {
				t.Fatalf("%s: %v", l.op, err)
			}
			prev, _ := out[l.op].([]string)
			out[l.op] = append(prev, rows...)
			if pt = next; pt == "" {
				break
			}
		}
	}
	return out
}

// TestBackupRestore backs up a running server's store, restores the backup
// into a fresh store, starts a server there and expects every listing to
// answer as the original did, on both stores. Both servers have one public
// URL, so the original's login is valid at the restored one (signing keys
// and sessions are in the backup) and no new login changes the audit
// record being compared.
func TestBackupRestore(t *testing.T) {
	for _, kind := range []storeKind{sqlite, postgres} {
		t.Run(string(kind), func(t *testing.T) { testBackupRestore(t, kind) })
	}
}

func testBackupRestore(t *testing.T, kind storeKind) {
	ctx := context.Background()
	samePublicURL := func(c *app.Config) { c.PublicURL = "http://trellis.test" }
	st, sc := storeConfig(t, kind)
	first := newServer(t, st, samePublicURL)
	tok := first.bootstrapAdmin()
	at := time.Now().UTC().Truncate(time.Millisecond)
	err := st.Update(ctx, func(tx store.Tx) error {
		for _, l := range pagedListings {
			for i := range 3 {
				if l.add == nil {
					continue
				}
				if err := l.add(ctx, tx, i, at); err != nil {
					return err
				}
			}
		}
		return tx.Projects().SetMember(ctx, &domain.Membership{Group: "p0000", UID: "u0001", AddedAt: at})
	})
	if err != nil {
		t.Fatal(err)
	}
	h := newServer(t, st, samePublicURL) // loads the rows, as a starting replica does
	// The listings that do not page get something to list, through the API.
	for op, body := range map[string]string{
		"trellis.v1.Users/AddSSHKey":          `{"uid":"ops","publicKey":"` + victimSSHKey + `"}`,
		"trellis.v1.Auth/CreateAPIToken":      `{"name":"ci","scopes":["read"]}`,
		"trellis.v1.OidcClients/AddClient":    `{"name":"notebooks","redirectUris":["https://jupyter.example.org/cb"]}`,
		"trellis.v1.Services/RegisterService": `{"name":"runner","generateSecret":true}`,
		"trellis.v1.Providers/AddProvider":    `{"name":"site1","url":"https://site1.example.org:7800"}`,
		"trellis.v1.Projects/AddUsers":        `{"name":"p0000","uids":["u0000"],"rights":["add_user"]}`,
		"trellis.v1.Projects/RequestProject":  `{"name":"wanted","description":"for the approval queue"}`,
	} {
		if code, body := h.callBody(t, op, body, tok); code != "" {
			t.Fatalf("%s: %s", op, body)
		}
	}
	want := everyListing(t, h, tok)
	for op, keys := range want {
		if len(keys.([]string)) == 0 {
			t.Fatalf("%s lists nothing: the comparison would prove nothing", op)
		}
	}
	for op, body := range otherListings {
		code, answer := h.callBody(t, op, body, tok)
		if code != "" {
			t.Fatalf("%s: %s", op, answer)
		}
		if answer == "{}" && !emptyOtherListings[op] {
			t.Fatalf("%s lists nothing: the comparison would prove nothing", op)
		}
		want[op] = answer
	}

	file := filepath.Join(t.TempDir(), "trellis.backup")
	if err := app.Backup(ctx, sc, file); err != nil { // the servers keep running
		t.Fatal(err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v, %v", fi, err)
	}
	if err := app.Backup(ctx, sc, file); err == nil {
		t.Error("a backup overwrote an existing file")
	}
	// The embedded store is locked by its server; PostgreSQL's has accounts.
	if err := app.Restore(ctx, sc, file); err == nil || !strings.Contains(err.Error(), "accounts") && !strings.Contains(err.Error(), "another process") {
		t.Errorf("restoring over a store in use: %v, want a refusal", err)
	}

	var fresh app.StoreConfig
	if kind == postgres {
		fresh.Database = pgtest.NewDatabase(t) // empty: not even migrated
	} else {
		fresh.DataDir = t.TempDir()
	}
	if err := app.Restore(ctx, fresh, file); err != nil {
		t.Fatal(err)
	}
	restored, err := app.OpenStore(ctx, fresh)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { restored.Close() })
	h2 := newServer(t, restored, samePublicURL)
	got := everyListing(t, h2, tok)
	for _, l := range pagedListings {
		if !slices.Equal(got[l.op].([]string), want[l.op].([]string)) {
			t.Errorf("%s after restore:\n got %v\nwant %v", l.op, got[l.op], want[l.op])
		}
	}
	for op, body := range otherListings {
		code, answer := h2.callBody(t, op, body, tok)
		if code != "" || answer != want[op].(string) {
			t.Errorf("%s after restore: %s %s\nwant %s", op, code, answer, want[op])
		}
	}
}

// otherListings are the contract's listings that do not page, with a
// request for each; TestOtherListingsCovered keeps the list whole.
var otherListings = map[string]string{
	"trellis.v1.Users/ListSSHKeys":                `{"uid":"ops"}`,
	"trellis.v1.Auth/ListAPITokens":               `{}`,
	"trellis.v1.OidcClients/ListClients":          `{}`,
	"trellis.v1.Services/ListServices":            `{}`,
	"trellis.v1.Providers/ListProviders":          `{}`,
	"trellis.v1.Providers/ListConnections":        `{}`,
	"trellis.v1.Projects/ListMembers":             `{"name":"p0000"}`,
	"trellis.v1.Notifications/ListRequests":       `{}`,
	"trellis.v1.ext.auth.oidc.v1.Login/ListLinks": `{}`,
	"trellis.v1.Policy/ListAllowed":               `{"uid":"ops","action":"project.read","kind":"project"}`,
	"trellis.v1.Admin/ListAttributes":             `{"kind":"PROFILE_KIND_USER"}`,
}

// emptyOtherListings are those the test has nothing for: connections need a
// site that serves, links an identity provider.
var emptyOtherListings = map[string]bool{
	"trellis.v1.Providers/ListConnections":        true,
	"trellis.v1.ext.auth.oidc.v1.Login/ListLinks": true,
}

// TestOtherListingsCovered: every List operation of the contract is in
// pagedListings or otherListings, so a restore is compared on all of them.
func TestOtherListingsCovered(t *testing.T) {
	policy.ContractServices(func(svc protoreflect.ServiceDescriptor) {
		for j := 0; j < svc.Methods().Len(); j++ {
			m := svc.Methods().Get(j)
			op := string(svc.FullName()) + "/" + string(m.Name())
			if !strings.HasPrefix(string(m.Name()), "List") || m.Input().Fields().ByName("page_size") != nil {
				continue
			}
			if _, ok := otherListings[op]; !ok {
				t.Errorf("%s lists: add it to otherListings", op)
			}
		}
	})
}
