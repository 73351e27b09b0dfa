package fs

import (
	"context"
	"syscall"

	"github.com/s3sync/s3sync/internal/confine"
	gofs "github.com/s3sync/s3sync/third_party/go-fuse/fs"
	"github.com/s3sync/s3sync/third_party/go-fuse/fuse"
)

// Ownership of what is created through the mount.
//
// This process makes every node in WORKDIR itself, so WORKDIR's filesystem
// gives it this process's owner, group and umask. A node a user makes on a
// local disk is the user's, in the user's group (or the directory's, when
// the directory is setgid), with exactly the permission bits the kernel
// worked out from the user's mode and umask. fixNew puts that right after
// the node is made and before the kernel is told about it, so no other
// user ever sees it with the wrong owner, and a failure removes it: a node
// that cannot be given to its creator must not stay behind as root's.
//
// go-fuse's loopback would chown to the caller's uid and gid when root, but
// ignores failures and the directory's setgid bit (and chown clears
// setuid/setgid on files, which the requested mode then no longer has), so
// the mount sets its KeepOwner and this is the only chown.

// newNode says what was just made and what was asked for.
type newNode struct {
	// dirfd is the WORKDIR directory it was made in, as the op resolved
	// it, and name its name there ("" for O_TMPFILE); fd, if not -1, an
	// open descriptor on it (Create, Tmpfile), used instead of name.
	dirfd int
	name  string
	fd    int
	// perm is the permission bits the kernel sent (the caller's umask
	// already applied, setgid already dropped where the caller may not
	// have it); hasPerm is false for symlinks, which have none.
	perm    uint32
	hasPerm bool
}

// made is the loopback's Made hook: fixNew for every node made through
// the mount, acting on the directory the op itself resolved (never on a
// path resolved again, which another user could have swapped meanwhile).
// On failure the loopback removes the node.
func (m *mountState) made(ctx context.Context, dirfd int, name string, fd int, mode uint32, out *fuse.Attr) syscall.Errno {
	return m.fixNew(ctx, newNode{dirfd: dirfd, name: name, fd: fd, perm: mode, hasPerm: out.Mode&syscall.S_IFMT != syscall.S_IFLNK}, out)
}

// fixNew gives the node n describes the owner, group and permission bits
// it would have had, had the caller in ctx made it on a local disk, and
// refreshes out. As root: owner and group (see above). Always: the
// permission bits, since this process's umask was applied on top of the
// caller's. out must hold the node's attributes as made. On failure the
// caller must remove the node.
func (m *mountState) fixNew(ctx context.Context, n newNode, out *fuse.Attr) syscall.Errno {
	// out is the node as WORKDIR's filesystem made it (go-fuse's loopback
	// stats it, and with KeepOwner does not chown it): owned by this
	// process, in this process's group or a setgid directory's.
	uid, gid, mode := out.Uid, out.Gid, out.Mode
	var st syscall.Stat_t
	restat := func() error {
		if err := n.stat(&st); err != nil {
			return err
		}
		uid, gid, mode = st.Uid, st.Gid, st.Mode
		out.FromStat(&st)
		return nil
	}
	if m.asRoot {
		if caller, ok := fuse.FromContext(ctx); ok && (uid != caller.Uid || gid != caller.Gid) {
			// When the caller is this process's user and group (root
			// untarring as root) the filesystem already did what it
			// would have done for the caller: nothing to look up.
			want := caller.Gid
			var dir syscall.Stat_t
			if err := syscall.Fstat(n.dirfd, &dir); err != nil {
				return gofs.ToErrno(err)
			}
			if dir.Mode&syscall.S_ISGID != 0 {
				want = dir.Gid
			}
			if uid != caller.Uid || gid != want {
				if err := n.chown(int(caller.Uid), int(want)); err != nil {
					return gofs.ToErrno(err)
				}
				// chown clears setuid/setgid on files: read back what is left.
				if err := restat(); err != nil {
					return gofs.ToErrno(err)
				}
			}
		}
	}
	if n.hasPerm {
		want := n.perm & 0o7777
		if mode&syscall.S_IFMT == syscall.S_IFDIR {
			// A directory inherits setgid from a setgid parent
			// (WORKDIR's filesystem did that, as it would for the
			// caller); the mode sent does not carry it.
			want = want&^syscall.S_ISGID | mode&syscall.S_ISGID
		}
		if mode&0o7777 != want {
			if err := n.chmod(want); err != nil {
				return gofs.ToErrno(err)
			}
			if err := restat(); err != nil {
				return gofs.ToErrno(err)
			}
		}
	}
	return 0
}

func (n newNode) stat(st *syscall.Stat_t) error {
	if n.fd >= 0 {
		return syscall.Fstat(n.fd, st)
	}
	return n.at().Lstat(st)
}

func (n newNode) chown(uid, gid int) error {
	if n.fd >= 0 {
		return syscall.Fchown(n.fd, uid, gid)
	}
	return n.at().Lchown(uid, gid)
}

// chmod is never asked for a symlink (hasPerm false); one swapped in
// meanwhile is not followed.
func (n newNode) chmod(perm uint32) error {
	if n.fd >= 0 {
		return syscall.Fchmod(n.fd, perm)
	}
	return n.at().Chmod(perm)
}

// at is the node's name in the directory the op made it in.
func (n newNode) at() confine.At { return confine.At{Dir: n.dirfd, Name: n.name} }

// madeAt records a node just made at rel (Mkdir, Mknod, Symlink), which
// the loopback's Made hook (made) has already given to its creator.
func (m *mountState) madeAt(rel string) {
	m.rec.Changed(rel)
}
