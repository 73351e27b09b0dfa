package syncer_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3sync/s3sync/cache"
	"github.com/s3sync/s3sync/internal/testfs"
	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/syncer"
)

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

// A git repository after `git gc` (refs/heads and refs/tags empty) and a
// Maildir (new/ cur/ tmp/) survive an upload and a restore: their empty
// directories travel as "dir/" markers, only for the empty ones, and re-runs
// in either direction do nothing and print nothing.
func TestReconcileEmptyDirectories(t *testing.T) {
	e := newEnv(t)
	src := t.TempDir()
	testfs.WriteFile(t, src+"/repo/.git/HEAD", "ref: refs/heads/main\n")
	testfs.WriteFile(t, src+"/repo/.git/packed-refs", "abc refs/heads/main\n")
	mkdirs(t, src, "repo/.git/refs/heads", "repo/.git/refs/tags", "Maildir/new", "Maildir/cur", "Maildir/tmp", "a/b/c")
	old := time.Unix(1600000000, 0)
	os.Chtimes(src+"/Maildir/cur", old, old)
	url := "s3://" + e.bucket + "/m"

	sum, lines := e.sync(src, url, nil)
	if sum.Failed != 0 || sum.Skipped != 0 {
		t.Fatalf("upload: %+v %q", sum, lines)
	}
	want := "Maildir/cur/ Maildir/new/ Maildir/tmp/ a/b/c/ repo/.git/HEAD repo/.git/packed-refs repo/.git/refs/heads/ repo/.git/refs/tags/"
	if got := markerKeys(e.srv.Objects(t, e.bucket, "m/"), "m/"); got != want {
		t.Errorf("bucket after upload:\n got %s\nwant %s", got, want)
	}
	if _, lines = e.sync(src, url, func(o *syncer.Options) { o.Delete = true }); len(lines) != 0 {
		t.Errorf("re-upload with --delete did something: %q", lines)
	}
	if s, lines := verify(t, e.client, src, url, nil); !s.Identical() {
		t.Errorf("verify after upload: %+v %q", s, lines)
	}

	clone := t.TempDir() + "/clone"
	sum, lines = e.sync(url, clone, nil)
	if sum.Failed != 0 || sum.Skipped != 0 || sum.Downloaded != 8 {
		t.Errorf("restore: %+v %q", sum, lines)
	}
	for _, d := range []string{"repo/.git/refs/heads", "repo/.git/refs/tags", "Maildir/new", "Maildir/cur", "Maildir/tmp", "a/b/c"} {
		if !isDir(clone + "/" + d) {
			t.Errorf("restore lost the empty directory %s", d)
		}
	}
	if info, err := os.Stat(clone + "/Maildir/cur"); err != nil {
		t.Error(err)
	} else if !info.ModTime().Equal(old) {
		t.Errorf("restored Maildir/cur mtime: %v, want %v", info.ModTime(), old)
	}
	if _, lines = e.sync(url, clone, func(o *syncer.Options) { o.Delete = true }); len(lines) != 0 {
		t.Errorf("re-restore with --delete did something: %q", lines)
	}
	if s, lines := verify(t, e.client, url, clone, nil); !s.Identical() {
		t.Errorf("verify after restore: %+v %q", s, lines)
	}

	// A directory that got files keeps its marker; one that is gone
	// loses it with --delete.
	testfs.WriteFile(t, src+"/Maildir/new/1", "mail")
	os.Remove(src + "/a/b/c")
	_, lines = e.sync(src, url, func(o *syncer.Options) { o.Delete = true })
	equalLines(t, "upload --delete after changes", lines,
		"delete "+url+"/a/b/c/", "upload "+src+"/Maildir/new/1", "upload "+src+"/a/b/")
	if _, lines = e.sync(src, url, func(o *syncer.Options) { o.Delete = true }); len(lines) != 0 {
		t.Errorf("re-upload did something: %q", lines)
	}
	// The restore follows: a/b/c goes, a/b (empty now) stays.
	_, lines = e.sync(url, clone, func(o *syncer.Options) { o.Delete = true })
	equalLines(t, "download --delete after changes", lines,
		"delete "+clone+"/a/b/c/", "download "+url+"/Maildir/new/1")
	if !isDir(clone+"/a/b") || isDir(clone+"/a/b/c") {
		t.Error("download --delete: a/b/c should be gone and a/b kept")
	}
	if s, lines := verify(t, e.client, src, clone, nil); !s.Identical() {
		t.Errorf("verify source against restore: %+v %q", s, lines)
	}
}

