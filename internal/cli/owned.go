package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// ownedItem is what experiments and libraries share in a listing.
type ownedItem interface {
	GetId() string
	GetOwner() string
	GetCreator() string
	GetCreatedAt() *timestamppb.Timestamp
	GetDescription() string
}

// ownedQuery is one page's request of an owned listing.
type ownedQuery struct {
	owner, text, token string
	size               int32
}

// ownedList describes the listing of one kind of owned object.
type ownedList[T ownedItem] struct {
	plural string // "experiments"
	// text offers --text (a search in id and description).
	text bool
	// fetch returns one page and the next page's token.
	fetch func(ctx context.Context, c *conn, q ownedQuery) ([]T, string, error)
	// message is the whole listing as the contract's response, for
	// --output json.
	message func(items []T, next string) proto.Message
}

// newOwnedListCmd builds `KIND list`: the same flags, paging and table for
// every kind of owned object.
func newOwnedListCmd[T ownedItem](a *app, l ownedList[T]) *cobra.Command {
	var (
		q   ownedQuery
		all bool
	)
	use := "list [--owner OWNER] [--all]"
	if l.text {
		use = "list [--owner OWNER] [--text TEXT] [--all]"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: "List the " + l.plural + " you may read",
		Args:  noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			var items []T
			next, err := fetchPages(all, q.token, func(token string) (string, error) {
				page := q
				page.token = token
				got, next, err := l.fetch(cmd.Context(), c, page)
				items = append(items, got...)
				return next, err
			})
			if err != nil {
				return err
			}
			return a.emit(l.message(items, next), func(w io.Writer) error {
				// Listings leave the contents out: 'show' has them.
				t := newTable(w, "ID", "OWNER", "CREATOR", "CREATED", "DESCRIPTION")
				for _, x := range items {
					t.row(x.GetId(), x.GetOwner(), x.GetCreator(), formatTS(x.GetCreatedAt()), x.GetDescription())
				}
				if err := t.flush(); err != nil {
					return err
				}
				a.moreHint(next)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&q.owner, "owner", "", "only "+l.plural+" of this user or project")
	if l.text {
		f.StringVar(&q.text, "text", "", "only "+l.plural+" whose id or description contains this")
	}
	f.Int32Var(&q.size, "page-size", 0, l.plural+" per page (server default when 0)")
	f.StringVar(&q.token, "page-token", "", "continue from this page token")
	f.BoolVar(&all, "all", false, "fetch every page")
	return cmd
}

// newOwnedOwnerCmd builds `KIND owner OWNER:NAME UID`: offer an experiment
// or library to another user, who takes it by accepting the request.
func newOwnedOwnerCmd(a *app, noun string, offer func(ctx context.Context, c *conn, id, uid string) (proto.Message, string, error)) *cobra.Command {
	return &cobra.Command{
		Use:   "owner OWNER:NAME UID",
		Short: "Offer " + aNoun(noun) + " you own to another user",
		Long: `Offer the ` + noun + ` to UID, who becomes its owner on accepting the request
('trellis request accept ID'). Until then, and if UID declines, you keep it.
The id stays as it was created.`,
		Example: "  trellis " + noun + " owner lab:ping bob",
		Args:    exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			m, id, err := offer(cmd.Context(), c, args[0], args[1])
			if err != nil {
				return err
			}
			return a.emit(m, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Offered %s %s to %s; it is theirs once they accept request %s.\n", noun, clean(args[0]), clean(args[1]), clean(id))
				return err
			})
		},
	}
}

// aNoun is noun with its indefinite article.
func aNoun(noun string) string {
	if strings.ContainsRune("aeiou", rune(noun[0])) {
		return "an " + noun
	}
	return "a " + noun
}
