package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	trellisv1 "github.com/trellis-testbed/trellis/gen/trellis/v1"
)

func newNotifyCmd(a *app) *cobra.Command {
	cmd := asGroup(&cobra.Command{
		Use:   "notify",
		Short: "Read, mark, send and watch notifications",
		Long: `Notifications are short messages to users, with an id and the flags urgent
and read. Those that ask for your consent name a request: answer it with
'trellis request accept|decline ID'.`,
	})
	cmd.AddCommand(
		newNotifyListCmd(a),
		newNotifyMarkCmd(a, "read", true),
		newNotifyMarkCmd(a, "unread", false),
		newNotifySendCmd(a),
		newNotifyWatchCmd(a),
	)
	return cmd
}

func newNotifyListCmd(a *app) *cobra.Command {
	var (
		since, until        string
		pageToken           string
		pageSize            int32
		unread, urgent, all bool
	)
	cmd := &cobra.Command{
		Use:   "list [--unread] [--urgent] [--since TIME|DURATION] [--until TIME|DURATION]",
		Short: "List your notifications",
		Args:  noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			var sinceTS *timestamppb.Timestamp
			if since != "" {
				t, err := parseSince(since, a.now())
				if err != nil {
					return usageError{cmd: cmd.CommandPath(), err: err}
				}
				sinceTS = timestamppb.New(t)
			}
			var untilTS *timestamppb.Timestamp
			if until != "" {
				t, err := parseSince(until, a.now())
				if err != nil {
					return usageError{cmd: cmd.CommandPath(), err: err}
				}
				untilTS = timestamppb.New(t)
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			out := &trellisv1.NotificationsListResponse{}
			out.NextPageToken, err = fetchPages(all, pageToken, func(token string) (string, error) {
				resp, err := c.notifications.List(cmd.Context(), connect.NewRequest(&trellisv1.NotificationsListRequest{
					PageSize:   pageSize,
					PageToken:  token,
					UnreadOnly: unread,
					UrgentOnly: urgent,
					Since:      sinceTS,
					Until:      untilTS,
				}))
				if err != nil {
					return "", err
				}
				out.Notifications = append(out.Notifications, resp.Msg.GetNotifications()...)
				return resp.Msg.GetNextPageToken(), nil
			})
			if err != nil {
				return err
			}
			return a.emit(out, func(w io.Writer) error {
				ns := out.GetNotifications()
				if len(ns) == 0 {
					_, err := fmt.Fprintln(w, "No notifications.")
					return err
				}
				t := newTable(w, "ID", "TIME", "FROM", "FLAGS", "REQUEST", "TEXT")
				for _, n := range ns {
					t.row(strconv.FormatInt(n.GetId(), 10), formatTS(n.GetCreatedAt()), senderName(n),
						notificationFlags(n), n.GetRequestId(), n.GetText())
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
	f.BoolVar(&unread, "unread", false, "only unread notifications")
	f.BoolVar(&urgent, "urgent", false, "only urgent notifications")
	f.StringVar(&since, "since", "", `only notifications at or after this time: RFC 3339, or a duration ago such as "90m", "24h", "7d"`)
	f.StringVar(&until, "until", "", `only notifications before this time: RFC 3339, or a duration ago such as "90m", "24h", "7d"`)
	f.Int32Var(&pageSize, "page-size", 0, "notifications per page (server default when 0)")
	f.StringVar(&pageToken, "page-token", "", "continue from this page token")
	f.BoolVar(&all, "all", false, "fetch every page")
	return cmd
}

func senderName(n *trellisv1.Notification) string {
	if n.GetSender() == "" {
		return "trellis"
	}
	return n.GetSender()
}

func notificationFlags(n *trellisv1.Notification) string {
	var flags []string
	if !n.GetRead() {
		flags = append(flags, "unread")
	}
	if n.GetUrgent() {
		flags = append(flags, "urgent")
	}
	return strings.Join(flags, ",")
}

// newNotifyMarkCmd is "notify read" (read=true) or "notify unread".
func newNotifyMarkCmd(a *app, verb string, read bool) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " ID...",
		Short: "Mark notifications " + verb,
		Args:  wrapArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			ids := make([]int64, 0, len(args))
			for _, s := range args {
				id, err := strconv.ParseInt(s, 10, 64)
				if err != nil || id <= 0 {
					return usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("notification id %q: want a positive number", s)}
				}
				ids = append(ids, id)
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.notifications.Mark(cmd.Context(), connect.NewRequest(&trellisv1.NotificationsMarkRequest{Ids: ids, Read: proto.Bool(read)}))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				n := resp.Msg.GetChanged()
				noun := "notifications"
				if n == 1 {
					noun = "notification"
				}
				_, err := fmt.Fprintf(w, "Marked %d %s %s.\n", n, noun, verb)
				return err
			})
		},
	}
}