// Markers made by consoles and other tools ("d/" and zero-byte "x/") are
// folders: downloading them never fails and never exits with "skipped";
// a local directory matches them even with files in it, and --delete
// leaves local directories the bucket holds files in.
func TestDownloadConsoleMarkers(t *testing.T) {
	e := newEnv(t)
	for _, k := range []string{"d/", "d/e/", "x/", "f/", "f/g", "h/i"} {
		body := ""
		if !strings.HasSuffix(k, "/") {
			body = "file " + k
		}
		e.srv.Put(t, e.bucket, k, body, nil)
	}
	url := "s3://" + e.bucket
	dst := t.TempDir()
	mkdirs(t, dst, "junk/empty", "h")
	sum, lines := e.sync(url, dst, func(o *syncer.Options) { o.Delete = true })
	if sum.Failed != 0 || sum.Skipped != 0 {
		t.Fatalf("download of console markers: %+v %q", sum, lines)
	}
	equalLines(t, "download", lines,
		"delete "+dst+"/junk/empty/", "delete "+dst+"/junk/",
		"download "+url+"/d/", "download "+url+"/d/e/", "download "+url+"/x/",
		"download "+url+"/f/", "download "+url+"/f/g", "download "+url+"/h/i")
	for _, d := range []string{"d/e", "x", "f", "h"} {
		if !isDir(dst + "/" + d) {
			t.Errorf("%s is not a directory", d)
		}
	}
	if _, lines = e.sync(url, dst, func(o *syncer.Options) { o.Delete = true }); len(lines) != 0 {
		t.Errorf("re-run did something: %q", lines)
	}
	if s, lines := verify(t, e.client, url, dst, nil); !s.Identical() {
		t.Errorf("verify: %+v %q", s, lines)
	}
	// And a copy to another prefix copies markers as the objects they are.
	sum, lines = e.sync(url, url+"/copy", func(o *syncer.Options) { o.Filters = &syncer.Filters{}; o.Filters.Add(false, "copy/*") })
	if sum.Copied != 6 || sum.Failed != 0 {
		t.Errorf("copy: %+v %q", sum, lines)
	}
}

// A "dir/" object with content (stores other than ours accept one) is made
// a folder with a warning that does not count as skipped.
func TestDownloadMarkerWithContent(t *testing.T) {
	c := fakeStore(t, "b", map[string]string{"dir/": "data", "dir/f": "file"})
	dst := t.TempDir()
	sum, lines := runSync(t, c, "s3://b", dst, nil)
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
	e := newEnv(t)
	src := t.TempDir()
	mkdirs(t, src, "kept", "full")
	testfs.WriteFile(t, src+"/full/f", "f")
	url := "s3://" + e.bucket
	e.sync(src, url, nil)
	e.srv.Put(t, e.bucket, "full/", "", nil) // a marker of a folder with files
	e.srv.Put(t, e.bucket, "gone/", "", nil)
	mkdirs(t, src, "new")
	s, lines := verify(t, e.client, src, url, nil)
	wantFindings(t, "verify", lines, "only_dst gone/", "only_src new/")
	if s.OnlySrc != 1 || s.OnlyDst != 1 || s.Identical() {
		t.Errorf("summary %+v", s)
	}
}

