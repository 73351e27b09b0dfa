package syncer_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/s3sync/s3sync/internal/synctest"
	"github.com/s3sync/s3sync/internal/testfs"
	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/syncer"
)

func TestSpecialFilesAndSymlinks(t *testing.T) {
	e := synctest.NewEnv(t)
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
	url := "s3://" + e.Bucket
	sum, lines := e.Sync(dir, url, nil)
	if sum.Uploaded != 3 {
		t.Errorf("uploaded %d, want 3 (file, through linkdir, linkfile): %q", sum.Uploaded, lines)
	}
	if sum.Skipped != 5 { // fifo, socket, broken link, the loop reached twice
		t.Errorf("skipped %d, want 5: %q", sum.Skipped, lines)
	}
	objs := e.Srv.Objects(t, e.Bucket, "")
	for _, k := range []string{"real/file.txt", "linkdir/file.txt", "linkfile"} {
		if _, ok := objs[k]; !ok {
			t.Errorf("%s not uploaded; have %v", k, objs)
		}
	}

	other := synctest.NewEnv(t)
	sum, _ = synctest.RunSync(t, other.Client, dir, "s3://"+other.Bucket, func(o *syncer.Options) { o.NoFollow = true })
	if sum.Uploaded != 1 {
		t.Errorf("--no-follow-symlinks uploaded %d, want 1", sum.Uploaded)
	}
}

func TestKeyTooLong(t *testing.T) {
	e := synctest.NewEnv(t)
	dir := t.TempDir()
	long := strings.Repeat("d", 200) + "/" + strings.Repeat("e", 200) + "/" + strings.Repeat("f", 200) + "/" +
		strings.Repeat("g", 200) + "/" + strings.Repeat("h", 200) + "/" + strings.Repeat("i", 100)
	testfs.WriteFile(t, dir+"/"+long, "x")
	testfs.WriteFile(t, dir+"/ok", "x")
	sum, lines := e.Sync(dir, "s3://"+e.Bucket+"/prefix", nil)
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
	sum, lines := synctest.RunSync(t, c, "s3://evil", dst, nil)
	if sum.Downloaded != 2 {
		t.Errorf("downloaded %d, want only ok/file and the folder dir: %q", sum.Downloaded, lines)
	}
	// Everything but ok/file, the "dir/" folder marker (with content, which
	// is warned of and not counted) and "x\x00y" (which fails).
	if sum.Skipped != 7 {
		t.Errorf("skipped %d, want 7: %q", sum.Skipped, lines)
	}
	got := synctest.ReadTree(t, base)
	if len(got) != 1 || got["inside/dst/ok/file"] != "pwned" {
		t.Errorf("files written: %v", got)
	}
	if !synctest.IsDir(dst + "/dir") {
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
	sum, lines := synctest.RunSync(t, c, "s3://b", dst, nil)
	if sum.Downloaded != 2 || sum.Skipped != 2 || sum.Failed != 0 {
		t.Errorf("want 2 downloaded, 2 skipped: %+v %q", sum, lines)
	}
	if b, _ := os.ReadFile(dst + "/x"); string(b) != "file" {
		t.Errorf("x = %q", b)
	}
	// A second run says the same, rather than failing on the local file.
	sum2, lines2 := synctest.RunSync(t, c, "s3://b", dst, nil)
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