func newNotifySendCmd(a *app) *cobra.Command {
	var (
		to     string
		urgent bool
	)
	cmd := &cobra.Command{
		Use:   "send --to KIND:NAME TEXT [--urgent]",
		Short: "Send a notification to a user, a project's members or a circle's",
		Long: `Send a notification. Admins may write to any user, project or circle; project
owners to their members. The recipient is given with --to, in either form:

  --to user:UID TEXT                 (or uid:UID)
  --to project:NAME TEXT
  --to circle:OWNER:NAME TEXT
  --to user|uid|project|circle NAME TEXT   (the kind alone, then the name)

TEXT is one argument: quote it.`,
		Example: `  trellis notify send --to project:lab "maintenance tonight at 22:00" --urgent
  trellis notify send --to circle:alice:friends "slides are up"
  trellis notify send --to user bob "your realization expires tomorrow"`,
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := parseNotifyTarget(to, args)
			if err != nil {
				return usageError{cmd: cmd.CommandPath(), err: err}
			}
			req.Urgent = urgent
			c, err := a.connect()
			if err != nil {
				return err
			}
			resp, err := c.notifications.Send(cmd.Context(), connect.NewRequest(req))
			if err != nil {
				return err
			}
			return a.emit(resp.Msg, func(w io.Writer) error {
				n := resp.Msg.GetRecipients()
				noun := "recipients"
				if n == 1 {
					noun = "recipient"
				}
				_, err := fmt.Fprintf(w, "Sent to %d %s.\n", n, noun)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "recipient: user:UID, project:NAME or circle:OWNER:NAME, or the kind alone followed by the name (required)")
	cmd.Flags().BoolVar(&urgent, "urgent", false, "mark the notification urgent")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

const notifyTargetForms = "user:UID, project:NAME or circle:OWNER:NAME, or the kind alone followed by the name"

// parseNotifyTarget reads the recipient from --to, in the form KIND:NAME
// followed by TEXT, or KIND followed by NAME and TEXT, and returns the request
// with the recipient and the text set.
func parseNotifyTarget(to string, args []string) (*trellisv1.NotificationsSendRequest, error) {
	if to == "" {
		return nil, fmt.Errorf("--to is empty: want %s", notifyTargetForms)
	}
	kind, name, withName := strings.Cut(to, ":")
	switch strings.ToLower(kind) {
	case "user", "uid":
		kind = "user"
	case "project", "circle":
		kind = strings.ToLower(kind)
	default:
		return nil, fmt.Errorf("--to %s: unknown kind %q: want %s", to, kind, notifyTargetForms)
	}
	if !withName {
		// The kind alone: the name is the first argument.
		if len(args) != 2 {
			return nil, fmt.Errorf("--to %s: want NAME and TEXT after it, got %d arguments", to, len(args))
		}
		name, args = args[0], args[1:]
	} else if len(args) != 1 {
		return nil, fmt.Errorf("want exactly one TEXT argument (quote it), got %d", len(args))
	}
	text := args[0]
	if strings.TrimSpace(text) == "" {
		return nil, errors.New("the notification's text is empty")
	}

	req := &trellisv1.NotificationsSendRequest{Text: text}
	switch kind {
	case "user", "project":
		if name == "" || strings.Contains(name, ":") {
			return nil, fmt.Errorf("--to %s: %q is not a %s name", kind, name, kind)
		}
		if kind == "project" {
			req.ToProject = name
		} else {
			req.ToUser = name
		}
	case "circle":
		owner, circle, ok := strings.Cut(name, ":")
		if !ok || owner == "" || circle == "" || strings.Contains(circle, ":") {
			return nil, fmt.Errorf("--to circle: %q is not a circle name: want OWNER:NAME", name)
		}
		req.ToCircle = name
	}
	return req, nil
}

func newNotifyWatchCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "watch",
		Short: "Print your notifications as they arrive, until interrupted",
		Long: `Print your new notifications as they arrive, one per line, until interrupted
(Ctrl-C). With --output json, each notification is one JSON object on its
own line.

When the server ends the stream (it shut down or restarts), watch says so on
standard error and connects again, waiting longer after each failed try (up
to 30s); it resumes after the last notification it printed, so none is lost
or printed twice.`,
		Args: noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			err = a.watchNotifications(ctx, c)
			if ctx.Err() != nil {
				// Interrupted: the way a watch is meant to end.
				return nil
			}
			return err
		},
	}
}

