// Copyright 2019 the Go-FUSE Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package fs

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/s3sync/s3sync/third_party/go-fuse/fuse"
	"github.com/s3sync/s3sync/third_party/go-fuse/internal/openat"
	"github.com/s3sync/s3sync/third_party/go-fuse/internal/renameat"
	"golang.org/x/sys/unix"
)

// LoopbackRoot holds the parameters for creating a new loopback
// filesystem. Loopback filesystem delegate their operations to an
// underlying POSIX file system.
type LoopbackRoot struct {
	// The path to the root of the underlying file system.
	Path string

	// The device on which the Path resides. This must be set if
	// the underlying filesystem crosses file systems.
	Dev uint64

	// NewNode returns a new InodeEmbedder to be used to respond
	// to a LOOKUP/CREATE/MKDIR/MKNOD opcode. If not set, use a
	// LoopbackNode.
	//
	// Deprecated: use NodeWrapChilder instead.
	NewNode func(rootData *LoopbackRoot, parent *Inode, name string, st *syscall.Stat_t) InodeEmbedder

	// RootNode is the root of the Loopback. This must be set if
	// the Loopback file system is not the root of the FUSE
	// mount. It is set automatically by NewLoopbackRoot.
	RootNode InodeEmbedder

	// KeepOwner leaves the nodes Create, Mkdir, Mknod and Symlink make
	// as the underlying filesystem made them (this process's uid, the
	// group by that filesystem's rules, a setgid directory's included)
	// instead of chowning them to the caller when running as root: for
	// filesystems that set owners themselves, which saves a chown by
	// path on every new node.
	KeepOwner bool

	// OpenDir, if set, opens the directory rel (slash-separated,
	// relative to Path; "" is Path itself) for the *at syscalls, and
	// returns a descriptor the loopback closes when done (O_PATH is
	// enough). Every operation resolves the directory that holds the
	// name it acts on through OpenDir and then acts on that name alone,
	// never following a symlink there; it never hands a full path to
	// the kernel. An OpenDir that follows no symlink on the way
	// (openat2 with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS) makes a
	// directory swapped for a link in the underlying tree fail with
	// ELOOP or ENOTDIR instead of leading the loopback outside Path.
	//
	// If nil, Path is opened as given (following links) and rel below
	// it with no symlink followed where the kernel can (openat2 on
	// Linux).
	OpenDir func(rel string) (int, error)

	// Made, if set, is called for each node Create, Mkdir, Mknod,
	// Symlink and Tmpfile make, before the kernel hears of it: dirfd is
	// the directory it was made in, name its name there ("" for
	// Tmpfile), fd the open file (Create, Tmpfile) or -1, mode the mode
	// the kernel asked for, out the node's attributes as made, which
	// Made updates if it changes them. Made acts on the node through
	// dirfd and name, or fd, only: the directory was resolved once and
	// is not resolved by path again. A non-zero errno fails the
	// operation and the node is removed again.
	Made func(ctx context.Context, dirfd int, name string, fd int, mode uint32, out *fuse.Attr) syscall.Errno
}

// openDir opens the directory rel below r.Path (see OpenDir).
func (r *LoopbackRoot) openDir(rel string) (int, error) {
	if r.OpenDir != nil {
		return r.OpenDir(rel)
	}
	if rel == "" {
		rel = "."
	}
	return openat.OpenSymlinkAware(r.Path, rel, dirOpenFlags, 0)
}

func (r *LoopbackRoot) newNode(parent *Inode, name string, st *syscall.Stat_t) InodeEmbedder {
	if r.NewNode != nil {
		return r.NewNode(r, parent, name, st)
	}
	return &LoopbackNode{
		RootData: r,
	}
}

func genFromBtime(btime *syscall.Timespec) uint64 {
	if btime.Sec == 0 && btime.Nsec == 0 {
		return 1
	}
	return uint64(btime.Sec)*1e9 + uint64(btime.Nsec)
}

