package httpserver

import (
	"net"
	"sync"

	"github.com/trellis-testbed/trellis/internal/transport/ratelimit"
)

// ConnLimiter is a listener that keeps at most a fixed number of
// connections open at once from one client (an IPv4 address, an IPv6 /64:
// ratelimit.Key), so that one client cannot take every file descriptor and
// goroutine with idle or slow connections. A connection over the limit is
// closed as soon as it is accepted, before a byte is read from it.
//
// Behind a reverse proxy every client is the proxy: raise the limit there,
// or turn it off, and let the proxy bound its own clients.
type ConnLimiter struct {
	net.Listener
	// OnRefuse, when set, is told of each connection refused (with its
	// client's key); set it before the first Accept.
	OnRefuse func(client string)
	max      int

	mu   sync.Mutex
	open map[string]int // only clients with open connections: bounded
}

// LimitConnsPerClient wraps ln; max must be positive. Wrap the TCP
// listener, under any TLS: a refusal then costs no handshake.
func LimitConnsPerClient(ln net.Listener, max int) *ConnLimiter {
	return &ConnLimiter{Listener: ln, max: max, open: map[string]int{}}
}

// Accept returns the next connection within its client's limit.
func (l *ConnLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := ratelimit.Key(c.RemoteAddr().String())
		l.mu.Lock()
		over := l.open[key] >= l.max
		if !over {
			l.open[key]++
		}
		l.mu.Unlock()
		if over {
			c.Close()
			if l.OnRefuse != nil {
				l.OnRefuse(key)
			}
			continue
		}
		return &limitedConn{Conn: c, release: sync.OnceFunc(func() { l.release(key) })}, nil
	}
}

func (l *ConnLimiter) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key]--; l.open[key] <= 0 {
		delete(l.open, key)
	}
}

// limitedConn gives its slot back when closed, once however often it is
// closed.
type limitedConn struct {
	net.Conn
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}

// CloseWrite half-closes a TCP connection, as net/http does to let a
// client read an error before the connection goes.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
