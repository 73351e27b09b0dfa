package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/internal/testenv"
	"github.com/s3sync/s3sync/internal/testfs"
)

// mount(8) finds helpers only in /sbin (util-linux: /sbin:/sbin/fs.d:/sbin/fs),
// one name for the whole machine, which other test runs may want at the
// same time.
const (
	systemHelper     = "/sbin/mount.s3sync"
	helperLock       = "/run/lock/s3sync-mount-helper-test.lock"
	helperTestPrefix = "s3sync-helper-test-"
)

// installHelper runs `make install` into a temporary PREFIX and points
// /sbin/mount.s3sync at what it installed, until the test ends.
func installHelper(t *testing.T) (prefix string) {
	t.Helper()
	requireFUSE(t)
	testenv.NeedRoot(t, "mount -t s3sync and /sbin/mount.s3sync")
	os.MkdirAll(filepath.Dir(helperLock), 0o755)
	lock, err := os.OpenFile(helperLock, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Close() })

	prefix, err = os.MkdirTemp("", helperTestPrefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(prefix) })
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	mk := exec.Command("make", "install", "PREFIX="+prefix, "HELPERDIR="+prefix+"/sbin", "BIN="+prefix+"/build/s3sync")
	mk.Dir = root
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	for path, want := range map[string]string{
		prefix + "/bin/s3sync":                         "",
		prefix + "/lib/systemd/system/s3sync@.service": "ExecStart=" + prefix + "/bin/s3sync mount ",
	} {
		b, err := os.ReadFile(path)
		if err != nil || !bytes.Contains(b, []byte(want)) {
			t.Fatalf("make install: %s: %v (want it to contain %q)", path, err, want)
		}
	}
	helper := prefix + "/sbin/mount.s3sync"
	if target, err := os.Readlink(helper); err != nil || target != prefix+"/bin/s3sync" {
		t.Fatalf("make install: %s → %q, %v", helper, target, err)
	}

	// With the lock held, a link of this test's making is a killed run's.
	if target, err := os.Readlink(systemHelper); err == nil && strings.Contains(target, "/"+helperTestPrefix) {
		os.Remove(systemHelper)
	}
	if _, err := os.Lstat(systemHelper); err == nil {
		t.Fatalf("%s exists (an installed s3sync?); this test installs its own there for its duration: move it away and run again", systemHelper)
	}
	if err := os.Symlink(helper, systemHelper); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if target, _ := os.Readlink(systemHelper); target == helper {
			os.Remove(systemHelper)
		}
	})
	return prefix
}

// adoptOrphans makes this process the parent of the mounts that
// mount.s3sync leaves running, so their exit status can be read.
func adoptOrphans(t *testing.T) {
	t.Helper()
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) })
}

func fuseMounted(path string) bool {
	var st syscall.Statfs_t
	return syscall.Statfs(path, &st) == nil && st.Type == 0x65735546 // FUSE_SUPER_MAGIC
}

// daemonPID is the pid of the running mount, from its state dir.
func (m *mount) daemonPID() int {
	m.t.Helper()
	var info struct{ PID int }
	b, err := os.ReadFile(filepath.Join(m.stateDir, "info.json"))
	if err == nil {
		err = json.Unmarshal(b, &info)
	}
	if err != nil || info.PID == 0 {
		m.t.Fatalf("the mount's info.json: %v (%s)", err, b)
	}
	return info.PID
}

