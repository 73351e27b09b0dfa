package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/internal/testfs"
)

// What another user can plant at --log-file's path is refused with one
// line, before anything is written: the file a symlink points at keeps its
// content and mode, another user's file is not appended to, and a FIFO
// does not hang the mount.
func TestLogFileRefusesWhatIsNotTheUsers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		plant  func(t *testing.T, path, target string)
		parts  []string
		asRoot bool
	}{
		{name: "symlink", plant: func(t *testing.T, path, target string) {
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
		}, parts: []string{"is a symbolic link", "give the file's own path"}},
		{name: "dangling symlink", plant: func(t *testing.T, path, target string) {
			if err := os.Symlink(filepath.Join(filepath.Dir(target), "made-through-the-link"), path); err != nil {
				t.Fatal(err)
			}
		}, parts: []string{"is a symbolic link"}},
		{name: "another user's file", asRoot: true, plant: func(t *testing.T, path, target string) {
			testfs.WriteFile(t, path, "theirs\n")
			if err := os.Chown(path, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, parts: []string{"belongs to uid 65534, not to this user", "give a path of your own"}},
		{name: "hard link", plant: func(t *testing.T, path, target string) {
			if err := os.Link(target, path); err != nil {
				t.Fatal(err)
			}
		}, parts: []string{"has 2 hard links"}},
		{name: "FIFO", plant: func(t *testing.T, path, target string) {
			if err := unix.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
		}, parts: []string{"not a regular file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.asRoot && os.Geteuid() != 0 {
				t.Skip("making a file another user's needs root")
			}
			dir := t.TempDir()
			// The file the attacker wants written: the user's own, 0644.
			target := filepath.Join(t.TempDir(), "precious")
			testfs.WriteFile(t, target, "precious\n")
			os.Chmod(target, 0o644)
			logPath := filepath.Join(dir, "s3sync.log")
			tc.plant(t, logPath, target)
			before, _ := os.Lstat(logPath)

			r := s3sync(t, "mount", "--log-file", logPath, filepath.Join(dir, "missing"), filepath.Join(dir, "mnt"), "s3://bucket")
			wantCode(t, r, exitSkipped)
			wantOneErrLine(t, r, append([]string{"--log-file", logPath}, tc.parts...)...)
			if got := readFile(t, target); got != "precious\n" {
				t.Errorf("the planted link's target was written: %q", got)
			}
			if st, _ := os.Stat(target); st.Mode().Perm() != 0o644 {
				t.Errorf("the planted link's target's mode changed to %v", st.Mode())
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(target), "made-through-the-link")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a file was made through the dangling link: %v", err)
			}
			after, _ := os.Lstat(logPath)
			if after.Size() != before.Size() || after.Mode() != before.Mode() {
				t.Errorf("what was planted changed: %v %d → %v %d", before.Mode(), before.Size(), after.Mode(), after.Size())
			}
		})
	}
}

// The user's own log file that others could read is made 0600 (and the
// log says so), not refused: it is theirs to fix, and a service should
// not stop over logrotate's `create 0644`.
func TestLogFileLooseModeMadePrivate(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "s3sync.log")
	testfs.WriteFile(t, logPath, "earlier line\n")
	if err := os.Chmod(logPath, 0o644); err != nil {
		t.Fatal(err)
	}
	r := s3sync(t, "mount", "--log-file", logPath, filepath.Join(dir, "missing"), filepath.Join(dir, "mnt"), "s3://bucket")
	wantCode(t, r, exitSkipped)
	wantOneErrLine(t, r, "is not a directory")
	if st, err := os.Stat(logPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("log file mode %v, %v; want 0600", st.Mode(), err)
	}
	got := readFile(t, logPath)
	if !strings.HasPrefix(got, "earlier line\n") || !strings.Contains(got, "open to other users") || !strings.Contains(got, "was=0644") {
		t.Errorf("log file:\n%s", got)
	}
}

// The watchdog's probe is no switch a user's command inherits: with the
// variable that once chose it set, every command does what it did.
func TestStatfsProbeNotChosenByEnvironment(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"status", dir},
		{"ls", "--endpoint-url", "http://127.0.0.1:1", "s3://bucket"},
		{"mount", dir, filepath.Join(dir, "missing"), "s3://bucket"},
	} {
		plain := s3sync(t, args...)
		probed := s3syncEnv(t, []string{"S3SYNC_STATFS_PROBE=/"}, args...)
		if plain.code == 0 || probed.code != plain.code || probed.stdout != plain.stdout || probed.stderr != plain.stderr {
			t.Errorf("with S3SYNC_STATFS_PROBE set:\n%s\nwithout:\n%s", probed, plain)
		}
	}
}

