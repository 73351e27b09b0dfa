package fs

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/s3sync/s3sync/internal/testenv"
)

// call is one Recorder call, as the fake records it.
type call struct {
	op    string // "changed", "removed", "renamed", "sync"
	path  string
	to    string
	isDir bool
}

func (c call) String() string {
	switch c.op {
	case "renamed":
		return fmt.Sprintf("renamed(%s -> %s, dir=%v)", c.path, c.to, c.isDir)
	case "removed":
		return fmt.Sprintf("removed(%s, dir=%v)", c.path, c.isDir)
	case "sync":
		return "sync"
	}
	return fmt.Sprintf("%s(%s)", c.op, c.path)
}

func changed(p string) call           { return call{op: "changed", path: p} }
func removed(p string, dir bool) call { return call{op: "removed", path: p, isDir: dir} }
func renamed(from, to string, dir bool) call {
	return call{op: "renamed", path: from, to: to, isDir: dir}
}

// fakeRecorder keeps the calls in memory. It stands in for the journal,
// which is another package's business; it is not a fake of anything remote.
type fakeRecorder struct {
	mu      sync.Mutex
	calls   []call
	syncErr error
}

func (r *fakeRecorder) add(c call) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c)
}

func (r *fakeRecorder) Changed(path string)             { r.add(changed(path)) }
func (r *fakeRecorder) Removed(path string, isDir bool) { r.add(removed(path, isDir)) }
func (r *fakeRecorder) Renamed(from, to string, d bool) { r.add(renamed(from, to, d)) }
func (r *fakeRecorder) Throttle()                       {}
func (r *fakeRecorder) Sync(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call{op: "sync"})
	return r.syncErr
}

func (r *fakeRecorder) take() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

// testMount is a live mount of a temporary WORKDIR.
type testMount struct {
	work, mnt string
	rec       *fakeRecorder
	m         *mountState
}

// requireFuse skips when this machine cannot mount FUSE, except in CI, where
// FUSE tests must run: there it fails.
func requireFuse(t *testing.T) {
	t.Helper()
	var why string
	if _, err := os.Stat("/dev/fuse"); err != nil {
		why = "/dev/fuse: " + err.Error()
	} else if os.Geteuid() != 0 {
		if _, err := exec.LookPath("fusermount3"); err != nil {
			why = "not root and no fusermount3"
		}
	}
	if why == "" {
		return
	}
	testenv.CannotRun(t, "cannot mount FUSE: %s", why)
}

