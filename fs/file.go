package fs

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	gofs "github.com/s3sync/s3sync/third_party/go-fuse/fs"
	"github.com/s3sync/s3sync/third_party/go-fuse/fuse"
	"golang.org/x/sys/unix"
)

// fileHandle is an open regular file: go-fuse's loopback file (reads, writes,
// locks, seek, getattr all go to the WORKDIR fd) plus the bookkeeping that
// reports a handle's changes once, when it is fsynced or released.
//
// A handle may change the file (may record) if it was opened for writing or
// with O_TRUNC. It is reported Changed at fsync/release when
//   - it was created, opened with O_TRUNC, or wrote/truncated/fallocated
//     through us since the last report (dirty), or
//   - the file's size or mtime differ from what they were at the last
//     report: this catches writes the kernel made itself under FUSE
//     passthrough, and writes through shared mmap.
//
// ctime is not compared: a rename, link or chmod changes it without changing
// the content, and RELEASE can reach us after the editor already renamed the
// file over its old name, which would record a spurious Changed. A write
// moves mtime at the same granularity as ctime, and utimes that put mtime
// back come to us as SETATTR, which is recorded itself.
//
// Under passthrough a write within one timestamp tick of the last report may
// leave size and mtime unchanged on kernels without fine-grained timestamps,
// so a writable handle that may be in passthrough and was never reported is
// reported at release regardless. A spurious Changed costs the syncer a
// stat; a missed one loses data.
type fileHandle struct {
	*gofs.LoopbackFile
	m    *mountState
	node *Node
	// fd is the WORKDIR descriptor inside LoopbackFile (owned by it).
	fd int
	// rw is whether fd was opened O_RDWR; mayChange whether this handle
	// can change the file at all.
	rw, mayChange bool

	dirty atomic.Bool
	// sawIO: a READ or WRITE reached us, so the kernel is not doing this
	// handle's I/O itself.
	sawIO atomic.Bool

	mu       sync.Mutex
	last     stamp // size and times at open or at the last report
	recorded bool
	// backing is a read-write fd on the same file handed to the kernel
	// for passthrough when fd is not read-write. Closed at release.
	backing *os.File
}

// stamp is what a write changes in a file's stat.
type stamp struct {
	size  int64
	mtime unix.Timespec
}

// newFileHandle wraps fh; attr, if not nil, holds the file's attributes as
// of now (a create's), which saves a stat.
func newFileHandle(n *Node, fh gofs.FileHandle, flags uint32, dirty bool, attr *fuse.Attr) (*fileHandle, syscall.Errno) {
	lf, ok := fh.(*gofs.LoopbackFile)
	if !ok {
		releaseRaw(context.Background(), fh)
		return nil, syscall.EIO
	}
	// LoopbackFile exposes its descriptor only through PassthroughFd; it
	// stays owned (and closed) by lf.
	fd, ok := lf.PassthroughFd()
	if !ok {
		lf.Release(context.Background())
		return nil, syscall.EBADF
	}
	acc := flags & syscall.O_ACCMODE
	h := &fileHandle{
		LoopbackFile: lf,
		m:            n.m,
		node:         n,
		fd:           fd,
		rw:           acc == syscall.O_RDWR,
		mayChange:    acc != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0,
	}
	n.m.handles.Add(1)
	n.opened.Add(1)
	n.used.Store(true)
	n.m.track(h)
	if h.mayChange {
		n.m.writing.Add(1)
		n.writers.Add(1)
		h.dirty.Store(dirty)
		if attr != nil {
			h.last = stamp{size: int64(attr.Size), mtime: unix.Timespec{Sec: int64(attr.Mtime), Nsec: int64(attr.Mtimensec)}}
		} else {
			h.last, _ = h.stat()
		}
	}
	return h, 0
}

func (h *fileHandle) stat() (stamp, bool) {
	var st unix.Stat_t
	if err := unix.Fstat(h.fd, &st); err != nil {
		return stamp{}, false
	}
	return stamp{size: st.Size, mtime: st.Mtim}, true
}

// report records the file Changed if this handle changed it since the last
// report (see fileHandle). The stat is taken before the record, so a write
// racing the report is seen by the next one.
func (h *fileHandle) report(final bool) {
	if !h.mayChange {
		return
	}
	h.mu.Lock()
	changed := h.dirty.Swap(false)
	now, ok := h.stat()
	if ok && now != h.last {
		changed = true
	}
	if final && !h.recorded && !h.sawIO.Load() && h.m.passthroughOffered.Load() {
		changed = true
	}
	if changed {
		h.last = now
		h.recorded = true
	}
	h.mu.Unlock()
	if changed {
		h.m.recordChanged(h.node.EmbeddedInode())
	}
}

