//go:build linux

package netns

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"

	"github.com/trellis-testbed/trellis/internal/materialize"
)

// Naming. Every object the driver makes is named from the realization, so
// that a sweep finds leftovers by name alone:
//
//	namespace of node n:   <prefix>-<tag>-n-<n>    (tag: 12 hex digits of SHA-256(realization id))
//	the fabric namespace:  <prefix>-<tag>-fabric   (node namespaces have "-n-" where this has "-fabric")
//	a node's interface:    t<10 hex of SHA-256(link name)>  inside the node's namespace
//	a LAN's bridge:        b<10 hex of SHA-256(link name)>  inside the fabric namespace
//	a LAN member's port:   p<10 hex of SHA-256(link "/" node)> inside the fabric namespace
//
// Interface names are 11 bytes, within Linux's 15. They only need to be
// unique inside one namespace, and a plan whose hashes collide there is
// refused (see checkNames). Both ends of a point-to-point veth are called
// after the link, each inside its own node.

const tagLen = 12

var prefixRule = regexp.MustCompile(`^[a-z][a-z0-9]{0,7}$`)

// DefaultPrefix starts the names of everything the driver makes.
const DefaultPrefix = "trl"

type names struct{ prefix string }

func hash(s string, n int) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])[:n]
}

// tag is the realization's short, fixed-length tag.
func (names) tag(realization string) string { return hash(realization, tagLen) }

// realmPrefix starts every namespace of a realization.
func (x names) realmPrefix(realization string) string {
	return x.prefix + "-" + x.tag(realization) + "-"
}

func (x names) nodeNS(realization, node string) string {
	return x.realmPrefix(realization) + "n-" + node
}

func (x names) fabricNS(realization string) string {
	return x.realmPrefix(realization) + "fabric"
}

// tagOf returns the realization tag of a namespace named by the driver.
func (x names) tagOf(ns string) (string, bool) {
	rest, ok := strings.CutPrefix(ns, x.prefix+"-")
	if !ok || len(rest) < tagLen+1 || rest[tagLen] != '-' {
		return "", false
	}
	return rest[:tagLen], true
}

func ifName(link string) string         { return "t" + hash(link, 10) }
func bridgeName(link string) string     { return "b" + hash(link, 10) }
func portName(link, node string) string { return "p" + hash(link+"/"+node, 10) }

// checkNames refuses a plan in which two links would get the same
// interface name: with 40-bit hashes it does not happen in practice, but a
// collision must be an error, never two links silently sharing a device.
func checkNames(p materialize.Plan) error {
	seen := map[string]string{}
	for _, l := range p.Links {
		for _, n := range []string{ifName(l.Name), bridgeName(l.Name)} {
			if other, dup := seen[n]; dup {
				return fmt.Errorf("links %q and %q hash to the same interface name %s; rename one", other, l.Name, n)
			}
			seen[n] = l.Name
		}
		for _, e := range l.Endpoints {
			n := portName(l.Name, e.Node)
			if other, dup := seen[n]; dup {
				return fmt.Errorf("link %q node %q and %s hash to the same port name %s; rename one", l.Name, e.Node, other, n)
			}
			seen[n] = l.Name + "/" + e.Node
		}
	}
	return nil
}