// The mount's drain keeps a marker for each empty directory: mkdir makes
// one, a removal that leaves a directory empty makes one (git gc empties
// refs/heads; a Maildir's tmp/ after delivery), rmdir and renames take
// them away with --delete, and a restore gives the directories back.
func TestDrainEmptyDirectories(t *testing.T) {
	d := newDrainEnv(t, syncer.DrainOptions{Delete: true, Settle: 10 * time.Millisecond})
	w := d.workdir
	bucketKeys := func() string { return markerKeys(d.srv.Objects(t, d.bucket, "w/"), "w/") }

	// Made with a file in it before the drain looks: no marker.
	testfs.WriteFile(t, w+"/repo/.git/refs/heads/main", "abc\n")
	d.j.Changed("repo")
	d.j.Changed("repo/.git")
	d.j.Changed("repo/.git/refs")
	d.j.Changed("repo/.git/refs/heads")
	d.j.Changed("repo/.git/refs/heads/main")
	for _, dir := range []string{"Maildir", "Maildir/new", "Maildir/cur", "Maildir/tmp"} {
		mkdirs(t, w, dir)
		d.j.Changed(dir)
	}
	d.waitIdle(t)
	if got, want := bucketKeys(), "Maildir/cur/ Maildir/new/ Maildir/tmp/ repo/.git/refs/heads/main"; got != want {
		t.Errorf("after mkdirs:\n got %s\nwant %s", got, want)
	}

	// git gc packs refs: refs/heads is left empty. Mail is delivered to
	// tmp/ and moved to new/. cur/ is removed.
	os.Remove(w + "/repo/.git/refs/heads/main")
	d.j.Removed("repo/.git/refs/heads/main", false)
	testfs.WriteFile(t, w+"/Maildir/tmp/1", "mail")
	d.j.Changed("Maildir/tmp/1")
	d.waitIdle(t)
	os.Rename(w+"/Maildir/tmp/1", w+"/Maildir/new/1")
	d.j.Renamed("Maildir/tmp/1", "Maildir/new/1", false)
	os.Remove(w + "/Maildir/cur")
	d.j.Removed("Maildir/cur", true)
	d.waitIdle(t)
	if got, want := bucketKeys(), "Maildir/new/ Maildir/new/1 Maildir/tmp/ repo/.git/refs/heads/"; got != want {
		t.Errorf("after gc, delivery and rmdir:\n got %s\nwant %s", got, want)
	}

	// A directory renamed with an empty directory in it.
	mkdirs(t, w, "proj/empty")
	testfs.WriteFile(t, w+"/proj/f", "f")
	d.j.Changed("proj")
	d.j.Changed("proj/empty")
	d.j.Changed("proj/f")
	d.waitIdle(t)
	os.Rename(w+"/proj", w+"/moved")
	d.j.Renamed("proj", "moved", true)
	d.waitIdle(t)
	if got, want := bucketKeys(), "Maildir/new/ Maildir/new/1 Maildir/tmp/ moved/empty/ moved/f repo/.git/refs/heads/"; got != want {
		t.Errorf("after a directory rename:\n got %s\nwant %s", got, want)
	}

	// An empty directory replaced by a file.
	os.Remove(w + "/moved/empty")
	d.j.Removed("moved/empty", true)
	testfs.WriteFile(t, w+"/moved/empty", "now a file")
	d.j.Changed("moved/empty")
	d.waitIdle(t)
	if got, want := bucketKeys(), "Maildir/new/ Maildir/new/1 Maildir/tmp/ moved/empty moved/f repo/.git/refs/heads/"; got != want {
		t.Errorf("after a directory became a file:\n got %s\nwant %s", got, want)
	}

	clone := t.TempDir()
	if sum, lines := runSync(t, d.client, "s3://"+d.bucket+"/w", clone, nil); sum.Failed != 0 || sum.Skipped != 0 {
		t.Fatalf("restore: %+v %q", sum, lines)
	}
	for _, dir := range []string{"repo/.git/refs/heads", "Maildir/tmp", "Maildir/new"} {
		if !isDir(clone + "/" + dir) {
			t.Errorf("restore lost %s", dir)
		}
	}
	if s, lines := verify(t, d.client, w, "s3://"+d.bucket+"/w", nil); !s.Identical() {
		t.Errorf("verify: %+v %q", s, lines)
	}
}

// Directories made and removed while nothing journaled them are found by
// the start-up scan, and the drain makes or deletes their markers.
func TestScanEmptyDirectories(t *testing.T) {
	d := newDrainEnv(t, syncer.DrainOptions{Delete: true, Settle: 10 * time.Millisecond})
	scan := func() {
		t.Helper()
		err := d.c.Scan(d.workdir, nil, func(p string) { d.j.Changed(p) }, func(p string) { d.j.Removed(p, false) })
		if err != nil {
			t.Fatal(err)
		}
		d.waitIdle(t)
	}
	mkdirs(t, d.workdir, "a/b", "c")
	testfs.WriteFile(t, d.workdir+"/c/f", "f")
	scan()
	if got, want := markerKeys(d.srv.Objects(t, d.bucket, "w/"), "w/"), "a/b/ c/f"; got != want {
		t.Errorf("after offline mkdir:\n got %s\nwant %s", got, want)
	}
	os.Remove(d.workdir + "/a/b")
	scan()
	if got, want := markerKeys(d.srv.Objects(t, d.bucket, "w/"), "w/"), "a/ c/f"; got != want {
		t.Errorf("after offline rmdir:\n got %s\nwant %s", got, want)
	}
}

// A first mount over a restored tree knows the markers already there, so
// the start-up scan has nothing to send for its empty directories.
func TestSeedCacheKnowsMarkers(t *testing.T) {
	e := newEnv(t)
	src := t.TempDir()
	mkdirs(t, src, "empty", "gone")
	e.sync(src, "s3://"+e.bucket, nil)
	os.Remove(src + "/gone")
	c := openCache(t)
	loc, _ := remote.ParseURL("s3://" + e.bucket)
	if _, err := syncer.SeedCache(context.Background(), e.client, c, src, loc); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := c.Get("empty/"); !ok {
		t.Error("the marker of an existing directory is not in the cache")
	}
	var events []string
	c.Scan(src, nil, func(p string) { events = append(events, "+"+p) }, func(p string) { events = append(events, "-"+p) })
	if len(events) != 0 {
		t.Errorf("scan after seeding: %q", events)
	}
}

