package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
)

func newUserCmd(a *app) *cobra.Command {
	cmd := asGroup(&cobra.Command{
		Use:   "user",
		Short: "Register, inspect and manage user accounts and profiles",
	})
	cmd.AddCommand(
		newUserRegisterCmd(a),
		newUserConfirmCmd(a),
		newUserResendConfirmationCmd(a),
		newUserShowCmd(a),
		newUserListCmd(a),
		newUserProfileCmd(a),
		newUserDescribeProfileCmd(a),
		newUserPasswdCmd(a),
		newUserResetPasswordCmd(a),
		newUserCloseCmd(a),
	)
	return cmd
}

func newUserRegisterCmd(a *app) *cobra.Command {
	var (
		uid, email, name, phone, affiliation string
		profile                              []string
		fromStdin                            bool
	)
	cmd := &cobra.Command{
		Use:   "register --uid UID --email EMAIL --name NAME --phone PHONE",
		Short: "Create an account; a confirmation e-mail activates it",
		Long: `Create an account. The server mails a confirmation token to EMAIL; the
account becomes active once 'trellis user confirm TOKEN' presents it.
Other profile attributes (see 'trellis user describe-profile') are given
with --profile KEY=VALUE.`,
		Args: noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			attrs, err := parseAssignments(profile, "--profile")
			if err != nil {
				return err
			}
			dedicated := map[string]string{"name": name, "phone": phone}
			if affiliation != "" {
				dedicated["affiliation"] = affiliation
			}
			for k, v := range dedicated {
				if _, dup := attrs[k]; dup {
					return usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("%s given both as --%s and as --profile", k, k)}
				}
				attrs[k] = v
			}
			// The profile's e-mail attribute mirrors the account's address.
			if _, ok := attrs["email"]; !ok {
				attrs["email"] = email
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			password, err := a.secrets(fromStdin).readNew("Password: ")
			if err != nil {
				return err
			}
			a.warnInsecure(c)
			resp, err := c.anonUsers.Register(cmd.Context(), connect.NewRequest(&trellisv1.RegisterRequest{
				Uid:      uid,
				Email:    email,
				Password: password,
				Profile:  attrs,
			}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Registered %s. A confirmation e-mail was sent to %s;\nrun 'trellis user confirm TOKEN' with the token it contains.\n",
					clean(resp.Msg.GetUser().GetUid()), clean(email))
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&uid, "uid", "", "user id: becomes the login name at sites (required)")
	f.StringVar(&email, "email", "", "e-mail address (required)")
	f.StringVar(&name, "name", "", "full name (required)")
	f.StringVar(&phone, "phone", "", "telephone number (required)")
	f.StringVar(&affiliation, "affiliation", "", "institution")
	// StringArray, not StringSlice: a value may contain commas.
	f.StringArrayVar(&profile, "profile", nil, "profile attribute KEY=VALUE (repeatable)")
	f.BoolVar(&fromStdin, "password-stdin", false, "read the password from the first line of standard input")
	for _, n := range []string{"uid", "email", "name", "phone"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}

func newUserConfirmCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "confirm TOKEN",
		Short: "Confirm an e-mail address with the token mailed to it",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.anonUsers.ConfirmEmail(cmd.Context(), connect.NewRequest(&trellisv1.ConfirmEmailRequest{Token: args[0]}))
			if err != nil {
				return err
			}
			u := resp.Msg.GetUser()
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Confirmed %s for %s (account %s).\n",
					clean(u.GetEmail()), clean(u.GetUid()), userStateName(u.GetState()))
				return err
			})
		},
	}
}

func newUserResendConfirmationCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "resend-confirmation UID",
		Short: "Mail a fresh confirmation token to an account still pending",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.anonUsers.ResendConfirmation(cmd.Context(), connect.NewRequest(&trellisv1.ResendConfirmationRequest{Uid: args[0]}))
			if err != nil {
				return err
			}
			// The server answers alike whether or not the account exists
			// (so that nobody can probe for accounts); so does this message.
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "If %s is awaiting confirmation, a new confirmation e-mail was sent.\n", clean(args[0]))
				return err
			})
		},
	}
}

func newUserShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "show [UID]",
		Short: "Show a user's account (yours by default)",
		Args:  maximumArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.users.GetUser(cmd.Context(), connect.NewRequest(&trellisv1.GetUserRequest{Uid: optionalArg(args)}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error { return printUser(w, resp.Msg.GetUser()) })
		},
	}
}

