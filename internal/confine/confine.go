// Package confine is the one way s3sync touches a working directory or a
// restore's destination: every operation is made relative to a directory fd
// of the root, and every path below it is resolved by the kernel with
// openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS), so no symlink, "..", mount
// point trick or directory swapped for a link between a check and its use
// can lead outside the root. A path string is never checked and then
// resolved again later.
//
// Paths given to a Root are slash-separated and relative to it ("a/b/c");
// "" is the root itself. A symlink anywhere on the way, final component
// included, fails with ELOOP (a parent that is a file: ENOTDIR); operations
// that act on a link itself (Lstat, Readlink, Remove, Rename, Lchown,
// Chtimes, Symlink) never follow the final one.
//
// Go's os.Root follows links that stay inside the root; s3sync must not
// follow a link at all (the bucket's `x.rclonelink` plus `x/evil`, or a
// user swapping a directory for a link to another place inside), hence
// openat2 rather than os.Root. Kernels before 5.6 lack openat2: Open fails
// with ErrUnsupported and callers refuse instead of falling back to
// check-then-open.
//
// What it must not do: know about keys, S3, the journal or FUSE.
package confine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/s3sync/s3sync/internal/dirstat"
	"golang.org/x/sys/unix"
)

// ErrUnsupported: the kernel lacks openat2 (Linux 5.6+), so nothing can be
// confined; pull and restore refuse to run.
var ErrUnsupported = errors.New("this kernel lacks openat2 (Linux 5.6 or later is needed to write into a folder safely)")

// ErrOutside marks a relative path that is not a plain path below the
// root: "..", ".", empty components, absolute, or NUL bytes.
var ErrOutside = errors.New("path would land outside the destination directory")

// resolve is how every path below a root is resolved.
const resolve = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// Root is an open directory that operations are confined to.
type Root struct {
	fd      int
	path    string
	resolve uint64
	// follow: links that stay inside the root are followed on the way
	// (FollowInside).
	follow bool
}

// Open opens dir (a path the trusted user gave) as a root.
func Open(dir string) (*Root, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Open(abs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: abs, Err: err}
	}
	r := &Root{fd: fd, path: abs, resolve: resolve}
	// One probe: a kernel without openat2 answers ENOSYS.
	probe, err := r.openat2(".", unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.ENOSYS) {
			return nil, ErrUnsupported
		}
		return nil, &fs.PathError{Op: "openat2", Path: abs, Err: err}
	}
	unix.Close(probe)
	return r, nil
}

// FollowInside is a view of r that follows symlinks on the way as long as
// they stay inside the root (RESOLVE_BENEATH without NO_SYMLINKS): a link
// that leads outside, absolute or by "..", fails with EXDEV. It is for
// `reconcile` without --links, which follows a destination's own links as
// the AWS CLI does. Close the original, not the view.
func (r *Root) FollowInside() *Root {
	v := *r
	v.resolve = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS
	v.follow = true
	return &v
}

// Close closes the root's fd.
func (r *Root) Close() error { return unix.Close(r.fd) }

// Path is the root's absolute path, for messages and for code that hands
// a path to another program.
func (r *Root) Path() string { return r.path }

// Fd is the root's O_PATH directory fd (owned by r).
func (r *Root) Fd() int { return r.fd }

// Join is the absolute path of rel, for messages only: never open it.
func (r *Root) Join(rel string) string {
	if rel == "" {
		return r.path
	}
	return filepath.Join(r.path, filepath.FromSlash(rel))
}

// Check reports whether rel is a plain relative path that names something
// strictly below a root: no "..", ".", empty components ("a//b"), leading
// slash or NUL byte.
func Check(rel string) error {
	if rel == "" || strings.HasPrefix(rel, "/") || strings.ContainsRune(rel, 0) {
		return ErrOutside
	}
	for part := range strings.SplitSeq(rel, "/") {
		if part == "" || part == "." || part == ".." {
			return ErrOutside
		}
	}
	return nil
}

// CheckLinkTarget reports whether target can be a symlink's target made
// from a bucket's link object: not empty, no NUL byte, within PATH_MAX.
// Where it points is not checked: s3sync never follows a link it made (a
// backup's links to /usr/lib are legitimate), and nothing below a root is
// resolved through one.
func CheckLinkTarget(target string) error {
	switch {
	case target == "":
		return errors.New("empty symlink target")
	case strings.ContainsRune(target, 0):
		return errors.New("symlink target holds a NUL byte")
	case len(target) >= unix.PathMax:
		return fmt.Errorf("symlink target of %d bytes is over PATH_MAX", len(target))
	}
	return nil
}

func (r *Root) openat2(rel string, flags int, mode uint32) (int, error) {
	return openat2(r.fd, rel, flags, mode, r.resolve)
}

// dirFlags open a directory on the way for *at calls.
func (r *Root) dirFlags() int {
	if r.follow {
		return unix.O_PATH | unix.O_DIRECTORY
	}
	return unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW
}

