package mirror_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3sync/s3sync/internal/testfs"
	"github.com/s3sync/s3sync/mirror"
	"github.com/s3sync/s3sync/syncer"
)

// count is how many times what appears in the log.
func (s *slowRemote) count(what string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.log {
		if l == what {
			n++
		}
	}
	return n
}

func newMetaDrain(t *testing.T) (*drainEnv, *slowRemote) {
	var sr *slowRemote
	d := newDrainEnvWith(t, mirror.DrainOptions{Settle: 10 * time.Millisecond}, func(r syncer.Remote) syncer.Remote {
		sr = &slowRemote{Remote: r}
		return sr
	}, nil)
	return d, sr
}

// A chmod (or chown) of a file the bucket holds reaches the bucket as a
// metadata change: one server-side copy of the object onto itself, not a
// second upload. A record with nothing changed costs nothing.
func TestDrainChmodIsMetadataCopy(t *testing.T) {
	d, sr := newMetaDrain(t)
	path := d.workdir + "/run.sh"
	testfs.WriteFile(t, path, strings.Repeat("x", 1000))
	d.j.Changed("run.sh")
	d.waitIdle(t)
	if _, meta := d.Srv.Get(t, d.Bucket, "w/run.sh"); meta["mode"] != "100644" {
		t.Fatalf("uploaded with mode %q, want 100644", meta["mode"])
	}

	changes := []struct {
		what string
		do   func() error
		uid  string
	}{
		{"chmod +x", func() error { return os.Chmod(path, 0o755) }, ""},
		{"setgid", func() error { return syscall.Chmod(path, 0o2755) }, ""},
		// chown also clears setgid, as it does on any filesystem.
		{"chown", func() error { return os.Chown(path, 1234, 5678) }, "1234"},
	}
	for _, c := range changes {
		if c.uid != "" && os.Geteuid() != 0 {
			continue
		}
		if err := c.do(); err != nil {
			t.Fatal(err)
		}
		d.j.Changed("run.sh")
		d.waitIdle(t)
		var st syscall.Stat_t
		syscall.Stat(path, &st)
		_, meta := d.Srv.Get(t, d.Bucket, "w/run.sh")
		if want := strconv.FormatUint(uint64(st.Mode), 8); meta["mode"] != want {
			t.Errorf("%s: bucket mode %q, want %q", c.what, meta["mode"], want)
		}
		if c.uid != "" && (meta["uid"] != c.uid || meta["gid"] != "5678") {
			t.Errorf("%s: bucket owner %s:%s, want %s:5678", c.what, meta["uid"], meta["gid"], c.uid)
		}
	}
	d.j.Changed("run.sh") // nothing changed
	d.waitIdle(t)

	copies := 2
	if os.Geteuid() == 0 {
		copies = 3
	}
	if n, m := sr.count("put start w/run.sh"), sr.count("copy start w/run.sh"); n != 1 || m != copies {
		t.Errorf("%d uploads and %d copies, want 1 upload and %d copies", n, m, copies)
	}
	if body, meta := d.Srv.Get(t, d.Bucket, "w/run.sh"); body != strings.Repeat("x", 1000) || meta["mtime"] == "" {
		t.Errorf("after the metadata copies: %d bytes, metadata %v", len(body), meta)
	}
	e, _, _ := d.c.Get("run.sh")
	var st syscall.Stat_t
	syscall.Stat(path, &st)
	if info, _ := d.Client.Head(context.Background(), d.Bucket, "w/run.sh"); e.ETag != info.ETag || !e.Meta || e.Mode != st.Mode&0o7777 {
		t.Errorf("cache entry %+v, bucket ETag %q", e, info.ETag)
	}
}

// When the object is no longer what the cache recorded (another writer
// replaced it), a chmod neither copies the other writer's content under
// this side's metadata nor overwrites it: this side's file, with its new
// mode, goes to a conflict copy beside it (issue 9).
func TestDrainChmodOfReplacedObjectUploads(t *testing.T) {
	d, sr := newMetaDrain(t)
	path := d.workdir + "/f"
	testfs.WriteFile(t, path, "mine")
	d.j.Changed("f")
	d.waitIdle(t)
	d.Srv.Put(t, d.Bucket, "w/f", "theirs", nil)

	os.Chmod(path, 0o600)
	d.j.Changed("f")
	d.waitIdle(t)
	if body, _ := d.Srv.Get(t, d.Bucket, "w/f"); body != "theirs" {
		t.Errorf("bucket holds %q at f, want the other writer's %q kept", body, "theirs")
	}
	var copies []string
	for k := range d.Srv.Objects(t, d.Bucket, "w/") {
		if mirror.IsConflictCopy(k) {
			copies = append(copies, k)
		}
	}
	if len(copies) != 1 {
		t.Fatalf("conflict copies %v, want one", copies)
	}
	body, meta := d.Srv.Get(t, d.Bucket, copies[0])
	if body != "mine" || meta["mode"] != "100600" {
		t.Errorf("conflict copy holds %q with mode %q, want %q with 100600", body, meta["mode"], "mine")
	}
	if n := sr.count("put start w/f"); n != 2 {
		t.Errorf("%d uploads of f, want 2 (the copy and the second upload refused)", n)
	}
}

// A file renamed and chmod-ed between two drains is a server-side copy
// that carries the new mode.
func TestDrainRenameCarriesMode(t *testing.T) {
	d, sr := newMetaDrain(t)
	testfs.WriteFile(t, d.workdir+"/a", "content")
	d.j.Changed("a")
	d.waitIdle(t)
	os.Rename(d.workdir+"/a", d.workdir+"/b")
	os.Chmod(d.workdir+"/b", 0o700)
	d.j.Renamed("a", "b", false)
	d.j.Changed("b")
	d.waitIdle(t)
	if _, meta := d.Srv.Get(t, d.Bucket, "w/b"); meta["mode"] != "100700" {
		t.Errorf("renamed object's mode %q, want 100700", meta["mode"])
	}
	if n := sr.count("put start w/b"); n != 0 {
		t.Errorf("the renamed file was uploaded %d times, want a copy; requests: %v", n, sr.log)
	}
}