func printUser(w io.Writer, u *trellisv1.User) error {
	return printFields(w,
		"uid", u.GetUid(),
		"email", u.GetEmail(),
		"email verified", yesNo(u.GetEmailVerified()),
		"state", userStateName(u.GetState()),
		"admin", yesNo(u.GetAdmin()),
		"created", formatTS(u.GetCreatedAt()),
		"updated", formatTS(u.GetUpdatedAt()),
	)
}

func newUserListCmd(a *app) *cobra.Command {
	var (
		prefix, pageToken string
		pageSize          int32
		all               bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List users",
		Args:  noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			out := &trellisv1.ListUsersResponse{}
			seen := map[string]bool{}
			for {
				resp, err := c.users.ListUsers(cmd.Context(), connect.NewRequest(&trellisv1.ListUsersRequest{
					PageSize:  pageSize,
					PageToken: pageToken,
					UidPrefix: prefix,
				}))
				if err != nil {
					return err
				}
				out.Users = append(out.Users, resp.Msg.GetUsers()...)
				out.NextPageToken = resp.Msg.GetNextPageToken()
				pageToken = out.NextPageToken
				// A token seen before would loop forever.
				if !all || pageToken == "" || seen[pageToken] {
					break
				}
				seen[pageToken] = true
			}
			if all {
				out.NextPageToken = ""
			}
			return a.emit(out, func(w io.Writer) error {
				t := newTable(w, "UID", "EMAIL", "STATE", "ADMIN", "CREATED")
				for _, u := range out.GetUsers() {
					t.row(u.GetUid(), u.GetEmail(), userStateName(u.GetState()), yesNo(u.GetAdmin()), formatTS(u.GetCreatedAt()))
				}
				if err := t.flush(); err != nil {
					return err
				}
				a.moreHint(out.GetNextPageToken())
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&prefix, "prefix", "", "only users whose uid starts with this")
	f.Int32Var(&pageSize, "page-size", 0, "users per page (server default when 0)")
	f.StringVar(&pageToken, "page-token", "", "continue from this page token")
	f.BoolVar(&all, "all", false, "fetch every page")
	return cmd
}

// moreHint tells a person (on stderr, out of a script's way) how to get the
// next page.
func (a *app) moreHint(token string) {
	if token != "" {
		fmt.Fprintf(a.streams.Err, "More results: repeat with --page-token %s (or --all where offered).\n", token)
	}
}

func newUserProfileCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "profile [UID]",
		Short: "Show a user's profile (yours by default); 'profile set' changes it",
		Args:  maximumArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.users.GetUserProfile(cmd.Context(), connect.NewRequest(&trellisv1.GetUserProfileRequest{Uid: optionalArg(args)}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				t := newTable(w, "ATTRIBUTE", "VALUE", "ACCESS")
				for _, at := range resp.Msg.GetAttributes() {
					t.row(at.GetName(), at.GetValue(), accessName(at.GetAccess()))
				}
				return t.flush()
			})
		},
	}
	cmd.AddCommand(newUserProfileSetCmd(a))
	return cmd
}