func openat2(dirfd int, rel string, flags int, mode uint32, res uint64) (int, error) {
	if rel == "" {
		rel = "."
	}
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Mode: uint64(mode), Resolve: res}
	for {
		fd, err := unix.Openat2(dirfd, rel, &how)
		if err == unix.EINTR || err == unix.EAGAIN {
			// EAGAIN: a rename elsewhere raced the lookup; try again.
			continue
		}
		return fd, err
	}
}

func (r *Root) pathErr(op, rel string, err error) error {
	return &fs.PathError{Op: op, Path: r.Join(rel), Err: err}
}

// OpenFile opens rel with flags (os.O_* / unix.O_*) and, when it creates,
// perm. A symlink on the way or at rel fails with ELOOP.
func (r *Root) OpenFile(rel string, flags int, perm uint32) (*os.File, error) {
	fd, err := r.openat2(rel, flags|unix.O_NOFOLLOW, perm)
	if err != nil {
		return nil, r.pathErr("open", rel, err)
	}
	return os.NewFile(uintptr(fd), r.Join(rel)), nil
}

// Open opens rel for reading.
func (r *Root) Open(rel string) (*os.File, error) { return r.OpenFile(rel, unix.O_RDONLY, 0) }

// OpenDir opens the directory rel (O_PATH when path is set: for *at calls
// only).
func (r *Root) OpenDir(rel string, pathOnly bool) (int, error) {
	flags := unix.O_DIRECTORY | unix.O_NOFOLLOW
	if pathOnly {
		flags |= unix.O_PATH
	} else {
		flags |= unix.O_RDONLY
	}
	fd, err := r.openat2(rel, flags, 0)
	if err != nil {
		return -1, r.pathErr("open", rel, err)
	}
	return fd, nil
}

// parent opens rel's parent directory for *at calls and gives rel's last
// component. done closes it (the root's own fd is never closed).
func (r *Root) parent(rel string) (fd int, name string, done func(), err error) {
	if err := Check(rel); err != nil {
		return -1, "", nil, r.pathErr("resolve", rel, err)
	}
	dir, name := path.Split(rel)
	if dir == "" {
		return r.fd, name, func() {}, nil
	}
	fd, err = r.openat2(strings.TrimSuffix(dir, "/"), r.dirFlags(), 0)
	if err != nil {
		return -1, "", nil, r.pathErr("open", strings.TrimSuffix(dir, "/"), err)
	}
	return fd, name, func() { unix.Close(fd) }, nil
}

// Lstat is os.Lstat of rel, resolving no symlink on the way: a parent that
// is a link or a file gives ELOOP or ENOTDIR (callers treat both as "rel is
// not there").
func (r *Root) Lstat(rel string) (fs.FileInfo, error) {
	if rel == "" {
		return dirstat.LstatAt(r.fd, filepath.Dir(r.path), ".")
	}
	fd, name, done, err := r.parent(rel)
	if err != nil {
		return nil, err
	}
	defer done()
	return dirstat.LstatAt(fd, r.Join(path.Dir(rel)), name)
}

// Mkdir makes the directory rel.
func (r *Root) Mkdir(rel string, perm uint32) error {
	fd, name, done, err := r.parent(rel)
	if err != nil {
		return err
	}
	defer done()
	if err := unix.Mkdirat(fd, name, perm); err != nil {
		return r.pathErr("mkdir", rel, err)
	}
	return nil
}

// MkdirAll makes rel and the directories above it, one component at a
// time, each resolved from the root again: a component that is a link (one
// leading outside, in a FollowInside view) or a file fails with ENOTDIR,
// whatever it points to.
func (r *Root) MkdirAll(rel string, perm uint32) error {
	if rel == "" {
		return nil
	}
	if err := Check(rel); err != nil {
		return r.pathErr("mkdir", rel, err)
	}
	// Fast path: the directory is there.
	if fd, err := r.openat2(rel, r.dirFlags(), 0); err == nil {
		unix.Close(fd)
		return nil
	}
	for i := 0; i <= len(rel); i++ {
		if i < len(rel) && rel[i] != '/' {
			continue
		}
		done := rel[:i]
		fd, name, closeParent, err := r.parent(done)
		if err != nil {
			return r.pathErr("mkdir", done, notDir(err))
		}
		err = unix.Mkdirat(fd, name, perm)
		closeParent()
		if err != nil && err != unix.EEXIST {
			return r.pathErr("mkdir", done, err)
		}
		if err == unix.EEXIST {
			next, err := r.openat2(done, r.dirFlags(), 0)
			if err != nil {
				return r.pathErr("mkdir", done, notDir(err))
			}
			unix.Close(next)
		}
	}
	return nil
}

// notDir maps "a link on the way" to ENOTDIR: a folder cannot be made
// there.
func notDir(err error) error {
	if errors.Is(err, unix.ELOOP) {
		return unix.ENOTDIR
	}
	return err
}

// Symlink makes rel a symlink to target.
func (r *Root) Symlink(target, rel string) error {
	fd, name, done, err := r.parent(rel)
	if err != nil {
		return err
	}
	defer done()
	if err := unix.Symlinkat(target, fd, name); err != nil {
		return r.pathErr("symlink", rel, err)
	}
	return nil
}

