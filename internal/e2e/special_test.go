package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/internal/testenv"
	"github.com/s3sync/s3sync/internal/testfs"
)

// FIFOs, sockets and device nodes are skipped with one notice and listed by
// status as skipped, never failed; a directory renamed with one inside
// still reaches the bucket whole, and so does the rest.
func TestMountSpecialFilesSkipped(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	m := newMount(t, bucket)
	m.start()
	mnt := m.mountpoint
	must(t, os.MkdirAll(mnt+"/tree/sub", 0o755))
	testfs.WriteFile(t, mnt+"/tree/sub/a.txt", "a")
	testfs.WriteFile(t, mnt+"/tree/b.txt", "b")
	must(t, syscall.Mkfifo(mnt+"/tree/sub/pipe", 0o644))
	must(t, syscall.Mkfifo(mnt+"/pipe", 0o644))
	wantKinds := map[string]string{"pipe": "FIFO", "tree2/sub/pipe": "FIFO"}
	if os.Geteuid() == 0 {
		must(t, syscall.Mknod(mnt+"/null", syscall.S_IFCHR|0o666, 1<<8|3))
		wantKinds["null"] = "character device"
	} else if testenv.CI() {
		t.Fatal("device nodes need root; CI runs as root")
	}
	m.waitDrained(60 * time.Second)
	// The tree arrives by a directory rename, whose record holds the FIFO.
	must(t, os.Rename(mnt+"/tree", mnt+"/tree2"))
	testfs.WriteFile(t, mnt+"/after.txt", "after")
	r := m.waitDrained(60 * time.Second)
	if len(r.Failed) != 0 {
		t.Errorf("failed list: %+v, want none", r.Failed)
	}
	m.waitFor("the renamed tree in the bucket", 60*time.Second, func() bool {
		objs := srv.Objects(t, bucket, "data/")
		_, a := objs["data/tree2/sub/a.txt"]
		_, b := objs["data/tree2/b.txt"]
		_, af := objs["data/after.txt"]
		return a && b && af
	})
	for k := range srv.Objects(t, bucket, "data/") {
		if strings.Contains(k, "pipe") || strings.Contains(k, "null") {
			t.Errorf("special file stored: %s", k)
		}
	}
	out, err := exec.Command(bin, "status", "--json", "--state-dir", m.stateDir, m.workdir).Output()
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Skipped []struct{ Path, Kind string } `json:"skipped"`
		Count   int                           `json:"skipped_count"`
		Failed  []any                         `json:"failed"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range st.Skipped {
		got[s.Path] = s.Kind
	}
	for p, kind := range wantKinds {
		if !strings.Contains(got[p], kind) {
			t.Errorf("status skipped %v, want %s as %s", got, p, kind)
		}
	}
	if st.Count != len(wantKinds) || len(st.Failed) != 0 {
		t.Errorf("status: %d skipped (want %d), failed %v:\n%s", st.Count, len(wantKinds), st.Failed, out)
	}
	human, _ := exec.Command(bin, "status", "--state-dir", m.stateDir, m.workdir).Output()
	if !strings.Contains(string(human), "skipped:") || !strings.Contains(string(human), "failed:      none") {
		t.Errorf("human status:\n%s", human)
	}
	// One notice per path, however often it is looked at: touch it again.
	must(t, os.Chmod(mnt+"/pipe", 0o600))
	m.waitDrained(60 * time.Second)
	if n := strings.Count(m.log.String(), "path=pipe"); n != 1 {
		t.Errorf("pipe noticed %d times, want once:\n%s", n, firstLines(m.log.String(), 30))
	}
	// Replaced by a file: no longer skipped, and stored.
	must(t, os.Remove(mnt+"/pipe"))
	testfs.WriteFile(t, mnt+"/pipe", "now a file")
	m.waitDrained(60 * time.Second)
	m.waitFor("pipe stored as a file", 30*time.Second, func() bool {
		_, ok := srv.Objects(t, bucket, "data/")["data/pipe"]
		return ok
	})
	out, _ = exec.Command(bin, "status", "--json", "--state-dir", m.stateDir, m.workdir).Output()
	json.Unmarshal(out, &st)
	for _, s := range st.Skipped {
		if s.Path == "pipe" {
			t.Errorf("pipe still listed as skipped after it became a file")
		}
	}
	// Made while unmounted (or just before a kill -9): the start-up scan
	// finds it, and status lists it.
	m.stop()
	must(t, syscall.Mkfifo(m.workdir+"/offline-pipe", 0o644))
	m.start()
	m.waitDrained(60 * time.Second)
	m.waitFor("offline-pipe listed as skipped", 30*time.Second, func() bool {
		out, _ := exec.Command(bin, "status", "--json", "--state-dir", m.stateDir, m.workdir).Output()
		return strings.Contains(string(out), `"offline-pipe"`)
	})
	m.stop()
}

// A directory that holds only FIFOs, sockets or devices holds nothing S3
// can store: its marker keeps it, so a restore gives it back. So does one
// left with only such files when its last regular file goes, one made
// while unmounted (the start-up scan), and one uploaded by reconcile.
func TestDirOfSpecialFilesKept(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	m := newMount(t, bucket)
	m.start()
	mnt := m.mountpoint
	must(t, os.Mkdir(mnt+"/fifos", 0o755))
	must(t, syscall.Mkfifo(mnt+"/fifos/p", 0o644))
	must(t, os.Mkdir(mnt+"/mixed", 0o755))
	testfs.WriteFile(t, mnt+"/mixed/f", "f")
	must(t, syscall.Mkfifo(mnt+"/mixed/p", 0o644))
	m.waitDrained(60 * time.Second)
	must(t, os.Remove(mnt+"/mixed/f"))
	m.waitDrained(60 * time.Second)
	m.stop()
	must(t, os.Mkdir(m.workdir+"/offline", 0o755))
	must(t, syscall.Mkfifo(m.workdir+"/offline/p", 0o644))
	m.start()
	m.waitDrained(60 * time.Second)
	dirs := []string{"fifos", "mixed", "offline"}
	m.waitFor("the markers of fifos/, mixed/ and offline/", 30*time.Second, func() bool {
		objs := srv.Objects(t, bucket, "data/")
		for _, d := range dirs {
			if _, ok := objs["data/"+d+"/"]; !ok {
				return false
			}
		}
		return true
	})
	m.stop()

	restored := t.TempDir()
	if out, err := exec.Command(bin, "reconcile", "--endpoint-url", srv.Endpoint, m.url, restored).CombinedOutput(); err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	for _, d := range dirs {
		if info, err := os.Stat(restored + "/" + d); err != nil || !info.IsDir() {
			t.Errorf("restore lost directory %s (it held only a FIFO): %v", d, err)
		}
	}

	// reconcile's own walk stores the same marker (and exits 2, as the
	// AWS CLI does, for the FIFOs it skipped).
	other := srv.NewBucket(t)
	out, err := exec.Command(bin, "reconcile", "--endpoint-url", srv.Endpoint, m.workdir, "s3://"+other+"/up").CombinedOutput()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 2 {
		t.Fatalf("reconcile upload: %v, want exit 2 for the skipped FIFOs\n%s", err, out)
	}
	objs := srv.Objects(t, other, "up/")
	for _, d := range dirs {
		if _, ok := objs["up/"+d+"/"]; !ok {
			t.Errorf("reconcile upload stored no marker for %s/ (it holds only a FIFO); bucket holds %v", d, sortedKeys(objs))
		}
	}
}