func (r *LoopbackRoot) idFromStat(st *syscall.Stat_t, gen uint64) StableAttr {
	// We compose an inode number by the underlying inode, and
	// mixing in the device number. In traditional filesystems,
	// the inode numbers are small. The device numbers are also
	// small (typically 16 bit). Finally, we mask out the root
	// device number of the root, so a loopback FS that does not
	// encompass multiple mounts will reflect the inode numbers of
	// the underlying filesystem
	swapped := (uint64(st.Dev) << 32) | (uint64(st.Dev) >> 32)
	swappedRootDev := (r.Dev << 32) | (r.Dev >> 32)
	return StableAttr{
		Mode: uint32(st.Mode),
		Gen:  gen,
		// This should work well for traditional backing FSes,
		// not so much for other go-fuse FS-es
		Ino: (swapped ^ swappedRootDev) ^ st.Ino,
	}
}

// LoopbackNode is a filesystem node in a loopback file system. It is
// public so it can be used as a basis for other loopback based
// filesystems. See NewLoopbackFile or LoopbackRoot for more
// information.
type LoopbackNode struct {
	Inode

	// RootData points back to the root of the loopback filesystem.
	RootData *LoopbackRoot
}

// loopbackNodeEmbedder can only be implemented by the LoopbackNode
// concrete type.
type loopbackNodeEmbedder interface {
	loopbackNode() *LoopbackNode
}

func (n *LoopbackNode) loopbackNode() *LoopbackNode {
	return n
}

var _ = (NodeStatfser)((*LoopbackNode)(nil))

func (n *LoopbackNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	fd, err := n.dir()
	if err != nil {
		return ToErrno(err)
	}
	defer syscall.Close(fd)
	s := syscall.Statfs_t{}
	if err := syscall.Fstatfs(fd, &s); err != nil {
		return ToErrno(err)
	}
	out.FromStatfsT(&s)
	return OK
}

// path returns the full path to the file in the underlying file
// system.
func (n *LoopbackNode) root() *Inode {
	var rootNode *Inode
	if n.RootData.RootNode != nil {
		rootNode = n.RootData.RootNode.EmbeddedInode()
	} else {
		rootNode = n.Root()
	}

	return rootNode
}

// relativePath returns the path the node, relative to to the root directory
func (n *LoopbackNode) relativePath() string {
	return n.Path(n.root())
}

// path returns the absolute path to the node, for messages and for
// platforms without the *at calls the loopback uses on Linux.
func (n *LoopbackNode) path() string {
	return filepath.Join(n.RootData.Path, n.relativePath())
}

// dir opens the directory n stands for, for *at calls on names in it.
func (n *LoopbackNode) dir() (int, error) {
	return n.RootData.openDir(n.relativePath())
}

// at opens the directory that holds n and gives n's name in it ("."
// for the root), for *at calls on n itself. The caller closes dirfd.
func (n *LoopbackNode) at() (dirfd int, name string, err error) {
	rel := n.relativePath()
	if rel == "" {
		dirfd, err = n.RootData.openDir("")
		return dirfd, ".", err
	}
	dir, name := "", rel
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		dir, name = rel[:i], rel[i+1:]
	}
	dirfd, err = n.RootData.openDir(dir)
	return dirfd, name, err
}

// newChild makes the node for name, just made or found in the directory
// dirfd (n's), and fills out with its attributes.
func (n *LoopbackNode) newChild(ctx context.Context, dirfd int, name string, out *fuse.EntryOut) (*Inode, error) {
	var st syscall.Stat_t
	var btime syscall.Timespec
	if err := lstatAt(dirfd, name, &st, &btime); err != nil {
		return nil, err
	}
	out.Attr.FromStat(&st)
	node := n.RootData.newNode(n.EmbeddedInode(), name, &st)
	return n.NewInode(ctx, node, n.RootData.idFromStat(&st, genFromBtime(&btime))), nil
}

var _ = (NodeLookuper)((*LoopbackNode)(nil))

