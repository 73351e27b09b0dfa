package syncer_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

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

// The original notes' scenario: first sync, change things, sync without
// and with --delete, clone, copy; each re-sync transfers nothing.
func TestScenario(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	testfs.WriteFile(t, dir+"/a.txt", "alpha")
	testfs.WriteFile(t, dir+"/sub/b.txt", "bravo")
	testfs.WriteFile(t, dir+"/sub/deep/c.txt", "charlie")
	url := "s3://" + e.bucket + "/folder"

	sum, lines := e.sync(dir, url, nil)
	if sum.Uploaded != 3 || sum.Failed != 0 {
		t.Fatalf("first sync: %+v %q", sum, lines)
	}
	if _, lines = e.sync(dir, url, nil); len(lines) != 0 {
		t.Errorf("re-sync right after a sync transferred: %q", lines)
	}

	testfs.WriteFile(t, dir+"/a.txt", "alpha, longer")
	testfs.WriteFile(t, dir+"/new.txt", "new")
	os.Remove(dir + "/sub/b.txt")
	_, lines = e.sync(dir, url, nil)
	equalLines(t, "sync after changes", lines, "upload "+dir+"/a.txt", "upload "+dir+"/new.txt")
	if _, ok := e.srv.Objects(t, e.bucket, "folder/")["folder/sub/b.txt"]; !ok {
		t.Error("without --delete, a file deleted locally was deleted from the bucket")
	}

	_, lines = e.sync(dir, url, func(o *syncer.Options) { o.Delete = true })
	equalLines(t, "sync --delete", lines, "delete "+url+"/sub/b.txt")

	clone := t.TempDir() + "/clone"
	sum, _ = e.sync(url, clone, nil)
	if sum.Downloaded != 3 {
		t.Errorf("clone downloaded %d, want 3", sum.Downloaded)
	}
	if got, want := readTree(t, clone), readTree(t, dir); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("clone differs:\n got %v\nwant %v", got, want)
	}
	// Downloads restore the source file's mtime from x-amz-meta-mtime.
	for _, name := range []string{"a.txt", "sub/deep/c.txt"} {
		a, _ := os.Stat(dir + "/" + name)
		b, _ := os.Stat(clone + "/" + name)
		if !a.ModTime().Equal(b.ModTime()) {
			t.Errorf("%s: clone mtime %v, source %v", name, b.ModTime(), a.ModTime())
		}
	}
	if _, lines = e.sync(url, clone, nil); len(lines) != 0 {
		t.Errorf("re-sync of clone transferred: %q", lines)
	}

	copyURL := "s3://" + e.bucket + "/copy"
	sum, _ = e.sync(url, copyURL, nil)
	if sum.Copied != 3 {
		t.Errorf("copied %d, want 3", sum.Copied)
	}
	if _, lines = e.sync(url, copyURL, nil); len(lines) != 0 {
		t.Errorf("re-copy transferred: %q", lines)
	}
	_, meta := e.srv.Get(t, e.bucket, "copy/a.txt")
	if meta["mtime"] == "" {
		t.Error("copy lost x-amz-meta-mtime")
	}
}

// Files written within the same second as their upload are not sent
// again on the next run (the AWS CLI re-sends them on stores whose
// LastModified has whole seconds).
func TestSameSecondNoResend(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	for i := range 20 {
		testfs.WriteFile(t, fmt.Sprintf("%s/f%02d", dir, i), "x")
	}
	url := "s3://" + e.bucket
	e.sync(dir, url, nil)
	for range 3 {
		if _, lines := e.sync(dir, url, nil); len(lines) != 0 {
			t.Fatalf("re-sync transferred %d files: %q", len(lines), lines[:min(3, len(lines))])
		}
	}
}

