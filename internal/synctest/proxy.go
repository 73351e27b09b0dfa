package synctest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"strings"
	"sync"
	"testing"
)

// Proxy puts an observing (and optionally rewriting) reverse proxy on
// loopback in front of the real server, for what the server does not keep
// (storage classes) or cannot hold (Glacier objects). Hold Mu to read the
// maps.
type Proxy struct {
	Mu      sync.Mutex
	Classes map[string]string // "METHOD path" -> x-amz-storage-class sent
	Puts    map[string]string // path -> "copy" or "put", for PUTs of objects
	Nputs   map[string]int    // path -> how many object PUTs succeeded
	Rewrite func(body string) string
	URL     string
}

// NewProxy starts a Proxy in front of target, closed when t ends.
func NewProxy(t *testing.T, target string) *Proxy {
	p := &Proxy{Classes: map[string]string{}, Puts: map[string]string{}, Nputs: map[string]int{}}
	u, _ := neturl.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(r *http.Response) error {
		if r.Request.Method == http.MethodPut && !r.Request.URL.Query().Has("partNumber") && r.StatusCode == http.StatusOK {
			p.Mu.Lock()
			p.Nputs[r.Request.URL.Path]++
			p.Mu.Unlock()
		}
		if p.Rewrite == nil || r.Request.Method != http.MethodGet || r.Request.URL.Query().Get("list-type") != "2" {
			return nil
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return err
		}
		nb := p.Rewrite(string(b))
		r.Body = io.NopCloser(strings.NewReader(nb))
		r.ContentLength = int64(len(nb))
		r.Header.Set("Content-Length", fmt.Sprint(len(nb)))
		return nil
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && !r.URL.Query().Has("partNumber") {
			kind := "put"
			if r.Header.Get("x-amz-copy-source") != "" {
				kind = "copy"
			}
			p.Mu.Lock()
			p.Puts[r.URL.Path] = kind
			p.Mu.Unlock()
		}
		if sc := r.Header.Get("x-amz-storage-class"); sc != "" {
			p.Mu.Lock()
			k := r.Method + " " + r.URL.Path
			if r.URL.Query().Has("uploads") {
				k += "?uploads"
			}
			p.Classes[k] = sc
			p.Mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}