func newUserProfileSetCmd(a *app) *cobra.Command {
	var (
		uid   string
		clear []string
	)
	cmd := &cobra.Command{
		Use:   "set [--uid UID] KEY=VALUE... [--clear KEY]...",
		Short: "Set or clear profile attributes",
		Long: `Set or clear profile attributes. The server applies what it can and reports
every attribute: "changed", "unchanged", or "failed" with the reason and rule.
The exit status is 1 if any attribute failed.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			set, err := parseAssignments(args, "argument")
			if err != nil {
				return err
			}
			if len(set) == 0 && len(clear) == 0 {
				return usageError{cmd: cmd.CommandPath(), err: errors.New("nothing to do: give KEY=VALUE arguments or --clear KEY")}
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.users.SetUserProfile(cmd.Context(), connect.NewRequest(&trellisv1.SetUserProfileRequest{
				Uid:   uid,
				Set:   set,
				Clear: clear,
			}))
			if err != nil {
				return err
			}
			failed := false
			for _, ch := range resp.Msg.GetChanges() {
				failed = failed || ch.GetRule() != "" || ch.GetReason() != ""
			}
			err = a.emit(resp.Msg, func(w io.Writer) error {
				for _, ch := range resp.Msg.GetChanges() {
					var status string
					switch {
					case ch.GetRule() != "" || ch.GetReason() != "":
						status = fmt.Sprintf("failed: %s (%s)", ch.GetReason(), ch.GetRule())
					case ch.GetChanged():
						status = "changed"
					default:
						status = "unchanged"
					}
					if _, err := fmt.Fprintf(w, "%s: %s\n", clean(ch.GetName()), clean(status)); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			if failed {
				// Every attribute has been reported; the status says that
				// not all of them took.
				return ExitError{Code: 1}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&uid, "uid", "", "whose profile (default: yours)")
	f.StringArrayVar(&clear, "clear", nil, "optional attribute to clear (repeatable)")
	return cmd
}

func newUserDescribeProfileCmd(a *app) *cobra.Command {
	return newDescribeProfileCmd(a, "user", func(ctx context.Context, c *conn) (proto.Message, []*trellisv1.AttributeDescription, error) {
		resp, err := c.usersAsCaller().GetProfileDescription(ctx, connect.NewRequest(&trellisv1.GetProfileDescriptionRequest{}))
		if err != nil {
			return nil, nil, err
		}
		return resp.Msg, resp.Msg.GetAttributes(), nil
	})
}

func newUserPasswdCmd(a *app) *cobra.Command {
	var fromStdin, noCurrent bool
	cmd := &cobra.Command{
		Use:   "passwd [UID]",
		Short: "Change a password (yours by default)",
		Long: `Change a password. On a terminal it asks for the current password and the new
one; with --password-stdin it reads two lines, the current password then the
new one (only the new one with --no-current). Admins changing another user's
password may give --no-current.`,
		Args: maximumArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			r := a.secrets(fromStdin)
			var current string
			if !noCurrent {
				if current, err = r.read("Current password: "); err != nil {
					return err
				}
			}
			next, err := r.readNew("New password: ")
			if err != nil {
				return err
			}
			a.warnInsecure(c)
			uid := optionalArg(args)
			resp, err := c.users.ChangePassword(cmd.Context(), connect.NewRequest(&trellisv1.ChangePasswordRequest{
				Uid:             uid,
				CurrentPassword: current,
				NewPassword:     next,
			}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				who := "your"
				if uid != "" {
					who = clean(uid) + "'s"
				}
				_, err := fmt.Fprintf(w, "Changed %s password.\n", who)
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the passwords from standard input, one per line")
	cmd.Flags().BoolVar(&noCurrent, "no-current", false, "do not ask for the current password (admins changing another user's)")
	return cmd
}

func newUserResetPasswordCmd(a *app) *cobra.Command {
	var (
		token     string
		fromStdin bool
	)
	cmd := &cobra.Command{
		Use:   "reset-password (UID | --token TOKEN)",
		Short: "Request a password-reset e-mail, or set a new password with its token",
		Long: `With UID: mail a single-use reset token (valid 2 hours) to the account's address.
With --token: set a new password; every session of the account is revoked.`,
		Args: maximumArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 1) == (token != "") {
				return usageError{cmd: cmd.CommandPath(), err: errors.New("give either UID (to request a reset) or --token (to set the new password)")}
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			if token == "" {
				uid := args[0]
				resp, err := c.anonUsers.RequestPasswordReset(cmd.Context(), connect.NewRequest(&trellisv1.RequestPasswordResetRequest{Uid: uid}))
				if err != nil {
					return err
				}
				// Worded like the server's answer: it does not reveal
				// whether the account exists. The server's own words
				// say how many reset mails an account is sent.
				return a.emit(resp.Msg, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "If %s exists, a password-reset e-mail was sent to its address;\nrun 'trellis user reset-password --token TOKEN' with the token it contains.\n", clean(uid))
					if err == nil && resp.Msg.Message != "" {
						_, err = fmt.Fprintf(w, "Server: %s.\n", clean(resp.Msg.Message))
					}
					return err
				})
			}
			password, err := a.secrets(fromStdin).readNew("New password: ")
			if err != nil {
				return err
			}
			a.warnInsecure(c)
			resp, err := c.anonUsers.ResetPassword(cmd.Context(), connect.NewRequest(&trellisv1.ResetPasswordRequest{Token: token, NewPassword: password}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, "Password reset. Every session of the account was ended; log in with the new password.")
				return err
			})
		},
	}
	cmd.Flags().StringVar(&token, "token", "", "the reset token from the e-mail")
	cmd.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the new password from the first line of standard input")
	return cmd
}

// parseAssignments parses KEY=VALUE items. A key given twice is refused rather
// than letting the last one silently win.
func parseAssignments(items []string, what string) (map[string]string, error) {
	out := make(map[string]string, len(items))
	for _, it := range items {
		k, v, ok := strings.Cut(it, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%s %q: want KEY=VALUE", what, it)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("%s: %s given twice", what, k)
		}
		out[k] = v
	}
	return out, nil
}

func optionalArg(args []string) string {
	if len(args) > 0 {
		return args[0]
	}
	return ""
}
