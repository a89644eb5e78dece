// Package netlimit bounds the connections a server holds open, so that a
// flood of connections on one port cannot use up the process's file
// descriptors and leave the other ports unable to accept.
//
// # Behaviour
//
// A Listener made by NewListener holds at most n accepted connections
// open. At the limit, Accept waits (without accepting) until one of them is
// closed: the waiting connections stay in the kernel's listen backlog, where
// they cost no descriptor of the process, and are accepted in turn. Close
// unblocks a waiting Accept. Open, Limit and Waits report the state for
// self-metrics.
//
// FileLimit returns the process's limit of open files (RLIMIT_NOFILE), from
// which a caller derives the limits of its listeners.
package netlimit

import (
	"net"
	"sync"
	"sync/atomic"
)

// Listener is a net.Listener that holds at most a fixed number of accepted
// connections open. Its methods are safe for concurrent use.
type Listener struct {
	net.Listener
	slots     chan struct{} // a token per open (or being accepted) connection
	done      chan struct{} // closed by Close
	closeOnce sync.Once
	waits     atomic.Uint64
}

var _ net.Listener = (*Listener)(nil)

// NewListener returns l limited to n open connections (n < 1 counts as 1).
// Closing the Listener closes l.
func NewListener(l net.Listener, n int) *Listener {
	return &Listener{Listener: l, slots: make(chan struct{}, max(n, 1)), done: make(chan struct{})}
}

// Accept waits until fewer than the limit of connections are open, then
// accepts the next one. The connection frees its slot when closed (the
// first Close does). After Close, Accept returns an error wrapping
// net.ErrClosed.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	default:
		l.waits.Add(1)
		select {
		case l.slots <- struct{}{}:
		case <-l.done:
			return nil, &net.OpError{Op: "accept", Net: l.Addr().Network(), Addr: l.Addr(), Err: net.ErrClosed}
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &conn{Conn: c, release: func() { <-l.slots }}, nil
}

// Close closes the listener and unblocks a waiting Accept. Connections
// already accepted stay open. It is safe to call twice.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// Open returns the number of connections open (or being accepted).
func (l *Listener) Open() int { return len(l.slots) }

// Limit returns the most connections held open.
func (l *Listener) Limit() int { return cap(l.slots) }

// Waits returns how many times Accept found the limit reached and had to
// wait for a connection to close.
func (l *Listener) Waits() uint64 { return l.waits.Load() }

// conn frees its listener's slot at its first Close.
type conn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