// The local walk and the listing must agree on order, or a --delete run
// would delete and re-upload files whose names sort differently in a
// directory walk than in S3 ("a-b" < "a/x" < "a0").
func TestKeyOrderNames(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	names := []string{"a-b", "a.b", "a0", "a b", "a/x", "a/y-z", "a/y/z", "a~", "é", "ü/ö", "Z", "a+b", "a%41"}
	for _, n := range names {
		testfs.WriteFile(t, dir+"/"+n, n)
	}
	url := "s3://" + e.bucket + "/p"
	sum, _ := e.sync(dir, url, func(o *syncer.Options) { o.Delete = true })
	if sum.Uploaded != int64(len(names)) {
		t.Fatalf("uploaded %d of %d", sum.Uploaded, len(names))
	}
	_, lines := e.sync(dir, url, func(o *syncer.Options) { o.Delete = true })
	if len(lines) != 0 {
		t.Errorf("second run with --delete did something: %q", lines)
	}
	clone := t.TempDir()
	e.sync(url, clone, func(o *syncer.Options) { o.Delete = true })
	if _, lines = e.sync(url, clone, func(o *syncer.Options) { o.Delete = true }); len(lines) != 0 {
		t.Errorf("second clone run with --delete did something: %q", lines)
	}
	if fmt.Sprint(readTree(t, clone)) != fmt.Sprint(readTree(t, dir)) {
		t.Error("clone differs from source")
	}
}

func TestFiltersAndDryRun(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	testfs.WriteFile(t, dir+"/keep.txt", "k")
	testfs.WriteFile(t, dir+"/debug.log", "l")
	testfs.WriteFile(t, dir+"/logs/x.log", "l")
	testfs.WriteFile(t, dir+"/logs/important.log", "i")
	url := "s3://" + e.bucket
	filters := func(o *syncer.Options) {
		o.Filters = &syncer.Filters{}
		o.Filters.Add(false, "*.log")
		o.Filters.Add(true, "logs/important.log")
	}
	_, lines := e.sync(dir, url, func(o *syncer.Options) { filters(o); o.DryRun = true })
	equalLines(t, "dry run", lines, "upload "+dir+"/keep.txt", "upload "+dir+"/logs/important.log")
	if n := len(e.srv.Objects(t, e.bucket, "")); n != 0 {
		t.Fatalf("dry run uploaded %d objects", n)
	}
	e.sync(dir, url, filters)
	got := e.srv.Objects(t, e.bucket, "")
	if len(got) != 2 || got["keep.txt"] == 0 || got["logs/important.log"] == 0 {
		t.Errorf("filtered upload: %v", got)
	}
	// An excluded object at the destination is never deleted.
	e.srv.Put(t, e.bucket, "remote-only.log", "r", nil)
	e.srv.Put(t, e.bucket, "remote-only.txt", "r", nil)
	_, lines = e.sync(dir, url, func(o *syncer.Options) { filters(o); o.Delete = true })
	equalLines(t, "delete with filters", lines, "delete "+url+"/remote-only.txt")
}

