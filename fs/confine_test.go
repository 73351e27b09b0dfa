package fs

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3sync/s3sync/third_party/go-fuse/fuse"
	"golang.org/x/sys/unix"
)

// Issue 19's swap attack: a user who may write one directory of WORKDIR
// (ww) works in MOUNT/ww/d and swaps WORKDIR/ww/d for a link to a
// directory outside WORKDIR that only root may touch. Whatever is then
// asked through the mount in d must fail (ELOOP, ENOTDIR or ENOENT) and
// leave the outside directory exactly as it was.

// The names in d that the attacks aim at: made in d before the swap and
// looked up through the mount (so the kernel may send the op without a
// LOOKUP), and present in the outside directory as root's.
var swapTargets = []string{"rootfile", "rootfile2", "rootfile3", "rootfile4", "rootlink"}

// swapOps are the attacks, as paths relative to the attacker's working
// directory, MOUNT/ww/d. Each is tried whatever the others did.
var swapOps = []struct {
	name string
	do   func() error
}{
	{"create", func() error { return closeFd(unix.Open("new", unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY, 0o644)) }},
	{"mkdir", func() error { return unix.Mkdir("newdir", 0o755) }},
	{"mknod", func() error { return unix.Mknod("fifo", unix.S_IFIFO|0o644, 0) }},
	{"symlink", func() error { return unix.Symlink("/etc/passwd", "newlink") }},
	{"link", func() error { return unix.Link("rootfile4", "hardlink") }},
	{"unlink", func() error { return unix.Unlink("rootfile") }},
	{"rmdir", func() error { return unix.Rmdir("rootdir") }},
	{"rename", func() error { return unix.Rename("rootfile2", "rootfile3") }},
	{"rename-noreplace", func() error {
		return unix.Renameat2(unix.AT_FDCWD, "rootfile2", unix.AT_FDCWD, "moved", unix.RENAME_NOREPLACE)
	}},
	{"rename-exchange", func() error {
		return unix.Renameat2(unix.AT_FDCWD, "rootfile3", unix.AT_FDCWD, "rootfile4", unix.RENAME_EXCHANGE)
	}},
	{"rename-out", func() error { return unix.Rename("rootfile4", "../stolen") }},
	{"chmod", func() error { return unix.Chmod("rootfile3", 0o666) }},
	{"chown", func() error { return unix.Lchown("rootfile3", -1, os.Getgid()) }},
	{"truncate", func() error { return unix.Truncate("rootfile3", 0) }},
	{"utimes", func() error {
		return unix.UtimesNanoAt(unix.AT_FDCWD, "rootfile3", []unix.Timespec{{Sec: 1}, {Sec: 1}}, unix.AT_SYMLINK_NOFOLLOW)
	}},
	{"setxattr", func() error { return unix.Setxattr("rootfile3", "user.evil", []byte("x"), 0) }},
	{"removexattr", func() error { return unix.Removexattr("rootfile3", "user.keep") }},
	{"getxattr", func() error { _, err := unix.Getxattr("rootfile3", "user.keep", make([]byte, 64)); return err }},
	{"listxattr", func() error { _, err := unix.Listxattr("rootfile3", make([]byte, 256)); return err }},
	{"readlink", func() error { _, err := unix.Readlink("rootlink", make([]byte, 64)); return err }},
	{"open-trunc", func() error { return closeFd(unix.Open("rootfile4", unix.O_WRONLY|unix.O_TRUNC, 0)) }},
	{"read", func() error { _, err := os.ReadFile("rootfile4"); return err }},
	{"stat", func() error { var st unix.Stat_t; return unix.Lstat("onlyoutside", &st) }},
	{"readdir", func() error { _, err := os.ReadDir("."); return err }},
	{"tmpfile", func() error { return closeFd(unix.Open(".", unix.O_TMPFILE|unix.O_RDWR, 0o644)) }},
}

func closeFd(fd int, err error) error {
	if err == nil {
		unix.Close(fd)
	}
	return err
}

const swapEnv = "S3SYNC_FS_TEST_SWAP"

