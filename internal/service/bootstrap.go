package service

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"sync"

	"github.com/trellis-testbed/trellis/internal/auth"
	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/policy"
)

// bootstrapArm holds the one-time token by which the first administrator
// is made through a running server (Admin/Bootstrap): only its hash, and
// only until it is spent.
type bootstrapArm struct {
	mu     sync.Mutex
	armed  bool
	hash   [32]byte
	onUsed func()
}

// ArmBootstrap makes token the credential of one Admin/Bootstrap call on
// this server, replacing any token armed before; onUsed (may be nil) runs
// once it is spent. The server arms it when it starts without an
// administrator.
func (s *Service) ArmBootstrap(token string, onUsed func()) {
	a := &s.Accounts.bootstrapArm
	a.mu.Lock()
	defer a.mu.Unlock()
	a.armed, a.hash, a.onUsed = true, sha256.Sum256([]byte(token)), onUsed
}

// BootstrapAdmin creates the first administrator through the API. The
// one-time bootstrap token is the credential: it must match the armed one,
// and it is spent by the first success. Calls hold the arm's lock from the
// check to the spending, so two callers with the token cannot both pass.
func (s *Accounts) BootstrapAdmin(ctx context.Context, p *auth.Principal, token, uid, email, pw string) (*domain.User, error) {
	if err := s.authorize(ctx, p, opAdminBootstrap, policy.None); err != nil {
		return nil, err
	}
	a := &s.bootstrapArm
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.armed {
		return nil, domain.FailedPrecondition("this server has no bootstrap token: an administrator exists, or its token was spent")
	}
	got := sha256.Sum256([]byte(token))
	if token == "" || subtle.ConstantTimeCompare(got[:], a.hash[:]) != 1 {
		return nil, domain.Unauthenticated("bootstrap token not valid")
	}
	u, err := s.bootstrap(ctx, opAdminBootstrap.Name, uid, email, pw)
	if err != nil {
		if domain.HasCode(err, domain.CodeFailedPrecondition) {
			a.armed = false // an administrator exists: the token has no use left
		}
		return nil, err
	}
	a.armed = false
	if a.onUsed != nil {
		a.onUsed()
	}
	return u, nil
}
