package syncer_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s3sync/s3sync/internal/synctest"
	"github.com/s3sync/s3sync/internal/testfs"
	"github.com/s3sync/s3sync/syncer"
)

// A bucket holding a link "a" (a.rclonelink, to a folder outside) and keys
// below "a/" gets the link, and nothing written through it.
func TestDownloadLinkAndKeysBelowIt(t *testing.T) {
	e := synctest.NewEnv(t)
	out := synctest.OutsideDir(t)
	e.Srv.Put(t, e.Bucket, "a.rclonelink", out, nil)
	e.Srv.Put(t, e.Bucket, "a/id_rsa", "from the bucket", nil)
	dst := t.TempDir()
	sum, lines := e.Sync("s3://"+e.Bucket, dst, func(o *syncer.Options) { o.Links = true })
	if sum.Downloaded != 1 || sum.Skipped != 1 {
		t.Errorf("want the link downloaded, a/id_rsa skipped: %+v %q", sum, lines)
	}
	if got := synctest.ReadTree(t, out); len(got) != 1 || got["id_rsa"] != "SECRET KEY" {
		t.Errorf("outside the destination: %v", got)
	}
	if target, err := os.Readlink(dst + "/a"); err != nil || target != out {
		t.Errorf("a: link to %q, %v", target, err)
	}
}

// reconcile --links stores links as links and gives them back as links;
// without it, uploads follow links as aws s3 sync does and .rclonelink
// objects download as plain files. verify --links proves both ends equal.
// Keys sort a link "x" as "x.rclonelink" among its siblings, so re-runs
// transfer and delete nothing.
func TestReconcileLinksRoundTrip(t *testing.T) {
	e := synctest.NewEnv(t)
	out := synctest.OutsideDir(t)
	src := t.TempDir()
	testfs.WriteFile(t, src+"/f.txt", "file")
	for _, name := range []string{"x-", "x.a", "x.q/in", "x.s", "x0"} {
		testfs.WriteFile(t, src+"/"+name, name)
	}
	synctest.Must(t, os.Symlink("f.txt", src+"/x"))
	synctest.Must(t, os.Symlink(out, src+"/home"))
	synctest.Must(t, os.Symlink("../f.txt", src+"/x.q/up"))
	synctest.Must(t, os.Symlink("missing", src+"/dangling"))
	url := "s3://" + e.Bucket + "/p"
	links := func(o *syncer.Options) { o.Links = true; o.Delete = true }

	sum, lines := e.Sync(src, url, links)
	if sum.Uploaded != 10 || sum.Skipped != 0 || sum.Failed != 0 {
		t.Errorf("upload --links: %+v %q", sum, lines)
	}
	got := synctest.Keys(e.Srv.Objects(t, e.Bucket, "p/"))
	want := "p/dangling.rclonelink p/f.txt p/home.rclonelink p/x- p/x.a p/x.q/in p/x.q/up.rclonelink p/x.rclonelink p/x.s p/x0"
	if strings.Join(got, " ") != want {
		t.Errorf("bucket holds %q\nwant %q", got, want)
	}
	if body, _ := e.Srv.Get(t, e.Bucket, "p/home.rclonelink"); body != out {
		t.Errorf("home.rclonelink = %q, want %q", body, out)
	}
	if lines[0] != "upload "+src+"/dangling" {
		t.Errorf("a link is shown by its name: %q", lines[0])
	}
	if sum, lines := e.Sync(src, url, links); sum != (syncer.Summary{}) {
		t.Errorf("second upload --links: %+v %q", sum, lines)
	}
	if vs, vl := synctest.Verify(t, e.Client, src, url, func(o *syncer.VerifyOptions) { o.Links = true }); !vs.Identical() || vs.Checked != 10 {
		t.Errorf("verify --links after upload: %+v %q", vs, vl)
	}

	dst := t.TempDir()
	sum, lines = e.Sync(url, dst, links)
	if sum.Downloaded != 10 || sum.Skipped != 0 || sum.Failed != 0 {
		t.Errorf("download --links: %+v %q", sum, lines)
	}
	for _, l := range []string{"x", "home", "x.q/up", "dangling"} {
		want, _ := os.Readlink(src + "/" + l)
		if got, err := os.Readlink(dst + "/" + l); err != nil || got != want {
			t.Errorf("%s downloaded as link to %q (%v), want %q", l, got, err, want)
		}
		if !synctest.Lmtime(t, dst+"/"+l).Equal(synctest.Lmtime(t, src+"/"+l)) {
			t.Errorf("%s: mtime %v, want the link's %v", l, synctest.Lmtime(t, dst+"/"+l), synctest.Lmtime(t, src+"/"+l))
		}
	}
	if sum, lines := e.Sync(url, dst, links); sum != (syncer.Summary{}) {
		t.Errorf("second download --links: %+v %q", sum, lines)
	}
	if vs, vl := synctest.Verify(t, e.Client, url, dst, func(o *syncer.VerifyOptions) { o.Links = true }); !vs.Identical() || vs.Checked != 10 {
		t.Errorf("verify --links after download: %+v %q", vs, vl)
	}

	// A link retargeted to a name of the same length is sent again.
	synctest.Must(t, os.Remove(src+"/x"))
	synctest.Must(t, os.Symlink("x.a", src+"/x"))
	past := time.Now().Add(-time.Hour)
	ts := []unix.Timespec{unix.NsecToTimespec(past.UnixNano()), unix.NsecToTimespec(past.UnixNano())}
	synctest.Must(t, unix.UtimesNanoAt(unix.AT_FDCWD, src+"/x", ts, unix.AT_SYMLINK_NOFOLLOW))
	if sum, lines := e.Sync(src, url, links); sum.Uploaded != 1 {
		t.Errorf("retargeted link: %+v %q", sum, lines)
	}

	plain := t.TempDir()
	e.Sync(url, plain, nil)
	if b, err := os.ReadFile(plain + "/home.rclonelink"); err != nil || string(b) != out {
		t.Errorf("without --links, home.rclonelink downloads as a file holding the target: %q, %v", b, err)
	}
	if _, err := os.Lstat(plain + "/home"); err == nil {
		t.Error("without --links, a link was made")
	}
}

