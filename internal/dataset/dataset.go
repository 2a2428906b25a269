// Package dataset fills a store with a testbed-sized population for
// benchmarks and load tests: users, projects nested into trees, circles,
// and memberships with random rights. It writes through the store, as a
// bulk import would, with a fixed password hash (nobody logs in as these
// users; the load tools bootstrap their own admin).
package dataset

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

// Spec sizes a population.
type Spec struct {
	Users    int
	Projects int
	// Depth is how deep projects nest (1: no nesting).
	Depth   int
	Circles int
	// MembersPerProject and MembersPerCircle are averages.
	MembersPerProject int
	MembersPerCircle  int
	// Experiments are owned by random users and projects; about a third
	// are shared (read) with a random circle.
	Experiments int
	Seed        uint64
}

// Testbed is the size issue 3 names: 10,000 users, 2,000 projects nested
// up to depth 5, 1,000 circles.
var Testbed = Spec{Users: 10_000, Projects: 2_000, Depth: 5, Circles: 1_000, MembersPerProject: 12, MembersPerCircle: 8, Seed: 1}

// Population names what was made, for load generators to draw from.
type Population struct {
	Users       []string
	Projects    []string
	Circles     []string
	Experiments []string
	// Memberships lists (uid, project) pairs that exist.
	Memberships [][2]string
}

// unusableHash is a PHC string no password matches.
const unusableHash = "$argon2id$v=19$m=64,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

const batch = 500

// Generate writes the population and returns what it made.
func Generate(ctx context.Context, st store.Store, s Spec) (*Population, error) {
	r := rand.New(rand.NewPCG(s.Seed, s.Seed^0x9e3779b97f4a7c15))
	now := time.Now()
	pop := &Population{}
	for i := range s.Users {
		pop.Users = append(pop.Users, fmt.Sprintf("u%05d", i))
	}
	for i := range s.Projects {
		pop.Projects = append(pop.Projects, fmt.Sprintf("p%04d", i))
	}
	if err := inBatches(ctx, st, len(pop.Users), func(ctx context.Context, tx store.Tx, i int) error {
		uid := pop.Users[i]
		return tx.Users().Create(ctx, &domain.User{UID: uid, Email: uid + "@dataset.example.org", EmailVerified: true, State: domain.UserActive, CreatedAt: now, UpdatedAt: now}, unusableHash)
	}); err != nil {
		return nil, fmt.Errorf("dataset users: %w", err)
	}
	randomRights := func(vocab domain.Rights) domain.Rights {
		return domain.Rights(r.Uint32N(uint32(vocab)+1)) & vocab
	}
	// Projects: each one's owner is a random user, a member with every
	// right; other members get random rights.
	type mem struct {
		project, uid string
		rights       domain.Rights
	}
	var members []mem
	owners := make([]string, len(pop.Projects))
	for i, name := range pop.Projects {
		owners[i] = pop.Users[r.IntN(len(pop.Users))]
		members = append(members, mem{name, owners[i], domain.ProjectRights})
		seen := map[string]bool{owners[i]: true}
		for range r.IntN(2*s.MembersPerProject + 1) {
			uid := pop.Users[r.IntN(len(pop.Users))]
			if !seen[uid] {
				seen[uid] = true
				members = append(members, mem{name, uid, randomRights(domain.ProjectRights)})
				pop.Memberships = append(pop.Memberships, [2]string{uid, name})
			}
		}
	}
	if err := inBatches(ctx, st, len(pop.Projects), func(ctx context.Context, tx store.Tx, i int) error {
		return tx.Projects().Create(ctx, &domain.Project{Name: pop.Projects[i], Owner: owners[i], State: domain.ProjectApproved, CreatedAt: now, ApprovedAt: now})
	}); err != nil {
		return nil, fmt.Errorf("dataset projects: %w", err)
	}
	if err := inBatches(ctx, st, len(members), func(ctx context.Context, tx store.Tx, i int) error {
		m := members[i]
		return tx.Projects().SetMember(ctx, &domain.Membership{Group: m.project, UID: m.uid, Rights: m.rights, AddedAt: now})
	}); err != nil {
		return nil, fmt.Errorf("dataset memberships: %w", err)
	}
	// Nesting: trees of Depth levels; each project below the top level is
	// nested in one project of the level above.
	var edges []domain.ProjectChild
	if s.Depth > 1 {
		per := max(1, len(pop.Projects)/s.Depth)
		for level := 1; level < s.Depth; level++ {
			parents := pop.Projects[(level-1)*per : level*per]
			for _, child := range pop.Projects[level*per : min(len(pop.Projects), (level+1)*per)] {
				edges = append(edges, domain.ProjectChild{Parent: parents[r.IntN(len(parents))], Child: child, Rights: randomRights(domain.ProjectRights)})
			}
		}
	}
	if err := inBatches(ctx, st, len(edges), func(ctx context.Context, tx store.Tx, i int) error {
		return tx.Projects().AddChild(ctx, &edges[i])
	}); err != nil {
		return nil, fmt.Errorf("dataset nesting: %w", err)
	}
	// Circles, owned by users.
	type cmem struct {
		id, uid string
		rights  domain.Rights
	}
	var circles []domain.Circle
	var cmembers []cmem
	for i := range s.Circles {
		owner := pop.Users[r.IntN(len(pop.Users))]
		id := fmt.Sprintf("%s:c%04d", owner, i)
		circles = append(circles, domain.Circle{ID: id, Owner: owner, Name: fmt.Sprintf("c%04d", i), CreatedAt: now})
		pop.Circles = append(pop.Circles, id)
		cmembers = append(cmembers, cmem{id, owner, domain.CircleRights})
		seen := map[string]bool{owner: true}
		for range r.IntN(2*s.MembersPerCircle + 1) {
			uid := pop.Users[r.IntN(len(pop.Users))]
			if !seen[uid] {
				seen[uid] = true
				cmembers = append(cmembers, cmem{id, uid, randomRights(domain.CircleRights)})
			}
		}
	}
	if err := inBatches(ctx, st, len(circles), func(ctx context.Context, tx store.Tx, i int) error {
		return tx.Circles().Create(ctx, &circles[i])
	}); err != nil {
		return nil, fmt.Errorf("dataset circles: %w", err)
	}
	if err := inBatches(ctx, st, len(cmembers), func(ctx context.Context, tx store.Tx, i int) error {
		m := cmembers[i]
		return tx.Circles().SetMember(ctx, &domain.Membership{Group: m.id, UID: m.uid, Rights: m.rights, AddedAt: now})
	}); err != nil {
		return nil, fmt.Errorf("dataset circle memberships: %w", err)
	}
	if err := generateExperiments(ctx, st, s, r, pop, owners, now); err != nil {
		return nil, err
	}
	return pop, nil
}

