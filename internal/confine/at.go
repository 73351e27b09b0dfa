package confine

import (
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// At is one name in a directory below a root, for callers that make
// several *at calls on it (the FUSE layer: a SETATTR's chmod, chown,
// utimes and lstat) and resolve its parent once. Nothing here returns a
// *fs.PathError: these calls serve syscalls whose callers want the errno.
type At struct {
	// Dir is an O_PATH descriptor of the parent, the root's own for a
	// name at the top; Name is the last name ("." for the root itself).
	Dir  int
	Name string
	own  bool
}

// At resolves rel's parent as every path below r is (openat2,
// RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS): a symlink on the way gives ELOOP;
// a parent that is itself a symlink or a file, ENOTDIR. rel "" is the
// root itself. Close it when done.
func (r *Root) At(rel string) (At, error) {
	if rel == "" {
		return At{Dir: r.fd, Name: "."}, nil
	}
	if Check(rel) != nil {
		return At{Dir: -1}, syscall.EINVAL
	}
	i := strings.LastIndexByte(rel, '/')
	if i < 0 {
		return At{Dir: r.fd, Name: rel}, nil
	}
	fd, err := r.openat2(rel[:i], unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return At{Dir: -1}, err
	}
	return At{Dir: fd, Name: rel[i+1:], own: true}, nil
}

// DirFd opens the directory rel (O_PATH) as a new descriptor the caller
// closes, resolved as At resolves a parent: for code outside this module
// that takes a "open a directory" function (the go-fuse loopback's
// OpenDir).
func (r *Root) DirFd(rel string) (int, error) {
	return r.openat2(rel, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
}

// Close closes the parent's descriptor unless it is the root's.
func (a At) Close() {
	if a.own {
		unix.Close(a.Dir)
	}
}

// Lstat stats the name itself.
func (a At) Lstat(st *syscall.Stat_t) error {
	return ignoringEINTR(func() error {
		return unix.Fstatat(a.Dir, a.Name, (*unix.Stat_t)(unsafe.Pointer(st)), unix.AT_SYMLINK_NOFOLLOW)
	})
}

// Unlink removes the name, not a directory.
func (a At) Unlink() error { return unix.Unlinkat(a.Dir, a.Name, 0) }

// Rmdir removes the name, an empty directory.
func (a At) Rmdir() error { return unix.Unlinkat(a.Dir, a.Name, unix.AT_REMOVEDIR) }

// Lchown sets the owner of the name itself (-1: leave as is).
func (a At) Lchown(uid, gid int) error {
	return unix.Fchownat(a.Dir, a.Name, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
}

// Utimes sets the name's atime and mtime (unix.UTIME_OMIT and
// UTIME_NOW allowed), a symlink's own.
func (a At) Utimes(ts []unix.Timespec) error {
	return unix.UtimesNanoAt(a.Dir, a.Name, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// Chmod sets the name's permission bits. A symlink there is not
// followed: it fails with EOPNOTSUPP (Linux cannot chmod a link).
// fchmodat2 with AT_SYMLINK_NOFOLLOW (Linux 6.6) does it in one call;
// older kernels go through an O_PATH descriptor (see Root.Chmod).
func (a At) Chmod(mode uint32) error {
	if !noFchmodat2.Load() {
		p, err := unix.BytePtrFromString(a.Name)
		if err != nil {
			return err
		}
		_, _, e := unix.Syscall6(unix.SYS_FCHMODAT2, uintptr(a.Dir), uintptr(unsafe.Pointer(p)), uintptr(mode), unix.AT_SYMLINK_NOFOLLOW, 0, 0)
		switch e {
		case 0:
			return nil
		case unix.ENOSYS:
			noFchmodat2.Store(true)
		case unix.EPERM:
			// A seccomp filter that does not know the call yet answers
			// EPERM (systemd's SystemCallErrorNumber); a real EPERM
			// comes again from the fallback.
		default:
			return e
		}
	}
	return a.viaPath(func(p string, st *unix.Stat_t) error {
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return unix.EOPNOTSUPP
		}
		return unix.Chmod(p, mode)
	})
}

var noFchmodat2 atomic.Bool

// Truncate is truncate(2) of the name, a regular file (a symlink there
// is not followed: EINVAL, as for any other non-file).
func (a At) Truncate(size int64) error {
	return a.viaPath(func(p string, st *unix.Stat_t) error {
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			return unix.Truncate(p, size)
		case unix.S_IFDIR:
			return unix.EISDIR
		}
		return unix.EINVAL
	})
}

// viaPath opens the name itself O_PATH, without following a symlink
// there, and calls fn with its /proc/self/fd path and its stat: that path
// leads to the inode opened whatever the name holds by then.
func (a At) viaPath(fn func(p string, st *unix.Stat_t) error) error {
	fd, err := unix.Openat(a.Dir, a.Name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	return fn("/proc/self/fd/"+strconv.Itoa(fd), &st)
}

// RenameAt is renameat2(2) of from's name to to's (flags: RENAME_NOREPLACE,
// RENAME_EXCHANGE, RENAME_WHITEOUT).
func RenameAt(from, to At, flags uint) error {
	return unix.Renameat2(from.Dir, from.Name, to.Dir, to.Name, flags)
}

func ignoringEINTR(fn func() error) error {
	for {
		if err := fn(); err != unix.EINTR {
			return err
		}
	}
}
