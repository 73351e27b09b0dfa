package fs

import (
	"strings"

	gofs "github.com/s3sync/s3sync/third_party/go-fuse/fs"
)

// What the mount's pull needs: it replaces and removes files in WORKDIR
// behind the mount's back, never one open through it, and then makes the
// kernel forget what it cached of the old name.

// node returns the inode of rel if the kernel knows it, else nil.
func (mt *Mounted) node(rel string) *gofs.Inode {
	in := mt.m.root.EmbeddedInode()
	for name := range strings.SplitSeq(rel, "/") {
		if in = in.GetChild(name); in == nil {
			return nil
		}
	}
	return in
}

// IsOpen reports whether the file at rel (slash-separated, relative to
// WORKDIR) is open through the mount, for reading or writing. Like
// Writing, the answer is advisory: the caller checks again at the last
// moment and keeps its window small.
func (mt *Mounted) IsOpen(rel string) bool {
	in := mt.node(rel)
	if in == nil {
		return false
	}
	n, ok := in.Operations().(*Node)
	return ok && n.opened.Load() > 0
}

// Invalidate drops the kernel's cached entry for rel after rel was
// replaced, made or removed in WORKDIR directly: without it the kernel
// keeps serving the old inode (or "no such file") for up to EntryTimeout.
// The entry dropped is the first component of rel the kernel does not
// know as what WORKDIR now holds: rel itself, or the new directory that
// holds it.
func (mt *Mounted) Invalidate(rel string) {
	in := mt.m.root.EmbeddedInode()
	parts := strings.Split(rel, "/")
	for i, name := range parts {
		child := in.GetChild(name)
		if child == nil || i == len(parts)-1 {
			// ENOENT: the kernel had nothing cached; nothing to drop.
			in.NotifyEntry(name)
			return
		}
		in = child
	}
}
