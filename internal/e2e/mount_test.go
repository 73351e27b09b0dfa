// Package e2e drives the s3sync binary through real FUSE mounts against a
// real S3 server, as a user would: cp, tar, mv, rm, editors' save patterns,
// kill -9, server outages.
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/internal/testenv"
	"github.com/s3sync/s3sync/internal/testfs"
)

var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "s3sync-e2e-bin-")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "s3sync")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/s3sync/s3sync/cmd/s3sync").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build s3sync: %v\n%s", err, out)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	s3test.Main(m)
}

func requireFUSE(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		testenv.CannotRun(t, "no /dev/fuse: %v", err)
	}
}

// mount is one running `s3sync mount`.
type mount struct {
	t          *testing.T
	srv        *s3test.Server
	workdir    string
	mountpoint string
	stateDir   string
	url        string
	args       []string
	cmd        *exec.Cmd
	log        *logBuffer
	done       chan struct{}
}

// logBuffer is a mount's output, read by the test while the mount still
// writes it.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len()
}

func newMount(t *testing.T, bucket string, extra ...string) *mount {
	t.Helper()
	requireFUSE(t)
	base := t.TempDir()
	m := &mount{
		t: t, srv: s3test.Get(t),
		workdir: filepath.Join(base, "work"), mountpoint: filepath.Join(base, "mnt"), stateDir: filepath.Join(base, "state"),
		url: "s3://" + bucket + "/data",
	}
	os.Mkdir(m.workdir, 0o755)
	os.Mkdir(m.mountpoint, 0o755)
	m.args = append([]string{"mount", "--endpoint-url", m.srv.Endpoint, "--state-dir", m.stateDir, "--settle", "200ms"}, ioURingArgs(t)...)
	m.args = append(m.args, extra...)
	m.args = append(m.args, m.workdir, m.mountpoint, m.url)
	t.Cleanup(func() {
		m.stop()
		syscall.Unmount(m.mountpoint, syscall.MNT_DETACH)
	})
	return m
}

func (m *mount) start() {
	m.t.Helper()
	m.log = &logBuffer{}
	m.cmd = exec.Command(bin, m.args...)
	m.cmd.Stdout, m.cmd.Stderr = m.log, m.log
	if err := m.cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	m.done = make(chan struct{})
	go func() { m.cmd.Wait(); close(m.done) }()
	m.waitFor("the mount to come up", 30*time.Second, func() bool {
		select {
		case <-m.done:
			m.t.Fatalf("s3sync mount exited: %s", m.log)
		default:
		}
		var st syscall.Statfs_t
		if syscall.Statfs(m.mountpoint, &st) != nil {
			return false
		}
		return st.Type == 0x65735546 // FUSE_SUPER_MAGIC
	})
}

// stop sends SIGTERM and waits for a clean exit.
func (m *mount) stop() {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(60 * time.Second):
		m.cmd.Process.Kill()
		<-m.done
		m.t.Errorf("mount did not stop within 60s after SIGTERM: %s", m.log)
	}
	m.cmd = nil
}

// kill9 ends the mount the hard way and clears the dead mount point.
func (m *mount) kill9() {
	m.cmd.Process.Kill()
	<-m.done
	m.cmd = nil
}

