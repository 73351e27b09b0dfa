package syncer_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/internal/synctest"
	"github.com/s3sync/s3sync/internal/testfs"
	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/syncer"
)

func TestMain(m *testing.M) { s3test.Main(m) }

// The original notes' scenario: first sync, change things, sync without
// and with --delete, clone, copy; each re-sync transfers nothing.
func TestScenario(t *testing.T) {
	e := synctest.NewEnv(t)
	dir := t.TempDir()
	testfs.WriteFile(t, dir+"/a.txt", "alpha")
	testfs.WriteFile(t, dir+"/sub/b.txt", "bravo")
	testfs.WriteFile(t, dir+"/sub/deep/c.txt", "charlie")
	url := "s3://" + e.Bucket + "/folder"

	sum, lines := e.Sync(dir, url, nil)
	if sum.Uploaded != 3 || sum.Failed != 0 {
		t.Fatalf("first sync: %+v %q", sum, lines)
	}
	if _, lines = e.Sync(dir, url, nil); len(lines) != 0 {
		t.Errorf("re-sync right after a sync transferred: %q", lines)
	}

	testfs.WriteFile(t, dir+"/a.txt", "alpha, longer")
	testfs.WriteFile(t, dir+"/new.txt", "new")
	os.Remove(dir + "/sub/b.txt")
	_, lines = e.Sync(dir, url, nil)
	synctest.EqualLines(t, "sync after changes", lines, "upload "+dir+"/a.txt", "upload "+dir+"/new.txt")
	if _, ok := e.Srv.Objects(t, e.Bucket, "folder/")["folder/sub/b.txt"]; !ok {
		t.Error("without --delete, a file deleted locally was deleted from the bucket")
	}

	_, lines = e.Sync(dir, url, func(o *syncer.Options) { o.Delete = true })
	synctest.EqualLines(t, "sync --delete", lines, "delete "+url+"/sub/b.txt")

	clone := t.TempDir() + "/clone"
	sum, _ = e.Sync(url, clone, nil)
	if sum.Downloaded != 3 {
		t.Errorf("clone downloaded %d, want 3", sum.Downloaded)
	}
	if got, want := synctest.ReadTree(t, clone), synctest.ReadTree(t, dir); fmt.Sprint(got) != fmt.Sprint(want) {
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
	if _, lines = e.Sync(url, clone, nil); len(lines) != 0 {
		t.Errorf("re-sync of clone transferred: %q", lines)
	}

	copyURL := "s3://" + e.Bucket + "/copy"
	sum, _ = e.Sync(url, copyURL, nil)
	if sum.Copied != 3 {
		t.Errorf("copied %d, want 3", sum.Copied)
	}
	if _, lines = e.Sync(url, copyURL, nil); len(lines) != 0 {
		t.Errorf("re-copy transferred: %q", lines)
	}
	_, meta := e.Srv.Get(t, e.Bucket, "copy/a.txt")
	if meta["mtime"] == "" {
		t.Error("copy lost x-amz-meta-mtime")
	}
}

// Files written within the same second as their upload are not sent
// again on the next run (the AWS CLI re-sends them on stores whose
// LastModified has whole seconds).
func TestSameSecondNoResend(t *testing.T) {
	e := synctest.NewEnv(t)
	dir := t.TempDir()
	for i := range 20 {
		testfs.WriteFile(t, fmt.Sprintf("%s/f%02d", dir, i), "x")
	}
	url := "s3://" + e.Bucket
	e.Sync(dir, url, nil)
	for range 3 {
		if _, lines := e.Sync(dir, url, nil); len(lines) != 0 {
			t.Fatalf("re-sync transferred %d files: %q", len(lines), lines[:min(3, len(lines))])
		}
	}
}

// The local walk and the listing must agree on order, or a --delete run
// would delete and re-upload files whose names sort differently in a
// directory walk than in S3 ("a-b" < "a/x" < "a0").
func TestKeyOrderNames(t *testing.T) {
	e := synctest.NewEnv(t)
	dir := t.TempDir()
	names := []string{"a-b", "a.b", "a0", "a b", "a/x", "a/y-z", "a/y/z", "a~", "é", "ü/ö", "Z", "a+b", "a%41"}
	for _, n := range names {
		testfs.WriteFile(t, dir+"/"+n, n)
	}
	url := "s3://" + e.Bucket + "/p"
	sum, _ := e.Sync(dir, url, func(o *syncer.Options) { o.Delete = true })
	if sum.Uploaded != int64(len(names)) {
		t.Fatalf("uploaded %d of %d", sum.Uploaded, len(names))
	}
	_, lines := e.Sync(dir, url, func(o *syncer.Options) { o.Delete = true })
	if len(lines) != 0 {
		t.Errorf("second run with --delete did something: %q", lines)
	}
	clone := t.TempDir()
	e.Sync(url, clone, func(o *syncer.Options) { o.Delete = true })
	if _, lines = e.Sync(url, clone, func(o *syncer.Options) { o.Delete = true }); len(lines) != 0 {
		t.Errorf("second clone run with --delete did something: %q", lines)
	}
	if fmt.Sprint(synctest.ReadTree(t, clone)) != fmt.Sprint(synctest.ReadTree(t, dir)) {
		t.Error("clone differs from source")
	}
}

func TestFiltersAndDryRun(t *testing.T) {
	e := synctest.NewEnv(t)
	dir := t.TempDir()
	testfs.WriteFile(t, dir+"/keep.txt", "k")
	testfs.WriteFile(t, dir+"/debug.log", "l")
	testfs.WriteFile(t, dir+"/logs/x.log", "l")
	testfs.WriteFile(t, dir+"/logs/important.log", "i")
	url := "s3://" + e.Bucket
	filters := func(o *syncer.Options) {
		o.Filters = &syncer.Filters{}
		o.Filters.Add(false, "*.log")
		o.Filters.Add(true, "logs/important.log")
	}
	_, lines := e.Sync(dir, url, func(o *syncer.Options) { filters(o); o.DryRun = true })
	synctest.EqualLines(t, "dry run", lines, "upload "+dir+"/keep.txt", "upload "+dir+"/logs/important.log")
	if n := len(e.Srv.Objects(t, e.Bucket, "")); n != 0 {
		t.Fatalf("dry run uploaded %d objects", n)
	}
	e.Sync(dir, url, filters)
	got := e.Srv.Objects(t, e.Bucket, "")
	if len(got) != 2 || got["keep.txt"] == 0 || got["logs/important.log"] == 0 {
		t.Errorf("filtered upload: %v", got)
	}
	// An excluded object at the destination is never deleted.
	e.Srv.Put(t, e.Bucket, "remote-only.log", "r", nil)
	e.Srv.Put(t, e.Bucket, "remote-only.txt", "r", nil)
	_, lines = e.Sync(dir, url, func(o *syncer.Options) { filters(o); o.Delete = true })
	synctest.EqualLines(t, "delete with filters", lines, "delete "+url+"/remote-only.txt")
}

func TestSizeOnlyAndExactTimestamps(t *testing.T) {
	e := synctest.NewEnv(t)
	dir := t.TempDir()
	testfs.WriteFile(t, dir+"/f", "one")
	url := "s3://" + e.Bucket
	e.Sync(dir, url, nil)
	future := time.Now().Add(time.Hour)
	os.Chtimes(dir+"/f", future, future)
	if _, lines := e.Sync(dir, url, func(o *syncer.Options) { o.Compare.SizeOnly = true }); len(lines) != 0 {
		t.Errorf("--size-only sent a same-sized file: %q", lines)
	}
	if _, lines := e.Sync(dir, url, nil); len(lines) != 1 {
		t.Errorf("newer local file not sent: %q", lines)
	}

	clone := t.TempDir()
	e.Sync(url, clone, nil)
	// A same-sized local file with another (older) time: plain sync keeps
	// it, --exact-timestamps fetches the object again.
	past := time.Now().Add(-48 * time.Hour)
	os.WriteFile(clone+"/f", []byte("two"), 0o644)
	os.Chtimes(clone+"/f", past, past)
	if _, lines := e.Sync(url, clone, nil); len(lines) != 0 {
		t.Errorf("plain download replaced an older same-sized file: %q", lines)
	}
	_, lines := e.Sync(url, clone, func(o *syncer.Options) { o.Compare.ExactTimestamps = true })
	synctest.EqualLines(t, "--exact-timestamps", lines, "download "+url+"/f")
	if b, _ := os.ReadFile(clone + "/f"); string(b) != "one" {
		t.Errorf("content after --exact-timestamps: %q", b)
	}
	if _, lines := e.Sync(url, clone, func(o *syncer.Options) { o.Compare.ExactTimestamps = true }); len(lines) != 0 {
		t.Errorf("--exact-timestamps re-downloaded an identical file: %q", lines)
	}
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
	e := synctest.NewEnv(t)
	big := make([]byte, 64<<20)
	rand.Read(big)
	src := t.TempDir()
	os.WriteFile(src+"/big", big, 0o644)
	e.Sync(src, "s3://"+e.Bucket, nil)

	dst := t.TempDir()
	os.WriteFile(dst+"/big", []byte("the old version, kept until the new one is complete"), 0o644)
	s, _ := syncer.ParseEndpoint("s3://" + e.Bucket)
	d, _ := syncer.ParseEndpoint(dst)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sum, err := syncer.Reconcile(ctx, cancelAfter{e.Client, 8 << 20, cancel}, s, d, syncer.Options{})
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
	e.Sync("s3://"+e.Bucket, dst, nil)
	if b, _ := os.ReadFile(dst + "/big"); len(b) != len(big) {
		t.Errorf("after re-run: %d bytes", len(b))
	}
}
