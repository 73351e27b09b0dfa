package syncer_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"strings"
	"sync"
	"testing"

	"github.com/s3sync/s3sync/internal/testfs"
	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/syncer"
)

// proxy puts an observing (and optionally rewriting) reverse proxy on
// loopback in front of the real server, for what the server does not keep
// (storage classes) or cannot hold (Glacier objects).
type proxy struct {
	mu      sync.Mutex
	classes map[string]string // "METHOD path" -> x-amz-storage-class sent
	puts    map[string]string // path -> "copy" or "put", for PUTs of objects
	nputs   map[string]int    // path -> how many object PUTs succeeded
	rewrite func(body string) string
	url     string
}

func newProxy(t *testing.T, target string) *proxy {
	p := &proxy{classes: map[string]string{}, puts: map[string]string{}, nputs: map[string]int{}}
	u, _ := neturl.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(r *http.Response) error {
		if r.Request.Method == http.MethodPut && !r.Request.URL.Query().Has("partNumber") && r.StatusCode == http.StatusOK {
			p.mu.Lock()
			p.nputs[r.Request.URL.Path]++
			p.mu.Unlock()
		}
		if p.rewrite == nil || r.Request.Method != http.MethodGet || r.Request.URL.Query().Get("list-type") != "2" {
			return nil
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return err
		}
		nb := p.rewrite(string(b))
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
			p.mu.Lock()
			p.puts[r.URL.Path] = kind
			p.mu.Unlock()
		}
		if sc := r.Header.Get("x-amz-storage-class"); sc != "" {
			p.mu.Lock()
			k := r.Method + " " + r.URL.Path
			if r.URL.Query().Has("uploads") {
				k += "?uploads"
			}
			p.classes[k] = sc
			p.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.url = srv.URL
	return p
}

// --storage-class is sent on every upload (single and multipart) and copy.
// Versity Gateway's posix backend stores no storage class, so the test
// watches the requests on their way to it.
func TestStorageClass(t *testing.T) {
	e := newEnv(t)
	p := newProxy(t, e.srv.Endpoint)
	c, err := remote.New(context.Background(), remote.Config{EndpointURL: p.url, MultipartThreshold: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	testfs.WriteFile(t, dir+"/small", "x")
	testfs.WriteFile(t, dir+"/large", strings.Repeat("L", 6<<20))
	url := "s3://" + e.bucket
	sc := func(o *syncer.Options) { o.StorageClass = "STANDARD_IA" }
	runSync(t, c, dir, url+"/up", sc)
	runSync(t, c, url+"/up", url+"/copy", sc)
	p.mu.Lock()
	defer p.mu.Unlock()
	want := []string{
		"PUT /" + e.bucket + "/up/small",
		"POST /" + e.bucket + "/up/large?uploads",
		"PUT /" + e.bucket + "/copy/small",
		"PUT /" + e.bucket + "/copy/large",
	}
	for _, w := range want {
		if p.classes[w] != "STANDARD_IA" {
			t.Errorf("%s: storage class %q; all requests with one: %v", w, p.classes[w], p.classes)
		}
	}
}

func TestGlacierSkipped(t *testing.T) {
	e := newEnv(t)
	e.srv.Put(t, e.bucket, "cold", "frozen", nil)
	e.srv.Put(t, e.bucket, "warm", "ok", nil)
	p := newProxy(t, e.srv.Endpoint)
	p.rewrite = func(b string) string {
		parts := strings.Split(b, "<Contents>")
		for i, c := range parts {
			if strings.Contains(c, "<Key>cold</Key>") {
				parts[i] = strings.Replace(c, "<StorageClass>STANDARD</StorageClass>", "<StorageClass>GLACIER</StorageClass>", 1)
			}
		}
		return strings.Join(parts, "<Contents>")
	}
	c, err := remote.New(context.Background(), remote.Config{EndpointURL: p.url})
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	sum, lines := runSync(t, c, "s3://"+e.bucket, dst, nil)
	if sum.Downloaded != 1 || sum.Skipped != 1 {
		t.Errorf("want warm downloaded and cold skipped: %+v %q", sum, lines)
	}
	sum, _ = runSync(t, c, "s3://"+e.bucket, dst, func(o *syncer.Options) { o.ForceGlacier = true })
	if sum.Downloaded != 1 || sum.Skipped != 0 {
		t.Errorf("--force-glacier-transfer: %+v", sum)
	}
}
