package main

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/internal/testfs"
)

// Wrong --bwlimit and encryption flags: one line saying what is wrong,
// exit 2, nothing done, and never the key itself.
func TestCLITransferFlagErrors(t *testing.T) {
	srv := s3test.Get(t)
	ep := "--endpoint-url=" + srv.Endpoint
	dir := t.TempDir()
	key := "0123456789abcdef0123456789abcdef"
	keyFile := filepath.Join(dir, "key")
	testfs.WriteFile(t, keyFile, key+"\n") // 33 bytes: a newline too many
	mnt := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want []string // each in the one line
	}{
		{"bad rate", []string{"reconcile", "--bwlimit", "fast", dir, "s3://b/"}, []string{"--bwlimit", `"fast"`}},
		{"bad unit", []string{"reconcile", "--bwlimit", "10X", dir, "s3://b/"}, []string{"--bwlimit", "unit"}},
		{"bad time", []string{"reconcile", "--bwlimit", "25:00,1M", dir, "s3://b/"}, []string{"--bwlimit", "23:59"}},
		{"bad weekday", []string{"mount", "--bwlimit", "Mun-08:00,1M", dir, mnt, "s3://b/"}, []string{"--bwlimit", "weekday"}},
		{"bad sse", []string{"reconcile", "--sse", "aes128", dir, "s3://b/"}, []string{"--sse", "AES256", "aws:kms"}},
		{"kms key without kms", []string{"reconcile", "--sse-kms-key-id", "k", dir, "s3://b/"}, []string{"--sse-kms-key-id", "--sse aws:kms"}},
		{"kms key with AES256", []string{"mount", "--sse", "AES256", "--sse-kms-key-id", "k", dir, mnt, "s3://b/"}, []string{"--sse-kms-key-id", "--sse aws:kms"}},
		{"sse-c without key", []string{"reconcile", "--sse-c", "AES256", dir, "s3://b/"}, []string{"--sse-c", "--sse-c-key"}},
		{"key without sse-c", []string{"reconcile", "--sse-c-key", key, dir, "s3://b/"}, []string{"--sse-c-key", "--sse-c AES256"}},
		{"short key", []string{"reconcile", "--sse-c", "AES256", "--sse-c-key", "short", dir, "s3://b/"}, []string{"--sse-c-key", "5 bytes", "32"}},
		{"key file with newline", []string{"mount", "--sse-c", "AES256", "--sse-c-key", "fileb://" + keyFile, dir, mnt, "s3://b/"}, []string{"--sse-c-key", "33 bytes"}},
		{"missing key file", []string{"reconcile", "--sse-c", "AES256", "--sse-c-key", "fileb://" + dir + "/nope", dir, "s3://b/"}, []string{"--sse-c-key", "no such file"}},
		{"sse-c not AES256", []string{"reconcile", "--sse-c", "aws:kms", "--sse-c-key", key, dir, "s3://b/"}, []string{"--sse-c", "AES256"}},
		{"sse and sse-c", []string{"reconcile", "--sse", "AES256", "--sse-c", "AES256", "--sse-c-key", key, dir, "s3://b/"}, []string{"--sse", "--sse-c"}},
		{"copy source without key", []string{"reconcile", "--sse-c-copy-source", "AES256", "s3://a/", "s3://b/"}, []string{"--sse-c-copy-source", "--sse-c-copy-source-key"}},
		{"copy source key without algorithm", []string{"reconcile", "--sse-c-copy-source-key", key, "s3://a/", "s3://b/"}, []string{"--sse-c-copy-source-key", "--sse-c-copy-source AES256"}},
		{"verify short key", []string{"verify", "--sse-c", "AES256", "--sse-c-key", "short", dir, "s3://b/"}, []string{"--sse-c-key", "32"}},
		{"key over plain http", []string{"reconcile", "--endpoint-url=http://s3.example.com", "--sse-c", "AES256", "--sse-c-key", key, dir, "s3://b/"}, []string{"https://"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s3sync(t, append(tc.args, ep)...)
			if tc.name == "key over plain http" {
				r = s3sync(t, tc.args...) // its own endpoint
			}
			wantCode(t, r, 2)
			if r.stdout != "" {
				t.Fatalf("usage error printed to stdout\n%s", r)
			}
			lines := r.errLines()
			if len(lines) == 0 || len(lines) > 2 || !strings.HasPrefix(lines[0], "s3sync: ") {
				t.Fatalf("want one line saying what is wrong\n%s", r)
			}
			for _, w := range tc.want {
				if !strings.Contains(lines[0], w) {
					t.Fatalf("%q lacks %q\n%s", lines[0], w, r)
				}
			}
			if strings.Contains(r.stderr, key) {
				t.Fatalf("the key was printed\n%s", r)
			}
		})
	}
}

