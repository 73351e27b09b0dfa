package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// openPrivate opens path to write a file only this user may read: the log
// file, the profiles. Its directory may be one other users can write (a
// /tmp, a /var/log/app shared with a group), so what it finds at path is
// not trusted:
//
//   - a symbolic link is refused, never followed (O_NOFOLLOW): it could
//     point at any file this user may write, /etc/shadow for root;
//   - a file that is not a regular one (a FIFO would block the mount, a
//     device would take the lines) or that has other names (a hard link
//     to another file of this user's) is refused;
//   - a file another user owns is refused: its owner could read the lines
//     or swap its content;
//   - a file of this user's that others may read or write is set to 0600
//     and the mode it had is returned, for the caller to say so; it is the
//     user's own file, fixed on the open descriptor, and refusing would
//     stop a service over what logrotate's `create 0644` left behind.
//
// A file made here is made 0600. With truncate the file is emptied, only
// once all of that is checked. The error, for a refusal a *fileRefusedError,
// is one line saying what is wrong and what to do.
func openPrivate(path string, flag int, truncate bool) (f *os.File, loosened fs.FileMode, err error) {
	// O_NONBLOCK: opening a FIFO must not wait for a reader; it is refused
	// below, and a regular file's I/O ignores the flag.
	fd, err := unix.Open(path, flag|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0o600)
	switch {
	case errors.Is(err, unix.ELOOP):
		return nil, 0, &fileRefusedError{path, "is a symbolic link", "s3sync never follows one there (it could point at any file); give the file's own path"}
	case errors.Is(err, unix.ENXIO):
		return nil, 0, &fileRefusedError{path, "is not a regular file (a FIFO)", "give the path of a plain file"}
	case err != nil:
		return nil, 0, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, 0, &fs.PathError{Op: "fstat", Path: path, Err: err}
	}
	refuse := func(why, fix string) (*os.File, fs.FileMode, error) {
		unix.Close(fd)
		return nil, 0, &fileRefusedError{path, why, fix}
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return refuse("is not a regular file", "give the path of a plain file")
	case int(st.Uid) != os.Geteuid():
		return refuse(fmt.Sprintf("belongs to uid %d, not to this user (uid %d)", st.Uid, os.Geteuid()),
			"another user could read or change what is written there; remove it or give a path of your own")
	case st.Nlink != 1:
		return refuse(fmt.Sprintf("has %d hard links", st.Nlink),
			"another of its names could be any file of yours; remove the other links or give another path")
	}
	if perm := fs.FileMode(st.Mode) & fs.ModePerm; perm&0o077 != 0 {
		if err := unix.Fchmod(fd, 0o600); err != nil {
			unix.Close(fd)
			return nil, 0, &fs.PathError{Op: "chmod", Path: path, Err: err}
		}
		loosened = perm
	}
	if truncate {
		if err := unix.Ftruncate(fd, 0); err != nil {
			unix.Close(fd)
			return nil, 0, &fs.PathError{Op: "truncate", Path: path, Err: err}
		}
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, 0, &fs.PathError{Op: "fcntl", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), loosened, nil
}

// fileRefusedError is openPrivate's refusal of what it found at a path.
type fileRefusedError struct {
	path, why, fix string
}

func (e *fileRefusedError) Error() string {
	return fmt.Sprintf("%s %s; %s", e.path, e.why, e.fix)
}
