package remote

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Deadlines, so that a stalled connection cannot stall the mirror: every
// wait on the network ends, and the SDK's retryer then tries again on a
// fresh connection.
const (
	dialTimeout = 10 * time.Second
	tlsTimeout  = 10 * time.Second
	// defaultIdleTimeout is the AWS CLI's read timeout (botocore's
	// read_timeout), which people switching from `aws s3 sync` already
	// live with against the same stores. It only cuts a connection on which
	// nothing at all moved for that long, so a slow upload that keeps
	// moving is never cut.
	defaultIdleTimeout = 60 * time.Second
	// defaultResponseTimeout is the wait for the first byte of the answer
	// to a request that asks the store for little (a small PUT, GET, HEAD,
	// LIST or DELETE), once the store has the whole request. AWS advises
	// retrying such requests after 2 s; a few seconds more leave room for
	// stores on slow disks and busy machines. Requests that make the store
	// take in, assemble or copy many bytes wait longer (answerWait), and
	// every retry waits twice as long as the attempt before, so a store
	// that is slow rather than gone is still waited for.
	defaultResponseTimeout = 5 * time.Second
)

// configureTransport sets the deadlines of every request on t. The wait
// for the answer is the connection's too, not
// http.Transport.ResponseHeaderTimeout: the transport's timeout error
// matches context.DeadlineExceeded, which callers rightly read as their own
// deadline having passed, not as a stalled endpoint. wait is the answer
// wait of a connection until a request sets its own (answerClient).
func configureTransport(t *http.Transport, idle, wait time.Duration) {
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &idleConn{Conn: conn, idle: idle, wait: wait}, nil
	}
	t.TLSHandshakeTimeout = tlsTimeout
}

// idleConn fails a Read or Write after idle without progress: each call
// moves the deadline to now+idle, so a transfer that keeps moving is never
// cut however long it takes, and a silent one fails once. Once a request
// was sent (answerClient tells: expect, then sent), the first byte of its
// answer is due within the request's own wait, which may be far shorter
// than idle: a request that is never answered is retried within seconds.
// The wait starts once the store has the whole request: while sent bytes
// are still unacknowledged (a slow link holds them in the socket's queue)
// the answer is not due yet, as long as they keep moving. A connection
// idle in the pool has a read pending (the transport's), so it is closed
// after idle: IdleConnTimeout is then at most idle.
type idleConn struct {
	net.Conn
	idle time.Duration

	// mu orders the deadline bookkeeping of Read, Write and the request's
	// events (never held during I/O).
	mu sync.Mutex
	// wait is the answer wait of the request on the connection; sending
	// whether that request is still being written, wrote when a Write
	// last ended; answered whether a byte of its answer came in; due when
	// the answer's first byte is due (zero before the first request).
	wait     time.Duration
	sending  bool
	wrote    time.Time
	answered bool
	due      time.Time
	// delivering: due passed while sent bytes were still unacknowledged;
	// queued is how many at the last look, moved when that number last
	// went down.
	delivering bool
	queued     int
	moved      time.Time
}

// expect is told that a request with answer wait wait is about to be sent
// on the connection.
func (c *idleConn) expect(wait time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wait, c.sending, c.wrote = wait, true, time.Now()
	c.answered, c.due, c.delivering = false, time.Time{}, false
}

// sent is told that the request was written (but for a last flush): its
// answer is due within its wait, unless it came already.
func (c *idleConn) sent() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sending = false
	if !c.answered {
		c.awaitLocked()
	}
}

// interim is told that what was read was an informational answer (100
// Continue), not the answer.
func (c *idleConn) interim() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.answered = false
	if !c.sending {
		c.awaitLocked()
	}
}

// awaitLocked makes the answer due within the request's wait from now.
func (c *idleConn) awaitLocked() {
	c.due = time.Now().Add(c.wait)
	c.Conn.SetReadDeadline(c.due)
}

func (c *idleConn) Read(p []byte) (int, error) {
	for {
		c.mu.Lock()
		deadline := time.Now().Add(c.idle)
		if !c.sending && !c.answered && !c.due.IsZero() {
			deadline = c.due
		}
		err := c.Conn.SetReadDeadline(deadline)
		c.mu.Unlock()
		if err != nil {
			return 0, err
		}
		n, err := c.Conn.Read(p)
		if n > 0 || err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			if n > 0 {
				c.mu.Lock()
				c.answered = true
				c.mu.Unlock()
			}
			return n, err
		}
		msg, again := c.late()
		if again {
			continue
		}
		return n, c.stalled(err, msg)
	}
}

// late decides, once a read's deadline passed, whether the read waits on
// (again) or fails, and why.
func (c *idleConn) late() (msg string, again bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	switch {
	case c.sending:
		// The request's body is still being written; Write's own
		// deadline catches a stall there.
		if now.Sub(c.wrote) < c.idle {
			return "", true
		}
		return fmt.Sprintf("nothing sent for %v", c.idle), false
	case c.answered || c.due.IsZero():
		return fmt.Sprintf("nothing received for %v", c.idle), false
	case now.Before(c.due):
		return "", true // moved meanwhile
	}
	if q := c.unacked(); q > 0 {
		// The store does not have the whole request yet: its answer is
		// due only after that, as long as the bytes keep moving.
		if !c.delivering || q < c.queued {
			c.delivering, c.queued, c.moved = true, q, now
		}
		if now.Sub(c.moved) < c.idle {
			c.due = now.Add(min(c.wait, time.Second))
			return "", true
		}
		return fmt.Sprintf("nothing accepted for %v", c.idle), false
	}
	if c.delivering {
		// Delivered since the last look: the wait starts now.
		c.delivering = false
		c.due = now.Add(c.wait)
		return "", true
	}
	return fmt.Sprintf("no answer within %v of the request", c.wait), false
}

// unacked is how many bytes written to the connection the peer has not
// acknowledged yet (SIOCOUTQ); 0 when that cannot be known.
func (c *idleConn) unacked() int {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return 0
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	raw.Control(func(fd uintptr) {
		if v, err := unix.IoctlGetInt(int(fd), unix.SIOCOUTQ); err == nil {
			n = v
		}
	})
	return n
}

func (c *idleConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.idle)); err != nil {
		return 0, err
	}
	n, err := c.Conn.Write(p)
	c.mu.Lock()
	c.wrote = time.Now()
	if !c.sending && !c.answered && !c.due.IsZero() {
		// The request's last flush: the answer is due after it.
		c.due = c.wrote.Add(c.wait)
		c.Conn.SetReadDeadline(c.due)
	}
	c.mu.Unlock()
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		return n, c.stalled(err, fmt.Sprintf("nothing accepted for %v", c.idle))
	}
	return n, err
}

// stalled names a deadline error in words a person can act on, keeping
// it a *net.OpError that times out, as the SDK's retryer and classify
// expect.
func (c *idleConn) stalled(err error, msg string) error {
	var op *net.OpError
	if !errors.As(err, &op) {
		return err
	}
	cp := *op
	cp.Err = &stallError{msg: msg}
	return &cp
}

// stallError is a connection on which nothing moved in time.
type stallError struct{ msg string }

func (e *stallError) Error() string        { return e.msg }
func (e *stallError) Timeout() bool        { return true }
func (e *stallError) Temporary() bool      { return true }
func (e *stallError) Is(target error) bool { return target == os.ErrDeadlineExceeded }
