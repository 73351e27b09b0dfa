package remote_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"
)

// recorder is a reverse proxy in front of the real server that notes each
// request's method, query and headers, the body of each POST (a batch
// delete's list), and when the bytes of PUT bodies (objects and parts)
// arrive.
// The server answers every request.
type recorder struct {
	url string

	mu          sync.Mutex
	reqs        []recorded
	n           int64
	first, last time.Time
}

type recorded struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Body   []byte // POST only
}

func newRecorder(t *testing.T, target string) *recorder {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host // signatures cover Host
		},
		FlushInterval: -1,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rec := recorded{Method: req.Method, Path: req.URL.Path, Query: req.URL.Query(), Header: req.Header.Clone()}
		if req.Method == http.MethodPost && req.Body != nil {
			b, err := io.ReadAll(req.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			rec.Body = b
			req.Body = io.NopCloser(bytes.NewReader(b))
		}
		r.mu.Lock()
		r.reqs = append(r.reqs, rec)
		r.mu.Unlock()
		if req.Body != nil && req.Method == http.MethodPut {
			req.Body = &timedBody{ReadCloser: req.Body, r: r}
		}
		rp.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

// timedBody notes request body bytes as the proxy reads them.
type timedBody struct {
	io.ReadCloser
	r *recorder
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		now := time.Now()
		b.r.mu.Lock()
		if b.r.first.IsZero() {
			b.r.first = now
		}
		b.r.last, b.r.n = now, b.r.n+int64(n)
		b.r.mu.Unlock()
	}
	return n, err
}

// bodies is how many PUT body bytes arrived, and when the first and
// the last did.
func (r *recorder) bodies() (int64, time.Time, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n, r.first, r.last
}

// requests returns what was recorded so far.
func (r *recorder) requests() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.reqs...)
}

func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs, r.n, r.first, r.last = nil, 0, time.Time{}, time.Time{}
}