// The back-off between reconnections of a watch whose server went away.
const (
	watchRetryFirst = 250 * time.Millisecond
	watchRetryMax   = 30 * time.Second
)

// watchNotifications prints the notification stream until ctx ends. A
// stream that was established and then ends cleanly or because the server
// is unavailable is opened again after a back-off, resuming after the last
// notification printed; any other failure ends the watch.
func (a *app) watchNotifications(ctx context.Context, c *conn) error {
	// The stream interceptor cannot fail a call: ask for the token first, so
	// that "not logged in" reads as it does for every other command, and an
	// expiring token is refreshed before the stream opens.
	if _, err := c.tokens.token(ctx, false); err != nil {
		return err
	}
	var w watchState
	retry := watchRetryFirst
	for {
		established, err := a.watchOnce(ctx, c, &w)
		if ctx.Err() != nil {
			return nil
		}
		// A token that looked valid may still be refused (clock skew, a
		// rotated key): refresh once and open the stream again, as unary
		// calls do.
		if err != nil && !established && connect.CodeOf(err) == connect.CodeUnauthenticated &&
			connect.IsWireError(err) && c.tokens.canRetry() {
			if _, rerr := c.tokens.token(ctx, true); rerr != nil {
				return rerr
			}
			continue
		}
		// Until a first stream is established, a failure is the answer: the
		// server is not there or refuses, and a person should hear so.
		if !w.started || (err != nil && connect.CodeOf(err) != connect.CodeUnavailable) {
			if err == nil {
				err = errors.New("the server ended the stream before it was established")
			}
			return transportError(c.server, err)
		}
		if established {
			retry = watchRetryFirst
		}
		reason := "the server ended the stream"
		if err != nil {
			reason = "the server is unavailable"
		}
		fmt.Fprintf(a.streams.Err, "Watch interrupted (%s); reconnecting in %s.\n", reason, retry)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(retry):
		}
		retry = min(2*retry, watchRetryMax)
	}
}

// watchState is where a watch stands across its streams: whether one was
// established, and the id of the last notification it has seen.
type watchState struct {
	started bool
	after   int64
}

// watchOnce opens one stream and prints what it delivers; it reports whether
// the stream was established.
func (a *app) watchOnce(ctx context.Context, c *conn, w *watchState) (bool, error) {
	req := &trellisv1.NotificationsWatchRequest{}
	if w.started {
		req.ResumeAfter = &w.after
	}
	stream, err := c.notificationStream.Watch(ctx, connect.NewRequest(req))
	if err != nil {
		return false, err
	}
	defer stream.Close()
	established := false
	for stream.Receive() {
		m := stream.Msg()
		if m.GetCreated() {
			if !w.started {
				w.started, w.after = true, m.GetAfterId()
				a.printEstablished()
			} else {
				fmt.Fprintln(a.streams.Err, "Watch resumed.")
			}
			established = true
			continue
		}
		if err := a.printWatched(m); err != nil {
			return established, err
		}
		w.after = m.GetNotification().GetId()
	}
	return established, stream.Err()
}

// printEstablished tells a person, not a script reading JSON lines of
// notifications, that the watch is established.
func (a *app) printEstablished() {
	if a.output != outputJSON {
		fmt.Fprintln(a.streams.Err, "Watching for notifications; interrupt to stop.")
	}
}

func (a *app) printWatched(m *trellisv1.NotificationsWatchResponse) error {
	w := a.streams.Out
	if a.output == outputJSON {
		return printJSONLine(w, m)
	}
	n := m.GetNotification()
	var b strings.Builder
	fmt.Fprintf(&b, "#%d %s from %s", n.GetId(), formatTS(n.GetCreatedAt()), senderName(n))
	if n.GetUrgent() {
		b.WriteString(" [urgent]")
	}
	b.WriteString(": " + n.GetText())
	if n.GetRequestId() != "" {
		b.WriteString(" (request " + n.GetRequestId() + ")")
	}
	_, err := fmt.Fprintln(w, clean(b.String()))
	return err
}

// printJSONLine prints m as one line of compact JSON (JSON Lines), for
// streams that a script reads line by line.
func printJSONLine(w io.Writer, m proto.Message) error {
	b, err := protojson.Marshal(m)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return err
}
