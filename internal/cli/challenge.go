package cli

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	"github.com/trellis-testbed/trellis/internal/auth/password"
	"github.com/trellis-testbed/trellis/internal/auth/scram"
)

// challengeLogin logs uid in with a scram-argon2id challenge: the password
// never leaves this process (only a proof of it does), and the server proves
// in turn that it holds the account's verifier; tokens from a server that
// cannot are refused.
func challengeLogin(ctx context.Context, c *conn, uid, pw string) (*trellisv1.Tokens, error) {
	ch, err := c.anonAuth.RequestChallenge(ctx, connect.NewRequest(&trellisv1.RequestChallengeRequest{
		Uid: uid, Types: []string{scram.Type},
	}))
	if err != nil {
		return nil, err
	}
	sc := ch.Msg.GetScramArgon2Id()
	if ch.Msg.GetType() != scram.Type || sc == nil {
		return nil, fmt.Errorf("the server answered with a challenge of type %q, not %s", clean(ch.Msg.GetType()), scram.Type)
	}
	if sc.GetThreads() > 255 {
		return nil, errors.New("the server's challenge asks for more than 255 Argon2id lanes")
	}
	resp, err := scram.Respond(pw, uid, ch.Msg.GetChallengeId(), &scram.Challenge{
		Salt:        sc.GetSalt(),
		ServerNonce: sc.GetServerNonce(),
		Params: password.Params{
			MemoryKiB: sc.GetMemoryKib(), Time: sc.GetTime(), Threads: uint8(sc.GetThreads()),
			SaltLen: uint32(len(sc.GetSalt())), KeyLen: sc.GetKeyLength(),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("refusing the server's challenge: %w", err)
	}
	out, err := c.anonAuth.ChallengeResponse(ctx, connect.NewRequest(&trellisv1.ChallengeResponseRequest{
		ChallengeId: ch.Msg.GetChallengeId(),
		Uid:         uid,
		ClientNonce: resp.ClientNonce,
		ClientProof: resp.ClientProof,
	}))
	if err != nil {
		return nil, err
	}
	if err := resp.VerifyServer(out.Msg.GetServerSignature()); err != nil {
		return nil, fmt.Errorf("%s: not saving its tokens (%w)", c.server, err)
	}
	return out.Msg.GetTokens(), nil
}
