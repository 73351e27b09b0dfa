package syncer_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3sync/s3sync/internal/synctest"
	"github.com/s3sync/s3sync/internal/testfs"
	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/syncer"
)

// kmsView is a reverse proxy in front of the real server that answers as
// S3 does for SSE-KMS objects, which Versity Gateway does not encrypt: the
// same objects, bodies and stored checksums, but ETags that are not the
// MD5 of the content (in listings, HEAD, GET and PUT answers) and
// x-amz-server-side-encryption: aws:kms. Conditions carrying such an ETag
// are translated back on the way in.
type kmsView struct {
	url string

	mu     sync.Mutex
	toReal map[string]string // shown ETag -> the server's
	// noChecksum: keys answered without their stored checksum, as
	// objects stored before S3 kept one for every object are.
	noChecksum map[string]bool
}

var etagInXML = regexp.MustCompile(`<ETag>([^<]*)</ETag>`)

func newKMSView(t *testing.T, target string) *kmsView {
	t.Helper()
	v := &kmsView{toReal: map[string]string{}, noChecksum: map[string]bool{}}
	u, err := neturl.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(r *http.Response) error {
		if e := r.Header.Get("ETag"); e != "" && !r.Request.URL.Query().Has("partNumber") {
			r.Header.Set("ETag", v.shown(e))
		}
		if r.Request.Method == http.MethodHead || r.Request.Method == http.MethodGet && r.Request.URL.Query().Get("list-type") == "" {
			r.Header.Set("x-amz-server-side-encryption", "aws:kms")
			v.mu.Lock()
			bare := v.noChecksum[r.Request.URL.Path]
			v.mu.Unlock()
			if bare {
				r.Header.Del("x-amz-checksum-crc64nvme")
				r.Header.Del("x-amz-checksum-type")
			}
		}
		if r.Request.URL.Query().Get("list-type") != "2" {
			return nil
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return err
		}
		nb := etagInXML.ReplaceAllStringFunc(string(b), func(m string) string {
			real := etagInXML.FindStringSubmatch(m)[1]
			return "<ETag>" + v.shown(strings.ReplaceAll(real, "&#34;", `"`)) + "</ETag>"
		})
		r.Body = io.NopCloser(strings.NewReader(nb))
		r.ContentLength = int64(len(nb))
		r.Header.Set("Content-Length", fmt.Sprint(len(nb)))
		return nil
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, h := range []string{"If-Match", "x-amz-copy-source-if-match"} {
			if e := r.Header.Get(h); e != "" {
				r.Header.Set(h, v.real(e))
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	v.url = srv.URL
	return v
}

// shown is the ETag an SSE-KMS store would show for the server's: 32 hex
// digits that are not the content's MD5.
func (v *kmsView) shown(real string) string {
	sum := sha256.Sum256([]byte(real))
	e := `"` + hex.EncodeToString(sum[:16]) + `"`
	v.mu.Lock()
	v.toReal[e] = real
	v.mu.Unlock()
	return e
}

func (v *kmsView) real(shown string) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	if r, ok := v.toReal[shown]; ok {
		return r
	}
	return shown
}

// With SSE-KMS (or SSE-C) an object's ETag is not the MD5 of its content.
// reconcile --checksum must then neither send unchanged files again nor
// miss a changed one, and verify must not call identical content
// different: the store's CRC64NVME decides.
func TestChecksumWithEncryptedETags(t *testing.T) {
	e := synctest.NewEnv(t)
	dir := t.TempDir()
	testfs.WriteFile(t, dir+"/a.txt", "alpha")
	testfs.WriteFile(t, dir+"/b.txt", "bravo")
	big := strings.Repeat("0123456789abcdef", (6<<20)/16)
	testfs.WriteFile(t, dir+"/big.bin", big)
	url := "s3://" + e.Bucket + "/k"
	view := newKMSView(t, e.Srv.Endpoint)
	kms, err := remote.New(context.Background(), remote.Config{EndpointURL: view.url, MultipartThreshold: 5 << 20, PartSize: 5 << 20,
		SSE: remote.SSE{Algorithm: remote.SSEKMS}})
	if err != nil {
		t.Fatal(err)
	}
	synctest.RunSync(t, kms, dir, url, nil)
	checksum := func(o *syncer.Options) { o.Compare.Checksum = true }
	// An object another tool stored without a checksum: only its ETag
	// could tell, and it is not an MD5.
	testfs.WriteFile(t, dir+"/c.txt", "charlie")
	st, err := os.Stat(dir + "/c.txt")
	if err != nil {
		t.Fatal(err)
	}
	e.Srv.Put(t, e.Bucket, "k/c.txt", "charlie", map[string]string{"mtime": remote.FormatMtime(st.ModTime())})
	view.noChecksum["/"+e.Bucket+"/k/c.txt"] = true

	sum, lines := synctest.Verify(t, kms, dir, url, nil)
	if !sum.Identical() || sum.NotCheckable != 1 {
		t.Errorf("verify of identical content: %+v %q", sum, lines)
	}
	wantFindings(t, "verify", lines, "not_checkable c.txt: content not checkable (aws:kms object, whose ETag is not an MD5, and no stored CRC64NVME)")

	// Newer files, same content: nothing to send.
	later := time.Now().Add(time.Hour)
	for _, f := range []string{"a.txt", "b.txt", "big.bin"} {
		os.Chtimes(dir+"/"+f, later, later)
	}
	// c.txt's content is not known: sent, as --checksum does with unknowns.
	_, lines = synctest.RunSync(t, kms, dir, url, checksum)
	synctest.EqualLines(t, "--checksum, same content", lines, "upload "+dir+"/c.txt")
	view.noChecksum = map[string]bool{}
	if _, lines := synctest.RunSync(t, kms, dir, url, checksum); len(lines) != 0 {
		t.Errorf("--checksum sent files with the same content: %q", lines)
	}

	// One byte changed, size and mtime kept: sent.
	flipByte(t, dir+"/a.txt", 0)
	_, lines = synctest.RunSync(t, kms, dir, url, checksum)
	synctest.EqualLines(t, "--checksum after a change", lines, "upload "+dir+"/a.txt")
	if got, _ := e.Srv.Get(t, e.Bucket, "k/a.txt"); got != "\x9elpha" {
		t.Errorf("k/a.txt holds %q", got)
	}
}
