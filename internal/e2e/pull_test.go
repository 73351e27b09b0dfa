package e2e

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/internal/testfs"
)

// Two machines on one prefix: two WORKDIRs, two state dirs, one server.

// twoMounts makes mounts A and B of one bucket's prefix, not started.
func twoMounts(t *testing.T, extra ...string) (a, b *mount) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	extra = append([]string{"--settle=50ms"}, extra...)
	return newMount(t, bucket, extra...), newMount(t, bucket, extra...)
}

// withPull is m's arguments with --pull on (a short interval for tests).
func (m *mount) withPull() {
	n := len(m.args) - 3
	m.args = append(m.args[:n:n], append([]string{"--pull=300ms"}, m.args[n:]...)...)
}

// files is dir's regular files and their content, read through dir (a
// mountpoint: what a user sees), conflict copies' times masked.
func files(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		out[conflictStamp.ReplaceAllString(rel, ".conflict-$1-TIME")] = string(b)
		return nil
	})
	return out
}

var conflictLogged = regexp.MustCompile(`conflicts=[1-9]|msg="(conflict|pull: another writer)`)

var conflictStamp = regexp.MustCompile(`\.conflict-([A-Za-z0-9-]+?)-\d{8}-\d{6}`)

func show(m map[string]string) string {
	var s []string
	for k, v := range m {
		s = append(s, k+"="+v)
	}
	sort.Strings(s)
	return strings.Join(s, " ")
}

// contents is the set of distinct file contents in m.
func contents(m map[string]string) string {
	seen := map[string]bool{}
	var s []string
	for _, v := range m {
		if !seen[v] {
			seen[v] = true
			s = append(s, v)
		}
	}
	sort.Strings(s)
	return strings.Join(s, "|")
}

// converge waits until A and B show the same files through their mounts
// and nothing is pending on either, and returns what they show.
func converge(t *testing.T, a, b *mount) map[string]string {
	t.Helper()
	var fa, fb map[string]string
	a.waitFor("both mounts to show the same files", 60*time.Second, func() bool {
		fa, fb = files(t, a.mountpoint), files(t, b.mountpoint)
		if show(fa) != show(fb) {
			return false
		}
		ra, rb := a.status(), b.status()
		return ra.Pending+ra.InFlight+rb.Pending+rb.InFlight == 0
	})
	if show(fa) != show(fb) {
		t.Fatalf("A shows %s\nB shows %s", show(fa), show(fb))
	}
	return fa
}

// An edit on one mount shows on the other, through its mountpoint at once
// (the kernel's cached entry is dropped); so does a removal.
func TestPullEditSeenOnOther(t *testing.T) {
	a, b := twoMounts(t, "--delete")
	a.withPull()
	b.withPull()
	a.start()
	b.start()
	testfs.WriteFile(t, a.mountpoint+"/notes/f.txt", "from A")
	// B looks first, so its kernel has the name cached.
	os.Stat(b.mountpoint + "/notes/f.txt")
	b.waitFor("A's file at B", 30*time.Second, func() bool {
		got, _ := os.ReadFile(b.mountpoint + "/notes/f.txt")
		return string(got) == "from A"
	})
	testfs.WriteFile(t, b.mountpoint+"/notes/f.txt", "edited on B, longer")
	a.waitFor("B's edit at A", 30*time.Second, func() bool {
		got, _ := os.ReadFile(a.mountpoint + "/notes/f.txt")
		return string(got) == "edited on B, longer"
	})
	if err := os.Remove(a.mountpoint + "/notes/f.txt"); err != nil {
		t.Fatal(err)
	}
	b.waitFor("A's removal at B", 30*time.Second, func() bool {
		_, err := os.Stat(b.mountpoint + "/notes/f.txt")
		return os.IsNotExist(err)
	})
	if got := converge(t, a, b); len(got) != 0 {
		t.Errorf("files left: %s", show(got))
	}
	for _, m := range []*mount{a, b} {
		if conflictLogged.MatchString(m.log.String()) {
			t.Errorf("a conflict was declared: %s", m.log)
		}
	}
}