// PassthroughFd hands the kernel a descriptor to do this file's I/O itself
// (FUSE passthrough, kernel 6.9+, root). go-fuse asks only the first handle
// of a file and shares the registration with every handle opened while it
// lives, read-only or not, so the descriptor must be read-write: we reopen
// the file O_RDWR through /proc/self/fd when ours is not. If that fails the
// file stays out of passthrough for good, because the kernel fails an open
// with EIO when one file mixes passthrough and cached handles.
//
// Writes then bypass us, which is fine for recording: FLUSH, FSYNC and
// RELEASE still reach us, and report compares the file's stat.
func (h *fileHandle) PassthroughFd() (int, bool) {
	if h.m.noPassthrough || h.node.noPassthrough.Load() {
		return 0, false
	}
	fd := h.fd
	if !h.rw {
		f, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", h.fd), os.O_RDWR, 0)
		if err != nil {
			h.node.noPassthrough.Store(true)
			return 0, false
		}
		h.mu.Lock()
		h.backing = f
		h.mu.Unlock()
		fd = int(f.Fd())
	}
	h.m.passthroughOffered.Store(true)
	return fd, true
}

// Read reads from the WORKDIR file (only without passthrough).
func (h *fileHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.sawIO.Store(true)
	h.m.reads.Add(1)
	return h.LoopbackFile.Read(ctx, dest, off)
}

// Write writes to the WORKDIR file (only without passthrough) and marks the
// handle dirty; marked first, so a concurrent flush cannot miss it.
func (h *fileHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	h.sawIO.Store(true)
	h.dirty.Store(true)
	h.m.writes.Add(1)
	return h.LoopbackFile.Write(ctx, data, off)
}

// Writev is Write for data in several pieces.
func (h *fileHandle) Writev(ctx context.Context, data [][]byte, off int64) (uint32, syscall.Errno) {
	h.sawIO.Store(true)
	h.dirty.Store(true)
	h.m.writes.Add(1)
	return h.LoopbackFile.Writev(ctx, data, off)
}

// Allocate is fallocate on the WORKDIR file; it may change the size or punch
// holes, so it counts as a write.
func (h *fileHandle) Allocate(ctx context.Context, off uint64, size uint64, mode uint32) syscall.Errno {
	h.dirty.Store(true)
	return h.LoopbackFile.Allocate(ctx, off, size, mode)
}

// Flush answers ENOSYS, after which the kernel sends no FLUSH on this mount
// again (close(2) still returns 0): one round trip less per close, a seventh
// of an untar's requests. Nothing waits on it: flushing a WORKDIR descriptor
// does nothing on a local filesystem, and a handle's changes are reported
// at RELEASE, which the kernel sends as soon as the last descriptor and
// mapping of the handle are gone (so create+write+close is still one
// Changed), at fsync, and every OpenWriterInterval while it stays open.
func (h *fileHandle) Flush(ctx context.Context) syscall.Errno {
	h.m.flushes.Add(1)
	return syscall.ENOSYS
}

// Fsync fsyncs the WORKDIR file, reports it if this handle changed it, and
// then waits for the Recorder, so fsync returns only once the change record
// is durable (the content itself already is, in WORKDIR).
func (h *fileHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if errno := h.LoopbackFile.Fsync(ctx, flags); errno != 0 {
		return errno
	}
	h.report(false)
	return h.m.sync(ctx)
}

// Release runs once the last reference to the handle is gone (after the
// last close and munmap). Writes through mmap may arrive after the last
// Flush, so the file is reported again if it changed since. Then both
// WORKDIR fds are closed.
func (h *fileHandle) Release(ctx context.Context) syscall.Errno {
	if !h.m.untrack(h) {
		return syscall.EBADF
	}
	h.report(true)
	h.mu.Lock()
	if h.backing != nil {
		h.backing.Close()
		h.backing = nil
	}
	h.mu.Unlock()
	h.m.handles.Add(-1)
	h.node.opened.Add(-1)
	errno := h.LoopbackFile.Release(ctx)
	if h.mayChange {
		h.m.writing.Add(-1)
		if h.node.writers.Add(-1) == 0 && h.m.onWritersClosed != nil {
			h.m.onWritersClosed()
		}
	}
	return errno
}

// releaseAfterUnmount is Release for a handle the kernel never released.
func (h *fileHandle) releaseAfterUnmount() { h.Release(context.Background()) }

// sync waits for the Recorder to make every record durable. An interrupted
// fsync answers EINTR; a journal that cannot persist answers EIO, as a disk
// that cannot would.
func (m *mountState) sync(ctx context.Context) syscall.Errno {
	if err := m.rec.Sync(ctx); err != nil {
		if ctx.Err() != nil {
			return syscall.EINTR
		}
		slog.Error("fs: fsync: recorder sync failed", "err", err)
		return syscall.EIO
	}
	return 0
}
