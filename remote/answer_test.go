package remote_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/s3sync/s3sync/internal/faultproxy"
	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/remote"
)

// slowLink is a TCP proxy in front of the test server that forwards what
// clients send at rate bytes per second per connection, reading no faster:
// what is not forwarded yet waits, unacknowledged, in the client's socket
// as on a slow uplink.
type slowLink struct {
	url  string
	ln   net.Listener
	rate int

	mu    sync.Mutex
	conns []net.Conn
}

func newSlowLink(t *testing.T, rate int) *slowLink {
	t.Helper()
	u, err := url.Parse(s3test.Get(t).Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &slowLink{url: "http://" + ln.Addr().String(), ln: ln, rate: rate}
	go l.serve(u.Host)
	t.Cleanup(func() {
		ln.Close()
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, c := range l.conns {
			c.Close()
		}
	})
	return l
}

func (l *slowLink) serve(upstream string) {
	for {
		client, err := l.ln.Accept()
		if err != nil {
			return
		}
		// A small receive buffer: the backlog stays on the client's side.
		client.(*net.TCPConn).SetReadBuffer(16 << 10)
		server, err := net.Dial("tcp", upstream)
		if err != nil {
			client.Close()
			continue
		}
		l.mu.Lock()
		l.conns = append(l.conns, client, server)
		l.mu.Unlock()
		go l.throttle(server, client)
		go io.Copy(client, server)
	}
}

// throttle copies src to dst at l.rate.
func (l *slowLink) throttle(dst, src net.Conn) {
	const tick = 10 * time.Millisecond
	buf := make([]byte, l.rate/int(time.Second/tick))
	for next := time.Now(); ; next = next.Add(tick) {
		n, err := src.Read(buf)
		if n > 0 {
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
		time.Sleep(time.Until(next))
	}
}

// A large upload over a slow link that keeps moving is not cut: its
// answer is waited for from when the store has the whole request, however
// long the bytes queued behind the last write take to get there. With a
// wait for the answer far shorter than that, no attempt fails. (The wait
// for a write to be taken at all is long here: this test is about the
// answer's wait, and the test server, on a loaded machine, can stop
// reading for seconds while it writes a part to disk.)
func TestSlowLinkUploadNotCut(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	link := newSlowLink(t, 2<<20)
	var mu sync.Mutex
	var failed []string
	c := newClient(t, func(c *remote.Config) {
		c.EndpointURL = link.url
		c.IdleTimeout, c.ResponseTimeout = 30*time.Second, 200*time.Millisecond
		c.MultipartThreshold, c.PartSize, c.PartConcurrency = 5<<20, 5<<20, 2
		c.ObserveRequest = func(op string, d time.Duration, err error) {
			if err != nil {
				mu.Lock()
				failed = append(failed, op+" after "+d.Round(time.Millisecond).String()+": "+err.Error())
				mu.Unlock()
			}
		}
	})
	data := make([]byte, 12<<20)
	rand.Read(data)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	if _, err := c.Upload(ctx, bucket, "big", bytes.NewReader(data), int64(len(data)), remote.PutOptions{}); err != nil {
		t.Fatalf("upload over a slow link: %v", err)
	}
	t.Logf("12 MiB in %v", time.Since(start).Round(time.Millisecond))
	for _, f := range failed {
		t.Errorf("attempt failed on a slow but moving link: %s", f)
	}
	if body, _ := srv.Get(t, bucket, "big"); body != string(data) {
		t.Errorf("stored %d bytes, want the %d uploaded", len(body), len(data))
	}
}

// A request held unanswered after its store said 100 Continue (the SDK
// asks for it above 2 MiB; an HTTP proxy or load balancer in the way
// answers it) is retried after the short wait of its size, not after
// IdleTimeout: the 100 Continue is not the answer.
func TestUnansweredAfterContinueRetried(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	proxy, err := faultproxy.New(srv.Endpoint, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	held := false // Match is called under the proxy's lock
	proxy.SetRules(faultproxy.Rule{Kind: faultproxy.Hang, Match: func(r *http.Request) bool {
		if r.Method == http.MethodPut && !held {
			held = true
			return true
		}
		return false
	}})
	c := newClient(t, func(c *remote.Config) {
		c.EndpointURL = proxy.URL()
		c.IdleTimeout, c.ResponseTimeout = time.Minute, 500*time.Millisecond
	})
	data := make([]byte, 3<<20)
	rand.Read(data)
	err = bounded(t, func(ctx context.Context) error {
		_, err := c.Upload(ctx, bucket, "cont", bytes.NewReader(data), int64(len(data)), remote.PutOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("upload not retried past the held request: %v", err)
	}
	if !held {
		t.Error("no PUT was held")
	}
	if body, _ := srv.Get(t, bucket, "cont"); body != string(data) {
		t.Errorf("stored %d bytes, want the %d uploaded", len(body), len(data))
	}
}
