package e2e

import (
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

// sseLog is a reverse proxy in front of the real server that notes, per
// object write, the SSE-C keys it carried.
type sseLog struct {
	url    string
	mu     sync.Mutex
	puts   []string // "PUT /b/k key=… copykey=…" (copykey only on copies)
	copies int
}

func newSSELog(t *testing.T, target string) *sseLog {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	l := &sseLog{}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.Out.Host = pr.In.Host }}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && !r.URL.Query().Has("partNumber") && strings.Count(r.URL.Path, "/") >= 2 {
			line := "PUT " + r.URL.Path + " key=" + r.Header.Get("x-amz-server-side-encryption-customer-key")
			l.mu.Lock()
			if r.Header.Get("x-amz-copy-source") != "" {
				line += " copykey=" + r.Header.Get("x-amz-copy-source-server-side-encryption-customer-key")
				l.copies++
			}
			l.puts = append(l.puts, line)
			l.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	l.url = srv.URL
	return l
}

// A mount with --sse-c sends its key with every upload, and decrypts the
// source of its own copies (a rename, a chmod) with the same key, as S3
// requires of an SSE-C source.
func TestMountSSECustomerKey(t *testing.T) {
	srv := s3test.Get(t)
	log := newSSELog(t, srv.Endpoint)
	key := strings.Repeat("m", 32)
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	m := newMount(t, srv.NewBucket(t), "--endpoint-url", log.url, "--sse-c", "AES256", "--sse-c-key", "fileb://"+keyFile)
	m.start()
	testfs.WriteFile(t, m.mountpoint+"/a.txt", "alpha")
	m.waitDrained(60 * time.Second)
	run(t, m.mountpoint, "mv", "a.txt", "b.txt")
	m.waitDrained(60 * time.Second)
	run(t, m.mountpoint, "chmod", "600", "b.txt")
	m.waitDrained(60 * time.Second)

	want := base64.StdEncoding.EncodeToString([]byte(key))
	log.mu.Lock()
	defer log.mu.Unlock()
	if log.copies == 0 {
		t.Fatalf("no server-side copy was made: %q\n%s", log.puts, m.log)
	}
	for _, p := range log.puts {
		if !strings.Contains(p, " key="+want) || strings.Contains(p, "copykey=") && !strings.Contains(p, "copykey="+want) {
			t.Errorf("%q: want the key on the write and as the copy source's", p)
		}
	}
}
