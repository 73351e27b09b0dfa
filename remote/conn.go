package remote

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"
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
	// defaultResponseTimeout is the wait for response headers once the
	// request is sent. AWS answers the slow calls (CompleteMultipartUpload,
	// CopyObject) with early headers and then keeps them alive with
	// whitespace, but other stores compute the whole answer first: Versity
	// completes a multipart upload by concatenating its parts on disk
	// (versitygw issue #423), which for many GiB on a slow disk exceeds
	// a minute. Too short a wait makes such an object fail on every try;
	// too long a wait only delays the retry of a black-holed request. Twice
	// the AWS CLI's 60 s.
	defaultResponseTimeout = 2 * time.Minute
)

// configureTransport sets the deadlines of every request on t. The wait
// for response headers is the connection's too, not
// http.Transport.ResponseHeaderTimeout: the transport's timeout error
// matches context.DeadlineExceeded, which callers rightly read as their own
// deadline having passed, not as a stalled endpoint.
func configureTransport(t *http.Transport, idle, response time.Duration) {
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &idleConn{Conn: conn, idle: idle, response: max(idle, response)}, nil
	}
	t.TLSHandshakeTimeout = tlsTimeout
}

// idleConn fails a Read or Write after idle without progress: each call
// moves the deadline to now+idle, so a transfer that keeps moving is never
// cut however long it takes, and a silent one fails once. Reads may also
// wait until response after the last Write: the answer to a request is due
// only after its last byte went out, and a store may think longer than
// idle before it answers. A connection idle in the pool has a read pending
// (the transport's), so it is closed after idle: IdleConnTimeout is then
// at most idle.
type idleConn struct {
	net.Conn
	idle     time.Duration
	response time.Duration
	// wrote is when the last Write began, in Unix nanoseconds; answered
	// whether a byte came in since.
	wrote    atomic.Int64
	answered atomic.Bool
}

func (c *idleConn) Read(p []byte) (int, error) {
	deadline := time.Now().Add(c.idle)
	answerDue := time.Unix(0, c.wrote.Load()).Add(c.response)
	if answerDue.After(deadline) {
		deadline = answerDue
	}
	if err := c.Conn.SetReadDeadline(deadline); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.answered.Store(true)
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		if !c.answered.Load() {
			return n, c.stalled(err, fmt.Sprintf("no answer within %v of the request", c.response))
		}
		return n, c.stalled(err, fmt.Sprintf("nothing received for %v", c.idle))
	}
	return n, err
}

func (c *idleConn) Write(p []byte) (int, error) {
	now := time.Now()
	c.wrote.Store(now.UnixNano())
	c.answered.Store(false)
	if err := c.Conn.SetWriteDeadline(now.Add(c.idle)); err != nil {
		return 0, err
	}
	// A Read already waiting (the transport's) now waits for the answer.
	if err := c.Conn.SetReadDeadline(now.Add(c.response)); err != nil {
		return 0, err
	}
	n, err := c.Conn.Write(p)
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
