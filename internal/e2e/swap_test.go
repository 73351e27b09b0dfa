package e2e

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3sync/s3sync/internal/s3test"
)

// Issue 19's attack, as found: `s3sync mount --allow-other` run as root;
// nobody, who may write one directory ww of WORKDIR, keeps a shell in
// MOUNT/ww/d, swaps WORKDIR/ww/d for a link to a root-only directory and
// then works there through the mount. Every attempt must fail, the
// directory outside must stay exactly as it was, and nothing of it may
// reach WORKDIR or the bucket.
func TestMountSwapAllowOther(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("acting as another user needs root, and CI must run this test")
		}
		t.Skip("acting as another user needs root")
	}
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	m := newMount(t, bucket, "--allow-other")
	base := filepath.Dir(m.mountpoint)
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	outside := filepath.Join(t.TempDir(), "rootonly")
	if err := os.Mkdir(outside, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"rootfile", "rootfile2", "rootfile3"} {
		if err := os.WriteFile(filepath.Join(outside, name), []byte("root's "+name), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(outside, "rootdir"), 0o700); err != nil {
		t.Fatal(err)
	}
	old := time.Unix(1_000_000_000, 0)
	for _, name := range []string{"rootfile", "rootfile2", "rootfile3", "rootdir", "."} {
		if err := os.Chtimes(filepath.Join(outside, name), old, old); err != nil {
			t.Fatal(err)
		}
	}
	before := dirState(t, outside)

	m.start()
	for _, d := range []string{"ww", "ww/d"} {
		if err := os.Mkdir(filepath.Join(m.mountpoint, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(filepath.Join(m.mountpoint, d), 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}

	// The shell makes names of its own like root's, so the kernel knows
	// them, swaps the directory under itself, and tries. Each attempt that
	// succeeds prints its name.
	script := `set -u
cd "$MNT/ww/d" || exit 2
touch rootfile rootfile2 rootfile3 && mkdir rootdir && ls -l >/dev/null || exit 2
mv "$WORK/ww/d" "$WORK/ww/d.away" && ln -s "$OUTSIDE" "$WORK/ww/d" || exit 2
try() { name=$1; shift; "$@" >/dev/null 2>&1 && echo "$name"; }
try create sh -c 'echo x > new'
try mkdir mkdir newdir
try mkfifo mkfifo fifo
try symlink ln -s /etc/shadow newlink
try link ln rootfile3 hardlink
try unlink rm rootfile
try rmdir rmdir rootdir
try rename mv rootfile2 ../stolen
try chmod chmod 666 rootfile3
try truncate truncate -s 0 rootfile3
try touch touch -d @1 rootfile3
try read cat rootfile3
try list ls .
exit 0
`
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Env = append(os.Environ(), "MNT="+m.mountpoint, "WORK="+m.workdir, "OUTSIDE="+outside)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("nobody's shell: %v\n%s", err, out)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Errorf("through the mount, in the directory swapped for a link to a root-only directory, nobody could: %s",
			strings.ReplaceAll(s, "\n", ", "))
	}
	after := dirState(t, outside)
	for rel, b := range before {
		if a, ok := after[rel]; !ok {
			t.Errorf("outside WORKDIR, %s is gone (was %s)", rel, b)
		} else if a != b {
			t.Errorf("outside WORKDIR, %s changed:\n was %s\n now %s", rel, b, a)
		}
	}
	for rel, a := range after {
		if _, ok := before[rel]; !ok {
			t.Errorf("outside WORKDIR, %s appeared: %s", rel, a)
		}
	}
	if _, err := os.Lstat(filepath.Join(m.workdir, "ww/stolen")); err == nil {
		t.Error("root's file was moved into WORKDIR through the mount")
	}
	m.waitDrained(60 * time.Second)
}

// dirState is every entry below root with its type, mode, owner, size,
// mtime and content.
func dirState(t *testing.T, root string) map[string]string {
	t.Helper()
	st := map[string]string{}
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var s syscall.Stat_t
		if err := syscall.Lstat(p, &s); err != nil {
			return err
		}
		desc := fmt.Sprintf("mode %o owner %d:%d size %d mtime %d.%09d", s.Mode, s.Uid, s.Gid, s.Size, s.Mtim.Sec, s.Mtim.Nsec)
		if s.Mode&syscall.S_IFMT == syscall.S_IFREG {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" sha256 %x", sha256.Sum256(b))
		}
		rel, _ := filepath.Rel(root, p)
		st[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}
