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
