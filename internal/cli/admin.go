package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
)

// newAdminGroup is the bare admin group: the client's commands and the server
// operator's (bootstrap, migrate) share it.
func newAdminGroup() *cobra.Command {
	return asGroup(&cobra.Command{
		Use:   "admin",
		Short: "Testbed administration",
	})
}

func newAdminCmd(a *app) *cobra.Command {
	cmd := newAdminGroup()
	cmd.AddCommand(
		newAdminOutboxCmd(a),
		newAdminAuditCmd(a),
		newAdminUserStateCmd(a),
		newAdminSetAdminCmd(a),
		newAdminRealizationsCmd(a),
		newAdminReleaseCmd(a),
		newAdminServiceCmd(a),
		newAdminProviderCmd(a),
		newAdminOIDCClientCmd(a),
		newAdminRotateCACmd(a),
		newAdminUserCmd(a),
		newAdminImportCmd(a),
		newAdminAttributeCmd(a),
	)
	return cmd
}

func newAdminRotateCACmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate-ca",
		Short: "Rotate the X.509 certificate authority; prints the new CA bundle",
		Long: `Rotate the X.509 certificate authority. The next root, published in the CA
bundle since the last rotation, starts issuing (server certificates of
--tls-auto at once, client certificates from the next login); the root it
replaces stays trusted for 90 days, until what it issued has expired.

Clients whose CA file holds the bundle from before the rotation keep
working. Give them the new bundle (printed here on standard output, and by
trellis cert show) before the next rotation.`,
		Example: `  trellis admin rotate-ca > trellis-ca.pem`,
		Args:    noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.admin.RotateCertificateAuthority(cmd.Context(), connect.NewRequest(&trellisv1.RotateCertificateAuthorityRequest{}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				if _, err := io.WriteString(w, resp.Msg.GetCaCertificatesPem()); err != nil {
					return err
				}
				fmt.Fprintf(a.streams.Err, "Rotated: %s issues now; the replaced root stays trusted until %s.\n",
					clean(resp.Msg.GetIssuingSubject()), formatTS(resp.Msg.GetPreviousTrustedUntil()))
				return nil
			})
		},
	}
}

