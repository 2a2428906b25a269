package keys

import (
	"context"

	"github.com/trellis-testbed/trellis/internal/domain"
	"github.com/trellis-testbed/trellis/internal/store"
)

// LoadAuthority returns the certificate authority called name from st,
// creating it with create on first start. When replicas start together, the
// one that loses the race to create it reads the winner's. A private key
// stored in plain before a key-encryption key was configured is sealed on
// the way. The SSH and X.509 authorities both keep their keys this way.
func LoadAuthority(ctx context.Context, st store.Store, sealer Sealer, name string, create func() (*store.Authority, error)) (*store.Authority, error) {
	var a *store.Authority
	err := st.Update(ctx, func(tx store.Tx) error {
		var err error
		a, err = tx.Authorities().Get(ctx, name)
		switch {
		case domain.HasCode(err, domain.CodeNotFound):
			if a, err = create(); err != nil {
				return err
			}
			return tx.Authorities().Create(ctx, a)
		case err != nil:
			return err
		case NeedsReseal(sealer, a.PrivateKey):
			plain, err := sealer.Open(a.PrivateKey)
			if err != nil {
				return err
			}
			defer clear(plain)
			if a.PrivateKey, err = sealer.Seal(plain); err != nil {
				return err
			}
			return tx.Authorities().SetPrivateKey(ctx, a.Name, a.PrivateKey)
		}
		return nil
	})
	if domain.HasCode(err, domain.CodeAlreadyExists) {
		// Another replica created it between our read and our write.
		err = st.View(ctx, func(tx store.Tx) error {
			var err error
			a, err = tx.Authorities().Get(ctx, name)
			return err
		})
	}
	return a, err
}
