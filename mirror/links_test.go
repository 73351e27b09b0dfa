package mirror_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s3sync/s3sync/cache"
	"github.com/s3sync/s3sync/internal/synctest"
	"github.com/s3sync/s3sync/internal/testfs"
	"github.com/s3sync/s3sync/mirror"
	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/syncer"
)

// The mount's drain stores a symlink as its .rclonelink object and never
// follows it: a link to a folder outside WORKDIR uploads only where it
// points. Its removal, and a change of kind either way, take the old
// object away (--delete); a renamed folder's links move as links.
func TestDrainSymlinksStoredAsLinks(t *testing.T) {
	d := newDrainEnv(t, mirror.DrainOptions{Delete: true, Settle: 10 * time.Millisecond})
	out := synctest.OutsideDir(t)
	w := d.workdir
	testfs.WriteFile(t, w+"/f.txt", "file")
	synctest.Must(t, os.Symlink(out, w+"/home"))
	synctest.Must(t, os.Symlink("f.txt", w+"/rel"))
	for _, p := range []string{"f.txt", "home", "rel"} {
		d.j.Changed(p)
	}
	d.waitIdle(t)
	wantKeys(t, d, "first sync", "w/f.txt", "w/home.rclonelink", "w/rel.rclonelink")
	body, meta := d.Srv.Get(t, d.Bucket, "w/home.rclonelink")
	if body != out {
		t.Errorf("home.rclonelink holds %q, want the link's target %q", body, out)
	}
	if got, _ := remote.ParseMtime(meta["mtime"]); !got.Equal(synctest.Lmtime(t, w+"/home")) {
		t.Errorf("home.rclonelink mtime %v, want the link's own %v", got, synctest.Lmtime(t, w+"/home"))
	}
	if body, _ := d.Srv.Get(t, d.Bucket, "w/rel.rclonelink"); body != "f.txt" {
		t.Errorf("rel.rclonelink holds %q", body)
	}

	// rm of the link; the link becomes a file, then a link again.
	synctest.Must(t, os.Remove(w+"/home"))
	d.j.Removed("home", false)
	synctest.Must(t, os.Remove(w+"/rel"))
	testfs.WriteFile(t, w+"/rel", "now a file")
	d.j.Changed("rel")
	d.waitIdle(t)
	wantKeys(t, d, "link removed, link replaced by a file", "w/f.txt", "w/rel")
	synctest.Must(t, os.Remove(w+"/rel"))
	synctest.Must(t, os.Symlink("f.txt", w+"/rel"))
	d.j.Changed("rel")
	d.waitIdle(t)
	wantKeys(t, d, "file replaced by a link", "w/f.txt", "w/rel.rclonelink")

	// A folder with a link to outside renamed, then removed.
	testfs.WriteFile(t, w+"/dir/g", "g")
	synctest.Must(t, os.Symlink(out, w+"/dir/up"))
	d.j.Changed("dir/g")
	d.j.Changed("dir/up")
	d.waitIdle(t)
	synctest.Must(t, os.Rename(w+"/dir", w+"/moved"))
	d.j.Renamed("dir", "moved", true)
	d.waitIdle(t)
	wantKeys(t, d, "folder with a link renamed", "w/f.txt", "w/moved/g", "w/moved/up.rclonelink", "w/rel.rclonelink")
	synctest.Must(t, os.RemoveAll(w+"/moved"))
	d.j.Removed("moved", true)
	d.waitIdle(t)
	wantKeys(t, d, "folder with a link removed", "w/f.txt", "w/rel.rclonelink")
}

// A symlink in place of a folder the mount saw renamed is stored as the
// link, not walked: its target's files stay out of the bucket.
func TestDrainTreeRecordOnLinkNotFollowed(t *testing.T) {
	d := newDrainEnv(t, mirror.DrainOptions{Delete: true, Settle: 10 * time.Millisecond})
	out := synctest.OutsideDir(t)
	synctest.Must(t, os.Symlink(out, d.workdir+"/moved"))
	d.j.Renamed("dir", "moved", true)
	d.waitIdle(t)
	wantKeys(t, d, "after a tree record on a link", "w/moved.rclonelink")
}

// A symlink "x" and a file "x.rclonelink" would be the same object:
// the file does not overwrite the link's object, and is shown as failed.
func TestDrainLinkAndFileSharingAKey(t *testing.T) {
	d := newDrainEnv(t, mirror.DrainOptions{Delete: true, Settle: 10 * time.Millisecond})
	synctest.Must(t, os.Symlink("target", d.workdir+"/x"))
	d.j.Changed("x")
	d.waitIdle(t)
	testfs.WriteFile(t, d.workdir+"/x.rclonelink", "a file")
	d.j.Changed("x.rclonelink")
	d.waitIdle(t)
	if body, _ := d.Srv.Get(t, d.Bucket, "w/x.rclonelink"); body != "target" {
		t.Errorf("x.rclonelink holds %q, want the link's target", body)
	}
	if f := d.failed(t); strings.Join(f, " ") != "x.rclonelink" {
		t.Errorf("failed list: %q", f)
	}
}

// A first mount over a folder whose links the bucket already holds (a
// reconcile --links made it) sends none of them again; a link whose target
// changed, keeping its length and time, is not taken as held.
func TestSeedCacheLinks(t *testing.T) {
	e := synctest.NewEnv(t)
	w := t.TempDir()
	synctest.Must(t, os.Symlink("target-a", w+"/same"))
	synctest.Must(t, os.Symlink("target-b", w+"/changed"))
	testfs.WriteFile(t, w+"/file", "x")
	e.Sync(w, "s3://"+e.Bucket+"/w", func(o *syncer.Options) { o.Links = true })
	mt := synctest.Lmtime(t, w+"/changed")
	synctest.Must(t, os.Remove(w+"/changed"))
	synctest.Must(t, os.Symlink("target-c", w+"/changed"))
	ts := []unix.Timespec{unix.NsecToTimespec(mt.UnixNano()), unix.NsecToTimespec(mt.UnixNano())}
	synctest.Must(t, unix.UtimesNanoAt(unix.AT_FDCWD, w+"/changed", ts, unix.AT_SYMLINK_NOFOLLOW))

	c := openCache(t)
	loc, _ := remote.ParseURL("s3://" + e.Bucket + "/w")
	n, err := mirror.SeedCache(context.Background(), e.Client, c, w, loc)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("seeded %d entries, want 2 (file, same)", n)
	}
	if en, ok, _ := c.Get("same"); !ok || en.Kind != cache.KindLink || en.Size != int64(len("target-a")) {
		t.Errorf("cache entry of the link: %+v, %v", en, ok)
	}
	if _, ok, _ := c.Get("changed"); ok {
		t.Error("a link whose target changed was taken as held")
	}
	var changed []string
	synctest.Must(t, c.Scan(w, nil, func(p string) { changed = append(changed, p) }, func(p string) { changed = append(changed, "-"+p) }))
	if strings.Join(changed, " ") != "changed" {
		t.Errorf("start-up scan after seeding reports %q, want only the changed link", changed)
	}
}
