package fs

import (
	"context"
	"syscall"

	"github.com/s3sync/s3sync/internal/confine"
	gofs "github.com/s3sync/s3sync/third_party/go-fuse/fs"
	"github.com/s3sync/s3sync/third_party/go-fuse/fuse"
	"golang.org/x/sys/unix"
)

// Namespace operations. Each holds the mount's nsMu exclusively from
// computing the paths it reports until it has reported them, so the Recorder
// sees namespace changes in the order they happened in WORKDIR and with the
// names the syscalls used. The Recorder is called only after the syscall
// succeeded; a failed op reports nothing.

// Mkdir creates a directory in WORKDIR (go-fuse's loopback, whose Made
// hook makes it the caller's with the mode asked for: fixNew) and reports
// it Changed.
func (n *Node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	n.m.rec.Throttle()
	n.m.nsMu.Lock()
	defer n.m.nsMu.Unlock()
	rel, ok := n.m.childPath(n, name)
	if !ok {
		return nil, syscall.ENOENT
	}
	ch, errno := n.LoopbackNode.Mkdir(ctx, name, mode, out)
	if errno != 0 {
		return nil, errno
	}
	n.m.madeAt(rel)
	return ch, 0
}

// Mknod creates a special file (fifo, socket, device) or an empty regular
// file, makes it the caller's with the mode asked for (fixNew) and reports
// it Changed; what to do with special files is the syncer's business.
func (n *Node) Mknod(ctx context.Context, name string, mode, rdev uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	n.m.rec.Throttle()
	n.m.nsMu.Lock()
	defer n.m.nsMu.Unlock()
	rel, ok := n.m.childPath(n, name)
	if !ok {
		return nil, syscall.ENOENT
	}
	ch, errno := n.LoopbackNode.Mknod(ctx, name, mode, rdev, out)
	if errno != 0 {
		return nil, errno
	}
	n.m.madeAt(rel)
	return ch, 0
}

// Symlink creates a symbolic link in WORKDIR, makes it the caller's
// (fixNew) and reports it Changed. The
// target is stored as given, never resolved, so it cannot reach outside
// WORKDIR through us.
func (n *Node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	n.m.rec.Throttle()
	n.m.nsMu.Lock()
	defer n.m.nsMu.Unlock()
	rel, ok := n.m.childPath(n, name)
	if !ok {
		return nil, syscall.ENOENT
	}
	ch, errno := n.LoopbackNode.Symlink(ctx, target, name, out)
	if errno != 0 {
		return nil, errno
	}
	n.m.madeAt(rel)
	return ch, 0
}

// Link makes a hard link and reports the new name Changed (the old name did
// not change). go-fuse's loopback refuses targets outside this mount (EXDEV).
func (n *Node) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	n.m.rec.Throttle()
	n.m.nsMu.Lock()
	defer n.m.nsMu.Unlock()
	rel, ok := n.m.childPath(n, name)
	if !ok {
		return nil, syscall.ENOENT
	}
	// The name linked to, before the new one becomes the inode's newest
	// parent: reporting it too tells the syncer both names of the file.
	old, oldOK := n.m.relPath(target.EmbeddedInode())
	ch, errno := n.LoopbackNode.Link(ctx, target, name, out)
	if errno == 0 {
		n.m.rec.Changed(rel)
		if oldOK {
			n.m.rec.Changed(old)
		}
	}
	return ch, errno
}

// Unlink removes a file from WORKDIR and reports it Removed. Open handles on
// it keep working (the kernel holds the inode); their later writes are not
// reported, the file having no name.
func (n *Node) Unlink(ctx context.Context, name string) syscall.Errno {
	n.m.rec.Throttle()
	n.m.nsMu.Lock()
	defer n.m.nsMu.Unlock()
	rel, ok := n.m.childPath(n, name)
	if !ok {
		return syscall.ENOENT
	}
	if errno := n.m.unlink(rel, false); errno != 0 {
		return errno
	}
	n.m.rec.Removed(rel, false)
	return 0
}

// Rmdir removes an empty directory from WORKDIR and reports it Removed.
func (n *Node) Rmdir(ctx context.Context, name string) syscall.Errno {
	n.m.rec.Throttle()
	n.m.nsMu.Lock()
	defer n.m.nsMu.Unlock()
	rel, ok := n.m.childPath(n, name)
	if !ok {
		return syscall.ENOENT
	}
	if errno := n.m.unlink(rel, true); errno != 0 {
		return errno
	}
	n.m.rec.Removed(rel, true)
	return 0
}

