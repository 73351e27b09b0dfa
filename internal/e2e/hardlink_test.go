package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/internal/testfs"
)

// Hard links: S3 has none, so every name of a file is its own object, and
// a change made through any name reaches all of them, through the mount,
// after a restart (names the kernel never looked up), and for hard links
// of symlinks.
func TestMountHardLinks(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	m := newMount(t, bucket, "--settle=50ms", "--delete")
	m.start()
	mnt := m.mountpoint
	body := func(key string) string {
		got, _ := srv.Get(t, bucket, "data/"+key)
		return got
	}
	objectsAre := func(what string, want map[string]string) {
		t.Helper()
		m.waitFor(what, 60*time.Second, func() bool {
			objs := srv.Objects(t, bucket, "data/")
			for k, v := range want {
				if _, ok := objs["data/"+k]; !ok || body(k) != v {
					return false
				}
			}
			return true
		})
	}
	// echo one > a; ln a b; echo two >> b
	testfs.WriteFile(t, mnt+"/a", "one\n")
	must(t, os.Link(mnt+"/a", mnt+"/b"))
	appendTo(t, mnt+"/b", "two\n")
	m.waitDrained(60 * time.Second)
	objectsAre("a and b to hold one two", map[string]string{"a": "one\ntwo\n", "b": "one\ntwo\n"})
	// A third name in a folder, written through the first.
	must(t, os.Mkdir(mnt+"/d", 0o755))
	must(t, os.Link(mnt+"/a", mnt+"/d/c"))
	m.waitDrained(60 * time.Second)
	appendTo(t, mnt+"/a", "three\n")
	m.waitDrained(60 * time.Second)
	all := "one\ntwo\nthree\n"
	objectsAre("every name to hold three", map[string]string{"a": all, "b": all, "d/c": all})
	m.bucketMatchesWorkdir()

	// A change through a name that is removed at once (the change and the
	// removal coalesce): the other name still gets it.
	testfs.WriteFile(t, mnt+"/c", "c1\n")
	must(t, os.Link(mnt+"/c", mnt+"/e"))
	m.waitDrained(60 * time.Second)
	objectsAre("c and e", map[string]string{"c": "c1\n", "e": "c1\n"})
	appendTo(t, mnt+"/c", "c2\n")
	must(t, os.Chmod(mnt+"/c", 0o600))
	must(t, os.Remove(mnt+"/c"))
	m.waitDrained(60 * time.Second)
	objectsAre("e to hold c2", map[string]string{"e": "c1\nc2\n"})
	m.waitFor("e's object to say 0600", 60*time.Second, func() bool {
		_, meta := srv.Get(t, bucket, "data/e")
		return meta["mode"] == "100600"
	})

	// Hard links of a symlink: both names are links in the bucket.
	must(t, os.Symlink("a", mnt+"/s"))
	must(t, os.Link(mnt+"/s", mnt+"/t"))
	m.waitDrained(60 * time.Second)
	objectsAre("both link names", map[string]string{"s.rclonelink": "a", "t.rclonelink": "a"})

	// After a restart the kernel knows none of the names: written through
	// b only, a and d/c follow (the start-up scan noted them).
	m.stop()
	m.start()
	appendTo(t, mnt+"/b", "four\n")
	m.waitDrained(60 * time.Second)
	all += "four\n"
	objectsAre("every name to hold four after a restart", map[string]string{"a": all, "b": all, "d/c": all})
	// A chmod through one name is every name's.
	must(t, os.Chmod(mnt+"/d/c", 0o600))
	m.waitDrained(60 * time.Second)
	m.waitFor("a's object to say 0600", 60*time.Second, func() bool {
		_, meta := srv.Get(t, bucket, "data/a")
		return meta["mode"] == "100600"
	})
	m.bucketMatchesWorkdir()
	m.stop()
	// Changed while unmounted, through one name: all go at the next mount.
	appendTo(t, filepath.Join(m.workdir, "d/c"), "five\n")
	m.start()
	m.waitDrained(60 * time.Second)
	all += "five\n"
	objectsAre("every name to hold five after an offline change", map[string]string{"a": all, "b": all, "d/c": all})
	m.bucketMatchesWorkdir()
	m.stop()
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// Two directories swapped with renameat2(RENAME_EXCHANGE) (fsstress does
// it): each name's objects follow the tree now there, and a directory
// swapped with a file too.
func TestMountExchangeDirectories(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	m := newMount(t, bucket, "--settle=50ms", "--delete")
	m.start()
	mnt := m.mountpoint
	must(t, os.MkdirAll(mnt+"/a/sub", 0o755))
	testfs.WriteFile(t, mnt+"/a/x", "A")
	testfs.WriteFile(t, mnt+"/a/sub/deep", "A deep")
	must(t, os.Mkdir(mnt+"/b", 0o755))
	testfs.WriteFile(t, mnt+"/b/y", "B")
	testfs.WriteFile(t, mnt+"/f", "F")
	m.waitDrained(60 * time.Second)
	must(t, unix.Renameat2(unix.AT_FDCWD, mnt+"/a", unix.AT_FDCWD, mnt+"/b", unix.RENAME_EXCHANGE))
	// A change of the directory itself right after (fsstress chmods and
	// chowns them) must not turn the tree's record into a plain change.
	must(t, os.Chmod(mnt+"/a", 0o750))
	must(t, os.Chmod(mnt+"/b", 0o750))
	m.waitDrained(60 * time.Second)
	m.waitFor("the swapped trees in the bucket", 60*time.Second, func() bool {
		objs := srv.Objects(t, bucket, "data/")
		_, bx := objs["data/b/x"]
		_, ay := objs["data/a/y"]
		_, ax := objs["data/a/x"]
		return bx && ay && !ax
	})
	m.bucketMatchesWorkdir()
	must(t, unix.Renameat2(unix.AT_FDCWD, mnt+"/b", unix.AT_FDCWD, mnt+"/f", unix.RENAME_EXCHANGE))
	m.waitDrained(60 * time.Second)
	m.waitFor("the directory and the file swapped in the bucket", 60*time.Second, func() bool {
		objs := srv.Objects(t, bucket, "data/")
		_, fx := objs["data/f/sub/deep"]
		b, _ := srv.Get(t, bucket, "data/b")
		return fx && b == "F"
	})
	m.bucketMatchesWorkdir()
	m.stop()
}