func TestSizeOnlyAndExactTimestamps(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	testfs.WriteFile(t, dir+"/f", "one")
	url := "s3://" + e.bucket
	e.sync(dir, url, nil)
	future := time.Now().Add(time.Hour)
	os.Chtimes(dir+"/f", future, future)
	if _, lines := e.sync(dir, url, func(o *syncer.Options) { o.Compare.SizeOnly = true }); len(lines) != 0 {
		t.Errorf("--size-only sent a same-sized file: %q", lines)
	}
	if _, lines := e.sync(dir, url, nil); len(lines) != 1 {
		t.Errorf("newer local file not sent: %q", lines)
	}

	clone := t.TempDir()
	e.sync(url, clone, nil)
	// A same-sized local file with another (older) time: plain sync keeps
	// it, --exact-timestamps fetches the object again.
	past := time.Now().Add(-48 * time.Hour)
	os.WriteFile(clone+"/f", []byte("two"), 0o644)
	os.Chtimes(clone+"/f", past, past)
	if _, lines := e.sync(url, clone, nil); len(lines) != 0 {
		t.Errorf("plain download replaced an older same-sized file: %q", lines)
	}
	_, lines := e.sync(url, clone, func(o *syncer.Options) { o.Compare.ExactTimestamps = true })
	equalLines(t, "--exact-timestamps", lines, "download "+url+"/f")
	if b, _ := os.ReadFile(clone + "/f"); string(b) != "one" {
		t.Errorf("content after --exact-timestamps: %q", b)
	}
	if _, lines := e.sync(url, clone, func(o *syncer.Options) { o.Compare.ExactTimestamps = true }); len(lines) != 0 {
		t.Errorf("--exact-timestamps re-downloaded an identical file: %q", lines)
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

func TestSpecialFilesAndSymlinks(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	testfs.WriteFile(t, dir+"/real/file.txt", "r")
	os.Symlink("real", dir+"/linkdir")
	os.Symlink("real/file.txt", dir+"/linkfile")
	os.Symlink("missing", dir+"/broken")
	os.Symlink(".", dir+"/real/loop")
	if err := syscall.Mkfifo(dir+"/fifo", 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", dir+"/sock")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	url := "s3://" + e.bucket
	sum, lines := e.sync(dir, url, nil)
	if sum.Uploaded != 3 {
		t.Errorf("uploaded %d, want 3 (file, through linkdir, linkfile): %q", sum.Uploaded, lines)
	}
	if sum.Skipped != 5 { // fifo, socket, broken link, the loop reached twice
		t.Errorf("skipped %d, want 5: %q", sum.Skipped, lines)
	}
	objs := e.srv.Objects(t, e.bucket, "")
	for _, k := range []string{"real/file.txt", "linkdir/file.txt", "linkfile"} {
		if _, ok := objs[k]; !ok {
			t.Errorf("%s not uploaded; have %v", k, objs)
		}
	}

	other := newEnv(t)
	sum, _ = runSync(t, other.client, dir, "s3://"+other.bucket, func(o *syncer.Options) { o.NoFollow = true })
	if sum.Uploaded != 1 {
		t.Errorf("--no-follow-symlinks uploaded %d, want 1", sum.Uploaded)
	}
}

func TestKeyTooLong(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	long := strings.Repeat("d", 200) + "/" + strings.Repeat("e", 200) + "/" + strings.Repeat("f", 200) + "/" +
		strings.Repeat("g", 200) + "/" + strings.Repeat("h", 200) + "/" + strings.Repeat("i", 100)
	testfs.WriteFile(t, dir+"/"+long, "x")
	testfs.WriteFile(t, dir+"/ok", "x")
	sum, lines := e.sync(dir, "s3://"+e.bucket+"/prefix", nil)
	if sum.Uploaded != 1 || sum.Skipped != 1 {
		t.Errorf("want 1 uploaded, 1 skipped: %+v %q", sum, lines)
	}
}

// A hostile or buggy store may list keys that point outside the
// destination. Real servers refuse to store them, so this one is an
// in-process gofakes3 that accepts any key.
func TestHostileKeysNeverEscape(t *testing.T) {
	objects := map[string]string{}
	for _, k := range []string{"../escape1", "a/../../escape2", "/abs", "a//b", "./x", "..", "ok/file", "a/./b", "x\x00y", "dir/"} {
		objects[k] = "pwned"
	}
	c := fakeStore(t, "evil", objects)
	base := t.TempDir()
	dst := base + "/inside/dst"
	sum, lines := runSync(t, c, "s3://evil", dst, nil)
	if sum.Downloaded != 2 {
		t.Errorf("downloaded %d, want only ok/file and the folder dir: %q", sum.Downloaded, lines)
	}
	// Everything but ok/file, the "dir/" folder marker (with content, which
	// is warned of and not counted) and "x\x00y" (which fails).
	if sum.Skipped != 7 {
		t.Errorf("skipped %d, want 7: %q", sum.Skipped, lines)
	}
	got := readTree(t, base)
	if len(got) != 1 || got["inside/dst/ok/file"] != "pwned" {
		t.Errorf("files written: %v", got)
	}
	if !isDir(dst + "/dir") {
		t.Error("the folder marker dir/ did not make a folder")
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "skipped "+"s3://evil/dir/") {
			continue
		}
		if strings.HasPrefix(l, "skipped") && !strings.Contains(l, "outside the destination") {
			t.Errorf("unclear message: %s", l)
		}
	}
}

// A bucket holding both x and x/y, as S3 can: x is downloaded as a file,
// the keys below it are skipped with a message that says why, every run.
// Neither real server here lists such a bucket: Versity Gateway's posix
// backend refuses x/y under a file x, and MinIO stores both but lists only
// x (HEAD finds x/y; ListObjectsV2 leaves it out). So the keys come from an
// in-process fake store.
func TestFileAndPrefixConflict(t *testing.T) {
	c := fakeStore(t, "b", map[string]string{"x": "file", "x-1": "other", "x/y": "below", "x/z/w": "deeper"})
	dst := t.TempDir()
	sum, lines := runSync(t, c, "s3://b", dst, nil)
	if sum.Downloaded != 2 || sum.Skipped != 2 || sum.Failed != 0 {
		t.Errorf("want 2 downloaded, 2 skipped: %+v %q", sum, lines)
	}
	if b, _ := os.ReadFile(dst + "/x"); string(b) != "file" {
		t.Errorf("x = %q", b)
	}
	// A second run says the same, rather than failing on the local file.
	sum2, lines2 := runSync(t, c, "s3://b", dst, nil)
	if sum2.Skipped != 2 || sum2.Failed != 0 || sum2.Downloaded != 0 {
		t.Errorf("re-run: %+v %q", sum2, lines2)
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "skipped") && !strings.Contains(l, "also holds s3://b/x as a file") {
			t.Errorf("unclear message: %s", l)
		}
	}
}

// fakeStore serves keys from an in-process gofakes3 on loopback: a store
// that accepts any key, as a malicious or buggy one might.
func fakeStore(t *testing.T, bucket string, objects map[string]string) *remote.Client {
	t.Helper()
	backend := s3mem.New()
	backend.CreateBucket(bucket)
	for k, v := range objects {
		if _, err := backend.PutObject(bucket, k, nil, strings.NewReader(v), int64(len(v)), nil); err != nil {
			t.Fatalf("put %q: %v", k, err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: gofakes3.New(backend).Server()}
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	c, err := remote.New(context.Background(), remote.Config{EndpointURL: "http://" + l.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// cancelAfter passes calls to the real client, but cancels the run once a
// download has written n bytes: an interruption in mid-transfer.
type cancelAfter struct {
	syncer.Remote
	n      int64
	cancel context.CancelFunc
}

type countingWriter struct {
	w       io.Writer
	left    int64
	cancel  context.CancelFunc
	stopped bool
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.left -= int64(n)
	if c.left <= 0 && !c.stopped {
		c.stopped = true
		c.cancel()
	}
	return n, err
}

func (c cancelAfter) Download(ctx context.Context, bucket, key, ifMatch string, w io.Writer) (remote.Info, error) {
	return c.Remote.Download(ctx, bucket, key, ifMatch, &countingWriter{w: w, left: c.n, cancel: c.cancel})
}

func TestInterruptedDownloadLeavesNoPartialFile(t *testing.T) {
	e := newEnv(t)
	big := make([]byte, 64<<20)
	rand.Read(big)
	src := t.TempDir()
	os.WriteFile(src+"/big", big, 0o644)
	e.sync(src, "s3://"+e.bucket, nil)

	dst := t.TempDir()
	os.WriteFile(dst+"/big", []byte("the old version, kept until the new one is complete"), 0o644)
	s, _ := syncer.ParseEndpoint("s3://" + e.bucket)
	d, _ := syncer.ParseEndpoint(dst)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sum, err := syncer.Reconcile(ctx, cancelAfter{e.client, 8 << 20, cancel}, s, d, syncer.Options{})
	if err == nil || sum.Downloaded != 0 {
		t.Fatalf("the interrupted run reports success: %+v, %v", sum, err)
	}
	ents, _ := os.ReadDir(dst)
	for _, en := range ents {
		if strings.HasPrefix(en.Name(), syncer.TempPrefix) {
			t.Errorf("temporary file left behind: %s", en.Name())
		}
	}
	if b, _ := os.ReadFile(dst + "/big"); !strings.HasPrefix(string(b), "the old version") {
		t.Errorf("the file under the real name is not the old version (%d bytes)", len(b))
	}
	// And the next run completes it.
	e.sync("s3://"+e.bucket, dst, nil)
	if b, _ := os.ReadFile(dst + "/big"); len(b) != len(big) {
		t.Errorf("after re-run: %d bytes", len(b))
	}
}