// A symlink in the download's destination that leads to a folder outside
// it is never written through, and --delete lists and deletes nothing
// below it; the keys it would have taken are reported as skipped. With
// --links and --delete, a link the bucket does not hold is deleted (the
// link, not what it points to) and the folder made in its place.
func TestDownloadNeverThroughLinkOutside(t *testing.T) {
	for _, tc := range []struct {
		name                string
		links, delete       bool
		downloaded, skipped int64
		deleted             int64
		linkKept            bool
	}{
		{"follow", false, false, 1, 1, 0, true},
		{"follow --delete", false, true, 1, 1, 0, true},
		{"--links", true, false, 1, 1, 0, true},
		{"--links --delete", true, true, 2, 0, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := synctest.NewEnv(t)
			out := synctest.OutsideDir(t)
			e.Srv.Put(t, e.Bucket, "a/id_rsa", "from the bucket", nil)
			e.Srv.Put(t, e.Bucket, "b", "b", nil)
			dst := t.TempDir()
			synctest.Must(t, os.Symlink(out, dst+"/a"))
			testfs.WriteFile(t, out+"/other", "kept")
			sum, lines := e.Sync("s3://"+e.Bucket, dst, func(o *syncer.Options) { o.Delete = tc.delete; o.Links = tc.links })
			if got := synctest.ReadTree(t, out); len(got) != 2 || got["id_rsa"] != "SECRET KEY" || got["other"] != "kept" {
				t.Errorf("outside the destination: %v", got)
			}
			if sum.Downloaded != tc.downloaded || sum.Skipped != tc.skipped || sum.Deleted != tc.deleted || sum.Failed != 0 {
				t.Errorf("want %d downloaded, %d skipped, %d deleted: %+v %q", tc.downloaded, tc.skipped, tc.deleted, sum, lines)
			}
			for _, l := range lines {
				if strings.HasPrefix(l, "skipped") && !strings.Contains(l, dst+"/a is a symlink") {
					t.Errorf("unclear message: %s", l)
				}
			}
			target, err := os.Readlink(dst + "/a")
			if tc.linkKept && (err != nil || target != out) {
				t.Errorf("the link itself: %q, %v", target, err)
			}
			if !tc.linkKept {
				if b, err := os.ReadFile(dst + "/a/id_rsa"); err != nil || string(b) != "from the bucket" {
					t.Errorf("a/id_rsa in the folder that replaced the link: %q, %v", b, err)
				}
			}
		})
	}
}