// swapMain runs in the attacker's process (see runSwapAttacker): args are
// uid, gid, the directory to work in, and, if the attacker swaps the
// directory itself, the WORKDIR directory and the link's target.
func swapMain(args []string) int {
	uid, _ := strconv.Atoi(args[0])
	gid, _ := strconv.Atoi(args[1])
	if err := becomeUser(uid, gid); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := os.Chdir(args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "chdir:", err)
		return 2
	}
	// Look up every target, so the kernel holds them.
	for _, name := range append(swapTargets, "rootdir") {
		var st unix.Stat_t
		if err := unix.Lstat(name, &st); err != nil {
			fmt.Fprintln(os.Stderr, "lstat before the swap:", err)
			return 2
		}
	}
	if len(args) == 5 {
		if err := os.Rename(args[3], args[3]+".away"); err != nil {
			fmt.Fprintln(os.Stderr, "swap:", err)
			return 2
		}
		if err := os.Symlink(args[4], args[3]); err != nil {
			fmt.Fprintln(os.Stderr, "swap:", err)
			return 2
		}
	} else {
		fmt.Println("ready")
		if line, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil || line != "go\n" {
			fmt.Fprintln(os.Stderr, "no go:", err)
			return 2
		}
	}
	for _, op := range swapOps {
		errno := syscall.Errno(0)
		if err := op.do(); err != nil {
			var ok bool
			if errno, ok = underlyingErrno(err); !ok {
				fmt.Fprintf(os.Stderr, "%s: %v\n", op.name, err)
				return 2
			}
		}
		fmt.Printf("%s %d\n", op.name, int(errno))
	}
	return 0
}

func underlyingErrno(err error) (syscall.Errno, bool) {
	for err != nil {
		if errno, ok := err.(syscall.Errno); ok {
			return errno, true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return 0, false
		}
		err = u.Unwrap()
	}
	return 0, false
}

func becomeUser(uid, gid int) error {
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("setgid: %w", err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("setuid: %w", err)
	}
	return nil
}

// runSwapAttacker runs the attacker as u in dir (MOUNT/ww/d). If swap is
// nil the attacker swaps wwd (WORKDIR/ww/d) for a link to outside itself;
// otherwise it calls swap once the attacker holds its working directory
// and has looked its targets up. It returns each op's errno.
func runSwapAttacker(t *testing.T, u user, dir, wwd, outside string, swap func()) map[string]syscall.Errno {
	t.Helper()
	args := []string{strconv.Itoa(int(u.uid)), strconv.Itoa(int(u.gid)), dir}
	if swap == nil {
		args = append(args, wwd, outside)
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), swapEnv+"=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	must(t, err)
	stdout, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	out := bufio.NewReader(stdout)
	if swap != nil {
		if line, err := out.ReadString('\n'); err != nil || line != "ready\n" {
			cmd.Wait()
			t.Fatalf("attacker did not get ready: %q %v\n%s", line, err, stderr.String())
		}
		swap()
		io.WriteString(stdin, "go\n")
	}
	rest, _ := io.ReadAll(out)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("attacker: %v\n%s", err, stderr.String())
	}
	got := map[string]syscall.Errno{}
	for _, line := range strings.Split(strings.TrimSpace(string(rest)), "\n") {
		name, num, _ := strings.Cut(line, " ")
		n, err := strconv.Atoi(num)
		if err != nil {
			t.Fatalf("attacker's output: %q", line)
		}
		got[name] = syscall.Errno(n)
	}
	return got
}

// swapSetup makes, through the mount, WORKDIR/ww (writable by u) and
// ww/d holding the targets, u's own; and, outside WORKDIR, a directory
// only root may touch holding root's files of the same names. It returns
// the outside directory.
func swapSetup(t *testing.T, tm *testMount, u user) string {
	t.Helper()
	must(t, os.Mkdir(tm.path("ww"), 0o755))
	must(t, os.Mkdir(tm.path("ww/d"), 0o755))
	for _, name := range swapTargets[:len(swapTargets)-1] {
		write(t, tm.path("ww/d/"+name), "the attacker's")
	}
	must(t, os.Symlink("rootfile", tm.path("ww/d/rootlink")))
	must(t, os.Mkdir(tm.path("ww/d/rootdir"), 0o755))
	for _, rel := range []string{"ww", "ww/d", "ww/d/rootfile", "ww/d/rootfile2", "ww/d/rootfile3", "ww/d/rootfile4", "ww/d/rootlink", "ww/d/rootdir"} {
		must(t, os.Lchown(tm.path(rel), int(u.uid), int(u.gid)))
	}
	// The way to WORKDIR and the mountpoint (t.TempDir's parents are
	// 0700).
	for _, d := range []string{filepath.Dir(tm.work), tm.work, filepath.Dir(tm.mnt), tm.mnt} {
		must(t, os.Chmod(d, 0o755))
	}

	outside := filepath.Join(t.TempDir(), "rootonly")
	must(t, os.Mkdir(outside, 0o700))
	for _, name := range swapTargets[:len(swapTargets)-1] {
		p := filepath.Join(outside, name)
		must(t, os.WriteFile(p, []byte("root's "+name), 0o600))
		must(t, unix.Setxattr(p, "user.keep", []byte("root's"), 0))
	}
	must(t, os.Symlink("rootfile", filepath.Join(outside, "rootlink")))
	must(t, os.Mkdir(filepath.Join(outside, "rootdir"), 0o700))
	must(t, os.WriteFile(filepath.Join(outside, "onlyoutside"), nil, 0o600))
	// Old times, so that a change made now shows.
	old := time.Unix(1_000_000_000, 0)
	for _, name := range append(swapTargets[:len(swapTargets)-1], "rootdir", ".") {
		must(t, os.Chtimes(filepath.Join(outside, name), old, old))
	}
	return outside
}

