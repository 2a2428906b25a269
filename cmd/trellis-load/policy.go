package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
	"github.com/trellis-testbed/trellis/internal/dataset"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/loadgen"
	"github.com/trellis-testbed/trellis/internal/store"
)

// runPolicy measures Policy.Check over HTTP on the testbed-sized population
// while a writer changes memberships underneath, as another replica would,
// and checks that no answer is stale: right after each write commits, the
// writer asks the server about the membership it just changed.
func runPolicy(duration, warmup time.Duration, conns int, maxReq int64, storeSpec, codec string, churnEvery time.Duration) error {
	ctx := context.Background()
	var pop *dataset.Population
	t0 := time.Now()
	target, uid, pw, st, stop, err := startTrellis(ctx, storeSpec, func(st store.Store) error {
		var err error
		pop, err = dataset.Generate(ctx, st, dataset.Testbed)
		return err
	})
	if err != nil {
		return err
	}
	defer stop()
	fmt.Printf("# population: %d users, %d projects (depth %d), %d circles, %d memberships; built and loaded in %v\n",
		len(pop.Users), len(pop.Projects), dataset.Testbed.Depth, len(pop.Circles), len(pop.Memberships), time.Since(t0).Round(time.Millisecond))
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: conns * 2, MaxConnsPerHost: conns}}
	tok, err := login(ctx, client, target, uid, pw)
	if err != nil {
		return err
	}
	check := func(ctx context.Context, uid, action, object string) (bool, error) {
		body := fmt.Sprintf(`{"uid":%q,"action":%q,"object":%q}`, uid, action, object)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target+"/trellis.v1.Policy/Check", strings.NewReader(body))
		if err != nil {
			return false, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("status %d: %s", resp.StatusCode, b)
		}
		// protojson writes {"allowed":true} or, for false, {}.
		return bytes.Contains(b, []byte(`"allowed":true`)), nil
	}

	// The writer: toggle a realize_experiment membership every churnEvery,
	// then ask at once whether it holds.
	wctx, stopWriter := context.WithCancel(ctx)
	var writes, stale, writeErrs atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		r := rand.New(rand.NewPCG(11, 12))
		tick := time.NewTicker(churnEvery)
		defer tick.Stop()
		for wctx.Err() == nil {
			<-tick.C
			u, p := pop.Users[r.IntN(len(pop.Users))], pop.Projects[r.IntN(len(pop.Projects))]
			var member bool
			err := st.Update(wctx, func(tx store.Tx) error {
				proj, err := tx.Projects().Get(wctx, p)
				if err != nil || proj.Owner == u {
					return err
				}
				_, err = tx.Projects().Member(wctx, p, u)
				if err == nil {
					member = false
					if err := tx.Projects().RemoveMember(wctx, p, u); err != nil {
						return err
					}
				} else {
					member = true
					if err := tx.Projects().SetMember(wctx, &domain.Membership{Group: p, UID: u, Rights: domain.RightsOf(domain.RealizeExperiment), AddedAt: time.Now()}); err != nil {
						return err
					}
				}
				return tx.Changes().Append(wctx, store.ChangeProject, p)
			})
			if err != nil {
				if wctx.Err() == nil {
					writeErrs.Add(1)
				}
				continue
			}
			writes.Add(1)
			// Nesting may grant the right another way; only a removal that
			// leaves no other path could be stale, so compare with what the
			// direct membership says when the user is not otherwise in.
			got, err := check(wctx, u, "project.realize_experiment", "project:"+p)
			if err != nil {
				continue
			}
			if member && !got {
				stale.Add(1) // a grant not yet seen
			}
			if !member && got {
				// Allowed after removal: stale unless another path grants
				// it. Ask for the explanation to tell them apart.
				if direct, _ := viaDirectMembership(wctx, client, target, tok, u, p); direct {
					stale.Add(1)
				}
			}
		}
	})

	opts := loadgen.Options{Workers: conns, Duration: duration, Warmup: warmup, MaxRequests: maxReq}
	actions := []string{"project.read", "project.add_user", "project.realize_experiment", "project.remove_user"}
	// The measured client: JSON over HTTP as curl sends it, or the
	// generated Connect client (binary protobuf) a Go service would use.
	name, ask := "Policy/Check (JSON)", check
	if codec == "proto" {
		pc := trellisv1connect.NewPolicyClient(client, target)
		name = "Policy/Check (proto)"
		ask = func(ctx context.Context, uid, action, object string) (bool, error) {
			req := connect.NewRequest(&trellisv1.CheckRequest{Uid: uid, Action: action, Object: object})
			req.Header().Set("Authorization", "Bearer "+tok)
			resp, err := pc.Check(ctx, req)
			if err != nil {
				return false, err
			}
			return resp.Msg.Allowed, nil
		}
	}
	var seed atomic.Uint64
	res := loadgen.RunWorkers(ctx, name, opts, func() func(context.Context) error {
		r := rand.New(rand.NewPCG(seed.Add(1), 3))
		return func(ctx context.Context) error {
			var u, p string
			if r.IntN(2) == 0 {
				m := pop.Memberships[r.IntN(len(pop.Memberships))]
				u, p = m[0], m[1]
			} else {
				u, p = pop.Users[r.IntN(len(pop.Users))], pop.Projects[r.IntN(len(pop.Projects))]
			}
			_, err := ask(ctx, u, actions[r.IntN(len(actions))], "project:"+p)
			return err
		}
	})
	elapsed := res.Elapsed + warmup
	stopWriter()
	wg.Wait()
	report(res)
	fmt.Printf("  membership writes underneath: %d (%.0f/s), write errors %d, stale answers right after a write: %d\n",
		writes.Load(), float64(writes.Load())/elapsed.Seconds(), writeErrs.Load(), stale.Load())
	if stale.Load() > 0 {
		return fmt.Errorf("%d stale answers", stale.Load())
	}
	return nil
}

// viaDirectMembership asks Policy.Explain whether the allow rests on u's
// direct membership of p (which was just removed: a stale answer).
func viaDirectMembership(ctx context.Context, c *http.Client, target, tok, u, p string) (bool, error) {
	body := fmt.Sprintf(`{"uid":%q,"action":"project.realize_experiment","object":"project:%s"}`, u, p)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target+"/trellis.v1.Policy/Explain", strings.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var out struct {
		Reasons []string
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return false, err
	}
	return len(out.Reasons) == 1 && strings.HasPrefix(out.Reasons[0], u+" is a member of project "+p+" "), nil
}