// Keys are blanked in the process's own argument memory, the copy keeps
// them, and what is not a key stays as given.
func TestHideSecretArgs(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		name string
		args []string
		want string // the blanked command line, NUL-separated as /proc shows it
	}{
		{"flag and value", []string{"s3sync", "mount", "--sse-c-key", key, "w"},
			"s3sync mount --sse-c-key " + strings.Repeat("*", 32) + " w"},
		{"flag=value", []string{"s3sync", "reconcile", "--sse-c-copy-source-key=" + key, "--sse-c-key=fileb:///k"},
			"s3sync reconcile --sse-c-copy-source-key=" + strings.Repeat("*", 32) + " --sse-c-key=fileb:///k"},
		{"after --, an argument", []string{"s3sync", "reconcile", "--", "--sse-c-key", key},
			"s3sync reconcile -- --sse-c-key " + key},
		{"helper -o", []string{"/sbin/mount.s3sync", "s3://b", "/mnt", "-o", "rw,workdir=/w,sse_c_key=" + key + ",delete"},
			"/sbin/mount.s3sync s3://b /mnt -o rw,workdir=/w,sse_c_key=" + strings.Repeat("*", 32) + ",delete"},
		{"helper -oOPTS, quoted", []string{"mount.s3sync", "s3://b", "/mnt", `-osse-c-key="` + key + `",exclude="a,b"`},
			`mount.s3sync s3://b /mnt -osse-c-key="` + strings.Repeat("*", 32) + `",exclude="a,b"`},
		{"helper, a file", []string{"mount.s3sync", "s3://b", "/mnt", "-o", "sse-c-key=fileb:///etc/k"},
			"mount.s3sync s3://b /mnt -o sse-c-key=fileb:///etc/k"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Arguments in memory of their own, as the kernel lays argv out.
			mem := []byte(strings.Join(tc.args, "\x00"))
			args := make([]string, len(tc.args))
			off := 0
			for i, a := range tc.args {
				args[i] = unsafeString(mem[off : off+len(a)])
				off += len(a) + 1
			}
			got := hideSecretArgs(args)
			if strings.Join(got, " ") != strings.Join(tc.args, " ") {
				t.Errorf("the copy %q, want %q", got, tc.args)
			}
			if shown := strings.ReplaceAll(string(mem), "\x00", " "); shown != tc.want {
				t.Errorf("argument memory %q, want %q", shown, tc.want)
			}
		})
	}
}