// treeState is every entry of a tree with its type, mode, owner, size,
// mtime, content and xattrs.
func treeState(t *testing.T, root string) map[string]string {
	t.Helper()
	st := map[string]string{}
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var s unix.Stat_t
		if err := unix.Lstat(p, &s); err != nil {
			return err
		}
		desc := fmt.Sprintf("mode %o owner %d:%d size %d mtime %d.%09d", s.Mode, s.Uid, s.Gid, s.Size, s.Mtim.Sec, s.Mtim.Nsec)
		switch s.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" sha256 %x", sha256.Sum256(b))
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " -> " + target
		}
		if s.Mode&unix.S_IFMT != unix.S_IFLNK {
			buf := make([]byte, 1024)
			n, err := unix.Llistxattr(p, buf)
			if err != nil {
				return err
			}
			for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
				if name == "" {
					continue
				}
				v := make([]byte, 256)
				m, err := unix.Lgetxattr(p, name, v)
				if err != nil {
					return err
				}
				desc += fmt.Sprintf(" xattr %s=%q", name, v[:m])
			}
		}
		rel, _ := filepath.Rel(root, p)
		st[rel] = desc
		return nil
	})
	must(t, err)
	return st
}

func checkUnchanged(t *testing.T, outside string, before map[string]string) {
	t.Helper()
	after := treeState(t, outside)
	for rel, b := range before {
		if a, ok := after[rel]; !ok {
			t.Errorf("outside WORKDIR, %s was removed through the mount (was %s)", rel, b)
		} else if a != b {
			t.Errorf("outside WORKDIR, %s changed through the mount:\n was %s\n now %s", rel, b, a)
		}
	}
	for rel, a := range after {
		if _, ok := before[rel]; !ok {
			t.Errorf("outside WORKDIR, %s appeared through the mount: %s", rel, a)
		}
	}
}

// checkRefused: every op failed with ELOOP, ENOTDIR or ENOENT.
func checkRefused(t *testing.T, got map[string]syscall.Errno) {
	t.Helper()
	for _, op := range swapOps {
		errno, ok := got[op.name]
		switch {
		case !ok:
			t.Errorf("%s: not tried", op.name)
		case errno == 0:
			t.Errorf("%s in the swapped directory succeeded through the mount", op.name)
		case errno != syscall.ELOOP && errno != syscall.ENOTDIR && errno != syscall.ENOENT:
			t.Errorf("%s in the swapped directory: %v, want ELOOP, ENOTDIR or ENOENT", op.name, errno)
		}
	}
}

func requireRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s needs root, and CI must run it", why)
	}
	t.Skipf("%s needs root", why)
}

// swapOpts: the kernel keeps what the attacker looked up for the whole
// test, so the ops on the targets reach the mount without a new LOOKUP.
func swapOpts(o Options) Options {
	o.EntryTimeout, o.AttrTimeout = time.Minute, time.Minute
	return o
}