func (n *LoopbackNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*Inode, syscall.Errno) {
	dirfd, err := n.dir()
	if err != nil {
		return nil, ToErrno(err)
	}
	defer syscall.Close(dirfd)
	ch, err := n.newChild(ctx, dirfd, name, out)
	return ch, ToErrno(err)
}

// preserveOwner sets uid and gid of name in dirfd according to the caller
// information in `ctx`.
func (n *LoopbackNode) preserveOwner(ctx context.Context, dirfd int, name string) error {
	if n.RootData.KeepOwner || os.Getuid() != 0 {
		return nil
	}
	caller, ok := fuse.FromContext(ctx)
	if !ok {
		return nil
	}
	return unix.Fchownat(dirfd, name, int(caller.Uid), int(caller.Gid), unix.AT_SYMLINK_NOFOLLOW)
}

// made finishes a node just made as name in dirfd: its owner, its Inode,
// out; on failure it is removed again (with unlinkat's flags).
func (n *LoopbackNode) made(ctx context.Context, dirfd int, name string, rmFlags int, mode uint32, out *fuse.EntryOut) (*Inode, syscall.Errno) {
	n.preserveOwner(ctx, dirfd, name)
	ch, err := n.newChild(ctx, dirfd, name, out)
	if err == nil && n.RootData.Made != nil {
		if errno := n.RootData.Made(ctx, dirfd, name, -1, mode, &out.Attr); errno != 0 {
			err = errno
		}
	}
	if err != nil {
		unix.Unlinkat(dirfd, name, rmFlags)
		return nil, ToErrno(err)
	}
	return ch, 0
}

var _ = (NodeMknoder)((*LoopbackNode)(nil))

func (n *LoopbackNode) Mknod(ctx context.Context, name string, mode, rdev uint32, out *fuse.EntryOut) (*Inode, syscall.Errno) {
	dirfd, err := n.dir()
	if err != nil {
		return nil, ToErrno(err)
	}
	defer syscall.Close(dirfd)
	if err := n.mknodAt(dirfd, name, mode, rdev); err != nil {
		return nil, ToErrno(err)
	}
	return n.made(ctx, dirfd, name, 0, mode, out)
}

var _ = (NodeMkdirer)((*LoopbackNode)(nil))

func (n *LoopbackNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*Inode, syscall.Errno) {
	dirfd, err := n.dir()
	if err != nil {
		return nil, ToErrno(err)
	}
	defer syscall.Close(dirfd)
	if err := unix.Mkdirat(dirfd, name, mode); err != nil {
		return nil, ToErrno(err)
	}
	return n.made(ctx, dirfd, name, unix.AT_REMOVEDIR, mode, out)
}

var _ = (NodeRmdirer)((*LoopbackNode)(nil))

func (n *LoopbackNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	return n.unlink(name, unix.AT_REMOVEDIR)
}

var _ = (NodeUnlinker)((*LoopbackNode)(nil))

func (n *LoopbackNode) Unlink(ctx context.Context, name string) syscall.Errno {
	return n.unlink(name, 0)
}

func (n *LoopbackNode) unlink(name string, flags int) syscall.Errno {
	dirfd, err := n.dir()
	if err != nil {
		return ToErrno(err)
	}
	defer syscall.Close(dirfd)
	return ToErrno(unix.Unlinkat(dirfd, name, flags))
}

var _ = (NodeRenamer)((*LoopbackNode)(nil))

func (n *LoopbackNode) Rename(ctx context.Context, name string, newParent InodeEmbedder, newName string, flags uint32) syscall.Errno {
	e2, ok := newParent.(loopbackNodeEmbedder)
	if !ok {
		return syscall.EXDEV
	}

	if e2.loopbackNode().RootData != n.RootData {
		return syscall.EXDEV
	}

	return n.rename2(name, e2.loopbackNode(), newName, flags)
}

var _ = (NodeCreater)((*LoopbackNode)(nil))

