package fs

import (
	"context"
	"syscall"

	"github.com/s3sync/s3sync/internal/confine"
	gofs "github.com/s3sync/s3sync/third_party/go-fuse/fs"
	"github.com/s3sync/s3sync/third_party/go-fuse/fuse"
	"golang.org/x/sys/unix"
)

// setattrByPath serves a SETATTR that came without a file handle (chmod,
// chown, truncate, utimes by path, and fchmod, fchown, futimens, which the
// kernel sends without one too: tar makes three per file) and records it.
//
// It does what go-fuse's LoopbackNode.Setattr does for such a request, but
// under nsMu and on the path the record is made for, so the one lstat that
// answers the kernel also shows that the path still is this node: one walk
// of the tree, one resolution of the parent in WORKDIR and one lstat
// instead of two of each. When the lstat finds another inode there (a
// rename not yet in the tree, or WORKDIR changed from outside)
// recordChanged looks the node up again.
//
// A request that succeeded is recorded whatever it changed, and so is one
// that failed after part of it took effect (chmod done, chown refused):
// WORKDIR did change.
func (n *Node) setattrByPath(ctx context.Context, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	m, node := n.m, n.EmbeddedInode()
	m.nsMu.RLock()
	rel, ok := m.relPath(node)
	if !ok {
		m.nsMu.RUnlock()
		// Unlinked: nothing to record and no name to act on (go-fuse's
		// loopback answers ENOENT for a node outside the tree).
		return n.LoopbackNode.Setattr(ctx, nil, in, out)
	}
	var changed bool
	var errno syscall.Errno
	var st syscall.Stat_t
	a, err := m.dir.At(rel)
	if err != nil {
		errno = gofs.ToErrno(err)
	} else {
		changed, errno = setattrAt(a, in)
		if errno == 0 {
			if err := a.Lstat(&st); err != nil {
				errno = gofs.ToErrno(err)
			} else {
				out.FromStat(&st)
			}
		}
		a.Close()
	}
	record := errno == 0 || changed
	if record && errno == 0 && m.inoOf(&st) == node.StableAttr().Ino {
		m.rec.Changed(rel)
		m.nsMu.RUnlock()
		return 0
	}
	m.nsMu.RUnlock()
	if record {
		m.recordChanged(node)
	}
	return errno
}

// setattrAt applies in to the name a, without following a symlink there
// (a chmod or truncate of one fails), and says whether anything was
// changed before an error stopped it.
func setattrAt(a confine.At, in *fuse.SetAttrIn) (changed bool, errno syscall.Errno) {
	if mode, ok := in.GetMode(); ok {
		if err := a.Chmod(mode); err != nil {
			return false, gofs.ToErrno(err)
		}
		changed = true
	}
	uid, uok := in.GetUID()
	gid, gok := in.GetGID()
	if uok || gok {
		su, sg := -1, -1
		if uok {
			su = int(uid)
		}
		if gok {
			sg = int(gid)
		}
		if err := a.Lchown(su, sg); err != nil {
			return changed, gofs.ToErrno(err)
		}
		changed = true
	}
	// Truncate before setting times, so an explicit mtime is not
	// clobbered by the truncate.
	if size, ok := in.GetSize(); ok {
		if err := a.Truncate(int64(size)); err != nil {
			return changed, gofs.ToErrno(err)
		}
		changed = true
	}
	mtime, mok := in.GetMTime()
	atime, aok := in.GetATime()
	if mok || aok {
		ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_OMIT}}
		var err error
		if aok {
			if ts[0], err = unix.TimeToTimespec(atime); err != nil {
				return changed, gofs.ToErrno(err)
			}
		}
		if mok {
			if ts[1], err = unix.TimeToTimespec(mtime); err != nil {
				return changed, gofs.ToErrno(err)
			}
		}
		if err := a.Utimes(ts); err != nil {
			return changed, gofs.ToErrno(err)
		}
		changed = true
	}
	return changed, 0
}
