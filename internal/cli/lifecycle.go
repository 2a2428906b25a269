package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
)

// Account lifecycle: closing one's account, admins creating, removing and
// importing accounts (docs/api.md, docs/migrate.md).

func newUserCloseCmd(a *app) *cobra.Command {
	var fromStdin bool
	cmd := &cobra.Command{
		Use:   "close",
		Short: "Close your own account, for good",
		Long: `Close your own account. It asks for your password (with --password-stdin it
reads it from the first line of standard input). The server refuses while
you own projects or hold live realizations, and names them. Once closed,
every session and API token of the account stops working, its SSH keys,
profile, memberships, requests and notifications are erased, and its uid
is never given to anyone again.`,
		Args: noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			pw, err := a.secrets(fromStdin).read("Password: ")
			if err != nil {
				return err
			}
			a.warnInsecure(c)
			resp, err := c.users.CloseAccount(cmd.Context(), connect.NewRequest(&trellisv1.CloseAccountRequest{Password: pw}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, "Closed your account.")
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from the first line of standard input")
	return cmd
}

func newAdminUserCmd(a *app) *cobra.Command {
	cmd := asGroup(&cobra.Command{
		Use:   "user",
		Short: "Create and remove accounts",
	})
	cmd.AddCommand(newAdminUserCreateCmd(a), newAdminUserRemoveCmd(a))
	return cmd
}

func newAdminUserCreateCmd(a *app) *cobra.Command {
	var (
		uid, email, name, phone string
		profile                 []string
		admin, fromStdin        bool
	)
	cmd := &cobra.Command{
		Use:   "create --uid UID --email EMAIL --name NAME --phone PHONE",
		Short: "Create an active account, without e-mail confirmation",
		Long: `Create an account that is active at once: the administrator vouches for the
e-mail address, and no confirmation is mailed. It asks for the account's
password (--password-stdin reads it from standard input). A taken uid is
refused with a free one suggested.`,
		Args: noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			attrs, err := parseAssignments(profile, "--profile")
			if err != nil {
				return err
			}
			for k, v := range map[string]string{"name": name, "phone": phone} {
				if _, dup := attrs[k]; dup {
					return usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("%s given both as --%s and as --profile", k, k)}
				}
				attrs[k] = v
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			pw, err := a.secrets(fromStdin).readNew("Password for the new account: ")
			if err != nil {
				return err
			}
			a.warnInsecure(c)
			resp, err := c.users.CreateUser(cmd.Context(), connect.NewRequest(&trellisv1.CreateUserRequest{
				Uid: uid, Email: email, Password: pw, Profile: attrs, Admin: admin,
			}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error { return printUser(w, resp.Msg.GetUser()) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&uid, "uid", "", "user id (required)")
	f.StringVar(&email, "email", "", "e-mail address (required)")
	f.StringVar(&name, "name", "", "full name (required)")
	f.StringVar(&phone, "phone", "", "telephone number (required)")
	f.StringArrayVar(&profile, "profile", nil, "profile attribute KEY=VALUE (repeatable)")
	f.BoolVar(&admin, "admin", false, "make the account an administrator")
	f.BoolVar(&fromStdin, "password-stdin", false, "read the password from the first line of standard input")
	for _, n := range []string{"uid", "email", "name", "phone"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}

func newAdminUserRemoveCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "remove UID",
		Short: "Close another account, for good",
		Long: `Close an account as its owner's 'trellis user close' would, with the same
refusals: an account that owns projects or holds live realizations is
not removed (the error names them). The uid is never given out again.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.users.RemoveUser(cmd.Context(), connect.NewRequest(&trellisv1.RemoveUserRequest{Uid: args[0]}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Removed %s.\n", clean(args[0]))
				return err
			})
		},
	}
}

func newAdminImportCmd(a *app) *cobra.Command {
	cmd := asGroup(&cobra.Command{
		Use:   "import",
		Short: "Import accounts from another testbed",
	})
	cmd.AddCommand(newAdminImportUsersCmd(a), newAdminImportProjectsCmd(a))
	return cmd
}

func newAdminImportUsersCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "users FILE",
		Short: "Import accounts from a JSON lines file (- for standard input)",
		Long: `Import accounts, all or none, from a JSON lines file: one object per line
with uid, email, password_hash, admin, state, and profile attributes (name,
phone, ...), flat or in a "profile" object. Password hashes in the formats
older testbeds keep (bcrypt, SHA-512-crypt, MD5-crypt, Django's
pbkdf2_sha256) are kept until each user's first login replaces them.
docs/migrate.md describes the format.`,
		Example: `  trellis admin import users deter-users.jsonl`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := a.readInput(args[0])
			if err != nil {
				return err
			}
			users, err := parseUserLines(args[0], b)
			if err != nil {
				return err
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			a.warnInsecure(c)
			resp, err := c.users.ImportUsers(cmd.Context(), connect.NewRequest(&trellisv1.ImportUsersRequest{Users: users}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				for _, u := range resp.Msg.GetUsers() {
					if _, err := fmt.Fprintf(w, "%s\t%s\n", clean(u.GetUid()), clean(u.GetEmail())); err != nil {
						return err
					}
				}
				_, err := fmt.Fprintf(w, "Imported %d accounts.\n", len(resp.Msg.GetUsers()))
				return err
			})
		},
	}
}

func newAdminImportProjectsCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "projects FILE",
		Short: "Import projects from a JSON lines file (- for standard input)",
		Long: `Import approved projects, all or none, from a JSON lines file: one object per
line with name, owner, description and members (each a uid and its
rights). Owners and members must have accounts: import the users first.
docs/migrate.md describes the format.`,
		Example: `  trellis admin import projects deter-projects.jsonl`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := a.readInput(args[0])
			if err != nil {
				return err
			}
			projects, err := parseProjectLines(args[0], b)
			if err != nil {
				return err
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.projects.ImportProjects(cmd.Context(), connect.NewRequest(&trellisv1.ImportProjectsRequest{Projects: projects}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Imported %d projects: %s.\n", len(resp.Msg.GetNames()), clean(strings.Join(resp.Msg.GetNames(), ", ")))
				return err
			})
		},
	}
}

// parseProjectLines reads the JSON lines of a project export.
func parseProjectLines(name string, b []byte) ([]*trellisv1.ImportedProject, error) {
	var out []*trellisv1.ImportedProject
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), 4<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var p struct {
			Name        string `json:"name"`
			Owner       string `json:"owner"`
			Description string `json:"description"`
			Members     []struct {
				UID    string   `json:"uid"`
				Rights []string `json:"rights"`
			} `json:"members"`
		}
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			return nil, fmt.Errorf("%s:%d: not a project: %w", name, n, err)
		}
		ip := &trellisv1.ImportedProject{Name: p.Name, Owner: p.Owner, Description: p.Description}
		for _, m := range p.Members {
			ip.Members = append(ip.Members, &trellisv1.ImportedMember{Uid: m.UID, Rights: m.Rights})
		}
		out = append(out, ip)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no projects", name)
	}
	return out, nil
}

// parseUserLines reads the JSON lines of an account export. Blank lines
// and lines starting with # are skipped; errors name the file and line.
func parseUserLines(name string, b []byte) ([]*trellisv1.ImportedUser, error) {
	var out []*trellisv1.ImportedUser
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		u, err := parseUserLine(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, n, err)
		}
		out = append(out, u)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no accounts", name)
	}
	return out, nil
}

func parseUserLine(line string) (*trellisv1.ImportedUser, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(line), &fields); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	u := &trellisv1.ImportedUser{Profile: map[string]string{}}
	str := func(key string, dst *string) error {
		if err := json.Unmarshal(fields[key], dst); err != nil {
			return fmt.Errorf("%s: want a string", key)
		}
		return nil
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var err error
		switch k {
		case "uid":
			err = str(k, &u.Uid)
		case "email":
			err = str(k, &u.Email)
		case "password_hash":
			err = str(k, &u.PasswordHash)
		case "state":
			err = str(k, &u.State)
		case "admin":
			if json.Unmarshal(fields[k], &u.Admin) != nil {
				err = fmt.Errorf("admin: want true or false")
			}
		case "profile":
			var p map[string]string
			if json.Unmarshal(fields[k], &p) != nil {
				err = fmt.Errorf("profile: want an object of strings")
			}
			for pk, pv := range p {
				if _, dup := u.Profile[pk]; dup {
					return nil, fmt.Errorf("%s given twice, flat and in profile", pk)
				}
				u.Profile[pk] = pv
			}
		default:
			var v string
			if json.Unmarshal(fields[k], &v) != nil {
				err = fmt.Errorf("%s: a profile attribute is a string", k)
			}
			if _, dup := u.Profile[k]; dup {
				return nil, fmt.Errorf("%s given twice, flat and in profile", k)
			}
			u.Profile[k] = v
		}
		if err != nil {
			return nil, err
		}
	}
	return u, nil
}
