package syncer

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/s3sync/s3sync/internal/confine"
)

// Local names a file an upload reads: below a confine.Root (the mount's
// WORKDIR, where nothing is followed and a folder swapped for a link since
// it was looked at fails with ELOOP), or by path (reconcile's source, whose
// own links are followed as the AWS CLI follows them).
type Local struct {
	path string // for messages, and to open when root is nil
	root *confine.Root
	rel  string
}

// Below is the file rel below root (path: its full path, for messages), as
// the mount reads WORKDIR: nothing on the way is followed.
func Below(root *confine.Root, rel, path string) Local {
	return Local{path: path, root: root, rel: rel}
}

// ByPath is the local file at path.
func ByPath(path string) Local { return Local{path: path} }

// String is the file's path, for messages.
func (l Local) String() string { return l.path }

// open opens the file for reading. Below a root a symlink fails with
// ELOOP; by path, noFollow says the same of the last component only.
func (l Local) open(noFollow bool) (*os.File, error) {
	if l.root != nil {
		return l.root.Open(l.rel)
	}
	if noFollow {
		return os.OpenFile(l.path, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	}
	return os.Open(l.path)
}

// lstat is os.Lstat of the file.
func (l Local) lstat() (*syscall.Stat_t, error) {
	if l.root != nil {
		info, err := l.root.Lstat(l.rel)
		if err != nil {
			return nil, err
		}
		return info.Sys().(*syscall.Stat_t), nil
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(l.path, &st); err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: l.path, Err: err}
	}
	return &st, nil
}

// readlink is the target of the symlink.
func (l Local) readlink() (string, error) {
	if l.root != nil {
		return l.root.Readlink(l.rel)
	}
	return os.Readlink(l.path)
}

// tmpfile opens an unnamed read-write file in the file's folder.
func (l Local) tmpfile() (*os.File, error) {
	if l.root != nil {
		return l.root.OpenFile(parentRel(l.rel), unix.O_TMPFILE|unix.O_RDWR, 0o600)
	}
	fd, err := unix.Open(filepath.Dir(l.path), unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), fmt.Sprintf("%s (snapshot)", l.path)), nil
}
