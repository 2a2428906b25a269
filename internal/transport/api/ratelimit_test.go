package api

import (
	"testing"
	"time"

	"github.com/trellis-testbed/trellis/gen/trellis/v1/trellisv1connect"
	"github.com/trellis-testbed/trellis/internal/policy"
)

func TestLimiter(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	l := newLimiter()
	l.now = func() time.Time { return now }
	op := policy.Op(trellisv1connect.ApiInfoGetClientCertificateProcedure)
	lim := addressLimits[op]
	for i := range lim.burst {
		if !l.allow(op, "192.0.2.1:5000") {
			t.Fatalf("call %d of the burst refused", i+1)
		}
	}
	if l.allow(op, "192.0.2.1:5001") {
		t.Fatal("a call past the burst allowed (another port, same address)")
	}
	if !l.allow(op, "192.0.2.2:5000") {
		t.Fatal("another address shares the first one's budget")
	}
	if !l.allow(policy.Op(trellisv1connect.AuthWhoAmIProcedure), "192.0.2.1:5000") || !l.allow(policy.Op(trellisv1connect.UsersRequestPasswordResetProcedure), "192.0.2.1:5000") {
		t.Fatal("the limit of one operation holds back another")
	}
	now = now.Add(lim.every)
	if !l.allow(op, "192.0.2.1:5000") {
		t.Fatal("refused after the steady rate's interval")
	}
	if l.allow(op, "192.0.2.1:5000") {
		t.Fatal("two calls allowed in one interval after the burst")
	}

	// The table stays bounded: idle addresses are dropped when it fills.
	for i := range maxAddresses {
		l.allow(op, "10.0."+string(rune('a'+i%26))+"."+time.Duration(i).String())
	}
	now = now.Add(2 * time.Minute)
	l.allow(op, "198.51.100.7:1")
	if n := len(l.byOp[op]); n > maxAddresses {
		t.Fatalf("%d limiters kept, bound %d", n, maxAddresses)
	}
}
