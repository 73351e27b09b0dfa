package fs

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/s3sync/s3sync/internal/confine"
	gofs "github.com/s3sync/s3sync/third_party/go-fuse/fs"
	"github.com/s3sync/s3sync/third_party/go-fuse/fuse"
)

// mountState is shared by every node of one mount.
type mountState struct {
	rec  Recorder
	root *Node
	// dir is WORKDIR: every syscall on it, go-fuse's loopback's
	// included (LoopbackRoot.OpenDir), resolves the directory it acts in
	// through dir, never a path string.
	dir *confine.Root

	// nsMu orders what the Recorder sees with what happened in WORKDIR.
	// Namespace changes (create, unlink, rename, ...) hold it exclusively
	// from computing their paths until their record is made; records made
	// by path lookup of an existing node (flush, setattr) hold it shared.
	// Without it, a flush racing a rename could report the old name after
	// the rename was reported, and the syncer would lose the write.
	nsMu sync.RWMutex

	// kernelPassthrough: the kernel offered FUSE passthrough and we are
	// root, so handles may be served by the kernel directly.
	kernelPassthrough bool
	// noPassthrough is Options.DisablePassthrough.
	noPassthrough bool
	// asRoot: this process runs as root, so what others create through
	// the mount is given to them (see fixNew).
	asRoot bool
	// passthroughOffered is set once a handle handed the kernel a backing
	// fd; from then on writable handles may write without us seeing it.
	passthroughOffered atomic.Bool
	// reads and writes count the READ and WRITE requests that reached
	// us; with passthrough active they stay at zero (tests use this).
	reads, writes atomic.Int64
	// flushes counts the FLUSH requests that reached us (tests: the
	// first is answered ENOSYS, and the kernel sends no more).
	flushes atomic.Int64
	// handles counts open file handles (tests wait for zero: RELEASE
	// reaches us after close(2) returns).
	handles atomic.Int64
	// writing counts the handles open that may change their file; a
	// handle's change is recorded before it leaves the count.
	writing atomic.Int64
	// onWritersClosed is Options.OnWritersClosed.
	onWritersClosed func()

	// open holds the file and directory handles not yet released, so
	// that those the kernel never releases (it drops pending RELEASEs
	// when the mount goes away) are closed, and reported, after unmount.
	openMu sync.Mutex
	open   map[releaser]struct{}

	// nodes counts, and bounds, the nodes the kernel holds.
	nodes *nodeLimit
}

// releaser is an open file or directory handle.
type releaser interface {
	releaseAfterUnmount()
}

func (m *mountState) track(r releaser) {
	m.openMu.Lock()
	defer m.openMu.Unlock()
	if m.open == nil {
		m.open = map[releaser]struct{}{}
	}
	m.open[r] = struct{}{}
}

// untrack reports whether r was still open (each handle is released once).
func (m *mountState) untrack(r releaser) bool {
	m.openMu.Lock()
	defer m.openMu.Unlock()
	_, ok := m.open[r]
	delete(m.open, r)
	return ok
}

// watchOpenWriters reports, every interval until stop, each file open for
// writing that changed since its handle last reported it (one fstat per
// writable handle).
func (m *mountState) watchOpenWriters(every time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		m.openMu.Lock()
		var hs []*fileHandle
		for r := range m.open {
			if h, ok := r.(*fileHandle); ok && h.mayChange {
				hs = append(hs, h)
			}
		}
		m.openMu.Unlock()
		for _, h := range hs {
			h.report(false)
		}
	}
}

// releaseAll releases the handles still open once the server has stopped:
// no request can reach them any more.
func (m *mountState) releaseAll() {
	m.openMu.Lock()
	rs := make([]releaser, 0, len(m.open))
	for r := range m.open {
		rs = append(rs, r)
	}
	m.openMu.Unlock()
	for _, r := range rs {
		r.releaseAfterUnmount()
	}
}

// Node is a file, directory or symlink of the mount: go-fuse's loopback node
// with the mutating operations wrapped to report to the Recorder. Every node
// of the tree is a *Node: the root is built by Mount and every child is
// wrapped by WrapChild as go-fuse's loopback creates it.
type Node struct {
	*gofs.LoopbackNode
	m *mountState

	// noPassthrough is set when this file could not get a read-write
	// backing fd; it then stays out of passthrough so that all its
	// handles use one I/O mode (the kernel refuses a mix with EIO).
	noPassthrough atomic.Bool
	// writers counts the handles open on this file that may change it.
	writers atomic.Int32
	// opened counts the handles open on this file, for reading or
	// writing (see Mounted.IsOpen).
	opened atomic.Int32
	// used is set when the node is opened; lru places it among the nodes
	// the kernel knows (see nodeLimit).
	used atomic.Bool
	lru  lruLinks
	// pruneAsked: the kernel was asked to forget this node (nodeLimit.mu).
	pruneAsked bool
}

