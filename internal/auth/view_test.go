package auth

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestViewEvictsUnread: a full view replaces an entry that was not read
// since the hand last passed it, and never one that was.
func TestViewEvictsUnread(t *testing.T) {
	tests := []struct {
		name string
		ops  string // "+k" put, "?k" get, "-k" remove, "!" clear; space-separated
		want string // keys kept, sorted
	}{
		{"under the limit", "+a +b", "a b"},
		{"oldest unread goes", "+a +b +c +d", "b c d"},
		{"a read entry gets a second chance", "+a +b +c ?a +d", "a c d"},
		{"all read: one full turn, then the hand's", "+a +b +c ?a ?b ?c +d", "b c d"},
		{"a put does not count as a read", "+a +b +c +a +d", "b c d"},
		{"the hand moves on", "+a +b +c +d +e", "c d e"},
		{"the new entry is no reader's yet", "+a +b +c ?b ?c +d +e", "b c e"},
		{"removed makes room", "+a +b +c -b +d", "a c d"},
		{"remove the last slot", "+a +b +c -c +d +e", "b d e"},
		{"remove unknown", "+a -z", "a"},
		{"clear", "+a +b +c ! +d", "d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newView[int](3)
			for i, op := range strings.Fields(tt.ops) {
				switch key := op[1:]; op[0] {
				case '+':
					v.put(key, i)
				case '?':
					if _, ok := v.get(key); !ok {
						t.Fatalf("%s: missing", op)
					}
				case '-':
					v.remove(key)
				case '!':
					v.clear()
				}
				checkView(t, v)
			}
			var keys []string
			for k := range v.m {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if got := strings.Join(keys, " "); got != tt.want {
				t.Errorf("kept %q, want %q", got, tt.want)
			}
		})
	}
}

// TestViewRandom runs random operations and checks the view's structure
// and values after each.
func TestViewRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	v := newView[int](50)
	last := map[string]int{} // the value last put, for keys still kept
	for i := range 20_000 {
		key := fmt.Sprint(r.IntN(120))
		switch n := r.IntN(10); {
		case n < 5:
			v.put(key, i)
			last[key] = i
		case n < 9:
			if got, ok := v.get(key); ok && got != last[key] {
				t.Fatalf("get %s = %d, want %d", key, got, last[key])
			}
		default:
			v.remove(key)
		}
		checkView(t, v)
		if v.len() > 50 {
			t.Fatalf("%d entries, over the limit", v.len())
		}
	}
}

// checkView checks that the map and the ring hold the same entries, each
// knowing its place.
func checkView[V any](t *testing.T, v *view[V]) {
	t.Helper()
	if len(v.ring) != len(v.m) || (len(v.ring) > 0 && v.hand >= len(v.ring)) {
		t.Fatalf("ring %d, map %d, hand %d", len(v.ring), len(v.m), v.hand)
	}
	for i, e := range v.ring {
		if e.pos != i || v.m[e.key] != e {
			t.Fatalf("ring[%d] = %q at pos %d, map has %p, ring %p", i, e.key, e.pos, v.m[e.key], e)
		}
	}
}
