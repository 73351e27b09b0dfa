package mirror_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/s3sync/s3sync/cache"
	"github.com/s3sync/s3sync/internal/synctest"
	"github.com/s3sync/s3sync/internal/testfs"
	"github.com/s3sync/s3sync/mirror"
	"github.com/s3sync/s3sync/remote"
)

// The mount's drain keeps a marker for each empty directory: mkdir makes
// one, a removal that leaves a directory empty makes one (git gc empties
// refs/heads; a Maildir's tmp/ after delivery), rmdir and renames take
// them away with --delete, and a restore gives the directories back.
func TestDrainEmptyDirectories(t *testing.T) {
	d := newDrainEnv(t, mirror.DrainOptions{Delete: true, Settle: 10 * time.Millisecond})
	w := d.workdir
	// wantBucket checks the keys below w/, once the drain is idle.
	wantBucket := func(what, want string) {
		t.Helper()
		d.waitIdle(t)
		if got := synctest.MarkerKeys(d.Srv.Objects(t, d.Bucket, "w/"), "w/"); got != want {
			t.Errorf("%s:\n got %s\nwant %s", what, got, want)
		}
	}

	// Made with a file in it before the drain looks: no marker.
	testfs.WriteFile(t, w+"/repo/.git/refs/heads/main", "abc\n")
	d.j.Changed("repo")
	d.j.Changed("repo/.git")
	d.j.Changed("repo/.git/refs")
	d.j.Changed("repo/.git/refs/heads")
	d.j.Changed("repo/.git/refs/heads/main")
	for _, dir := range []string{"Maildir", "Maildir/new", "Maildir/cur", "Maildir/tmp"} {
		synctest.Mkdirs(t, w, dir)
		d.j.Changed(dir)
	}
	wantBucket("after mkdirs", "Maildir/cur/ Maildir/new/ Maildir/tmp/ repo/.git/refs/heads/main")

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
	wantBucket("after gc, delivery and rmdir", "Maildir/new/ Maildir/new/1 Maildir/tmp/ repo/.git/refs/heads/")

	// A directory renamed with an empty directory in it.
	synctest.Mkdirs(t, w, "proj/empty")
	testfs.WriteFile(t, w+"/proj/f", "f")
	d.j.Changed("proj")
	d.j.Changed("proj/empty")
	d.j.Changed("proj/f")
	d.waitIdle(t)
	os.Rename(w+"/proj", w+"/moved")
	d.j.Renamed("proj", "moved", true)
	wantBucket("after a directory rename", "Maildir/new/ Maildir/new/1 Maildir/tmp/ moved/empty/ moved/f repo/.git/refs/heads/")

	// An empty directory replaced by a file.
	os.Remove(w + "/moved/empty")
	d.j.Removed("moved/empty", true)
	testfs.WriteFile(t, w+"/moved/empty", "now a file")
	d.j.Changed("moved/empty")
	wantBucket("after a directory became a file", "Maildir/new/ Maildir/new/1 Maildir/tmp/ moved/empty moved/f repo/.git/refs/heads/")

	clone := t.TempDir()
	if sum, lines := synctest.RunSync(t, d.Client, "s3://"+d.Bucket+"/w", clone, nil); sum.Failed != 0 || sum.Skipped != 0 {
		t.Fatalf("restore: %+v %q", sum, lines)
	}
	for _, dir := range []string{"repo/.git/refs/heads", "Maildir/tmp", "Maildir/new"} {
		if !synctest.IsDir(clone + "/" + dir) {
			t.Errorf("restore lost %s", dir)
		}
	}
	if s, lines := synctest.Verify(t, d.Client, w, "s3://"+d.Bucket+"/w", nil); !s.Identical() {
		t.Errorf("verify: %+v %q", s, lines)
	}
}

// Directories made and removed while nothing journaled them are found by
// the start-up scan, and the drain makes or deletes their markers.
func TestScanEmptyDirectories(t *testing.T) {
	d := newDrainEnv(t, mirror.DrainOptions{Delete: true, Settle: 10 * time.Millisecond})
	scan := func() {
		t.Helper()
		err := d.c.Scan(d.workdir, nil, func(p string) { d.j.Changed(p) }, func(p string) { d.j.Removed(p, false) })
		if err != nil {
			t.Fatal(err)
		}
		d.waitIdle(t)
	}
	synctest.Mkdirs(t, d.workdir, "a/b", "c")
	testfs.WriteFile(t, d.workdir+"/c/f", "f")
	scan()
	if got, want := synctest.MarkerKeys(d.Srv.Objects(t, d.Bucket, "w/"), "w/"), "a/b/ c/f"; got != want {
		t.Errorf("after offline mkdir:\n got %s\nwant %s", got, want)
	}
	os.Remove(d.workdir + "/a/b")
	scan()
	if got, want := synctest.MarkerKeys(d.Srv.Objects(t, d.Bucket, "w/"), "w/"), "a/ c/f"; got != want {
		t.Errorf("after offline rmdir:\n got %s\nwant %s", got, want)
	}
}

// A first mount over a restored tree knows the markers already there, so
// the start-up scan has nothing to send for its empty directories.
func TestSeedCacheKnowsMarkers(t *testing.T) {
	e := synctest.NewEnv(t)
	src := t.TempDir()
	synctest.Mkdirs(t, src, "empty", "gone")
	e.Sync(src, "s3://"+e.Bucket, nil)
	os.Remove(src + "/gone")
	c := openCache(t)
	loc, _ := remote.ParseURL("s3://" + e.Bucket)
	if _, err := mirror.SeedCache(context.Background(), e.Client, c, src, loc); err != nil {
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

// A chmod (or chown) of an empty directory reaches its marker: through the
// mount (the journal records the directory) by putting the zero-byte marker
// again, and while unmounted through the start-up scan. A record with
// nothing changed puts nothing.
func TestDrainChmodEmptyDirectory(t *testing.T) {
	d, sr := newMetaDrain(t)
	dir := d.workdir + "/box"
	synctest.Mkdirs(t, d.workdir, "box")
	synctest.Must(t, os.Chmod(dir, 0o700))
	d.j.Changed("box")
	d.waitIdle(t)
	markerMode := func() string {
		t.Helper()
		_, meta := d.Srv.Get(t, d.Bucket, "w/box/")
		return meta["mode"]
	}
	if got := markerMode(); got != "40700" {
		t.Fatalf("mkdir: marker mode %q, want 40700", got)
	}

	synctest.Must(t, os.Chmod(dir, 0o750))
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
		synctest.Must(t, os.Chown(dir, 1234, 5678))
		d.j.Changed("box")
		d.waitIdle(t)
		if _, meta := d.Srv.Get(t, d.Bucket, "w/box/"); meta["uid"] != "1234" || meta["gid"] != "5678" {
			t.Errorf("chown through the mount: marker owner %s:%s, want 1234:5678", meta["uid"], meta["gid"])
		}
	}

	// Unmounted: only the start-up scan can see it.
	synctest.Must(t, os.Chmod(dir, 0o755))
	err := d.c.Scan(d.workdir, nil, func(p string) { d.j.Changed(p) }, func(p string) { d.j.Removed(p, false) })
	if err != nil {
		t.Fatal(err)
	}
	d.waitIdle(t)
	if got := markerMode(); got != "40755" {
		t.Errorf("chmod while unmounted: marker mode %q, want 40755", got)
	}
}