// The same file edited on both mounts while pull is off: the second upload
// keeps both versions in the bucket. With pull on, both versions end up on
// both sides.
func TestPullSameFileEditedOnBoth(t *testing.T) {
	a, b := twoMounts(t)
	a.start()
	b.start()
	testfs.WriteFile(t, a.mountpoint+"/f.txt", "A's version")
	a.waitSettled(30 * time.Second)
	testfs.WriteFile(t, b.mountpoint+"/f.txt", "B's version")
	b.waitSettled(30 * time.Second)
	a.stop()
	b.stop()
	a.withPull()
	b.withPull()
	a.start()
	b.start()
	got := converge(t, a, b)
	t.Logf("both show %s", show(got))
	if c := contents(got); c != "A's version|B's version" {
		t.Errorf("versions on both sides: %q (%s), want A's and B's", c, show(got))
	}
	if _, ok := got["f.txt"]; !ok {
		t.Errorf("f.txt is gone: %s", show(got))
	}
	a.bucketMatchesWorkdir()
}

// One mount deletes a file the other has edited since this one last saw
// it: the delete is refused (it is conditional on the ETag A saw), the
// bucket keeps B's edit, A records the conflict, and once A pulls both
// show the edit. A pulls only after its delete was tried, so the delete
// really meets the edited object.
func TestPullDeleteWhileOtherEdits(t *testing.T) {
	a, b := twoMounts(t, "--delete")
	b.withPull()
	a.start()
	b.start()
	testfs.WriteFile(t, a.mountpoint+"/f", "v1")
	converge(t, a, b)
	testfs.WriteFile(t, b.mountpoint+"/f", "B's edit")
	b.waitSettled(30 * time.Second)
	if got, _ := b.srv.Get(t, b.bucket(), "data/f"); got != "B's edit" {
		t.Fatalf("bucket holds %q after B's edit settled", got)
	}
	if err := os.Remove(a.mountpoint + "/f"); err != nil {
		t.Fatal(err)
	}
	a.waitSettled(30 * time.Second)
	a.stop()
	if got := b.srv.Objects(t, b.bucket(), "data/"); got["data/f"] != int64(len("B's edit")) {
		t.Fatalf("after A's delete the bucket holds %v, want data/f with B's edit", got)
	}
	if !strings.Contains(a.log.String(), "conflict: not deleted from the bucket") {
		t.Errorf("A's delete was not refused as a conflict; A's log:\n%s", a.log)
	}
	a.withPull()
	a.start()
	got := converge(t, a, b)
	if got["f"] != "B's edit" {
		t.Errorf("after A's delete and B's edit both show %s, want f with B's edit", show(got))
	}
}

// kill -9 of a mount while the other writes, and of the other in the
// middle of its own writes: after restarts nothing written is lost, and
// both sides hold the same files.
func TestPullKill9(t *testing.T) {
	a, b := twoMounts(t, "--delete")
	a.withPull()
	b.withPull()
	a.start()
	b.start()
	testfs.WriteFile(t, a.mountpoint+"/a0", "A before the kill")
	a.kill9()
	for _, n := range []string{"b1", "b2", "b3", "d/b4"} {
		testfs.WriteFile(t, b.mountpoint+"/"+n, "B's "+n)
	}
	testfs.WriteFile(t, b.mountpoint+"/a0", "B's a0") // if A's never landed
	b.kill9()
	a.start()
	b.start()
	got := converge(t, a, b)
	for _, n := range []string{"b1", "b2", "b3", "d/b4"} {
		if got[n] != "B's "+n {
			t.Errorf("%s shows %q on both, want B's", n, got[n])
		}
	}
	t.Logf("both show %s", show(got))
	if c := contents(got); !strings.Contains(c, "A before the kill") || !strings.Contains(c, "B's a0") {
		t.Errorf("a version written before a kill is lost: %s", show(got))
	}
	a.bucketMatchesWorkdir()
}