// Readlink is the target of the symlink rel.
func (r *Root) Readlink(rel string) (string, error) {
	fd, name, done, err := r.parent(rel)
	if err != nil {
		return "", err
	}
	defer done()
	buf := make([]byte, 256)
	for {
		n, err := unix.Readlinkat(fd, name, buf)
		if err != nil {
			return "", r.pathErr("readlink", rel, err)
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		buf = make([]byte, 2*len(buf))
	}
}

// Remove removes the file, link or empty directory rel (os.Remove's
// semantics, without following anything).
func (r *Root) Remove(rel string) error {
	fd, name, done, err := r.parent(rel)
	if err != nil {
		return err
	}
	defer done()
	err = unix.Unlinkat(fd, name, 0)
	if err == unix.EISDIR {
		err = unix.Unlinkat(fd, name, unix.AT_REMOVEDIR)
	}
	if err != nil {
		return r.pathErr("remove", rel, err)
	}
	return nil
}

// RemoveDir removes the empty directory rel.
func (r *Root) RemoveDir(rel string) error {
	fd, name, done, err := r.parent(rel)
	if err != nil {
		return err
	}
	defer done()
	if err := unix.Unlinkat(fd, name, unix.AT_REMOVEDIR); err != nil {
		return r.pathErr("rmdir", rel, err)
	}
	return nil
}

// Rename renames from to to (renameat2 with flags, e.g.
// unix.RENAME_NOREPLACE).
func (r *Root) Rename(from, to string, flags uint) error {
	ofd, oname, odone, err := r.parent(from)
	if err != nil {
		return err
	}
	defer odone()
	nfd, nname, ndone, err := r.parent(to)
	if err != nil {
		return err
	}
	defer ndone()
	if err := unix.Renameat2(ofd, oname, nfd, nname, flags); err != nil {
		return &os.LinkError{Op: "rename", Old: r.Join(from), New: r.Join(to), Err: err}
	}
	return nil
}

// Chtimes sets rel's atime and mtime, a link's own when rel is one.
func (r *Root) Chtimes(rel string, atime, mtime time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	if rel == "" {
		return unix.UtimesNanoAt(r.fd, "", ts, unix.AT_EMPTY_PATH)
	}
	fd, name, done, err := r.parent(rel)
	if err != nil {
		return err
	}
	defer done()
	if err := unix.UtimesNanoAt(fd, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return r.pathErr("chtimes", rel, err)
	}
	return nil
}

// Lchown sets rel's owner, a link's own when rel is one.
func (r *Root) Lchown(rel string, uid, gid int) error {
	fd, name, done, err := r.parent(rel)
	if err != nil {
		return err
	}
	defer done()
	if err := unix.Fchownat(fd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return r.pathErr("lchown", rel, err)
	}
	return nil
}

// Chmod sets rel's permission bits (all 12: the caller decides which it
// may set). A symlink at rel fails with ELOOP.
func (r *Root) Chmod(rel string, mode uint32) error {
	fd, err := r.openat2(rel, unix.O_PATH|unix.O_NOFOLLOW, 0)
	if err != nil {
		return r.pathErr("chmod", rel, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return r.pathErr("chmod", rel, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return r.pathErr("chmod", rel, unix.ELOOP)
	}
	// An O_PATH fd cannot fchmod; its /proc magic link names exactly
	// the inode opened, whatever happened to the path since.
	if err := unix.Fchmodat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", fd), mode, 0); err != nil {
		return r.pathErr("chmod", rel, err)
	}
	return nil
}

// CreateTemp opens a new file in the directory dir for writing: unnamed
// (O_TMPFILE, name "") where the filesystem allows, else under a fresh
// temporary name that is returned (relative to the root).
func (r *Root) CreateTemp(dir string, perm uint32, name func() string) (*os.File, string, error) {
	fd, err := r.openat2(dir, unix.O_WRONLY|unix.O_TMPFILE, perm)
	if err == nil {
		return os.NewFile(uintptr(fd), r.Join(dir)), "", nil
	}
	if err == unix.ELOOP || err == unix.ENOTDIR || err == unix.ENOENT || err == unix.EXDEV {
		return nil, "", r.pathErr("open", dir, err)
	}
	tmp := path.Join(dir, name())
	f, err := r.OpenFile(tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, perm)
	if err != nil {
		return nil, "", err
	}
	return f, tmp, nil
}

// Link gives the open file f the name rel (linkat of its /proc magic
// link: f may be unnamed, from CreateTemp).
func (r *Root) Link(f *os.File, rel string) error {
	fd, name, done, err := r.parent(rel)
	if err != nil {
		return err
	}
	defer done()
	src := fmt.Sprintf("/proc/self/fd/%d", f.Fd())
	if err := unix.Linkat(unix.AT_FDCWD, src, fd, name, unix.AT_SYMLINK_FOLLOW); err != nil {
		return r.pathErr("link", rel, err)
	}
	return nil
}