func newAdminOutboxCmd(a *app) *cobra.Command {
	var (
		to, pageToken string
		pageSize      int32
	)
	cmd := &cobra.Command{
		Use:   "outbox",
		Short: "Show the mail Trellis sent or queued, newest first",
		Long: `Show the mail Trellis sent or queued, newest first, with each message's body.
Without an SMTP server this is how confirmation and reset tokens reach anyone.`,
		Args: noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.admin.ListOutbox(cmd.Context(), connect.NewRequest(&trellisv1.ListOutboxRequest{
				PageSize:  pageSize,
				PageToken: pageToken,
				To:        to,
			}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				msgs := resp.Msg.GetMessages()
				if len(msgs) == 0 {
					_, err := fmt.Fprintln(w, "No messages.")
					return err
				}
				for i, m := range msgs {
					if i > 0 {
						fmt.Fprintln(w, strings.Repeat("-", 72))
					}
					if err := printOutboxMessage(w, m); err != nil {
						return err
					}
				}
				a.moreHint(resp.Msg.GetNextPageToken())
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&to, "to", "", "only mail to this address")
	f.Int32Var(&pageSize, "page-size", 0, "messages per page (server default when 0)")
	f.StringVar(&pageToken, "page-token", "", "continue from this page token")
	return cmd
}

func printOutboxMessage(w io.Writer, m *trellisv1.OutboxMessage) error {
	status := "queued"
	if m.GetSentAt() != nil {
		status = "sent " + formatTS(m.GetSentAt())
	}
	if m.GetLastError() != "" {
		status += " (last error: " + m.GetLastError() + ")"
	}
	if err := printFields(w,
		"id", strconv.FormatInt(m.GetId(), 10),
		"time", formatTS(m.GetCreatedAt()),
		"to", m.GetTo(),
		"subject", m.GetSubject(),
		"status", status,
	); err != nil {
		return err
	}
	body := strings.TrimRight(cleanBlock(m.GetBody()), "\n")
	_, err := fmt.Fprintf(w, "\n%s\n", body)
	return err
}

func newAdminAuditCmd(a *app) *cobra.Command {
	var (
		actor, object, operation, since, pageToken string
		pageSize                                   int32
	)
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show the audit record, newest first",
		Args:  noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &trellisv1.ListAuditEventsRequest{
				PageSize:  pageSize,
				PageToken: pageToken,
				Actor:     actor,
				Object:    object,
				Operation: operation,
			}
			if since != "" {
				t, err := parseSince(since, a.now())
				if err != nil {
					return usageError{cmd: cmd.CommandPath(), err: err}
				}
				req.Since = timestamppb.New(t)
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.admin.ListAuditEvents(cmd.Context(), connect.NewRequest(req))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				t := newTable(w, "ID", "TIME", "ACTOR", "OPERATION", "OBJECT", "OUTCOME", "DETAIL")
				for _, e := range resp.Msg.GetEvents() {
					who := e.GetActor()
					if e.GetOnBehalfOf() != "" {
						who += " for " + e.GetOnBehalfOf()
					}
					t.row(strconv.FormatInt(e.GetId(), 10), formatTS(e.GetTime()), who,
						e.GetOperation(), e.GetObject(), e.GetOutcome(), e.GetDetail())
				}
				if err := t.flush(); err != nil {
					return err
				}
				a.moreHint(resp.Msg.GetNextPageToken())
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&actor, "actor", "", "only events by this user")
	f.StringVar(&object, "object", "", `only events on this object, e.g. "user:alice"`)
	f.StringVar(&operation, "operation", "", `only this operation, e.g. "trellis.v1.Users/Register"`)
	f.StringVar(&since, "since", "", `only events at or after this time: RFC 3339, or a duration ago such as "90m", "24h", "7d"`)
	f.Int32Var(&pageSize, "page-size", 0, "events per page (server default when 0)")
	f.StringVar(&pageToken, "page-token", "", "continue from this page token")
	return cmd
}

// parseSince reads an absolute time (RFC 3339) or a duration before now. Go
// durations stop at hours; days ("7d") are what people ask about audit logs.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.ParseFloat(days, 64); err == nil && n >= 0 {
			return now.Add(-time.Duration(n * float64(24*time.Hour))), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want an RFC 3339 time (2006-01-02T15:04:05Z) or a duration (90m, 24h, 7d)", s)
}

var userStates = map[string]trellisv1.UserState{
	"active":   trellisv1.UserState_USER_STATE_ACTIVE,
	"locked":   trellisv1.UserState_USER_STATE_LOCKED,
	"disabled": trellisv1.UserState_USER_STATE_DISABLED,
}

func newAdminUserStateCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:       "user-state UID active|locked|disabled",
		Short:     "Lock, disable or reactivate an account",
		Long:      "Lock, disable or reactivate an account. Locking or disabling ends every session of the account.",
		Args:      exactArgs(2),
		ValidArgs: []string{"active", "locked", "disabled"},
		RunE: func(cmd *cobra.Command, args []string) error {
			state, ok := userStates[strings.ToLower(args[1])]
			if !ok {
				return usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("state %q: want active, locked or disabled", args[1])}
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.users.SetUserState(cmd.Context(), connect.NewRequest(&trellisv1.SetUserStateRequest{Uid: args[0], State: state}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error { return printUser(w, resp.Msg.GetUser()) })
		},
	}
}

func newAdminSetAdminCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "set-admin UID true|false",
		Short: "Grant or withdraw testbed administration",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			admin, err := strconv.ParseBool(args[1])
			if err != nil {
				return usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("%q: want true or false", args[1])}
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.users.SetAdmin(cmd.Context(), connect.NewRequest(&trellisv1.SetAdminRequest{Uid: args[0], Admin: admin}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error { return printUser(w, resp.Msg.GetUser()) })
		},
	}
}