// waitExit waits for an adopted mount to exit and returns its status.
func waitExit(t *testing.T, pid int, timeout time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		if err != nil {
			t.Fatalf("wait for the mount (pid %d): %v", pid, err)
		}
		if got == pid {
			if !ws.Exited() {
				t.Fatalf("the mount (pid %d) ended by %v", pid, ws)
			}
			return ws.ExitStatus()
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the mount (pid %d) still runs %v after umount", pid, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// mountHelperLog is what the mount started by mount.s3sync logged.
func (m *mount) mountHelperLog() string {
	b, _ := os.ReadFile(filepath.Join(m.stateDir, "mount.log"))
	return string(b)
}

// An fstab line mounts with `mount MOUNTPOINT` and `umount` ends it after
// the change made through it reached the bucket; the same mount works
// again from the command line, `mount -t s3sync -o … s3://… MOUNTPOINT`.
func TestMountHelperFstab(t *testing.T) {
	srv := s3test.Get(t)
	installHelper(t)
	adoptOrphans(t)
	bucket := srv.NewBucket(t)
	m := newMount(t, bucket)
	m.log = &logBuffer{}
	opts := fmt.Sprintf("workdir=%s,state-dir=%s,endpoint-url=%s,delete,allow_other,settle=200ms", m.workdir, m.stateDir, srv.Endpoint)
	fstab := filepath.Join(t.TempDir(), "fstab")
	testfs.WriteFile(t, fstab, fmt.Sprintf("# s3sync\n%s %s s3sync %s,_netdev,nofail,x-systemd.requires-mounts-for=%s 0 0\n", m.url, m.mountpoint, opts, m.workdir))
	testfs.WriteFile(t, m.workdir+"/before.txt", "made before the first mount")

	for i, mountCmd := range [][]string{
		{"mount", "--fstab", fstab, m.mountpoint},
		{"mount", "-t", "s3sync", "-o", opts, m.url, m.mountpoint},
	} {
		out, err := exec.Command(mountCmd[0], mountCmd[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s\nmount log:\n%s", strings.Join(mountCmd, " "), err, out, m.mountHelperLog())
		}
		// mount(8) returns once the mount serves: no waiting here.
		if !fuseMounted(m.mountpoint) {
			t.Fatalf("%s returned before %s was mounted", strings.Join(mountCmd, " "), m.mountpoint)
		}
		if opts := mountOptions(t, m.mountpoint); !strings.Contains(opts, "allow_other") || !strings.Contains(opts, "default_permissions") {
			t.Errorf("%s: the kernel's options are %q; allow_other did not reach the mount", strings.Join(mountCmd, " "), opts)
		}
		if b, err := os.ReadFile(m.mountpoint + "/before.txt"); err != nil || string(b) != "made before the first mount" {
			t.Fatalf("before.txt through the mount: %q, %v", b, err)
		}
		pid := m.daemonPID()
		name := fmt.Sprintf("through-mount-%d.txt", i)
		testfs.WriteFile(t, m.mountpoint+"/"+name, "written through "+mountCmd[1])
		// The file is recorded at the kernel's RELEASE, after close(2)
		// returned: nothing pending can mean not recorded yet.
		m.waitFor(name+" in the bucket", 60*time.Second, func() bool {
			_, ok := srv.Objects(t, bucket, "data/")["data/"+name]
			return ok
		})
		if r := m.waitDrained(60 * time.Second); !r.Mounted {
			t.Errorf("status while mounted: %+v", r)
		}
		m.bucketMatchesWorkdir()
		if got, _ := srv.Get(t, bucket, "data/"+name); got != "written through "+mountCmd[1] {
			t.Errorf("%s in the bucket: %q", name, got)
		}

		if out, err := exec.Command("umount", m.mountpoint).CombinedOutput(); err != nil {
			t.Fatalf("umount: %v\n%s", err, out)
		}
		if code := waitExit(t, pid, 60*time.Second); code != 0 {
			t.Fatalf("the mount exited %d after umount; log:\n%s", code, m.mountHelperLog())
		}
		if r := m.status(); r.Mounted || r.Pending != 0 || len(r.Failed) != 0 {
			t.Errorf("status after umount: %+v", r)
		}
		if fuseMounted(m.mountpoint) {
			t.Fatal("still mounted after umount")
		}
	}
	log := m.mountHelperLog()
	if strings.Count(log, "mount.s3sync: starting s3sync mount") != 2 || strings.Count(log, "msg=mounted") != 2 {
		t.Errorf("the mount's log does not tell both mounts:\n%s", log)
	}
	if strings.Contains(log, "level=WARN") || strings.Contains(log, "level=ERROR") {
		t.Errorf("the mount's log warns:\n%s", log)
	}
}

// `mount -t s3sync` that cannot mount says why in one line, exits non-zero
// and leaves nothing mounted or running.
func TestMountHelperErrors(t *testing.T) {
	srv := s3test.Get(t)
	installHelper(t)
	m := newMount(t, srv.NewBucket(t))
	for _, tc := range []struct {
		name, device, opts, want string
	}{
		{"unknown option", m.url, "workdir=" + m.workdir + ",bogus=1", "unknown option bogus"},
		{"read-only", m.url, "ro,workdir=" + m.workdir, "read-write"},
		{"no workdir", m.url, "delete", "no workdir= option"},
		{"missing workdir", m.url, "workdir=" + m.workdir + "-missing", "is not a directory"},
		{"no such bucket", "s3://no-such-bucket-s3sync-test/data", "workdir=" + m.workdir, "no-such-bucket-s3sync-test"},
		{"not ready in time", m.url, "workdir=" + m.workdir + ",ready-timeout=1ms", "was not ready within 1ms and was stopped"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stateDir := filepath.Join(t.TempDir(), "state")
			opts := tc.opts + ",state-dir=" + stateDir + ",endpoint-url=" + srv.Endpoint
			cmd := exec.Command("mount", "-t", "s3sync", "-o", opts, tc.device, m.mountpoint)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			msg := strings.TrimSuffix(stderr.String(), "\n")
			t.Logf("exit %v: %s", err, msg)
			if err == nil || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "mount.s3sync: ") {
				t.Errorf("mount -t s3sync -o %s: %v, stderr %q; want exit non-zero and one line with %q", opts, err, stderr.String(), tc.want)
			}
			if fuseMounted(m.mountpoint) {
				t.Fatal("mounted after a failed mount")
			}
			var info struct{ PID int }
			if b, err := os.ReadFile(filepath.Join(stateDir, "info.json")); err == nil && json.Unmarshal(b, &info) == nil && info.PID > 0 {
				if err := syscall.Kill(info.PID, 0); err != syscall.ESRCH {
					t.Errorf("the mount (pid %d) still runs after mount -t s3sync failed", info.PID)
				}
			}
		})
	}
}

// s3sync mount tells a service manager (NOTIFY_SOCKET) READY=1 once the
// mount answers, WATCHDOG=1 while it does (WATCHDOG_USEC), and STOPPING=1
// on SIGTERM.
func TestMountNotifiesServiceManager(t *testing.T) {
	srv := s3test.Get(t)
	m := newMount(t, srv.NewBucket(t))
	testfs.WriteFile(t, m.workdir+"/there.txt", "there")
	sock := filepath.Join(t.TempDir(), "notify.sock")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	msgs := make(chan string, 16)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ln.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	next := func(what string) string {
		t.Helper()
		select {
		case msg, ok := <-msgs:
			if !ok {
				t.Fatalf("notify socket closed waiting for %s", what)
			}
			return msg
		case <-m.done:
			t.Fatalf("s3sync mount exited waiting for %s: %s", what, m.log)
		case <-time.After(60 * time.Second):
			t.Fatalf("no %s within 60s; mount log:\n%s", what, m.log)
		}
		return ""
	}

	m.log = &logBuffer{}
	m.cmd = exec.Command(bin, m.args...)
	m.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=200000")
	m.cmd.Stdout, m.cmd.Stderr = m.log, m.log
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m.done = make(chan struct{})
	go func() { m.cmd.Wait(); close(m.done) }()

	ready := next("READY=1")
	if !strings.Contains(ready, "READY=1\n") || !strings.Contains(ready, fmt.Sprintf("MAINPID=%d", m.cmd.Process.Pid)) || !strings.Contains(ready, "STATUS=Mirroring "+m.mountpoint) {
		t.Errorf("first message %q, want READY=1 with STATUS and MAINPID", ready)
	}
	if b, err := os.ReadFile(m.mountpoint + "/there.txt"); !fuseMounted(m.mountpoint) || err != nil || string(b) != "there" {
		t.Fatalf("READY=1 came before the mount answered: there.txt %q, %v", b, err)
	}
	if r := m.status(); !r.Mounted {
		t.Errorf("status at READY=1: %+v", r)
	}

	// WatchdogSec=, as systemd passes it: pings while the mount answers.
	for range 3 {
		if ping := next("WATCHDOG=1"); ping != "WATCHDOG=1" {
			t.Fatalf("message after READY=1 %q, want WATCHDOG=1", ping)
		}
	}

	m.cmd.Process.Signal(syscall.SIGTERM)
	stopping := next("STOPPING=1")
	for stopping == "WATCHDOG=1" { // sent before the signal
		stopping = next("STOPPING=1")
	}
	if !strings.HasPrefix(stopping, "STOPPING=1") {
		t.Errorf("message after SIGTERM %q, want STOPPING=1", stopping)
	}
	select {
	case <-m.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("s3sync mount did not exit after SIGTERM: %s", m.log)
	}
	if code := m.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit %d after SIGTERM: %s", code, m.log)
	}
	m.cmd = nil
}

// mountOptions is the super block options /proc/self/mountinfo gives for
// the mount at mountpoint.
func mountOptions(t *testing.T, mountpoint string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == mountpoint {
			return f[len(f)-1]
		}
	}
	return ""
}
