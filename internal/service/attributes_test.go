package service

import (
	"testing"

	"github.com/trellis-testbed/trellis/internal/domain"
)

// A description loaded before an invalidation must not fill the cache after
// it: it may predate the change the invalidation announced.
func TestDescriptionCacheDropsLoadsOverlappingInvalidation(t *testing.T) {
	c := newDescriptionCache()
	old := domain.NewProfileDescription(domain.Attribute{Name: "a", Access: domain.ReadWrite, DataType: domain.TypeString})
	_, gen := c.get("user")
	c.invalidate("user") // the change feed, while the load ran
	c.put("user", old, gen)
	if d, _ := c.get("user"); d != nil {
		t.Fatal("a load that overlapped an invalidation filled the cache")
	}
	_, gen = c.get("user")
	c.put("user", old, gen)
	if d, _ := c.get("user"); d != old {
		t.Fatal("a load after the invalidation did not fill the cache")
	}
	c.reset()
	if d, _ := c.get("user"); d != nil {
		t.Fatal("reset kept a description")
	}
}