// newMount mounts a fresh WORKDIR at a fresh mountpoint. Cleanup unmounts
// (retrying while busy), checks the mount is gone and that no file
// descriptor leaked.
func newMount(t *testing.T, opts Options) *testMount {
	t.Helper()
	requireFuse(t)
	fdsBefore := len(ourFds(t, nil))
	tm := &testMount{work: t.TempDir(), mnt: t.TempDir(), rec: &fakeRecorder{}}
	srv, m, err := mount(tm.work, tm.mnt, tm.rec, opts)
	if err != nil {
		t.Fatalf("mount: %v", err)
	}
	tm.m = m
	// Ready: the mountpoint is now a different filesystem from its parent.
	var a, b syscall.Stat_t
	if err := syscall.Stat(tm.mnt, &a); err != nil {
		t.Fatalf("stat mountpoint: %v", err)
	}
	if err := syscall.Stat(tm.work, &b); err != nil {
		t.Fatal(err)
	}
	if a.Dev == b.Dev {
		t.Fatalf("mountpoint %s not mounted after Mount returned", tm.mnt)
	}
	t.Cleanup(func() {
		var err error
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
			if err = srv.Unmount(); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Errorf("unmount %s: %v", tm.mnt, err)
			return
		}
		srv.Wait()
		if isMounted(t, tm.mnt) {
			t.Errorf("%s still mounted after Unmount", tm.mnt)
		}
		deadline := time.Now().Add(5 * time.Second)
		for len(ourFds(t, tm)) > fdsBefore {
			if time.Now().After(deadline) {
				t.Errorf("file descriptors leaked: %d open before mount, now %v", fdsBefore, ourFds(t, tm))
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	return tm
}

// quiesce waits until every file handle was released (RELEASE reaches us
// asynchronously after close returns) and returns the calls recorded.
func (tm *testMount) quiesce(t *testing.T) []call {
	t.Helper()
	poll(t, 60*time.Second, "all file handles released", func() bool {
		return tm.m.handles.Load() == 0
	})
	return tm.rec.take()
}

func (tm *testMount) path(rel string) string { return tm.mnt + "/" + rel }
func (tm *testMount) orig(rel string) string { return tm.work + "/" + rel }

// poll waits until cond holds, failing t after d. The callers give 60 s: a
// poll ends as soon as cond holds, so only a failure waits that long, and
// a loaded 2-core machine can hold a release back for seconds.
func poll(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ourFds lists this process's descriptors on /dev/fuse, in WORKDIR or in the
// mountpoint (tm nil: on /dev/fuse only, before there is a tm). Other
// descriptors come and go with the Go runtime (netpoller, cgroup files) and
// go-fuse's process-wide splice pipe pool, and are not ours to leak.
func ourFds(t *testing.T, tm *testMount) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("list fds: %v", err)
	}
	var out []string
	for _, e := range ents {
		target, _ := os.Readlink("/proc/self/fd/" + e.Name())
		if target == "/dev/fuse" || tm != nil && (strings.HasPrefix(target, tm.work) || strings.HasPrefix(target, tm.mnt)) {
			out = append(out, e.Name()+"="+target)
		}
	}
	return out
}

func isMounted(t *testing.T, dir string) bool {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 4 && fields[4] == dir {
			return true
		}
	}
	return false
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func TestMountReady(t *testing.T) {
	tm := newMount(t, Options{})
	if err := os.WriteFile(tm.orig("a"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(tm.path("a"))
	if err != nil || string(got) != "hi" {
		t.Fatalf("read through mount: %q, %v", got, err)
	}
	if calls := tm.quiesce(t); len(calls) != 0 {
		t.Errorf("reading recorded %v, want nothing", calls)
	}
}

// asNobody runs name args as the user nobody and returns its error.
func asNobody(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	return cmd.CombinedOutput()
}

// TestPermissions: the kernel does not check permissions itself unless
// AllowOther (see permOptions), so what a user can do must still be what
// WORKDIR allows: other users cannot reach the mount at all; with
// AllowOther they get WORKDIR's modes; chown clears setuid as on WORKDIR's
// own filesystem (CAP_HANDLE_KILLPRIV leaves that to it).
func TestPermissions(t *testing.T) {
	for _, mode := range ioModes {
		t.Run(mode.name, func(t *testing.T) {
			tm := newMount(t, mode.opts)
			write(t, tm.path("f"), "data")
			// syscall.Chmod: os.Chmod reads 0o4000 as no setuid bit.
			must(t, syscall.Chmod(tm.path("f"), 0o4755))
			if st, err := os.Stat(tm.path("f")); err != nil || st.Mode()&os.ModeSetuid == 0 {
				t.Fatalf("chmod 4755 through the mount: %v, %v", st.Mode(), err)
			}
			must(t, os.Chown(tm.path("f"), 65534, 65534))
			st, err := os.Stat(tm.path("f"))
			must(t, err)
			if st.Mode()&os.ModeSetuid != 0 {
				t.Errorf("chown through the mount kept the setuid bit: %v", st.Mode())
			}
			// t.TempDir's parent is 0700: open the way to the mountpoint.
			must(t, os.Chmod(filepath.Dir(tm.mnt), 0o755))
			must(t, os.Chmod(tm.mnt, 0o755))
			if out, err := asNobody("/bin/ls", filepath.Dir(tm.mnt)); err != nil {
				t.Fatalf("the mountpoint's parent is not open to other users: %v %s", err, out)
			}
			if out, err := asNobody("/bin/cat", tm.path("f")); err == nil {
				t.Errorf("another user read a file through a mount without allow_other: %s", out)
			}

			o := mode.opts
			o.AllowOther = true
			other := newMount(t, o)
			must(t, os.Chmod(filepath.Dir(other.mnt), 0o755))
			must(t, os.Chmod(other.mnt, 0o755))
			write(t, other.path("public"), "public")
			write(t, other.path("private"), "private")
			must(t, os.Chmod(other.path("private"), 0o600))
			if out, err := asNobody("/bin/cat", other.path("public")); err != nil || string(out) != "public" {
				t.Errorf("with allow_other, another user reading a 0644 file: %v %q", err, out)
			}
			if out, err := asNobody("/bin/cat", other.path("private")); err == nil {
				t.Errorf("with allow_other, another user read a 0600 file: %q", out)
			}
			if out, err := asNobody("/bin/sh", "-c", "echo x > "+other.path("public")); err == nil {
				t.Errorf("with allow_other, another user wrote a 0644 file of root's: %q", out)
			}
		})
	}
}

// TestWriting: a file counts as being written while any handle that may
// change it is open — a read-only handle does not count — and the last
// such release calls OnWritersClosed.
func TestWriting(t *testing.T) {
	for _, mode := range ioModes {
		t.Run(mode.name, func(t *testing.T) {
			var closed atomic.Int32
			o := mode.opts
			o.OnWritersClosed = func() { closed.Add(1) }
			tm := newMount(t, o)
			mt := &Mounted{m: tm.m}
			must(t, os.Mkdir(tm.path("d"), 0o755))
			w1, err := os.Create(tm.path("d/f"))
			must(t, err)
			_, err = w1.WriteString("data")
			must(t, err)
			w2, err := os.OpenFile(tm.path("d/f"), os.O_WRONLY, 0)
			must(t, err)
			r, err := os.Open(tm.path("d/f"))
			must(t, err)
			if !mt.Writing("d/f") || mt.Writing("d") || mt.Writing("d/none") || mt.Writing("none/f") {
				t.Fatalf("Writing: d/f %v, d %v, d/none %v, none/f %v; want only d/f",
					mt.Writing("d/f"), mt.Writing("d"), mt.Writing("d/none"), mt.Writing("none/f"))
			}
			must(t, w1.Close())
			must(t, w2.Close())
			poll(t, 60*time.Second, "the writable handles released", func() bool { return !mt.Writing("d/f") })
			if n := closed.Load(); n != 1 {
				t.Errorf("OnWritersClosed called %d times, want once", n)
			}
			must(t, r.Close())
			tm.quiesce(t)
			if n := closed.Load(); n != 1 {
				t.Errorf("after the read-only handle: OnWritersClosed called %d times, want once", n)
			}
		})
	}
}

// A file kept open for writing is recorded while it stays open, each time
// it changed since it was last recorded, and not again while it does not
// change.
func TestOpenWriterRecorded(t *testing.T) {
	for _, mode := range ioModes {
		t.Run(mode.name, func(t *testing.T) {
			o := mode.opts
			o.OpenWriterInterval = 50 * time.Millisecond
			tm := newMount(t, o)
			f, err := os.Create(tm.path("app.log"))
			must(t, err)
			defer f.Close()
			tm.rec.take()
			for round := range 2 {
				_, err = f.WriteString("a line\n")
				must(t, err)
				poll(t, 60*time.Second, "a record of the open file", func() bool {
					for _, c := range tm.rec.take() {
						if c == changed("app.log") {
							return true
						}
					}
					return false
				})
				time.Sleep(200 * time.Millisecond) // four intervals with no write
				if calls := tm.rec.take(); len(calls) != 0 {
					t.Errorf("round %d: unchanged open file recorded again: %v", round, calls)
				}
			}
		})
	}
}
