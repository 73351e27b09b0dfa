package mirror_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/internal/testfs"
	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/syncer"
)

func TestMain(m *testing.M) { s3test.Main(m) }

// log collects a run's events as "op src" lines.
type log struct {
	mu    sync.Mutex
	lines []string
}

func (l *log) report(e syncer.Event) {
	if e.Kind == syncer.EventPlanned {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch e.Kind {
	case syncer.EventDone:
		l.lines = append(l.lines, e.Op+" "+e.Src)
	case syncer.EventFailed:
		l.lines = append(l.lines, "FAILED "+e.Op+" "+e.Src+": "+e.Err.Error())
	case syncer.EventSkipped:
		l.lines = append(l.lines, "skipped "+e.Src+": "+e.Err.Error())
	}
}

func (l *log) sorted() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := append([]string(nil), l.lines...)
	sort.Strings(out)
	return out
}

type env struct {
	t      *testing.T
	srv    *s3test.Server
	client *remote.Client
	bucket string
}

func newEnv(t *testing.T) *env {
	srv := s3test.Get(t)
	c, err := remote.New(context.Background(), remote.Config{EndpointURL: srv.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, srv: srv, client: c, bucket: srv.NewBucket(t)}
}

// sync runs one reconcile and returns its sorted event lines.
func (e *env) sync(src, dst string, mod func(*syncer.Options)) (syncer.Summary, []string) {
	e.t.Helper()
	return runSync(e.t, e.client, src, dst, mod)
}

func runSync(t *testing.T, r syncer.Remote, src, dst string, mod func(*syncer.Options)) (syncer.Summary, []string) {
	t.Helper()
	s, err := syncer.ParseEndpoint(src)
	if err != nil {
		t.Fatal(err)
	}
	d, err := syncer.ParseEndpoint(dst)
	if err != nil {
		t.Fatal(err)
	}
	l := &log{}
	opts := syncer.Options{Report: l.report, Concurrency: 8}
	if mod != nil {
		mod(&opts)
	}
	sum, err := syncer.Reconcile(context.Background(), r, s, d, opts)
	if err != nil {
		t.Fatalf("reconcile %s %s: %v", src, dst, err)
	}
	return sum, l.sorted()
}

func readTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(root, p)
			out[filepath.ToSlash(rel)] = string(b)
		}
		return nil
	})
	return out
}

func equalLines(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got: %q\nwant: %q", what, got, want)
	}
}

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

// verify runs one Verify and returns its summary and findings as lines
// ("differs a.txt: size 1 != 2"), in the order reported.
func verify(t *testing.T, r syncer.Remote, src, dst string, mod func(*syncer.VerifyOptions)) (syncer.VerifySummary, []string) {
	t.Helper()
	s, err := syncer.ParseEndpoint(src)
	if err != nil {
		t.Fatal(err)
	}
	d, err := syncer.ParseEndpoint(dst)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	opts := syncer.VerifyOptions{Concurrency: 4, Report: func(f syncer.Finding) {
		l := string(f.Kind) + " " + f.Rel
		if len(f.Reasons) > 0 {
			l += ": " + strings.Join(f.Reasons, "; ")
		}
		if f.Err != nil {
			l += ": " + f.Err.Error()
		}
		lines = append(lines, l)
	}}
	if mod != nil {
		mod(&opts)
	}
	sum, err := syncer.Verify(context.Background(), r, s, d, opts)
	if err != nil {
		t.Fatalf("verify %s %s: %v", src, dst, err)
	}
	return sum, lines
}

func isDir(p string) bool {
	info, err := os.Stat(p)
	return err == nil && info.IsDir()
}

// keys lists a bucket's keys under prefix, sorted, without the prefix.
func markerKeys(objs map[string]int64, prefix string) string {
	var out []string
	for k := range objs {
		out = append(out, strings.TrimPrefix(k, prefix))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func mkdirs(t *testing.T, root string, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// outsideDir is a folder outside every tree under test holding a secret,
// the thing a followed link would upload.
func outsideDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	testfs.WriteFile(t, dir+"/id_rsa", "SECRET KEY")
	return dir
}

func keys(objs map[string]int64) []string {
	var out []string
	for k := range objs {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func lmtime(t *testing.T, path string) time.Time {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.ModTime()
}

func wantKeys(t *testing.T, d *drainEnv, what string, want ...string) {
	t.Helper()
	got := keys(d.srv.Objects(t, d.bucket, "w/"))
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("%s: bucket holds %q, want %q", what, got, want)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