// Rename moves name in n to newName in newParent and reports one Renamed
// (for a directory too: what it holds moved with it and is not reported one
// by one).
//
// Both paths are computed under nsMu just before the rename and the rename
// itself uses them, so what is reported is what happened; go-fuse moves the
// node in its tree after we return (see mountState.recordChanged for how a
// flush racing that move still reports the new name). RENAME_NOREPLACE behaves as a rename.
// RENAME_EXCHANGE is reported as Changed on both names (no pair of renames
// expresses a swap), a directory's as a rename from "" (its tree is walked). RENAME_WHITEOUT (overlayfs) is a rename plus a new
// special file at the old name, reported Changed.
func (n *Node) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	n.m.rec.Throttle()
	np, ok := newParent.(*Node)
	if !ok || np.m != n.m {
		return syscall.EXDEV
	}
	n.m.nsMu.Lock()
	defer n.m.nsMu.Unlock()
	from, ok1 := n.m.childPath(n, name)
	to, ok2 := n.m.childPath(np, newName)
	if !ok1 || !ok2 {
		return syscall.ENOENT
	}
	isDir, errno := n.m.rename(from, to, flags)
	if errno != 0 {
		return errno
	}

	switch {
	case flags&unix.RENAME_EXCHANGE != 0:
		// Each name now holds what the other did: a file is a change; a
		// directory's whole tree changed place with nothing to copy it
		// from, which the syncer walks (a rename without a source).
		fromDir := n.m.isDirAt(from)
		n.m.recordSwapped(from, fromDir, isDir)
		n.m.recordSwapped(to, isDir, fromDir)
	case flags&unix.RENAME_WHITEOUT != 0:
		n.m.rec.Renamed(from, to, isDir)
		n.m.rec.Changed(from)
	default:
		n.m.rec.Renamed(from, to, isDir)
	}
	return 0
}

// unlink removes rel (a directory if dir) from WORKDIR.
func (m *mountState) unlink(rel string, dir bool) syscall.Errno {
	a, err := m.dir.At(rel)
	if err != nil {
		return gofs.ToErrno(err)
	}
	defer a.Close()
	if dir {
		return gofs.ToErrno(a.Rmdir())
	}
	return gofs.ToErrno(a.Unlink())
}

// rename renames from to to in WORKDIR (renameat2 with flags) and says
// whether from was a directory.
// recordSwapped reports rel, which RENAME_EXCHANGE gave another's content
// (a directory now when isDir, one before when wasDir).
func (m *mountState) recordSwapped(rel string, isDir, wasDir bool) {
	switch {
	case isDir:
		m.rec.Renamed("", rel, true)
	case wasDir:
		// The tree that was here went: its objects go with it.
		m.rec.Removed(rel, true)
		m.rec.Changed(rel)
	default:
		m.rec.Changed(rel)
	}
}

// isDirAt reports whether rel is a directory now.
func (m *mountState) isDirAt(rel string) bool {
	a, err := m.dir.At(rel)
	if err != nil {
		return false
	}
	defer a.Close()
	var st syscall.Stat_t
	return a.Lstat(&st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFDIR
}

func (m *mountState) rename(from, to string, flags uint32) (isDir bool, errno syscall.Errno) {
	src, err := m.dir.At(from)
	if err != nil {
		return false, gofs.ToErrno(err)
	}
	defer src.Close()
	var st syscall.Stat_t
	if err := src.Lstat(&st); err != nil {
		return false, gofs.ToErrno(err)
	}
	dst, err := m.dir.At(to)
	if err != nil {
		return false, gofs.ToErrno(err)
	}
	defer dst.Close()
	if err := confine.RenameAt(src, dst, uint(flags)); err != nil {
		return false, gofs.ToErrno(err)
	}
	return st.Mode&syscall.S_IFMT == syscall.S_IFDIR, 0
}

// loopbackDir is what go-fuse's loopback directory handle implements and we
// forward.
type loopbackDir interface {
	gofs.FileReaddirenter
	gofs.FileSeekdirer
	gofs.FileReleasedirer
	gofs.FileFsyncdirer
}

// dirHandle is an open directory: go-fuse's loopback directory stream with
// fsync extended to wait for the Recorder.
type dirHandle struct {
	loopbackDir
	m *mountState
}

// OpendirHandle opens the directory in WORKDIR for listing (go-fuse's
// loopback) and wraps the handle so that fsync on the directory also waits
// for the Recorder.
func (n *Node) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	fh, fuseFlags, errno := n.LoopbackNode.OpendirHandle(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	n.used.Store(true)
	ld, ok := fh.(loopbackDir)
	if !ok {
		// go-fuse changed its directory handle; fsync would not wait
		// for the Recorder. Fail loudly rather than silently.
		if r, ok := fh.(gofs.FileReleasedirer); ok {
			r.Releasedir(ctx, 0)
		}
		return nil, 0, syscall.ENOTSUP
	}
	d := &dirHandle{loopbackDir: ld, m: n.m}
	n.m.track(d)
	return d, fuseFlags, 0
}

// Releasedir closes the WORKDIR directory fd once the kernel is done with
// the handle.
func (d *dirHandle) Releasedir(ctx context.Context, flags uint32) {
	if d.m.untrack(d) {
		d.loopbackDir.Releasedir(ctx, flags)
	}
}

// releaseAfterUnmount is Releasedir for a handle the kernel never released.
func (d *dirHandle) releaseAfterUnmount() { d.Releasedir(context.Background(), 0) }

// Fsyncdir fsyncs the directory in WORKDIR, then waits until every change
// reported so far (the namespace changes in this directory among them) is
// durable in the journal, as a journaling filesystem's fsync on a directory
// makes its entries durable.
func (d *dirHandle) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	if errno := d.loopbackDir.Fsyncdir(ctx, flags); errno != 0 {
		return errno
	}
	return d.m.sync(ctx)
}

// Ioctl forwards directory ioctls (e.g. lsattr -d) when go-fuse's handle
// supports them.
func (d *dirHandle) Ioctl(ctx context.Context, cmd uint32, arg uint64, input []byte, output []byte) (int32, syscall.Errno) {
	if io, ok := d.loopbackDir.(gofs.FileIoctler); ok {
		return io.Ioctl(ctx, cmd, arg, input, output)
	}
	return 0, syscall.ENOTTY
}
