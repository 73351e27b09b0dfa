//go:build linux

// Copyright 2019 the Go-FUSE Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package fs

import (
	"context"
	"strconv"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/s3sync/s3sync/third_party/go-fuse/fuse"
	"golang.org/x/sys/unix"
)

const unix_UTIME_OMIT = unix.UTIME_OMIT

var _ = (NodeTmpfiler)((*LoopbackNode)(nil))

func (n *LoopbackNode) Tmpfile(ctx context.Context, flags uint32, mode uint32, out *fuse.EntryOut) (*Inode, FileHandle, uint32, syscall.Errno) {
	flags = flags &^ syscall.O_APPEND
	dirfd, err := n.dir()
	if err != nil {
		return nil, nil, 0, ToErrno(err)
	}
	defer syscall.Close(dirfd)
	fd, err := unix.Openat(dirfd, ".", int(flags)|unix.O_TMPFILE|unix.O_CLOEXEC, mode)
	if err != nil {
		return nil, nil, 0, ToErrno(err)
	}

	var st syscall.Stat_t
	var btime syscall.Timespec
	if err := fstatFd(fd, &st, &btime); err != nil {
		syscall.Close(fd)
		return nil, nil, 0, ToErrno(err)
	}
	out.FromStat(&st)
	if n.RootData.Made != nil {
		if errno := n.RootData.Made(ctx, dirfd, "", fd, mode, &out.Attr); errno != 0 {
			syscall.Close(fd)
			return nil, nil, 0, errno
		}
	}

	node := n.RootData.newNode(n.EmbeddedInode(), "", &st)
	ch := n.NewInode(ctx, node, n.RootData.idFromStat(&st, genFromBtime(&btime)))
	return ch, NewLoopbackFile(fd), 0, 0
}

func doCopyFileRange(fdIn int, offIn int64, fdOut int, offOut int64,
	len int, flags int) (uint32, syscall.Errno) {
	count, err := unix.CopyFileRange(fdIn, &offIn, fdOut, &offOut, len, flags)
	return uint32(count), ToErrno(err)
}

func intDev(dev uint32) int {
	return int(dev)
}

var statxSupported bool

func init() {
	var x unix.Statx_t
	err := unix.Statx(unix.AT_FDCWD, "/", 0, unix.STATX_BASIC_STATS, &x)
	statxSupported = err != unix.ENOSYS
}

func lstat(path string, st *syscall.Stat_t, btime *syscall.Timespec) error {
	return doStatx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW, st, btime)
}

// lstatAt is lstat of name in the directory dirfd.
func lstatAt(dirfd int, name string, st *syscall.Stat_t, btime *syscall.Timespec) error {
	return doStatx(dirfd, name, unix.AT_SYMLINK_NOFOLLOW, st, btime)
}

func (n *LoopbackNode) mknodAt(dirfd int, name string, mode, rdev uint32) error {
	return unix.Mknodat(dirfd, name, mode, intDev(rdev))
}

// dirOpenFlags open a directory for *at calls only.
const dirOpenFlags = unix.O_PATH | unix.O_DIRECTORY

// openNoFollow opens name in dirfd as an O_PATH descriptor of whatever is
// there, a symlink itself included.
func openNoFollow(dirfd int, name string) (int, error) {
	return unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

// procPath names the very inode fd was opened on: a path through it
// leads there and no further, even when that inode is a symlink.
func procPath(fd int) string {
	return "/proc/self/fd/" + strconv.Itoa(fd)
}

// chmodAt is chmod of name in dirfd, which must not be a symlink (Linux
// cannot chmod one; following it could lead anywhere): fchmodat2 with
// AT_SYMLINK_NOFOLLOW (Linux 6.6), else through an O_PATH descriptor.
func chmodAt(dirfd int, name string, mode uint32) error {
	if !noFchmodat2.Load() {
		p, err := unix.BytePtrFromString(name)
		if err != nil {
			return err
		}
		_, _, e := unix.Syscall6(unix.SYS_FCHMODAT2, uintptr(dirfd), uintptr(unsafe.Pointer(p)), uintptr(mode), unix.AT_SYMLINK_NOFOLLOW, 0, 0)
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
	fd, err := openNoFollow(dirfd, name)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return unix.EOPNOTSUPP
	}
	return unix.Chmod(procPath(fd), mode)
}

var noFchmodat2 atomic.Bool

// truncateAt is truncate(2) of name in dirfd, following no symlink.
func truncateAt(dirfd int, name string, size int64) error {
	fd, err := openNoFollow(dirfd, name)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return unix.Truncate(procPath(fd), size)
	case unix.S_IFDIR:
		return unix.EISDIR
	}
	return unix.EINVAL
}

