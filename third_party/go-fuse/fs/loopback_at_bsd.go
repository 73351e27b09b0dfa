//go:build darwin || freebsd

package fs

import (
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// The *at helpers of loopback_linux.go, where these kernels have no
// O_PATH, fchmodat2 or /proc/self/fd to lean on.

func lstatAt(dirfd int, name string, st *syscall.Stat_t, btime *syscall.Timespec) error {
	var ust unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &ust, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return fstatFd(fd, st, btime)
}

func (n *LoopbackNode) mknodAt(dirfd int, name string, mode, rdev uint32) error {
	return syscall.Mknod(filepath.Join(n.path(), name), mode, intDev(rdev))
}

const dirOpenFlags = unix.O_RDONLY | unix.O_DIRECTORY

func chmodAt(dirfd int, name string, mode uint32) error {
	return unix.Fchmodat(dirfd, name, mode, unix.AT_SYMLINK_NOFOLLOW)
}

func truncateAt(dirfd int, name string, size int64) error {
	fd, err := unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Ftruncate(fd, size)
}

func (n *LoopbackNode) withXattrPath(fn func(p string) error) syscall.Errno {
	return ToErrno(fn(n.path()))
}