// WrapChild turns every node go-fuse's loopback creates (on lookup, create,
// mkdir, mknod, symlink, link) into a *Node sharing this mount's state. It is
// called by go-fuse from Inode.NewInode, before the node is visible to the
// kernel, so no operation can reach an unwrapped node.
func (n *Node) WrapChild(ctx context.Context, ops gofs.InodeEmbedder) gofs.InodeEmbedder {
	if ln, ok := ops.(*gofs.LoopbackNode); ok {
		return &Node{LoopbackNode: ln, m: n.m}
	}
	return ops
}

// relPath is the node's path relative to WORKDIR as the tree knows it, and
// false if the node is no longer reachable (unlinked, or a nameless
// O_TMPFILE).
func (m *mountState) relPath(in *gofs.Inode) (string, bool) {
	root := m.root.EmbeddedInode()
	var buf [16]string // most paths are shallower: no allocation but Join's
	segs := buf[:0]
	for p := in; p != root; {
		name, parent := p.Parent()
		if parent == nil {
			return "", false
		}
		segs = append(segs, name)
		p = parent
	}
	for i, j := 0, len(segs)-1; i < j; i, j = i+1, j-1 {
		segs[i], segs[j] = segs[j], segs[i]
	}
	return strings.Join(segs, "/"), true
}

// childPath is the path of name in directory n, relative to WORKDIR.
func (m *mountState) childPath(n *Node, name string) (string, bool) {
	dir, ok := m.relPath(n.EmbeddedInode())
	if !ok {
		return "", false
	}
	if dir == "" {
		return name, true
	}
	return dir + "/" + name, true
}

// lstat is lstat of rel in WORKDIR, its parent resolved through m.dir.
func (m *mountState) lstat(rel string, st *syscall.Stat_t) error {
	a, err := m.dir.At(rel)
	if err != nil {
		return err
	}
	defer a.Close()
	return a.Lstat(st)
}

// inoOf is the inode number go-fuse gives a WORKDIR file with stat st
// (fs.LoopbackRoot's idFromStat: the device is mixed in for files on other
// filesystems than WORKDIR's).
func (m *mountState) inoOf(st *syscall.Stat_t) uint64 {
	swap := func(d uint64) uint64 { return d<<32 | d>>32 }
	return swap(uint64(st.Dev)) ^ swap(m.root.RootData.Dev) ^ st.Ino
}

// recordChanged reports node n as Changed under its current name.
//
// Just after a rename, go-fuse moves the node in its tree only once our
// Rename has returned, so for a moment the tree may still give the old name.
// We therefore check that the name we found still refers to this inode in
// WORKDIR, and look again if not (the tree catches up within microseconds).
// If it never matches (WORKDIR changed from outside the mount) we report the
// tree's name anyway: a spurious Changed only makes the syncer look.
func (m *mountState) recordChanged(n *gofs.Inode) {
	want := n.StableAttr().Ino
	for try := 0; ; try++ {
		m.nsMu.RLock()
		rel, ok := m.relPath(n)
		if !ok {
			m.nsMu.RUnlock()
			return
		}
		var st syscall.Stat_t
		match := m.lstat(rel, &st) == nil && m.inoOf(&st) == want
		if match || try >= 20 {
			m.rec.Changed(rel)
			m.nsMu.RUnlock()
			return
		}
		m.nsMu.RUnlock()
		time.Sleep(time.Millisecond)
	}
}

// Setattr changes mode, owner, size or times (chmod, chown, truncate,
// utimes) through go-fuse's loopback and then reports the node Changed.
//
// A truncate through an open handle (ftruncate) is the only case where the
// kernel passes the handle; it is counted as a write of that handle and
// reported once at flush/release like any other write. Safe: the Recorder is
// called only after the change succeeded in WORKDIR.
func (n *Node) Setattr(ctx context.Context, f gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	n.m.rec.Throttle()
	if fh, ok := f.(*fileHandle); ok {
		f = fh.LoopbackFile
		if errno := n.LoopbackNode.Setattr(ctx, f, in, out); errno != 0 {
			return errno
		}
		_, sizeSet := in.GetSize()
		if sizeSet {
			fh.dirty.Store(true)
		}
		if in.Valid&^(fuse.FATTR_SIZE|fuse.FATTR_FH|fuse.FATTR_LOCKOWNER) != 0 {
			n.m.recordChanged(n.EmbeddedInode())
		}
		return 0
	}
	if f == nil {
		return n.setattrByPath(ctx, in, out)
	}
	if errno := n.LoopbackNode.Setattr(ctx, f, in, out); errno != 0 {
		return errno
	}
	n.m.recordChanged(n.EmbeddedInode())
	return 0
}

// Setxattr sets an extended attribute and reports the node Changed (S3 does
// not keep xattrs, but the change is a change; the syncer decides). Safe: it
// records only after the real setxattr succeeded.
func (n *Node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	n.m.rec.Throttle()
	if errno := n.LoopbackNode.Setxattr(ctx, attr, data, flags); errno != 0 {
		return errno
	}
	n.m.recordChanged(n.EmbeddedInode())
	return 0
}

// Removexattr removes an extended attribute and reports the node Changed,
// as Setxattr does.
func (n *Node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	n.m.rec.Throttle()
	if errno := n.LoopbackNode.Removexattr(ctx, attr); errno != 0 {
		return errno
	}
	n.m.recordChanged(n.EmbeddedInode())
	return 0
}
