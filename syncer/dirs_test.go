package syncer_test

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3sync/s3sync/internal/synctest"
	"github.com/s3sync/s3sync/internal/testfs"
	"github.com/s3sync/s3sync/syncer"
)

// A git repository after `git gc` (refs/heads and refs/tags empty) and a
// Maildir (new/ cur/ tmp/) survive an upload and a restore: their empty
// directories travel as "dir/" markers, only for the empty ones, and re-runs
// in either direction do nothing and print nothing.
func TestReconcileEmptyDirectories(t *testing.T) {
	e := synctest.NewEnv(t)
	src := t.TempDir()
	testfs.WriteFile(t, src+"/repo/.git/HEAD", "ref: refs/heads/main\n")
	testfs.WriteFile(t, src+"/repo/.git/packed-refs", "abc refs/heads/main\n")
	synctest.Mkdirs(t, src, "repo/.git/refs/heads", "repo/.git/refs/tags", "Maildir/new", "Maildir/cur", "Maildir/tmp", "a/b/c")
	old := time.Unix(1600000000, 0)
	os.Chtimes(src+"/Maildir/cur", old, old)
	url := "s3://" + e.Bucket + "/m"

	sum, lines := e.Sync(src, url, nil)
	if sum.Failed != 0 || sum.Skipped != 0 {
		t.Fatalf("upload: %+v %q", sum, lines)
	}
	want := "Maildir/cur/ Maildir/new/ Maildir/tmp/ a/b/c/ repo/.git/HEAD repo/.git/packed-refs repo/.git/refs/heads/ repo/.git/refs/tags/"
	if got := synctest.MarkerKeys(e.Srv.Objects(t, e.Bucket, "m/"), "m/"); got != want {
		t.Errorf("bucket after upload:\n got %s\nwant %s", got, want)
	}
	if _, lines = e.Sync(src, url, func(o *syncer.Options) { o.Delete = true }); len(lines) != 0 {
		t.Errorf("re-upload with --delete did something: %q", lines)
	}
	if s, lines := synctest.Verify(t, e.Client, src, url, nil); !s.Identical() {
		t.Errorf("verify after upload: %+v %q", s, lines)
	}

	clone := t.TempDir() + "/clone"
	sum, lines = e.Sync(url, clone, nil)
	if sum.Failed != 0 || sum.Skipped != 0 || sum.Downloaded != 8 {
		t.Errorf("restore: %+v %q", sum, lines)
	}
	for _, d := range []string{"repo/.git/refs/heads", "repo/.git/refs/tags", "Maildir/new", "Maildir/cur", "Maildir/tmp", "a/b/c"} {
		if !synctest.IsDir(clone + "/" + d) {
			t.Errorf("restore lost the empty directory %s", d)
		}
	}
	if info, err := os.Stat(clone + "/Maildir/cur"); err != nil {
		t.Error(err)
	} else if !info.ModTime().Equal(old) {
		t.Errorf("restored Maildir/cur mtime: %v, want %v", info.ModTime(), old)
	}
	if _, lines = e.Sync(url, clone, func(o *syncer.Options) { o.Delete = true }); len(lines) != 0 {
		t.Errorf("re-restore with --delete did something: %q", lines)
	}
	if s, lines := synctest.Verify(t, e.Client, url, clone, nil); !s.Identical() {
		t.Errorf("verify after restore: %+v %q", s, lines)
	}

	// A directory that got files keeps its marker; one that is gone
	// loses it with --delete.
	testfs.WriteFile(t, src+"/Maildir/new/1", "mail")
	os.Remove(src + "/a/b/c")
	_, lines = e.Sync(src, url, func(o *syncer.Options) { o.Delete = true })
	synctest.EqualLines(t, "upload --delete after changes", lines,
		"delete "+url+"/a/b/c/", "upload "+src+"/Maildir/new/1", "upload "+src+"/a/b/")
	if _, lines = e.Sync(src, url, func(o *syncer.Options) { o.Delete = true }); len(lines) != 0 {
		t.Errorf("re-upload did something: %q", lines)
	}
	// The restore follows: a/b/c goes, a/b (empty now) stays.
	_, lines = e.Sync(url, clone, func(o *syncer.Options) { o.Delete = true })
	synctest.EqualLines(t, "download --delete after changes", lines,
		"delete "+clone+"/a/b/c/", "download "+url+"/Maildir/new/1")
	if !synctest.IsDir(clone+"/a/b") || synctest.IsDir(clone+"/a/b/c") {
		t.Error("download --delete: a/b/c should be gone and a/b kept")
	}
	if s, lines := synctest.Verify(t, e.Client, src, clone, nil); !s.Identical() {
		t.Errorf("verify source against restore: %+v %q", s, lines)
	}
}