// generateExperiments makes experiments of users and of projects; one in a
// project's namespace is its creator's, here the project's owner.
func generateExperiments(ctx context.Context, st store.Store, s Spec, r *rand.Rand, pop *Population, projectOwners []string, now time.Time) error {
	type exp struct {
		x     domain.Experiment
		grant string
	}
	exps := make([]exp, s.Experiments)
	for i := range exps {
		ns := pop.Users[r.IntN(len(pop.Users))]
		owner := ns
		if r.IntN(2) == 0 && len(pop.Projects) > 0 {
			j := r.IntN(len(pop.Projects))
			ns, owner = pop.Projects[j], projectOwners[j]
		}
		name := fmt.Sprintf("e%05d", i)
		exps[i].x = domain.Experiment{ID: ns + ":" + name, Owner: owner, Name: name, Creator: owner, CreatedAt: now}
		if r.IntN(3) == 0 && len(pop.Circles) > 0 {
			exps[i].grant = pop.Circles[r.IntN(len(pop.Circles))]
		}
		pop.Experiments = append(pop.Experiments, exps[i].x.ID)
	}
	return inBatches(ctx, st, len(exps), func(ctx context.Context, tx store.Tx, i int) error {
		if err := tx.Experiments().Create(ctx, &exps[i].x); err != nil {
			return err
		}
		if exps[i].grant == "" {
			return nil
		}
		return tx.Grants().Set(ctx, &domain.Grant{Object: domain.ExperimentObject(exps[i].x.ID), Circle: exps[i].grant, Rights: domain.RightsOf(domain.Read)})
	})
}

// Nodes registers n node resources with varied attributes (cores 2 to 64,
// memory, arch, site), named node00000 on, at the providers site0 to site3,
// which it adds when they are not there (a resource names a registered
// provider).
func Nodes(ctx context.Context, st store.Store, n int, seed uint64) error {
	r := rand.New(rand.NewPCG(seed, seed+1))
	cores := []string{"2", "4", "8", "16", "32", "64"}
	archs := []string{"x86_64", "x86_64", "x86_64", "arm64"}
	now := time.Now()
	if err := st.Update(ctx, func(tx store.Tx) error {
		for i := range min(n, 4) {
			name := fmt.Sprintf("site%d", i)
			_, err := tx.Providers().Get(ctx, name)
			if domain.HasCode(err, domain.CodeNotFound) {
				err = tx.Providers().Create(ctx, &domain.Provider{Name: name, URL: "https://" + name + ".example.org:7800", State: domain.ProviderActive, CreatedAt: now})
			}
			if err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("dataset providers: %w", err)
	}
	return inBatches(ctx, st, n, func(ctx context.Context, tx store.Tx, i int) error {
		c := cores[r.IntN(len(cores))]
		return tx.Resources().Create(ctx, &domain.Resource{
			Name: fmt.Sprintf("node%05d", i), Kind: domain.KindNode, Provider: fmt.Sprintf("site%d", i%4),
			State: domain.ResourceAvailable, CreatedAt: now,
			Attributes: map[string]string{"cores": c, "memory_gb": fmt.Sprint(4 * r.IntN(64)), "arch": archs[r.IntN(len(archs))], "site": fmt.Sprintf("site%d", i%4)},
		})
	})
}

// Layout returns a layout of n nodes in a few constraint classes, each
// linked to the next.
func Layout(n int) []byte {
	classes := []string{`{cores: ">=4"}`, `{cores: ">=8", arch: x86_64}`, `{}`, `{cores: ">=2", memory_gb: ">=16"}`, `{arch: x86_64}`}
	var b strings.Builder
	b.WriteString("nodes:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: n%d\n    constraints: %s\n", i, classes[i%len(classes)])
	}
	b.WriteString("links:\n")
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, "  - [n%d, n%d]\n", i-1, i)
	}
	return []byte(b.String())
}

// inBatches calls fn for 0..n-1, batch rows a transaction.
func inBatches(ctx context.Context, st store.Store, n int, fn func(context.Context, store.Tx, int) error) error {
	for lo := 0; lo < n; lo += batch {
		hi := min(n, lo+batch)
		if err := st.Update(ctx, func(tx store.Tx) error {
			for i := lo; i < hi; i++ {
				if err := fn(ctx, tx, i); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}