// TestSwapAllowOther: issue 19's attack. With AllowOther, mounted by root,
// nobody keeps a working directory in MOUNT/ww/d, swaps WORKDIR/ww/d for a
// link to a root-only directory and works there through the mount.
func TestSwapAllowOther(t *testing.T) {
	requireRoot(t, "acting as another user")
	for _, mode := range ioModes {
		t.Run(mode.name, func(t *testing.T) {
			o := swapOpts(mode.opts)
			o.AllowOther = true
			tm := newMount(t, o)
			outside := swapSetup(t, tm, nobody)
			before := treeState(t, outside)
			got := runSwapAttacker(t, nobody, tm.path("ww/d"), tm.orig("ww/d"), outside, nil)
			checkRefused(t, got)
			checkUnchanged(t, outside, before)
		})
	}
}

// TestSwapOwnUser: the same swap without AllowOther, for the mount's own
// user: a program holds a working directory in the mount while another
// process swaps the WORKDIR directory under it.
func TestSwapOwnUser(t *testing.T) {
	requireRoot(t, "a root-only directory")
	for _, mode := range ioModes {
		t.Run(mode.name, func(t *testing.T) {
			tm := newMount(t, swapOpts(mode.opts))
			root := user{0, 0}
			outside := swapSetup(t, tm, root)
			before := treeState(t, outside)
			got := runSwapAttacker(t, root, tm.path("ww/d"), "", "", func() {
				must(t, os.Rename(tm.orig("ww/d"), tm.orig("ww/d.away")))
				must(t, os.Symlink(outside, tm.orig("ww/d")))
			})
			checkRefused(t, got)
			checkUnchanged(t, outside, before)
		})
	}
}