// Markers made by consoles and other tools ("d/" and zero-byte "x/") are
// folders: downloading them never fails and never exits with "skipped";
// a local directory matches them even with files in it, and --delete
// leaves local directories the bucket holds files in.
func TestDownloadConsoleMarkers(t *testing.T) {
	e := synctest.NewEnv(t)
	for _, k := range []string{"d/", "d/e/", "x/", "f/", "f/g", "h/i"} {
		body := ""
		if !strings.HasSuffix(k, "/") {
			body = "file " + k
		}
		e.Srv.Put(t, e.Bucket, k, body, nil)
	}
	url := "s3://" + e.Bucket
	dst := t.TempDir()
	synctest.Mkdirs(t, dst, "junk/empty", "h")
	sum, lines := e.Sync(url, dst, func(o *syncer.Options) { o.Delete = true })
	if sum.Failed != 0 || sum.Skipped != 0 {
		t.Fatalf("download of console markers: %+v %q", sum, lines)
	}
	synctest.EqualLines(t, "download", lines,
		"delete "+dst+"/junk/empty/", "delete "+dst+"/junk/",
		"download "+url+"/d/", "download "+url+"/d/e/", "download "+url+"/x/",
		"download "+url+"/f/", "download "+url+"/f/g", "download "+url+"/h/i")
	for _, d := range []string{"d/e", "x", "f", "h"} {
		if !synctest.IsDir(dst + "/" + d) {
			t.Errorf("%s is not a directory", d)
		}
	}
	if _, lines = e.Sync(url, dst, func(o *syncer.Options) { o.Delete = true }); len(lines) != 0 {
		t.Errorf("re-run did something: %q", lines)
	}
	if s, lines := synctest.Verify(t, e.Client, url, dst, nil); !s.Identical() {
		t.Errorf("verify: %+v %q", s, lines)
	}
	// And a copy to another prefix copies markers as the objects they are.
	sum, lines = e.Sync(url, url+"/copy", func(o *syncer.Options) { o.Filters = &syncer.Filters{}; o.Filters.Add(false, "copy/*") })
	if sum.Copied != 6 || sum.Failed != 0 {
		t.Errorf("copy: %+v %q", sum, lines)
	}
}

// A "dir/" object with content (stores other than ours accept one) is made
// a folder with a warning that does not count as skipped.
func TestDownloadMarkerWithContent(t *testing.T) {
	c := fakeStore(t, "b", map[string]string{"dir/": "data", "dir/f": "file"})
	dst := t.TempDir()
	sum, lines := synctest.RunSync(t, c, "s3://b", dst, nil)
	if sum.Skipped != 0 || sum.Failed != 0 || sum.Downloaded != 2 {
		t.Errorf("want 2 downloaded, nothing skipped: %+v %q", sum, lines)
	}
	found := false
	for _, l := range lines {
		found = found || strings.HasPrefix(l, "skipped s3://b/dir/: its 4 bytes are not written")
	}
	if !found {
		t.Errorf("no warning about the marker's content: %q", lines)
	}
}

// verify: an empty local directory needs its marker (a restore would lose
// it otherwise); a marker needs its directory.
func TestVerifyEmptyDirectories(t *testing.T) {
	e := synctest.NewEnv(t)
	src := t.TempDir()
	synctest.Mkdirs(t, src, "kept", "full")
	testfs.WriteFile(t, src+"/full/f", "f")
	url := "s3://" + e.Bucket
	e.Sync(src, url, nil)
	e.Srv.Put(t, e.Bucket, "full/", "", nil) // a marker of a folder with files
	e.Srv.Put(t, e.Bucket, "gone/", "", nil)
	synctest.Mkdirs(t, src, "new")
	s, lines := synctest.Verify(t, e.Client, src, url, nil)
	wantFindings(t, "verify", lines, "only_dst gone/", "only_src new/")
	if s.OnlySrc != 1 || s.OnlyDst != 1 || s.Identical() {
		t.Errorf("summary %+v", s)
	}
}