func (m *mount) waitFor(what string, timeout time.Duration, cond func() bool) {
	m.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			m.t.Fatalf("timed out after %v waiting for %s; mount log:\n%s", timeout, what, m.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type statusReport struct {
	Mounted      bool `json:"mounted"`
	Pending      int  `json:"pending"`
	PendingBytes int  `json:"pending_bytes"`
	InFlight     int  `json:"in_flight"`
	Offline      bool `json:"offline"`
	Failed       []struct {
		Path  string `json:"path"`
		Error string `json:"error"`
	} `json:"failed"`
	LastUpload   *time.Time `json:"last_upload"`
	CachedInodes int        `json:"cached_inodes"`
}

func (m *mount) status() statusReport {
	m.t.Helper()
	out, err := exec.Command(bin, "status", "--json", "--state-dir", m.stateDir, m.workdir).Output()
	if err != nil {
		m.t.Fatalf("status: %v", err)
	}
	var r statusReport
	if err := json.Unmarshal(out, &r); err != nil {
		m.t.Fatalf("status output %q: %v", out, err)
	}
	return r
}

// waitDrained polls status until nothing is pending or in flight.
func (m *mount) waitDrained(timeout time.Duration) statusReport {
	m.t.Helper()
	var r statusReport
	m.waitFor("the journal to drain", timeout, func() bool {
		r = m.status()
		return r.Pending == 0 && r.InFlight == 0
	})
	return r
}

// bucketMatchesWorkdir checks, with `s3sync verify`, that the objects
// under the prefix are exactly WORKDIR's regular files and symlinks (as
// .rclonelink objects, how the mount stores them): by size, stored
// mtime and content (MD5 or the stored CRC64NVME).
func (m *mount) bucketMatchesWorkdir() {
	m.t.Helper()
	out, err := exec.Command(bin, "verify", "--links", "--endpoint-url", m.srv.Endpoint, m.workdir, m.url).CombinedOutput()
	if err != nil {
		m.t.Fatalf("s3sync verify %s %s: %v\n%s", m.workdir, m.url, err, firstLines(string(out), 20))
	}
}

// firstLines keeps the first n lines of s.
func firstLines(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) > n {
		return strings.Join(lines[:n], "") + "…\n"
	}
	return s
}

func run(t *testing.T, dir string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// The original notes' scenario, through the mount: work with ordinary
// commands, and the bucket ends up holding exactly the folder.
func TestMountScenario(t *testing.T) {
	srv := s3test.Get(t)
	m := newMount(t, srv.NewBucket(t), "--delete")
	m.start()
	mp := m.mountpoint
	testfs.WriteFile(t, mp+"/README.md", "# notes\n")
	testfs.WriteFile(t, mp+"/docs/draft.txt", "first draft\n")
	run(t, mp, "cp", "-a", "/etc/services", "docs/services")
	run(t, mp, "sh", "-c", "echo 'appended' >> docs/draft.txt")
	run(t, mp, "mkdir", "-p", "src/pkg")
	testfs.WriteFile(t, mp+"/src/pkg/main.go", "package main\n")
	r := m.waitDrained(60 * time.Second)
	if r.LastUpload == nil || !r.Mounted {
		t.Errorf("status after drain: %+v", r)
	}
	m.bucketMatchesWorkdir()

	run(t, mp, "mv", "docs/draft.txt", "docs/final.txt")
	run(t, mp, "rm", "-r", "src")
	run(t, mp, "sh", "-c", "printf 'truncated' > README.md")
	m.waitDrained(60 * time.Second)
	m.bucketMatchesWorkdir()
	if got, _ := srv.Get(t, strings.Split(strings.TrimPrefix(m.url, "s3://"), "/")[0], "data/docs/final.txt"); got != "first draft\nappended\n" {
		t.Errorf("renamed file content %q", got)
	}
}

// Editors save in a few ways; each must end with the new content in the
// bucket and no temporary or backup names left behind.
func TestMountEditorSaves(t *testing.T) {
	srv := s3test.Get(t)
	m := newMount(t, srv.NewBucket(t), "--delete")
	m.start()
	mp := m.mountpoint
	testfs.WriteFile(t, mp+"/vim.txt", "v1")
	testfs.WriteFile(t, mp+"/emacs.txt", "e1")
	testfs.WriteFile(t, mp+"/trunc.txt", "t1 long content")
	testfs.WriteFile(t, mp+"/append.log", "line1\n")
	testfs.WriteFile(t, mp+"/mmap.bin", strings.Repeat("\x00", 8192))
	m.waitDrained(60 * time.Second)

	// vim-style (backupcopy=no): rename the original to a backup, write a
	// new file under the name, delete the backup.
	run(t, mp, "sh", "-c", "mv vim.txt vim.txt~ && printf v2 > vim.txt && rm vim.txt~")
	// gedit/VS Code-style: write a temp file, rename it over the original.
	run(t, mp, "sh", "-c", "printf e2 > .emacs.txt.tmp && mv -f .emacs.txt.tmp emacs.txt")
	// O_TRUNC rewrite in place.
	run(t, mp, "sh", "-c", "printf t2 > trunc.txt")
	// Append.
	run(t, mp, "sh", "-c", "echo line2 >> append.log")
	// A shared writable mmap.
	f, err := os.OpenFile(mp+"/mmap.bin", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, 8192, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	copy(data[100:], "written through mmap")
	syscall.Munmap(data)
	f.Close()

	m.waitDrained(60 * time.Second)
	m.bucketMatchesWorkdir()
	bucket := strings.Split(strings.TrimPrefix(m.url, "s3://"), "/")[0]
	for k, want := range map[string]string{"vim.txt": "v2", "emacs.txt": "e2", "trunc.txt": "t2", "append.log": "line1\nline2\n"} {
		if got, _ := srv.Get(t, bucket, "data/"+k); got != want {
			t.Errorf("%s in bucket = %q, want %q", k, got, want)
		}
	}
	if got, _ := srv.Get(t, bucket, "data/mmap.bin"); !strings.Contains(got, "written through mmap") {
		t.Error("mmap write did not reach the bucket")
	}
}

func TestMountRenameDirectoryOf1000Files(t *testing.T) {
	srv := s3test.Get(t)
	m := newMount(t, srv.NewBucket(t), "--delete")
	m.start()
	for i := range 1000 {
		testfs.WriteFile(t, fmt.Sprintf("%s/before/f%04d.txt", m.mountpoint, i), fmt.Sprintf("file %d\n", i))
	}
	m.waitDrained(120 * time.Second)
	m.bucketMatchesWorkdir()
	run(t, m.mountpoint, "mv", "before", "after")
	m.waitDrained(120 * time.Second)
	m.bucketMatchesWorkdir()
}

// Past --max-cached-inodes the kernel forgets files: the mount's count of
// them stays under the limit, every file still reads back, and a directory
// whose files were forgotten renames completely in the bucket.
func TestMountMaxCachedInodes(t *testing.T) {
	srv := s3test.Get(t)
	m := newMount(t, srv.NewBucket(t), "--delete", "--max-cached-inodes", "200")
	m.start()
	for i := range 1000 {
		testfs.WriteFile(t, fmt.Sprintf("%s/before/d%d/f%04d.txt", m.mountpoint, i%4, i), fmt.Sprintf("file %d\n", i))
	}
	for i := range 1000 {
		p := fmt.Sprintf("%s/before/d%d/f%04d.txt", m.mountpoint, i%4, i)
		if b, err := os.ReadFile(p); err != nil || string(b) != fmt.Sprintf("file %d\n", i) {
			t.Fatalf("%s reads %q, %v", p, b, err)
		}
	}
	var r statusReport
	m.waitFor("at most 200 inodes cached", 30*time.Second, func() bool {
		r = m.status()
		return r.CachedInodes > 0 && r.CachedInodes <= 200
	})
	m.waitDrained(120 * time.Second)
	m.bucketMatchesWorkdir()
	run(t, m.mountpoint, "mv", "before", "after")
	m.waitDrained(120 * time.Second)
	m.bucketMatchesWorkdir()
}

// Changes made in WORKDIR while it is not mounted are sent at the next
// mount.
func TestMountPicksUpOfflineEdits(t *testing.T) {
	srv := s3test.Get(t)
	m := newMount(t, srv.NewBucket(t), "--delete")
	m.start()
	testfs.WriteFile(t, m.mountpoint+"/keep.txt", "keep")
	testfs.WriteFile(t, m.mountpoint+"/change.txt", "old")
	testfs.WriteFile(t, m.mountpoint+"/remove.txt", "gone soon")
	m.waitDrained(60 * time.Second)
	m.stop()

	testfs.WriteFile(t, m.workdir+"/change.txt", "new content")
	testfs.WriteFile(t, m.workdir+"/added/while/unmounted.txt", "hi")
	os.Remove(m.workdir + "/remove.txt")
	m.start()
	m.waitDrained(60 * time.Second)
	m.bucketMatchesWorkdir()
}

// kill -9 in the middle of extracting a 10,000-file tar, then a restart:
// the bucket converges to exactly WORKDIR.
func TestMountKill9DuringUntar(t *testing.T) {
	srv := s3test.Get(t)
	tarball := treeTarball(t, 100, 100, func(d, f int) string { return fmt.Sprintf("%d/%d\n", d, f) })

	m := newMount(t, srv.NewBucket(t), "--delete")
	m.start()
	tar := m.startUntar(tarball, 20)
	m.kill9()
	tar.Wait() // fails: the mount is gone
	m.start()
	m.waitDrained(300 * time.Second)
	m.bucketMatchesWorkdir()
	ents, _ := os.ReadDir(m.workdir + "/tree")
	if len(ents) == 0 {
		t.Fatal("nothing was extracted before the kill")
	}
}

// The server goes away for a minute during edits: the mount stays usable,
// status says so, and everything is sent once the server is back.
func TestMountServerOutage(t *testing.T) {
	srv := s3test.Get(t)
	if os.Getenv("S3SYNC_TEST_ENDPOINT") != "" {
		t.Skip("cannot stop an external server")
	}
	outage := time.Minute
	if testing.Short() {
		outage = 10 * time.Second
	}
	m := newMount(t, srv.NewBucket(t), "--delete")
	m.start()
	testfs.WriteFile(t, m.mountpoint+"/before.txt", "before")
	testfs.WriteFile(t, m.mountpoint+"/edit.txt", "v1")
	m.waitDrained(60 * time.Second)

	srv.Pause()
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume()
		}
	}()
	down := time.Now()
	run(t, m.mountpoint, "mv", "before.txt", "renamed-offline.txt")
	m.waitFor("status to report the outage", 60*time.Second, func() bool {
		r := m.status()
		return r.Offline && r.Pending > 0
	})
	// Keep working while the server is away: every edit must go through.
	for i := 0; time.Since(down) < outage; i++ {
		testfs.WriteFile(t, fmt.Sprintf("%s/offline/f%03d", m.mountpoint, i), fmt.Sprintf("written while offline %d", i))
		testfs.WriteFile(t, m.mountpoint+"/edit.txt", fmt.Sprintf("v%d", i+2))
		if i%10 == 5 {
			os.Remove(fmt.Sprintf("%s/offline/f%03d", m.mountpoint, i-3))
		}
		time.Sleep(500 * time.Millisecond)
	}
	if r := m.status(); !r.Offline || r.Pending == 0 {
		t.Errorf("status during the outage: %+v", r)
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	r := m.waitDrained(120 * time.Second)
	if r.Offline || len(r.Failed) > 0 {
		t.Errorf("after the outage: %+v", r)
	}
	m.bucketMatchesWorkdir()
}

// A file that cannot be stored is kept in the failed list with its
// reason, visible in status, while everything else goes on.
func TestMountFailedListIsVisible(t *testing.T) {
	srv := s3test.Get(t)
	m := newMount(t, srv.NewBucket(t))
	m.start()
	// Four folders of 250 bytes hold their markers (1,009-byte keys);
	// the file's key below them is over S3's 1,024.
	dir := m.mountpoint
	for _, c := range "abcd" {
		dir = filepath.Join(dir, strings.Repeat(string(c), 250))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("l", 40)
	testfs.WriteFile(t, filepath.Join(dir, long), "too deep")
	testfs.WriteFile(t, m.mountpoint+"/fine.txt", "ok")
	var r statusReport
	m.waitFor("the long key in the failed list", 60*time.Second, func() bool {
		r = m.status()
		return len(r.Failed) == 1 && r.Pending == 0
	})
	if !strings.HasSuffix(r.Failed[0].Path, "/"+long) || !strings.Contains(r.Failed[0].Error, "1024") {
		t.Errorf("failed entry: %+v", r.Failed[0])
	}
	out, err := exec.Command(bin, "status", "--state-dir", m.stateDir, m.workdir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), long) {
		t.Errorf("human status does not show the failure: %v\n%s", err, out)
	}
	m.stop()
	// Still visible while unmounted.
	out, _ = exec.Command(bin, "status", "--json", "--state-dir", m.stateDir, m.workdir).Output()
	if !bytes.Contains(out, []byte(long)) || !bytes.Contains(out, []byte(`"mounted": false`)) {
		t.Errorf("unmounted status lost the failure: %s", out)
	}
}

// Without --state-dir the state lives under $XDG_STATE_HOME/s3sync, one
// directory per WORKDIR and remote, private to the user; `status WORKDIR`
// finds it.
func TestMountDefaultStateDir(t *testing.T) {
	srv := s3test.Get(t)
	xdg := t.TempDir()
	t.Setenv("XDG_STATE_HOME", xdg)
	m := newMount(t, srv.NewBucket(t))
	// Drop --state-dir from the arguments.
	for i, a := range m.args {
		if a == "--state-dir" {
			m.args = append(m.args[:i:i], m.args[i+2:]...)
			break
		}
	}
	m.start()
	testfs.WriteFile(t, m.mountpoint+"/f.txt", "x")
	var out []byte
	m.waitFor("status WORKDIR to report the file synced", 60*time.Second, func() bool {
		var err error
		out, err = exec.Command(bin, "status", "--json", m.workdir).Output()
		return err == nil && bytes.Contains(out, []byte(`"pending": 0,`)) && bytes.Contains(out, []byte(`"last_upload"`))
	})
	dirs, _ := filepath.Glob(filepath.Join(xdg, "s3sync", "*"))
	if len(dirs) != 1 {
		t.Fatalf("state dirs: %v", dirs)
	}
	if st, _ := os.Stat(dirs[0]); st.Mode().Perm() != 0o700 {
		t.Errorf("state dir mode %v, want 0700", st.Mode().Perm())
	}
	if st, _ := os.Stat(filepath.Join(dirs[0], "state.db")); st.Mode().Perm() != 0o600 {
		t.Errorf("state.db mode %v, want 0600", st.Mode().Perm())
	}
	// A second mount of the same WORKDIR and remote is refused clearly.
	second := exec.Command(bin, append([]string{}, m.args...)...)
	second.Args[len(second.Args)-2] = t.TempDir() // another mount point
	msg, err := second.CombinedOutput()
	if err == nil || !strings.Contains(string(msg), "already mounted") {
		t.Errorf("second mount of the same workdir: %v\n%s", err, msg)
	}
}

// --drain-on-exit: a SIGTERM right after a write still gets it into the
// bucket before the mount ends.
func TestMountDrainOnExit(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	m := newMount(t, bucket, "--drain-on-exit", "--settle", "1s")
	m.start()
	testfs.WriteFile(t, m.mountpoint+"/last-minute.txt", "saved just before shutdown")
	m.stop()
	if got, _ := srv.Get(t, bucket, "data/last-minute.txt"); got != "saved just before shutdown" {
		t.Errorf("object after --drain-on-exit: %q", got)
	}
}

// A file closed just after the stop began (as a program stopped by the same
// shutdown closes its files) is recorded when the kernel's RELEASE arrives,
// after close(2) returned: --drain-on-exit waits for it and sends it. It
// once looked at what was pending first, and a file closed a moment before
// SIGTERM stayed out of the bucket until the next mount (seen in CI).
func TestMountDrainOnExitWaitsForClose(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	m := newMount(t, bucket, "--drain-on-exit", "--settle", "1s")
	m.start()
	f, err := os.Create(m.mountpoint + "/closing.txt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("closed during the stop"); err != nil {
		t.Fatal(err)
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	m.waitFor("the stop to begin", 60*time.Second, func() bool { return strings.Contains(m.log.String(), "msg=stopping") })
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	m.stop()
	if got, _ := srv.Get(t, bucket, "data/closing.txt"); got != "closed during the stop" {
		t.Errorf("object after --drain-on-exit: %q", got)
	}
}

// TestMountSlowWriterNotSentHalfWritten: a file that has a record pending
// (written and closed once) and is open for writing again, written for
// longer than the settle delay, must not be copied to the bucket
// half-written: the drain holds a record back while its file is open for
// writing (under passthrough the writes themselves are not seen, so
// nothing else would keep the record from settling). Once the writer
// closes, the whole file goes.
func TestMountSlowWriterNotSentHalfWritten(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	m := newMount(t, bucket)
	m.start()
	chunk := strings.Repeat("x", 4096)
	testfs.WriteFile(t, m.mountpoint+"/slow.bin", chunk) // RELEASE records it
	f, err := os.OpenFile(m.mountpoint+"/slow.bin", os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	// 10 writes 250 ms apart: the record settles (200 ms) long before the
	// last one, and the drain uploads within a few ms of that unless the
	// open writer holds it back. The hold lasts until the close or
	// OpenFileLag (25 s), so 2.5 s is well inside it, however slow the
	// machine.
	for range 10 {
		time.Sleep(250 * time.Millisecond)
		if objs := srv.Objects(t, bucket, "data/"); len(objs) > 0 {
			f.Close()
			t.Fatalf("sent while still being written: %v", objs)
		}
		if _, err := f.WriteString(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	m.waitDrained(60 * time.Second)
	if got, _ := srv.Get(t, bucket, "data/slow.bin"); len(got) != 11*4096 {
		t.Errorf("slow.bin in the bucket has %d bytes, want %d", len(got), 11*4096)
	}
}

// Empty directories survive a restore, tried as a user would: a git
// repository whose refs/heads is empty after `git gc` (without refs/ git
// does not see a repository at all) and a Maildir whose tmp/ is empty once
// mail moved to new/, then rmdir of cur/. The bucket matches WORKDIR
// (verify counts an empty directory without its marker as a difference),
// and a restore with reconcile is a working repository.
func TestMountEmptyDirectoriesSurviveRestore(t *testing.T) {
	srv := s3test.Get(t)
	m := newMount(t, srv.NewBucket(t), "--delete")
	m.start()
	mp := m.mountpoint
	git := func(dir string, args ...string) {
		t.Helper()
		run(t, dir, "git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"}, args...)...)
	}
	git(mp, "init", "-q", "repo")
	testfs.WriteFile(t, mp+"/repo/a.txt", "a\n")
	git(mp+"/repo", "add", "a.txt")
	git(mp+"/repo", "commit", "-q", "-m", "one")
	git(mp+"/repo", "gc", "-q")
	if ents, _ := os.ReadDir(mp + "/repo/.git/refs/heads"); len(ents) != 0 {
		t.Fatalf("git gc left refs/heads with %d entries; the test needs it empty", len(ents))
	}
	run(t, mp, "mkdir", "-p", "Maildir/new", "Maildir/cur", "Maildir/tmp")
	testfs.WriteFile(t, mp+"/Maildir/tmp/1.host", "mail\n")
	run(t, mp, "mv", "Maildir/tmp/1.host", "Maildir/new/1.host")
	m.waitDrained(60 * time.Second)
	m.bucketMatchesWorkdir()

	run(t, mp, "rmdir", "Maildir/cur")
	m.waitDrained(60 * time.Second)
	m.bucketMatchesWorkdir()

	restore := filepath.Join(t.TempDir(), "restore")
	if out, err := exec.Command(bin, "reconcile", "--endpoint-url", srv.Endpoint, m.url, restore).CombinedOutput(); err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	git(restore+"/repo", "fsck", "--no-progress")
	if out, err := exec.Command("git", "-C", restore+"/repo", "log", "--format=%s").Output(); err != nil || string(out) != "one\n" {
		t.Errorf("git log in the restore: %q, %v", out, err)
	}
	for dir, want := range map[string]bool{"Maildir/tmp": true, "Maildir/new": true, "Maildir/cur": false} {
		if info, err := os.Stat(filepath.Join(restore, dir)); (err == nil && info.IsDir()) != want {
			t.Errorf("restore: %s exists = %v, want %v", dir, !want, want)
		}
	}
	// A second restore has nothing to do, and says nothing.
	out, err := exec.Command(bin, "reconcile", "--no-progress", "--endpoint-url", srv.Endpoint, m.url, restore).Output()
	if err != nil || len(out) != 0 {
		t.Errorf("second restore: %v, output %q", err, out)
	}
}

// treeTarball writes dirs × files files tree/dDD/fFF, body(d, f) each,
// and returns a tarball of them.
func treeTarball(t *testing.T, dirs, files int, body func(d, f int) string) string {
	t.Helper()
	src := t.TempDir()
	for d := range dirs {
		for f := range files {
			testfs.WriteFile(t, fmt.Sprintf("%s/tree/d%02d/f%02d", src, d, f), body(d, f))
		}
	}
	tarball := filepath.Join(t.TempDir(), "tree.tar")
	run(t, src, "tar", "cf", tarball, "tree")
	return tarball
}

// startUntar starts extracting tarball into the mount and returns once
// WORKDIR holds at least dirs of its directories: an untar in full swing.
func (m *mount) startUntar(tarball string, dirs int) *exec.Cmd {
	m.t.Helper()
	tar := exec.Command("tar", "xf", tarball)
	tar.Dir = m.mountpoint
	if err := tar.Start(); err != nil {
		m.t.Fatal(err)
	}
	m.waitFor("part of the tar to be extracted", 60*time.Second, func() bool {
		ents, _ := os.ReadDir(m.workdir + "/tree")
		return len(ents) >= dirs
	})
	return tar
}