// An empty directory's mode travels on its marker as rclone's mode key
// ("40700") and comes back on a restore: the permission bits always,
// setgid and sticky only with --metadata (Restore.Special), the owner only
// when asked and as root. A bucket-to-bucket copy keeps them.
func TestReconcileEmptyDirectoryModes(t *testing.T) {
	e := newEnv(t)
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
		mkdirs(t, src, c.dir)
		must(t, syscall.Chmod(src+"/"+c.dir, c.mode))
	}
	if root {
		must(t, os.Chown(src+"/private", 1234, 5678))
	}
	url := "s3://" + e.bucket + "/m"
	if sum, lines := e.sync(src, url, nil); sum.Failed != 0 || sum.Skipped != 0 || sum.Uploaded != int64(len(cases)) {
		t.Fatalf("upload: %+v %q", sum, lines)
	}
	uid, gid := strconv.Itoa(os.Geteuid()), strconv.Itoa(os.Getegid())
	for _, c := range cases {
		_, meta := e.srv.Get(t, e.bucket, "m/"+c.dir+"/")
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
		sum, lines := e.sync(url, clone, func(o *syncer.Options) { o.Restore = restore })
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

	if sum, lines := e.sync(url, url+"2", nil); sum.Copied != int64(len(cases)) || sum.Failed != 0 {
		t.Fatalf("copy: %+v %q", sum, lines)
	}
	for _, c := range cases {
		if _, meta := e.srv.Get(t, e.bucket, "m2/"+c.dir+"/"); meta["mode"] != c.meta {
			t.Errorf("copied marker %s/ holds mode %q, want %q", c.dir, meta["mode"], c.meta)
		}
	}
}

// A chmod (or chown) of an empty directory reaches its marker: through the
// mount (the journal records the directory) by putting the zero-byte marker
// again, and while unmounted through the start-up scan. A record with
// nothing changed puts nothing.
func TestDrainChmodEmptyDirectory(t *testing.T) {
	d, sr := newMetaDrain(t)
	dir := d.workdir + "/box"
	mkdirs(t, d.workdir, "box")
	must(t, os.Chmod(dir, 0o700))
	d.j.Changed("box")
	d.waitIdle(t)
	markerMode := func() string {
		t.Helper()
		_, meta := d.srv.Get(t, d.bucket, "w/box/")
		return meta["mode"]
	}
	if got := markerMode(); got != "40700" {
		t.Fatalf("mkdir: marker mode %q, want 40700", got)
	}

	must(t, os.Chmod(dir, 0o750))
	d.j.Changed("box")
	d.waitIdle(t)
	if got := markerMode(); got != "40750" {
		t.Errorf("chmod through the mount: marker mode %q, want 40750", got)
	}
	d.j.Changed("box") // nothing changed
	d.waitIdle(t)
	if n := sr.count("put start w/box/"); n != 2 {
		t.Errorf("%d marker PUTs, want 2 (mkdir, chmod)", n)
	}
	if e, ok, _ := d.c.Get("box/"); !ok || !e.Meta || e.Mode != 0o750 || e.Kind != cache.KindDir {
		t.Errorf("cache entry of the marker: %+v (found %v)", e, ok)
	}

	if os.Geteuid() == 0 {
		must(t, os.Chown(dir, 1234, 5678))
		d.j.Changed("box")
		d.waitIdle(t)
		if _, meta := d.srv.Get(t, d.bucket, "w/box/"); meta["uid"] != "1234" || meta["gid"] != "5678" {
			t.Errorf("chown through the mount: marker owner %s:%s, want 1234:5678", meta["uid"], meta["gid"])
		}
	}

	// Unmounted: only the start-up scan can see it.
	must(t, os.Chmod(dir, 0o755))
	err := d.c.Scan(d.workdir, nil, func(p string) { d.j.Changed(p) }, func(p string) { d.j.Removed(p, false) })
	if err != nil {
		t.Fatal(err)
	}
	d.waitIdle(t)
	if got := markerMode(); got != "40755" {
		t.Errorf("chmod while unmounted: marker mode %q, want 40755", got)
	}
}

// rmdir d; mkdir d coalesce into one removal of a directory, which is
// there again, empty: it needs its marker (make soak seed 15 of 25).
func TestDirectoryRemovedAndMadeAgain(t *testing.T) {
	d := newDrainEnv(t, syncer.DrainOptions{Delete: true, Settle: 200 * time.Millisecond})
	os.MkdirAll(d.workdir+"/a/d", 0o755)
	d.j.Changed("a")
	d.j.Changed("a/d")
	os.Remove(d.workdir + "/a/d")
	d.j.Removed("a/d", true)
	os.Mkdir(d.workdir+"/a/d", 0o755)
	d.j.Changed("a/d")
	d.waitIdle(t)
	if _, ok := d.srv.Objects(t, d.bucket, "w/")["w/a/d/"]; !ok {
		t.Errorf("no marker for the empty directory a/d: %v", d.srv.Objects(t, d.bucket, "w/"))
	}
}