func (n *LoopbackNode) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (inode *Inode, fh FileHandle, fuseFlags uint32, errno syscall.Errno) {
	dirfd, err := n.dir()
	if err != nil {
		return nil, nil, 0, ToErrno(err)
	}
	defer syscall.Close(dirfd)
	flags = flags &^ syscall.O_APPEND
	fd, err := unix.Openat(dirfd, name, int(flags)|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
	if err != nil {
		return nil, nil, 0, ToErrno(err)
	}
	f := os.NewFile(uintptr(fd), name)
	n.preserveOwner(ctx, dirfd, name)
	var st syscall.Stat_t
	var btime syscall.Timespec
	if err := fstatFd(fd, &st, &btime); err != nil {
		f.Close()
		return nil, nil, 0, ToErrno(err)
	}

	out.FromStat(&st)
	if n.RootData.Made != nil {
		if errno := n.RootData.Made(ctx, dirfd, name, fd, mode, &out.Attr); errno != 0 {
			f.Close()
			unix.Unlinkat(dirfd, name, 0)
			return nil, nil, 0, errno
		}
	}

	node := n.RootData.newNode(n.EmbeddedInode(), name, &st)
	ch := n.NewInode(ctx, node, n.RootData.idFromStat(&st, genFromBtime(&btime)))
	lf := NewLoopbackFileFromOS(f)
	return ch, lf, 0, 0
}

func (n *LoopbackNode) rename2(name string, newParent *LoopbackNode, newName string, flags uint32) syscall.Errno {
	fd1, err := n.dir()
	if err != nil {
		return ToErrno(err)
	}
	defer syscall.Close(fd1)
	fd2, err := newParent.dir()
	if err != nil {
		return ToErrno(err)
	}
	defer syscall.Close(fd2)

	var st syscall.Stat_t
	if err := syscall.Fstat(fd1, &st); err != nil {
		return ToErrno(err)
	}

	// Double check that nodes didn't change from under us. Gen is
	// irrelevant here, since only Ino is compared.
	if n.root() != n.EmbeddedInode() && n.Inode.StableAttr().Ino != n.RootData.idFromStat(&st, 0).Ino {
		return syscall.EBUSY
	}
	if err := syscall.Fstat(fd2, &st); err != nil {
		return ToErrno(err)
	}

	if (newParent.root() != newParent.EmbeddedInode()) && newParent.Inode.StableAttr().Ino != n.RootData.idFromStat(&st, 0).Ino {
		return syscall.EBUSY
	}

	return ToErrno(renameat.Renameat(fd1, name, fd2, newName, uint(flags)))
}

var _ = (NodeSymlinker)((*LoopbackNode)(nil))

func (n *LoopbackNode) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*Inode, syscall.Errno) {
	dirfd, err := n.dir()
	if err != nil {
		return nil, ToErrno(err)
	}
	defer syscall.Close(dirfd)
	if err := unix.Symlinkat(target, dirfd, name); err != nil {
		return nil, ToErrno(err)
	}
	return n.made(ctx, dirfd, name, 0, 0, out)
}

var _ = (NodeLinker)((*LoopbackNode)(nil))

func (n *LoopbackNode) Link(ctx context.Context, target InodeEmbedder, name string, out *fuse.EntryOut) (*Inode, syscall.Errno) {
	e2, ok := target.(loopbackNodeEmbedder)
	if !ok {
		return nil, syscall.EXDEV
	}

	if e2.loopbackNode().RootData != n.RootData {
		return nil, syscall.EXDEV
	}

	// The target is in no directory, so the loopback has no path to link it from. A file created with O_TMPFILE is
	// named only by its descriptor, and LINK does not carry one.
	if _, parent := target.EmbeddedInode().Parent(); parent == nil {
		return nil, syscall.EXDEV
	}

	srcfd, srcName, err := e2.loopbackNode().at()
	if err != nil {
		return nil, ToErrno(err)
	}
	defer syscall.Close(srcfd)
	dirfd, err := n.dir()
	if err != nil {
		return nil, ToErrno(err)
	}
	defer syscall.Close(dirfd)
	if err := unix.Linkat(srcfd, srcName, dirfd, name, 0); err != nil {
		return nil, ToErrno(err)
	}
	ch, err := n.newChild(ctx, dirfd, name, out)
	if err != nil {
		unix.Unlinkat(dirfd, name, 0)
		return nil, ToErrno(err)
	}
	return ch, 0
}

