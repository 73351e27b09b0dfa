package remote

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Deadlines by size: how long the first byte of an answer may take, once
// the store has the whole request, grows with what the request makes the
// store do before it can answer. A small PUT, GET, HEAD, LIST or DELETE
// waits seconds; completing or copying a large object, which the store
// assembles or copies before it answers (Versity concatenates the parts on
// disk, versitygw issue #423), waits in proportion to its size. A request
// not answered in time is retried on a fresh connection, each attempt
// waiting twice as long as the one before, as AWS advises for S3 clients
// (2 s, then 4 s more, for small requests).
const (
	// storeRate is the slowest rate at which a store is expected to take
	// in, assemble or copy an object's bytes: a busy spinning disk that
	// reads and writes each byte once.
	storeRate = 10 << 20 // bytes per second
	// perObject is the slowest a store is expected to delete one object of
	// a batch.
	perObject = 20 * time.Millisecond
	// maxDoublings bounds the growth of the wait over retries.
	maxDoublings = 4
)

// load is what a request makes the store do before it answers, beyond
// what every request costs.
type load struct {
	bytes   int64 // taken in, assembled or copied
	objects int   // deleted
}

// answerWait is the wait for the first byte of the answer to attempt
// (1, 2, …) of a request with load l, once the store has the whole
// request; base is the wait of an attempt 1 that carries nothing.
func answerWait(base time.Duration, l load, attempt int) time.Duration {
	w := base + time.Duration(float64(l.bytes)/storeRate*float64(time.Second)) + time.Duration(l.objects)*perObject
	if attempt > 1 {
		w <<= min(attempt-1, maxDoublings)
	}
	return w
}

type loadKey struct{}

// withLoad marks ctx's requests as making the store do l, for the requests
// whose load their bodies do not show: completing a multipart upload
// (the object's size), copies (the bytes copied), batch deletes.
func withLoad(ctx context.Context, l load) context.Context {
	return context.WithValue(ctx, loadKey{}, l)
}

// loadOf is the load of req: as withLoad said, else its body's length.
func loadOf(req *http.Request) load {
	if l, ok := req.Context().Value(loadKey{}).(load); ok {
		return l
	}
	return load{bytes: max(req.ContentLength, 0)}
}

// attemptOf is which attempt req is, from the SDK's amz-sdk-request header
// ("attempt=2; max=5"); 1 when it does not say.
func attemptOf(req *http.Request) int {
	v := req.Header.Get("Amz-Sdk-Request")
	_, rest, ok := strings.Cut(v, "attempt=")
	if !ok {
		return 1
	}
	num, _, _ := strings.Cut(rest, ";")
	n, err := strconv.Atoi(strings.TrimSpace(num))
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// answerClient is the SDK's HTTP client with each request's answer wait
// (answerWait) set on the connection it goes out on, and the connection
// told when the request was written. (Over HTTP/2, which S3 stores do not
// speak, requests share a connection and the last one's wait holds.)
type answerClient struct {
	next aws.HTTPClient
	base time.Duration
}

func (c answerClient) Do(req *http.Request) (*http.Response, error) {
	wait := answerWait(c.base, loadOf(req), attemptOf(req))
	// The transport may send the request again on another connection,
	// and the first one's writer may report late: that only starts the
	// wait early, and the Writes still going on move it.
	var conn atomic.Pointer[idleConn]
	trace := &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			nc := info.Conn
			if tc, ok := nc.(*tls.Conn); ok {
				nc = tc.NetConn()
			}
			if ic, ok := nc.(*idleConn); ok {
				conn.Store(ic)
				ic.expect(wait)
			}
		},
		Got1xxResponse: func(int, textproto.MIMEHeader) error {
			if ic := conn.Load(); ic != nil {
				ic.interim()
			}
			return nil
		},
		WroteRequest: func(httptrace.WroteRequestInfo) {
			if ic := conn.Load(); ic != nil {
				ic.sent()
			}
		},
	}
	return c.next.Do(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
}
