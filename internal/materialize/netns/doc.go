// Package netns is the materialization driver for one Linux machine: every
// node of a realization is a named network namespace, every point-to-point
// link a veth pair between two of them, every LAN a bridge in the
// realization's own "fabric" namespace with a veth to each member; link
// constraints are netem (delay, jitter, loss) and tbf (rate) queueing
// disciplines; routers forward, and every node has static routes to the
// subnets it can reach. It talks to the kernel through netlink only (never
// ip or tc), needs root (or CAP_SYS_ADMIN for the namespaces' bind mounts
// and CAP_NET_ADMIN for the links), and keeps a journal in a state
// directory so that a crash at any point is finished or undone by Recover.
// Nothing is made in the host's own namespace. See docs/materialize.md.
package netns