// An empty directory's mode travels on its marker as rclone's mode key
// ("40700") and comes back on a restore: the permission bits always,
// setgid and sticky only with --metadata (Restore.Special), the owner only
// when asked and as root. A bucket-to-bucket copy keeps them.
func TestReconcileEmptyDirectoryModes(t *testing.T) {
	e := synctest.NewEnv(t)
	src := t.TempDir()
	root := os.Geteuid() == 0
	cases := []struct {
		dir     string
		mode    uint32 // set on the source directory
		meta    string // the marker's x-amz-meta-mode
		plain   uint32 // restored without --metadata
		special uint32 // restored with --metadata
	}{
		{"private", 0o700, "40700", 0o700, 0o700},
		{"shared", 0o775, "40775", 0o775, 0o775},
		{"tmp", 0o1777, "41777", 0o777, 0o1777},
		{"team", 0o2750, "42750", 0o750, 0o2750},
	}
	for _, c := range cases {
		synctest.Mkdirs(t, src, c.dir)
		synctest.Must(t, syscall.Chmod(src+"/"+c.dir, c.mode))
	}
	if root {
		synctest.Must(t, os.Chown(src+"/private", 1234, 5678))
	}
	url := "s3://" + e.Bucket + "/m"
	if sum, lines := e.Sync(src, url, nil); sum.Failed != 0 || sum.Skipped != 0 || sum.Uploaded != int64(len(cases)) {
		t.Fatalf("upload: %+v %q", sum, lines)
	}
	uid, gid := strconv.Itoa(os.Geteuid()), strconv.Itoa(os.Getegid())
	for _, c := range cases {
		_, meta := e.Srv.Get(t, e.Bucket, "m/"+c.dir+"/")
		wantUID, wantGID := uid, gid
		if root && c.dir == "private" {
			wantUID, wantGID = "1234", "5678"
		}
		if meta["mode"] != c.meta || meta["uid"] != wantUID || meta["gid"] != wantGID {
			t.Errorf("marker %s/ holds mode %q owner %s:%s, want %q %s:%s", c.dir, meta["mode"], meta["uid"], meta["gid"], c.meta, wantUID, wantGID)
		}
	}

	check := func(what, clone string, restore syncer.Restore) {
		t.Helper()
		sum, lines := e.Sync(url, clone, func(o *syncer.Options) { o.Restore = restore })
		if sum.Failed != 0 || sum.Skipped != 0 || sum.Downloaded != int64(len(cases)) {
			t.Fatalf("%s: %+v %q", what, sum, lines)
		}
		for _, c := range cases {
			want := c.plain
			if restore.Special {
				want = c.special
			}
			mode, u, g := statMode(t, clone+"/"+c.dir)
			if mode != want {
				t.Errorf("%s: %s has mode %04o, want %04o", what, c.dir, mode, want)
			}
			if restore.Owner && c.dir == "private" && (u != 1234 || g != 5678) {
				t.Errorf("%s: %s is owned by %d:%d, want 1234:5678", what, c.dir, u, g)
			}
		}
	}
	check("restore", t.TempDir()+"/plain", syncer.Restore{})
	check("restore --metadata", t.TempDir()+"/meta", syncer.Restore{Special: true, Owner: root})

	if sum, lines := e.Sync(url, url+"2", nil); sum.Copied != int64(len(cases)) || sum.Failed != 0 {
		t.Fatalf("copy: %+v %q", sum, lines)
	}
	for _, c := range cases {
		if _, meta := e.Srv.Get(t, e.Bucket, "m2/"+c.dir+"/"); meta["mode"] != c.meta {
			t.Errorf("copied marker %s/ holds mode %q, want %q", c.dir, meta["mode"], c.meta)
		}
	}
}