var _ = (NodeReadlinker)((*LoopbackNode)(nil))

func (n *LoopbackNode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	dirfd, name, err := n.at()
	if err != nil {
		return nil, ToErrno(err)
	}
	defer syscall.Close(dirfd)

	for l := 256; ; l *= 2 {
		buf := make([]byte, l)
		sz, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return nil, ToErrno(err)
		}

		if sz < len(buf) {
			return buf[:sz], 0
		}
	}
}

var _ = (NodeOpener)((*LoopbackNode)(nil))

// Symlink-safe: the directory is opened through OpenDir and the file
// with O_NOFOLLOW.
func (n *LoopbackNode) Open(ctx context.Context, flags uint32) (fh FileHandle, fuseFlags uint32, errno syscall.Errno) {
	flags = flags &^ (syscall.O_APPEND | fuse.FMODE_EXEC)
	f, err := n.openSelf(int(flags))
	if err != nil {
		return nil, 0, ToErrno(err)
	}
	lf := NewLoopbackFile(f)
	return lf, 0, 0
}

// openSelf opens n itself with flags, following no symlink.
func (n *LoopbackNode) openSelf(flags int) (int, error) {
	dirfd, name, err := n.at()
	if err != nil {
		return -1, err
	}
	defer syscall.Close(dirfd)
	return unix.Openat(dirfd, name, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

var _ = (NodeOpendirHandler)((*LoopbackNode)(nil))

func (n *LoopbackNode) OpendirHandle(ctx context.Context, flags uint32) (FileHandle, uint32, syscall.Errno) {
	ds, errno := n.Readdir(ctx)
	if errno != 0 {
		return nil, 0, errno
	}
	return ds, 0, errno
}

var _ = (NodeReaddirer)((*LoopbackNode)(nil))

func (n *LoopbackNode) Readdir(ctx context.Context) (DirStream, syscall.Errno) {
	fd, err := n.openSelf(syscall.O_RDONLY | syscall.O_DIRECTORY)
	if err != nil {
		return nil, ToErrno(err)
	}
	return NewLoopbackDirStreamFd(fd)
}

var _ = (NodeGetattrer)((*LoopbackNode)(nil))

func (n *LoopbackNode) Getattr(ctx context.Context, f FileHandle, out *fuse.AttrOut) syscall.Errno {
	if f != nil {
		if fga, ok := f.(FileGetattrer); ok {
			return fga.Getattr(ctx, out)
		}
	}

	dirfd, name, err := n.at()
	if err != nil {
		return ToErrno(err)
	}
	defer syscall.Close(dirfd)
	var st syscall.Stat_t
	var btime syscall.Timespec
	if err := lstatAt(dirfd, name, &st, &btime); err != nil {
		return ToErrno(err)
	}
	out.FromStat(&st)
	return OK
}

var _ = (NodeSetattrer)((*LoopbackNode)(nil))

func (n *LoopbackNode) Setattr(ctx context.Context, f FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	fsa, ok := f.(FileSetattrer)
	fga, gok := f.(FileGetattrer)
	if ok && fsa != nil && gok && fga != nil {
		if errno := fsa.Setattr(ctx, in, out); errno != 0 {
			return errno
		}
		return fga.Getattr(ctx, out)
	}
	dirfd, name, err := n.at()
	if err != nil {
		return ToErrno(err)
	}
	defer syscall.Close(dirfd)
	if ok && fsa != nil {
		if errno := fsa.Setattr(ctx, in, out); errno != 0 {
			return errno
		}
	} else {
		if m, ok := in.GetMode(); ok {
			if err := chmodAt(dirfd, name, m); err != nil {
				return ToErrno(err)
			}
		}

		uid, uok := in.GetUID()
		gid, gok := in.GetGID()
		if uok || gok {
			suid := -1
			sgid := -1
			if uok {
				suid = int(uid)
			}
			if gok {
				sgid = int(gid)
			}
			if err := unix.Fchownat(dirfd, name, suid, sgid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return ToErrno(err)
			}
		}

		// Truncate before setting times, so an explicit mtime is
		// not clobbered by the truncate.
		if sz, ok := in.GetSize(); ok {
			if err := truncateAt(dirfd, name, int64(sz)); err != nil {
				return ToErrno(err)
			}
		}

		mtime, mok := in.GetMTime()
		atime, aok := in.GetATime()

		if mok || aok {
			ta := unix.Timespec{Nsec: unix_UTIME_OMIT}
			tm := unix.Timespec{Nsec: unix_UTIME_OMIT}
			var err error
			if aok {
				ta, err = unix.TimeToTimespec(atime)
				if err != nil {
					return ToErrno(err)
				}
			}
			if mok {
				tm, err = unix.TimeToTimespec(mtime)
				if err != nil {
					return ToErrno(err)
				}
			}
			ts := []unix.Timespec{ta, tm}
			if err := unix.UtimesNanoAt(dirfd, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return ToErrno(err)
			}
		}
	}

	if gok && fga != nil {
		return fga.Getattr(ctx, out)
	}
	var st syscall.Stat_t
	var btime syscall.Timespec
	if err := lstatAt(dirfd, name, &st, &btime); err != nil {
		return ToErrno(err)
	}
	out.FromStat(&st)
	return OK
}

var _ = (NodeGetxattrer)((*LoopbackNode)(nil))

func (n *LoopbackNode) Getxattr(ctx context.Context, attr string, dest []byte) (sz uint32, errno syscall.Errno) {
	errno = n.withXattrPath(func(p string) (err error) {
		var s int
		s, err = unix.Getxattr(p, attr, dest)
		sz = uint32(s)
		return err
	})
	return sz, errno
}

var _ = (NodeSetxattrer)((*LoopbackNode)(nil))

func (n *LoopbackNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return n.withXattrPath(func(p string) error {
		return unix.Setxattr(p, attr, data, int(flags))
	})
}

var _ = (NodeRemovexattrer)((*LoopbackNode)(nil))

func (n *LoopbackNode) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return n.withXattrPath(func(p string) error {
		return unix.Removexattr(p, attr)
	})
}

var _ = (NodeCopyFileRanger)((*LoopbackNode)(nil))

func (n *LoopbackNode) CopyFileRange(ctx context.Context, fhIn FileHandle,
	offIn uint64, out *Inode, fhOut FileHandle, offOut uint64,
	len uint64, flags uint64) (count uint32, errno syscall.Errno) {
	lfIn, ok := fhIn.(*LoopbackFile)
	if !ok {
		return 0, unix.ENOTSUP
	}
	lfOut, ok := fhOut.(*LoopbackFile)
	if !ok {
		return 0, unix.ENOTSUP
	}
	signedOffIn := int64(offIn)
	signedOffOut := int64(offOut)
	lfIn.withFd(func(fdIn int) syscall.Errno {
		return lfOut.withFd(func(fdOut int) syscall.Errno {
			count, errno = doCopyFileRange(fdIn, signedOffIn, fdOut, signedOffOut, int(len), int(flags))
			return OK
		})
	})
	return count, errno
}

// NewLoopbackRoot returns a root node for a loopback file system whose
// root is at the given root. This node implements all NodeXxxxer
// operations available.
func NewLoopbackRoot(rootPath string) (InodeEmbedder, error) {
	var st syscall.Stat_t
	var btime syscall.Timespec
	if err := stat(rootPath, &st, &btime); err != nil {
		return nil, err
	}

	root := &LoopbackRoot{
		Path: rootPath,
		Dev:  uint64(st.Dev),
	}

	rootNode := root.newNode(nil, "", &st)
	root.RootNode = rootNode
	return rootNode, nil
}