// A key given to mount.s3sync in the options reaches the mount through a
// pipe: it is on neither process's command line (/proc/PID/cmdline, which
// every user can read) nor in any log line, even at debug level; the
// mount has it, and works. A key on `s3sync mount`'s own command line
// leaves it once s3sync starts.
func TestMountKeyNeverOnArgvOrInLog(t *testing.T) {
	if _, err := os.Stat("/dev/fuse"); err != nil || os.Geteuid() != 0 {
		t.Skip("mounts need /dev/fuse and root here")
	}
	srv := s3test.Get(t)
	const key = "KeyNeverOnArgv-0123456789abcdef!"
	if len(key) != 32 {
		t.Fatal("the test key must be 32 bytes")
	}
	key64 := base64.StdEncoding.EncodeToString([]byte(key)) // as the request header carries it
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) })

	t.Run("mount.s3sync", func(t *testing.T) {
		bucket := srv.NewBucket(t)
		dir := t.TempDir()
		work, mnt, state := filepath.Join(dir, "work"), filepath.Join(dir, "mnt"), filepath.Join(dir, "state")
		os.Mkdir(work, 0o755)
		os.Mkdir(mnt, 0o755)
		helper := filepath.Join(dir, mountHelperName)
		if err := os.Symlink(s3syncBin, helper); err != nil {
			t.Fatal(err)
		}
		opts := fmt.Sprintf("workdir=%s,state-dir=%s,endpoint-url=%s,settle=100ms,log-level=debug,sse-c=AES256,sse-c-key=%s", work, state, srv.Endpoint, key)
		out, err := exec.Command(helper, "s3://"+bucket+"/data", mnt, "-o", opts).CombinedOutput()
		if err != nil {
			t.Fatalf("mount.s3sync: %v\n%s\nmount.log:\n%s", err, out, readFileOr(filepath.Join(state, "mount.log")))
		}
		pid := infoPID(t, state)
		t.Cleanup(func() { stopMount(t, mnt, pid) })
		if !strings.Contains(string(out), "sse-c-key is in the mount options") {
			t.Errorf("no warning about the key in the options: %s", out)
		}
		cmdline := readFile(t, fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.Contains(cmdline, key) || !strings.Contains(cmdline, "--sse-c-key=fd://3") {
			t.Errorf("the mount's command line: %q", cmdline)
		}
		// The mount has the key: what is written through it is uploaded.
		testfs.WriteFile(t, mnt+"/a.txt", "through the mount")
		waitObject(t, srv, bucket, "data/a.txt")
		stopMount(t, mnt, pid)
		if log := readFile(t, filepath.Join(state, "mount.log")); strings.Contains(log, key) || strings.Contains(log, key64) || !strings.Contains(log, "level=DEBUG") {
			t.Errorf("mount.log holds the key, or no debug line:\n%s", log)
		}
	})

	t.Run("s3sync mount", func(t *testing.T) {
		bucket := srv.NewBucket(t)
		dir := t.TempDir()
		work, mnt, state := filepath.Join(dir, "work"), filepath.Join(dir, "mnt"), filepath.Join(dir, "state")
		os.Mkdir(work, 0o755)
		os.Mkdir(mnt, 0o755)
		logPath := filepath.Join(dir, "s3sync.log")
		cmd := exec.Command(s3syncBin, "mount", "--endpoint-url", srv.Endpoint, "--state-dir", state, "--log-level", "debug", "--log-file", logPath,
			"--sse-c", "AES256", "--sse-c-key", key, work, mnt, "s3://"+bucket+"/data")
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stderr, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		t.Cleanup(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			<-exited
		})
		deadline := time.Now().Add(time.Minute)
		for !fuseMountedAt(mnt) {
			select {
			case err := <-exited:
				exited <- err
				t.Fatalf("s3sync mount exited: %v\n%s", err, stderr.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("not mounted after a minute\n%s", stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		cmdline := readFile(t, fmt.Sprintf("/proc/%d/cmdline", cmd.Process.Pid))
		if strings.Contains(cmdline, key) || !strings.Contains(cmdline, "--sse-c-key\x00"+strings.Repeat("*", 32)+"\x00") {
			t.Errorf("the mount's command line: %q", cmdline)
		}
		testfs.WriteFile(t, mnt+"/b.txt", "through the mount")
		waitObject(t, srv, bucket, "data/b.txt")
		cmd.Process.Signal(syscall.SIGTERM)
		if err := <-exited; err != nil {
			t.Errorf("s3sync mount: %v\n%s", err, stderr.String())
		}
		exited <- nil
		if log := readFile(t, logPath) + stderr.String(); strings.Contains(log, key) || strings.Contains(log, key64) || !strings.Contains(log, "level=DEBUG") {
			t.Errorf("the log holds the key, or no debug line:\n%s", log)
		}
	})
}

// unsafeString is a string over b's memory, as os.Args are over argv's.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func readFileOr(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func infoPID(t *testing.T, stateDir string) int {
	t.Helper()
	var info stateInfo
	b, err := os.ReadFile(filepath.Join(stateDir, infoFile))
	if err == nil {
		err = json.Unmarshal(b, &info)
	}
	if err != nil || info.PID == 0 {
		t.Fatalf("the mount's %s: %v (%s)", infoFile, err, b)
	}
	return info.PID
}

func fuseMountedAt(path string) bool {
	var st syscall.Statfs_t
	return syscall.Statfs(path, &st) == nil && st.Type == 0x65735546 // FUSE_SUPER_MAGIC
}

// stopMount unmounts a mount that mount.s3sync started and waits for it to
// exit (this process is its subreaper); a second call does nothing.
func stopMount(t *testing.T, mnt string, pid int) {
	t.Helper()
	if fuseMountedAt(mnt) {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", mnt, err, out)
			syscall.Kill(pid, syscall.SIGTERM)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		if err != nil || got == pid {
			return // reaped now, or before
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("the mount (pid %d) still runs a minute after umount", pid)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitObject(t *testing.T, srv *s3test.Server, bucket, key string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for srv.Objects(t, bucket, key)[key] == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s never reached the bucket", key)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The benchmark profiles' paths come from the environment; what is planted
// there is refused as at --log-file, and the command still runs.
func TestProfilePathsRefuseSymlinks(t *testing.T) {
	for _, env := range []string{"S3SYNC_CPUPROFILE", "S3SYNC_MEMPROFILE"} {
		t.Run(env, func(t *testing.T) {
			dir := t.TempDir()
			target := filepath.Join(t.TempDir(), "precious")
			testfs.WriteFile(t, target, "precious\n")
			link := filepath.Join(dir, "profile")
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			r := s3syncEnv(t, []string{env + "=" + link}, "status", dir)
			wantCode(t, r, exitFailed) // never mounted, as without the variable
			if !strings.Contains(r.stderr, env+": "+link+" is a symbolic link") {
				t.Errorf("no line about the refused profile path\n%s", r)
			}
			if got := readFile(t, target); got != "precious\n" {
				t.Errorf("the link's target was written: %q", got)
			}
		})
	}
}

// After logrotate moved the file away, a symlink planted at the path
// before SIGHUP is not followed: the lines keep going to the file open
// before.
func TestLogFileReopenRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s3sync.log")
	l, _, err := openLogFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.f.Close()
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "precious")
	testfs.WriteFile(t, target, "precious\n")
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	var refused *fileRefusedError
	if _, err := l.reopen(); !errors.As(err, &refused) {
		t.Fatalf("reopen through a planted symlink: %v, want a refusal", err)
	}
	fmt.Fprintln(l, "after the refused reopen")
	if got := readFile(t, target); got != "precious\n" {
		t.Errorf("the link's target was written: %q", got)
	}
	if got := readFile(t, path+".1"); got != "after the refused reopen\n" {
		t.Errorf("the file open before got %q", got)
	}
}