// withXattrPath calls fn with a path to node n that leads to it and
// nowhere else, for the xattr calls, which have no *at form before Linux
// 6.13.
func (n *LoopbackNode) withXattrPath(fn func(p string) error) syscall.Errno {
	dirfd, name, err := n.at()
	if err != nil {
		return ToErrno(err)
	}
	fd, err := openNoFollow(dirfd, name)
	syscall.Close(dirfd)
	if err != nil {
		return ToErrno(err)
	}
	defer syscall.Close(fd)
	return ToErrno(fn(procPath(fd)))
}

func stat(path string, st *syscall.Stat_t, btime *syscall.Timespec) error {
	return doStatx(unix.AT_FDCWD, path, 0, st, btime)
}

func fstatFd(fd int, st *syscall.Stat_t, btime *syscall.Timespec) error {
	return doStatx(fd, "", unix.AT_EMPTY_PATH, st, btime)
}

func doStatx(dirfd int, path string, flags int, st *syscall.Stat_t, btime *syscall.Timespec) error {
	*btime = syscall.Timespec{}

	if statxSupported {
		var x unix.Statx_t
		err := unix.Statx(dirfd, path, flags, unix.STATX_BASIC_STATS|unix.STATX_BTIME, &x)
		if err == nil {
			statFromStatx(&x, st)
			if x.Mask&unix.STATX_BTIME != 0 {
				*btime = statxTimeToTimespec(x.Btime)
			}
			return nil
		}
		if err != unix.ENOSYS {
			return err
		}
		// The init probe found statx(2) supported, but this particular
		// call still says ENOSYS (e.g. a seccomp filter tightened after
		// startup). Fall through to the plain syscalls below rather than
		// failing outright.
	}

	switch {
	case flags&unix.AT_EMPTY_PATH != 0:
		return syscall.Fstat(dirfd, st)
	case flags&unix.AT_SYMLINK_NOFOLLOW != 0:
		return syscall.Lstat(path, st)
	default:
		return syscall.Stat(path, st)
	}
}

// setNum assigns v to *dst, narrowing/widening to dst's element type.
func setNum[T ~int16 | ~int32 | ~int64 | ~uint16 | ~uint32 | ~uint64](dst *T, v int64) {
	*dst = T(v)
}

func statxTimeToTimespec(ts unix.StatxTimestamp) syscall.Timespec {
	return syscall.Timespec(unix.NsecToTimespec(ts.Sec*1e9 + int64(ts.Nsec)))
}

// statFromStatx fills st from a unix.Statx_t, so it can be used everywhere
// a Stat_t is expected (idFromStat, fuse.Attr.FromStat).
func statFromStatx(x *unix.Statx_t, st *syscall.Stat_t) {
	// use setNum; statx widths differ per architecture.
	setNum(&st.Dev, int64(unix.Mkdev(x.Dev_major, x.Dev_minor)))
	setNum(&st.Ino, int64(x.Ino))
	setNum(&st.Nlink, int64(x.Nlink))
	setNum(&st.Mode, int64(x.Mode))
	setNum(&st.Uid, int64(x.Uid))
	setNum(&st.Gid, int64(x.Gid))
	setNum(&st.Rdev, int64(unix.Mkdev(x.Rdev_major, x.Rdev_minor)))
	setNum(&st.Size, int64(x.Size))
	setNum(&st.Blksize, int64(x.Blksize))
	setNum(&st.Blocks, int64(x.Blocks))
	st.Atim = statxTimeToTimespec(x.Atime)
	st.Mtim = statxTimeToTimespec(x.Mtime)
	st.Ctim = statxTimeToTimespec(x.Ctime)
}

var _ = (NodeStatxer)((*LoopbackNode)(nil))

func (n *LoopbackNode) Statx(ctx context.Context, f FileHandle,
	flags uint32, mask uint32,
	out *fuse.StatxOut) syscall.Errno {
	if f != nil {
		if fga, ok := f.(FileStatxer); ok {
			return fga.Statx(ctx, flags, mask, out)
		}
	}

	dirfd, name, err := n.at()
	if err != nil {
		return ToErrno(err)
	}
	defer syscall.Close(dirfd)
	// The kernel resolved any link to this node; it is the node itself
	// that is asked about.
	st := unix.Statx_t{}
	if err := unix.Statx(dirfd, name, int(flags)&^unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW, int(mask), &st); err != nil {
		return ToErrno(err)
	}
	out.FromStatx(&st)
	return OK
}
