package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
	oidcv1 "github.com/trellis-testbed/trellis/gen/trellis/v1/ext/auth/oidc/v1"
	"github.com/trellis-testbed/trellis/gen/trellis/v1/ext/auth/oidc/v1/oidcv1connect"
)

// browserLogin runs a login through the server's identity provider (the
// oidc authentication backend): it prints the address to open; the browser
// hands the finish code back to a listener on this machine's loopback
// address (RFC 8252), or with paste the user pastes the code the browser
// shows. Only the finish code and the poll secret together collect the
// login, so a login link sent to someone else is of no use to the sender.
// With link, the identity is linked to the caller's account.
func browserLogin(ctx context.Context, a *app, client oidcv1connect.LoginClient, link, paste bool) (*oidcv1.FinishLoginResponse, error) {
	codes := make(chan string, 1)
	var returnTo string
	if !paste {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("listening for the browser on loopback (try --paste): %w", err)
		}
		srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			code := r.URL.Query().Get("code")
			if r.URL.Path != "/done" || code == "" {
				http.NotFound(w, r)
				return
			}
			select {
			case codes <- code:
			default:
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			fmt.Fprintln(w, "Trellis: the login is handed to the terminal. You may close this page.")
		})}
		go srv.Serve(ln)
		defer srv.Close()
		returnTo = "http://" + ln.Addr().String() + "/done"
	}
	st, err := client.StartLogin(ctx, connect.NewRequest(&oidcv1.StartLoginRequest{Link: link, ReturnTo: returnTo}))
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(a.streams.Err, "Open this address in a browser on this machine and log in with your institution:\n\n    %s\n\n",
		st.Msg.GetAuthorizationUrl())
	var code string
	if paste {
		fmt.Fprint(a.streams.Err, "Then paste the code the browser shows: ")
		line, err := bufio.NewReader(a.streams.In).ReadString('\n')
		if code = strings.TrimSpace(line); code == "" {
			if err == nil {
				err = errors.New("no code given")
			}
			return nil, fmt.Errorf("reading the code: %w", err)
		}
	} else {
		fmt.Fprintf(a.streams.Err, "Waiting for the browser (until %s)…\n", formatTS(st.Msg.GetExpiresAt()))
		select {
		case code = <-codes:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Until(st.Msg.GetExpiresAt().AsTime())):
			return nil, errors.New("the login expired before the browser finished: start again")
		}
	}
	resp, err := client.FinishLogin(ctx, connect.NewRequest(&oidcv1.FinishLoginRequest{LoginId: st.Msg.GetLoginId(), PollSecret: st.Msg.GetPollSecret(), FinishCode: code}))
	if err != nil {
		return nil, err
	}
	return resp.Msg, nil
}

// oidcLogin is `trellis login --oidc`.
func oidcLogin(cmd *cobra.Command, a *app, paste bool) error {
	c, err := a.connect()
	if err != nil {
		return err
	}
	fin, err := browserLogin(cmd.Context(), a, c.anonIdentities, false, paste)
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
	}, newIdentityLinkCmd(a), &cobra.Command{
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

func newIdentityLinkCmd(a *app) *cobra.Command {
	var paste bool
	cmd := &cobra.Command{
		Use:   "link [--paste]",
		Short: "Link your identity at the identity provider to your account (a browser login)",
		Args:  noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			fin, err := browserLogin(cmd.Context(), a, c.identities, true, paste)
			if err != nil {
				return err
			}
			// A link opens no session: the output is the link alone.
			out := &oidcv1.FinishLoginResponse{Uid: fin.GetUid(), Identity: fin.GetIdentity()}
			return a.emit(out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Linked %s at %s to %s.\n", clean(fin.GetIdentity().GetSubject()), clean(fin.GetIdentity().GetIssuer()), clean(fin.GetUid()))
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&paste, "paste", false, "paste the code the browser shows instead of receiving it on a loopback address")
	return cmd
}
