package fs

import (
	"context"
	"syscall"

	gofs "github.com/s3sync/s3sync/third_party/go-fuse/fs"
	"github.com/s3sync/s3sync/third_party/go-fuse/fuse"
)

// Open opens a WORKDIR file through go-fuse's loopback (symlink-safe: a
// symlink swapped in under us is not followed out of WORKDIR) and wraps the
// handle so its writes are reported once, at flush/release. An O_TRUNC open
// (delivered with OPEN thanks to CAP_ATOMIC_O_TRUNC) counts as a write even
// if nothing is written. We never set FOPEN_DIRECT_IO, so shared writable
// mmap works.
func (n *Node) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0 {
		n.m.rec.Throttle()
	}
	fh, fuseFlags, errno := n.LoopbackNode.Open(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	h, errno := newFileHandle(n, fh, flags, flags&syscall.O_TRUNC != 0, nil)
	if errno != 0 {
		return nil, 0, errno
	}
	return h, fuseFlags, 0
}

// Create creates and opens a WORKDIR file (go-fuse's loopback, whose Made
// hook makes it the caller's with the mode asked for: fixNew). Nothing is
// reported yet: the new handle starts dirty, so create+write+close is
// reported as one Changed when it is closed.
//
// The file is created O_EXCL: the kernel sends CREATE only for a name it
// just looked up and did not find, and a file that appeared there in
// WORKDIR in between (made from outside the mount) must not be chowned or
// chmodded as if the caller had made it. That race answers EEXIST.
func (n *Node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	n.m.rec.Throttle()
	flags |= syscall.O_EXCL
	if flags&syscall.O_ACCMODE == syscall.O_WRONLY && n.m.kernelPassthrough && !n.m.noPassthrough {
		// Passthrough needs a read-write descriptor (see PassthroughFd).
		// The creating open may have it whatever the new file's mode, so
		// take it now rather than reopen every file created write-only
		// (an untar's) through /proc, and hold one descriptor, not two.
		flags = flags&^syscall.O_ACCMODE | syscall.O_RDWR
	}
	ch, fh, fuseFlags, errno := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	child, ok := ch.Operations().(*Node)
	if !ok {
		releaseRaw(ctx, fh)
		return nil, nil, 0, syscall.EIO
	}
	h, errno := newFileHandle(child, fh, flags, true, &out.Attr)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	return ch, h, fuseFlags, 0
}

// Tmpfile serves open(O_TMPFILE): a file with no name in WORKDIR. It is not
// reported (it has no path); go-fuse's loopback cannot give it a name later
// (linkat answers EXDEV), so it never reaches the syncer. The handle is
// wrapped like any other so that all handles of the mount use the same I/O
// mode.
func (n *Node) Tmpfile(ctx context.Context, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	ch, fh, fuseFlags, errno := n.LoopbackNode.Tmpfile(ctx, flags, mode, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	child, ok := ch.Operations().(*Node)
	if !ok {
		releaseRaw(ctx, fh)
		return nil, nil, 0, syscall.EIO
	}
	h, errno := newFileHandle(child, fh, flags, false, &out.Attr)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	return ch, h, fuseFlags, 0
}

// CopyFileRange copies between two open files inside WORKDIR without the
// data passing through us (copy_file_range on the WORKDIR fds). The
// destination handle counts as written.
func (n *Node) CopyFileRange(ctx context.Context, fhIn gofs.FileHandle, offIn uint64, out *gofs.Inode, fhOut gofs.FileHandle, offOut uint64, length uint64, flags uint64) (uint32, syscall.Errno) {
	in, ok1 := fhIn.(*fileHandle)
	o, ok2 := fhOut.(*fileHandle)
	if !ok1 || !ok2 {
		return 0, syscall.ENOTSUP
	}
	o.dirty.Store(true)
	return n.LoopbackNode.CopyFileRange(ctx, in.LoopbackFile, offIn, out, o.LoopbackFile, offOut, length, flags)
}

// releaseRaw closes a go-fuse handle we could not wrap.
func releaseRaw(ctx context.Context, fh gofs.FileHandle) {
	if r, ok := fh.(gofs.FileReleaser); ok {
		r.Release(ctx)
	}
}