// reconcile --bwlimit: an upload of 4 MiB at 2 MiB/s does not finish in
// less than the 2 s the limit allows (less a little burst); without the
// limit it takes a fraction of that. Mount builds its client from the same
// flags (syncFlags) and the same code (transferFlags.applyMount).
func TestCLIReconcileBwLimit(t *testing.T) {
	srv := s3test.Get(t)
	ep := "--endpoint-url=" + srv.Endpoint
	b := srv.NewBucket(t)
	dir := t.TempDir()
	for _, name := range []string{"a.bin", "b.bin"} {
		data := make([]byte, 2<<20)
		rand.Read(data)
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	r := s3sync(t, "reconcile", ep, "--bwlimit", "2M:off", dir, "s3://"+b+"/")
	took := time.Since(start)
	wantCode(t, r, 0)
	wantSummary(t, r, "uploaded 2 files")
	t.Logf("4 MiB at --bwlimit 2M: %v", took)
	if took < 1800*time.Millisecond {
		t.Fatalf("4 MiB uploaded in %v with --bwlimit 2M: faster than the limit allows", took)
	}
	// Download: the limit's second half.
	clone := t.TempDir()
	start = time.Now()
	r = s3sync(t, "reconcile", ep, "--bwlimit", "off:2M", "s3://"+b+"/", clone)
	took = time.Since(start)
	wantCode(t, r, 0)
	t.Logf("4 MiB down at --bwlimit off:2M: %v", took)
	if took < 1800*time.Millisecond {
		t.Fatalf("4 MiB downloaded in %v with --bwlimit off:2M: faster than the limit allows", took)
	}
}

// headerLog is a reverse proxy in front of the real server that keeps
// each request's method, path and SSE headers.
type headerLog struct {
	url  string
	mu   sync.Mutex
	reqs []string // "METHOD /path copy=… key=… copykey=… sse=…"
}

func newHeaderLog(t *testing.T, target string) *headerLog {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	l := &headerLog{}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.Out.Host = pr.In.Host }}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header
		line := r.Method + " " + r.URL.Path
		if h.Get("x-amz-copy-source") != "" {
			line += " copy"
		}
		if k := h.Get("x-amz-server-side-encryption-customer-key"); k != "" {
			line += " key=" + k
		}
		if k := h.Get("x-amz-copy-source-server-side-encryption-customer-key"); k != "" {
			line += " copykey=" + k
		}
		if s := h.Get("x-amz-server-side-encryption"); s != "" {
			line += " sse=" + s
		}
		l.mu.Lock()
		l.reqs = append(l.reqs, line)
		l.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	l.url = srv.URL
	return l
}

// take returns the requests logged since the last call.
func (l *headerLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.reqs
	l.reqs = nil
	return out
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// --sse-c with a key file: uploads, downloads, verify and copies carry the
// key (copies also --sse-c-copy-source-key) on every object request;
// Versity ignores it, so the requests are checked on their way. Versity
// stores plain text and does not confirm encryption: reconcile says so.
func TestCLIReconcileSSEC(t *testing.T) {
	srv := s3test.Get(t)
	log := newHeaderLog(t, srv.Endpoint)
	ep := "--endpoint-url=" + log.url
	b := srv.NewBucket(t)
	dir := t.TempDir()
	testfs.WriteFile(t, filepath.Join(dir, "a.txt"), "alpha")
	key, other := strings.Repeat("k", 32), strings.Repeat("o", 32)
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	ssec := []string{"--sse-c", "AES256", "--sse-c-key", "fileb://" + keyFile}
	objects := func(reqs []string) []string { // requests on objects, not the bucket
		var out []string
		for _, r := range reqs {
			if strings.Count(r, "/") >= 2 {
				out = append(out, r)
			}
		}
		return out
	}
	wantAll := func(what string, reqs []string, parts ...string) {
		t.Helper()
		if len(reqs) == 0 {
			t.Fatalf("%s: no object requests", what)
		}
		for _, r := range reqs {
			for _, p := range parts {
				if !strings.Contains(r, p) {
					t.Errorf("%s: %q lacks %q", what, r, p)
				}
			}
		}
	}

	r := s3sync(t, append([]string{"reconcile", ep, dir, "s3://" + b + "/"}, ssec...)...)
	wantCode(t, r, 0)
	wantLines(t, r, "upload: "+dir+"/a.txt to s3://"+b+"/a.txt")
	if !strings.Contains(r.stderr, "did not confirm server-side encryption") {
		t.Errorf("a store that did not confirm encryption was not reported\n%s", r)
	}
	if strings.Contains(r.stderr, key) || strings.Contains(r.stderr, b64(key)) {
		t.Fatalf("the key was printed\n%s", r)
	}
	wantAll("upload", objects(log.take()), "PUT", "key="+b64(key))

	clone := t.TempDir()
	r = s3sync(t, append([]string{"reconcile", ep, "s3://" + b + "/", clone}, ssec...)...)
	wantCode(t, r, 0)
	wantAll("download", objects(log.take()), "GET", "key="+b64(key))
	if got := readFile(t, filepath.Join(clone, "a.txt")); got != "alpha" {
		t.Fatalf("downloaded %q", got)
	}

	r = s3sync(t, append([]string{"verify", ep, dir, "s3://" + b + "/"}, ssec...)...)
	wantCode(t, r, 0)
	wantAll("verify", objects(log.take()), "HEAD", "key="+b64(key))

	// s3 → s3: the source's key decrypts, the destination's encrypts.
	dst := srv.NewBucket(t)
	r = s3sync(t, "reconcile", ep, "--sse-c", "AES256", "--sse-c-key", other,
		"--sse-c-copy-source", "AES256", "--sse-c-copy-source-key", "fileb://"+keyFile, "s3://"+b+"/", "s3://"+dst+"/")
	wantCode(t, r, 0)
	wantLines(t, r, "copy: s3://"+b+"/a.txt to s3://"+dst+"/a.txt")
	wantAll("copy", objects(log.take()), "PUT", "copy", "key="+b64(other), "copykey="+b64(key))

	// --sse aws:kms reaches the request too.
	r = s3sync(t, "reconcile", ep, "--sse", "aws:kms", "--sse-kms-key-id", "alias/backup", dir, "s3://"+b+"/kms/")
	wantCode(t, r, 0)
	wantAll("upload with --sse aws:kms", objects(log.take()), "PUT", "sse=aws:kms")
}