// TestSwapNodeOps calls every operation of the mount's nodes in and on a
// directory swapped for a link, as the kernel would send them had it
// looked the names up just before the swap, whatever its caches hold:
// the ones a LOOKUP of a new name normally precedes (create, mkdir, ...)
// included.
func TestSwapNodeOps(t *testing.T) {
	requireRoot(t, "a root-only directory")
	tm := newMount(t, swapOpts(Options{}))
	outside := swapSetup(t, tm, user{0, 0})
	before := treeState(t, outside)
	for _, rel := range []string{"ww/d/rootfile", "ww/d/rootfile2", "ww/d/rootfile3", "ww/d/rootfile4", "ww/d/rootlink", "ww/d/rootdir"} {
		var st unix.Stat_t
		must(t, unix.Lstat(tm.path(rel), &st))
	}
	node := func(rel string) *Node {
		in := tm.m.root.EmbeddedInode()
		for name := range strings.SplitSeq(rel, "/") {
			if in = in.GetChild(name); in == nil {
				t.Fatalf("%s: not in the tree", rel)
			}
		}
		return in.Operations().(*Node)
	}
	d := node("ww/d")
	f3, f4, lnk, sub := node("ww/d/rootfile3"), node("ww/d/rootfile4"), node("ww/d/rootlink"), node("ww/d/rootdir")
	must(t, os.Rename(tm.orig("ww/d"), tm.orig("ww/d.away")))
	must(t, os.Symlink(outside, tm.orig("ww/d")))

	ctx := context.Background()
	var entry fuse.EntryOut
	var attr fuse.AttrOut
	setattr := func(valid uint32, in fuse.SetAttrInCommon) syscall.Errno {
		in.Valid = valid
		return f3.Setattr(ctx, nil, &fuse.SetAttrIn{SetAttrInCommon: in}, &attr)
	}
	errOf := func(_ any, errno syscall.Errno) syscall.Errno { return errno }
	ops := []struct {
		name  string
		errno syscall.Errno
	}{
		{"Lookup", errOf(d.Lookup(ctx, "rootfile", &entry))},
		{"Lookup of a new name", errOf(d.Lookup(ctx, "onlyoutside", &entry))},
		{"Getattr of a child", f3.Getattr(ctx, nil, &attr)},
		{"Statx", f3.Statx(ctx, nil, 0, unix.STATX_BASIC_STATS, &fuse.StatxOut{})},
		{"Readlink", errOf(lnk.Readlink(ctx))},
		{"Open", func() syscall.Errno { _, _, e := f4.Open(ctx, syscall.O_RDONLY); return e }()},
		{"Open O_TRUNC", func() syscall.Errno { _, _, e := f4.Open(ctx, syscall.O_WRONLY|syscall.O_TRUNC); return e }()},
		{"Create", func() syscall.Errno { _, _, _, e := d.Create(ctx, "new", syscall.O_WRONLY, 0o644, &entry); return e }()},
		{"Create over a target", func() syscall.Errno {
			_, _, _, e := d.Create(ctx, "rootfile3", syscall.O_WRONLY|syscall.O_TRUNC, 0o644, &entry)
			return e
		}()},
		{"Tmpfile", func() syscall.Errno { _, _, _, e := d.Tmpfile(ctx, syscall.O_RDWR, 0o644, &entry); return e }()},
		{"Mkdir", errOf(d.Mkdir(ctx, "newdir", 0o755, &entry))},
		{"Mknod", errOf(d.Mknod(ctx, "fifo", syscall.S_IFIFO|0o644, 0, &entry))},
		{"Symlink", errOf(d.Symlink(ctx, "/etc/passwd", "newlink", &entry))},
		{"Link", errOf(d.Link(ctx, f4, "hardlink", &entry))},
		{"Unlink", d.Unlink(ctx, "rootfile")},
		{"Rmdir", d.Rmdir(ctx, "rootdir")},
		{"Rename", d.Rename(ctx, "rootfile2", d, "rootfile3", 0)},
		{"Rename NOREPLACE", d.Rename(ctx, "rootfile2", d, "moved", unix.RENAME_NOREPLACE)},
		{"Rename EXCHANGE", d.Rename(ctx, "rootfile3", d, "rootfile4", unix.RENAME_EXCHANGE)},
		{"Rename WHITEOUT", d.Rename(ctx, "rootfile2", d, "moved", unix.RENAME_WHITEOUT)},
		{"Rename out", d.Rename(ctx, "rootfile2", node("ww"), "stolen", 0)},
		{"Setattr mode", setattr(fuse.FATTR_MODE, fuse.SetAttrInCommon{Mode: 0o666})},
		{"Setattr owner", setattr(fuse.FATTR_UID|fuse.FATTR_GID, fuse.SetAttrInCommon{Owner: fuse.Owner{Uid: 65534, Gid: 65534}})},
		{"Setattr size", setattr(fuse.FATTR_SIZE, fuse.SetAttrInCommon{Size: 0})},
		{"Setattr times", setattr(fuse.FATTR_MTIME|fuse.FATTR_ATIME, fuse.SetAttrInCommon{Mtime: 1, Atime: 1})},
		{"Setxattr", f3.Setxattr(ctx, "user.evil", []byte("x"), 0)},
		{"Removexattr", f3.Removexattr(ctx, "user.keep")},
		{"Getxattr", errOf(f3.Getxattr(ctx, "user.keep", make([]byte, 64)))},
		{"Listxattr", errOf(f3.Listxattr(ctx, make([]byte, 256)))},
		{"Opendir", func() syscall.Errno { _, _, e := d.OpendirHandle(ctx, 0); return e }()},
		{"Opendir of a child", func() syscall.Errno { _, _, e := sub.OpendirHandle(ctx, 0); return e }()},
		{"Readdir", errOf(d.Readdir(ctx))},
		{"Statfs", d.Statfs(ctx, &fuse.StatfsOut{})},
	}
	for _, op := range ops {
		switch op.errno {
		case syscall.ELOOP, syscall.ENOTDIR, syscall.ENOENT:
		case 0:
			t.Errorf("%s in a directory swapped for a link succeeded", op.name)
		default:
			t.Errorf("%s in a directory swapped for a link: %v, want ELOOP, ENOTDIR or ENOENT", op.name, op.errno)
		}
	}
	// On d itself the ops act on the name ww/d, now the link, and never
	// through it: a getattr shows the link, a chmod cannot change one.
	if errno := d.Setattr(ctx, nil, &fuse.SetAttrIn{SetAttrInCommon: fuse.SetAttrInCommon{Valid: fuse.FATTR_MODE, Mode: 0o777}}, &attr); errno != syscall.EOPNOTSUPP {
		t.Errorf("chmod of the directory swapped for a link: %v, want EOPNOTSUPP", errno)
	}
	if errno := d.Getattr(ctx, nil, &attr); errno != 0 || attr.Mode&syscall.S_IFMT != syscall.S_IFLNK {
		t.Errorf("getattr of the directory swapped for a link: %v, mode %o, want the link's", errno, attr.Mode)
	}
	checkUnchanged(t, outside, before)
	// Put d back so the mount's cleanup finds what it left.
	must(t, os.Remove(tm.orig("ww/d")))
	must(t, os.Rename(tm.orig("ww/d.away"), tm.orig("ww/d")))
}
