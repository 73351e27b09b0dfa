package remote_test

import (
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/s3sync/s3sync/internal/s3test"
)

// fault is what a faultProxy does to one connection. The zero value
// forwards everything.
type fault struct {
	// hang: read the request and never answer.
	hang bool
	// After this many bytes in a direction (when > 0), stop forwarding in
	// it, keeping the connection open: the peer sees a stall, not an error.
	upLimit   int64 // client to server: the request
	downLimit int64 // server to client: the response
	// answerDelay holds back the response this long: a store thinking.
	answerDelay time.Duration
}

// faultProxy is a TCP proxy in front of the real server that stalls the
// connections plan picks, by their order of arrival (0 is the first).
type faultProxy struct {
	url  string
	ln   net.Listener
	plan func(n int) fault

	mu    sync.Mutex
	n     int
	conns []net.Conn
}

func newFaultProxy(t *testing.T, plan func(n int) fault) *faultProxy {
	t.Helper()
	srv := s3test.Get(t)
	u, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{url: "http://" + ln.Addr().String(), ln: ln, plan: plan}
	go p.serve(u.Host)
	t.Cleanup(p.close)
	return p
}

// accepted is how many connections the proxy has seen.
func (p *faultProxy) accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

func (p *faultProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

func (p *faultProxy) track(c net.Conn) {
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
}

func (p *faultProxy) serve(upstream string) {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		f := p.plan(p.n)
		p.n++
		p.mu.Unlock()
		p.track(client)
		if f.hang {
			go io.Copy(io.Discard, client)
			continue
		}
		server, err := net.Dial("tcp", upstream)
		if err != nil {
			client.Close()
			continue
		}
		p.track(server)
		go pipe(server, client, f.upLimit)
		go func() {
			if f.answerDelay > 0 {
				// Wait for the first byte, then hold it back.
				var b [1]byte
				if _, err := server.Read(b[:]); err != nil {
					return
				}
				time.Sleep(f.answerDelay)
				client.Write(b[:])
			}
			pipe(client, server, f.downLimit)
		}()
	}
}

// pipe copies src to dst, at most limit bytes when limit > 0, and then
// stops reading src without closing anything.
func pipe(dst, src net.Conn, limit int64) {
	if limit > 0 {
		io.CopyN(dst, src, limit)
		return
	}
	io.Copy(dst, src)
	if tc, ok := dst.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
}
