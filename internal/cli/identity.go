package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	oidcv1 "github.com/trellis-testbed/trellis/gen/trellis/v1/ext/auth/oidc/v1"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/ext/auth/oidc/v1/oidcv1connect"
)

// pollEvery is how often a login through the identity provider asks
// whether the browser has finished.
const pollEvery = time.Second

// browserLogin runs a login through the server's identity provider (the
// oidc authentication backend): it prints the address to open, then polls
// until the browser has finished and returns what the server handed over.
// With link, the identity is linked to the caller's account.
func browserLogin(ctx context.Context, a *app, client oidcv1connect.LoginClient, link bool) (*oidcv1.FinishLoginResponse, error) {
	st, err := client.StartLogin(ctx, connect.NewRequest(&oidcv1.StartLoginRequest{Link: link}))
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(a.streams.Err, "Open this address in a browser and log in with your institution:\n\n    %s\n\nWaiting for the browser (until %s)…\n",
		st.Msg.GetAuthorizationUrl(), formatTS(st.Msg.GetExpiresAt()))
	deadline := st.Msg.GetExpiresAt().AsTime()
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		resp, err := client.FinishLogin(ctx, connect.NewRequest(&oidcv1.FinishLoginRequest{LoginId: st.Msg.GetLoginId(), PollSecret: st.Msg.GetPollSecret()}))
		if err == nil {
			return resp.Msg, nil
		}
		if !pending(err) || a.now().After(deadline) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// pending reports whether FinishLogin's refusal means "not finished in the
// browser yet" (failed precondition, "pending: …"), rather than a failure
// that polling will not mend (an account that may not log in, say).
func pending(err error) bool {
	var ce *connect.Error
	return errors.As(err, &ce) && ce.Code() == connect.CodeFailedPrecondition && strings.HasPrefix(ce.Message(), "pending")
}

// oidcLogin is `trellis login --oidc`.
func oidcLogin(cmd *cobra.Command, a *app) error {
	c, err := a.connect()
	if err != nil {
		return err
	}
	fin, err := browserLogin(cmd.Context(), a, c.anonIdentities, false)
	if err != nil {
		return err
	}
	tokens := fin.GetTokens()
	if tokens.GetAccessToken() == "" || fin.GetUid() == "" {
		return errors.New("the server returned no session")
	}
	return saveLogin(a, c, fin.GetUid(), tokens)
}

// saveLogin keeps a login's credentials and says who is logged in.
func saveLogin(a *app, c *conn, uid string, tokens *trellisv1.Tokens) error {
	creds := &credentials{Server: c.server, UID: uid}
	creds.applyTokens(tokens)
	if err := c.store.save(creds); err != nil {
		return err
	}
	// The JSON form says who and until when, never the tokens.
	who := &trellisv1.WhoAmIResponse{
		Uid:              uid,
		SessionId:        tokens.GetSessionId(),
		SessionExpiresAt: tokens.GetSessionExpiresAt(),
		TokenExpiresAt:   tokens.GetAccessTokenExpiresAt(),
	}
	return a.emit(who, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "Logged in as %s (session expires %s)\n", clean(uid), formatTS(tokens.GetSessionExpiresAt()))
		return err
	})
}

func newIdentityCmd(a *app) *cobra.Command {
	cmd := asGroup(&cobra.Command{
		Use:   "identity",
		Short: "Your identities at the institution's identity provider (oidc backend)",
		Long: `On a server that runs the oidc authentication backend, you log in through
your institution's identity provider (trellis login --oidc). The identity it
vouches for is linked to your Trellis account the first time; these commands
list, add and remove such links.`,
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the identities linked to your account",
		Args:  noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.identities.ListLinks(cmd.Context(), connect.NewRequest(&oidcv1.ListLinksRequest{}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				if len(resp.Msg.GetLinks()) == 0 {
					_, err := fmt.Fprintln(w, "No linked identities.")
					return err
				}
				t := newTable(w, "ISSUER", "SUBJECT", "EMAIL", "LINKED")
				for _, l := range resp.Msg.GetLinks() {
					t.row(l.GetIssuer(), l.GetSubject(), l.GetEmail(), formatTS(l.GetCreatedAt()))
				}
				return t.flush()
			})
		},
	}, &cobra.Command{
		Use:   "link",
		Short: "Link your identity at the identity provider to your account (opens a browser login)",
		Args:  noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			fin, err := browserLogin(cmd.Context(), a, c.identities, true)
			if err != nil {
				return err
			}
			// The link's login is a session too; this client keeps its own.
			return a.emit(fin, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Linked %s at %s to %s.\n", clean(fin.GetIdentity().GetSubject()), clean(fin.GetIdentity().GetIssuer()), clean(fin.GetUid()))
				return err
			})
		},
	}, &cobra.Command{
		Use:   "unlink ISSUER SUBJECT",
		Short: "Remove a link (see trellis identity list)",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.identities.Unlink(cmd.Context(), connect.NewRequest(&oidcv1.UnlinkRequest{Issuer: args[0], Subject: args[1]}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Unlinked %s at %s.\n", clean(args[1]), clean(args[0]))
				return err
			})
		},
	})
	return cmd
}
