package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/internal/testenv"
)

const enableURingParam = "/sys/module/fuse/parameters/enable_uring"

// ioURingArgs is how newMount serves its mounts: over io_uring when
// S3SYNC_TEST_IO_URING=1 (to run the whole suite over that transport),
// else as s3sync does by default.
func ioURingArgs(t *testing.T) []string {
	if os.Getenv("S3SYNC_TEST_IO_URING") != "1" {
		return nil
	}
	needIoURing(t)
	return []string{"--io-uring=on"}
}

// needIoURing switches on the fuse module's enable_uring for the test
// (as root) and puts back what it found once no test process needs it:
// every user holds a shared lock on /run/fuse-enable-uring.lock, which
// also keeps the original value; the last one out restores it. It skips
// only on a kernel without FUSE over io_uring.
func needIoURing(t *testing.T) {
	t.Helper()
	cur, err := os.ReadFile(enableURingParam)
	if err != nil {
		testenv.CannotRun(t, "kernel without FUSE over io_uring (%v)", err)
	}
	lock, err := os.OpenFile("/run/fuse-enable-uring.lock", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fd := int(lock.Fd())
	for deadline := time.Now().Add(time.Minute); ; {
		unix.Flock(fd, unix.LOCK_SH)
		cur, _ = os.ReadFile(enableURingParam)
		if strings.TrimSpace(string(cur)) == "Y" {
			break
		}
		if unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) == nil {
			if err := os.WriteFile(enableURingParam, []byte("Y"), 0); err != nil {
				lock.Close()
				t.Fatalf("enable FUSE over io_uring: %v", err)
			}
			lock.Truncate(0)
			lock.WriteAt(cur, 0)
			unix.Flock(fd, unix.LOCK_SH)
			break
		}
		unix.Flock(fd, unix.LOCK_UN)
		if time.Now().After(deadline) {
			lock.Close()
			t.Fatal("could not enable FUSE over io_uring: /run/fuse-enable-uring.lock stays busy")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Cleanup(func() {
		defer lock.Close()
		if unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) != nil {
			return // another test still relies on it
		}
		orig := make([]byte, 8)
		if n, _ := lock.ReadAt(orig, 0); n > 0 {
			os.WriteFile(enableURingParam, orig[:n], 0)
			lock.Truncate(0)
		}
	})
}

// newIoURingMount is newMount served over io_uring whatever the
// environment says, so CI always exercises that transport.
func newIoURingMount(t *testing.T, bucket string, extra ...string) *mount {
	needIoURing(t)
	return newMount(t, bucket, append([]string{"--io-uring=on"}, extra...)...)
}

func (m *mount) servedOverIoURing() {
	m.t.Helper()
	m.waitFor("the io_uring log line", 30*time.Second, func() bool {
		return strings.Contains(m.log.String(), "serving the mount over io_uring")
	})
}

// Over io_uring, ordinary work (untar, edit, append, rename, remove,
// fsync) ends with the bucket holding exactly the folder.
func TestIoUringMountScenario(t *testing.T) {
	srv := s3test.Get(t)
	tarball := treeTarball(t, 10, 30, func(d, f int) string { return strings.Repeat(fmt.Sprintf("%d/%d\n", d, f), 100*f) })

	m := newIoURingMount(t, srv.NewBucket(t), "--delete")
	m.start()
	m.servedOverIoURing()
	mp := m.mountpoint
	run(t, mp, "tar", "xf", tarball)
	run(t, mp, "cp", "-a", "/etc/services", "services")
	run(t, mp, "sh", "-c", "echo appended >> tree/d01/f01 && mv tree/d02 tree/moved && rm -r tree/d03 && ln -s moved/f05 tree/link")
	run(t, mp, "dd", "if=/dev/urandom", "of=big", "bs=1M", "count=8", "conv=fsync", "status=none")
	r := m.waitDrained(120 * time.Second)
	if !r.Mounted {
		t.Errorf("status after drain: %+v", r)
	}
	m.bucketMatchesWorkdir()
	out, err := exec.Command("diff", "-r", "--no-dereference", m.workdir, mp).CombinedOutput()
	if err != nil {
		t.Fatalf("WORKDIR and the mount differ: %v\n%s", err, firstLines(string(out), 20))
	}
}

// kill -9 in the middle of an untar over io_uring, and a new mount at
// once: it clears the dead one, finds what was written, and the bucket
// catches up.
func TestIoUringMountKill9DuringUntar(t *testing.T) {
	srv := s3test.Get(t)
	tarball := treeTarball(t, 50, 40, func(d, f int) string { return fmt.Sprintf("%d/%d\n", d, f) })

	m := newIoURingMount(t, srv.NewBucket(t), "--delete")
	m.start()
	m.servedOverIoURing()
	tar := m.startUntar(tarball, 10)
	m.kill9()
	// At once: the kernel tears the dead server's rings down a moment
	// after the process is gone, and the new mount must wait that out.
	m.start()
	tar.Wait() // fails: the mount it wrote to is gone
	m.servedOverIoURing()
	m.waitDrained(300 * time.Second)
	m.bucketMatchesWorkdir()
}
