package fs

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The tests act as other users by running this test binary again under
// their uid and gid (TestMain sees asUserEnv), so each syscall and its mode
// is exactly what the test says, which a shell cannot promise.

const asUserEnv = "S3SYNC_FS_TEST_AS_USER"

func TestMain(m *testing.M) {
	if os.Getenv(asUserEnv) == "1" {
		os.Exit(asUserMain(os.Args[1:]))
	}
	if os.Getenv(swapEnv) == "1" {
		os.Exit(swapMain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// user is who a helper runs as.
type user struct{ uid, gid uint32 }

var nobody = user{65534, 65534}

// asUser runs ops as u, stopping at the first that fails, and returns the
// errno it failed with ("" if all succeeded). An op is
//
//	umask MODE | create PATH MODE | mkdir PATH MODE | mkfifo PATH MODE |
//	symlink TARGET PATH | tmpfile DIR MODE | read PATH | write PATH
//
// (modes octal). The helper's own problems fail the test.
func asUser(t *testing.T, u user, ops ...string) syscall.Errno {
	t.Helper()
	// The helper starts as root and then becomes u: u could not exec the
	// test binary from go test's private build directory.
	args := append([]string{strconv.Itoa(int(u.uid)), strconv.Itoa(int(u.gid))}, ops...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), asUserEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 3 {
		n, perr := strconv.Atoi(strings.TrimSpace(string(out)))
		if perr == nil {
			return syscall.Errno(n)
		}
	}
	t.Fatalf("as uid %d: %v: %v\n%s", u.uid, ops, err, out)
	return 0
}

// asUserMain runs in the helper process. Exit 3 with the errno number on
// stdout: an op failed; exit 2: the helper was misused.
func asUserMain(args []string) int {
	mode := func(s string) uint32 {
		v, err := strconv.ParseUint(s, 8, 32)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bad mode %q\n", s)
			os.Exit(2)
		}
		return uint32(v)
	}
	uid, err1 := strconv.Atoi(args[0])
	gid, err2 := strconv.Atoi(args[1])
	if err1 != nil || err2 != nil {
		fmt.Fprintf(os.Stderr, "bad uid/gid %q %q\n", args[0], args[1])
		return 2
	}
	if err := syscall.Setgroups(nil); err != nil {
		fmt.Fprintln(os.Stderr, "setgroups:", err)
		return 2
	}
	if err := syscall.Setgid(gid); err != nil {
		fmt.Fprintln(os.Stderr, "setgid:", err)
		return 2
	}
	if err := syscall.Setuid(uid); err != nil {
		fmt.Fprintln(os.Stderr, "setuid:", err)
		return 2
	}
	args = args[2:]
	for len(args) > 0 {
		op, n := args[0], 2
		var err error
		switch op {
		case "umask":
			unix.Umask(int(mode(args[1])))
		case "create":
			var fd int
			fd, err = unix.Open(args[1], unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY, mode(args[2]))
			if err == nil {
				unix.Close(fd)
			}
			n = 3
		case "mkdir":
			err, n = unix.Mkdir(args[1], mode(args[2])), 3
		case "mkfifo":
			err, n = unix.Mkfifo(args[1], mode(args[2])), 3
		case "symlink":
			err, n = unix.Symlink(args[1], args[2]), 3
		case "tmpfile":
			// An O_TMPFILE must be the caller's with the mode asked for
			// (the umask applied), or the helper fails.
			var fd int
			fd, err = unix.Open(args[1], unix.O_TMPFILE|unix.O_RDWR, mode(args[2]))
			if err == nil {
				var st unix.Stat_t
				err = unix.Fstat(fd, &st)
				unix.Close(fd)
				old := unix.Umask(0)
				unix.Umask(old)
				if want := mode(args[2]) &^ uint32(old); err == nil && (st.Uid != uint32(uid) || st.Mode&0o7777 != want) {
					fmt.Fprintf(os.Stderr, "O_TMPFILE is %d:%d mode %04o, want uid %d mode %04o\n", st.Uid, st.Gid, st.Mode&0o7777, uid, want)
					return 2
				}
			}
			n = 3
		case "read":
			_, err = os.ReadFile(args[1])
		case "write":
			var fd int
			fd, err = unix.Open(args[1], unix.O_WRONLY, 0)
			if err == nil {
				_, err = unix.Write(fd, []byte("x"))
				unix.Close(fd)
			}
		default:
			fmt.Fprintf(os.Stderr, "unknown op %q\n", op)
			return 2
		}
		if err != nil {
			var errno syscall.Errno
			if !errors.As(err, &errno) {
				fmt.Fprintf(os.Stderr, "%s: %v\n", op, err)
				return 2
			}
			fmt.Println(int(errno))
			return 3
		}
		args = args[n:]
	}
	return 0
}
