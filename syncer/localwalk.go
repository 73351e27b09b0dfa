package syncer

import "github.com/s3sync/s3sync/internal/walk"

// TempPrefix starts the names of s3sync's own temporary download files;
// walks never report them, so an interrupted clone leaves nothing to upload.
const TempPrefix = walk.TempPrefix

// newWalk starts the local walk of reconcile, verify and the drain at root
// (itself followed if a symlink: the user named it): files, links per
// mode, and empty directories as their markers "dir/", in key order, a
// link at its .rclonelink key. warn hears of each entry that cannot be
// synced, and why; the walk goes on. beneath: see walk.Options.
func newWalk(root string, links walk.Links, beneath bool, warn func(string, error)) (*walk.Walker, error) {
	return walk.New(root, walk.Options{
		Links: links, LinkSuffix: LinkSuffix, Beneath: beneath,
		Warn: func(path string, err error) error { warn(path, err); return nil },
	})
}

// WalkLinks is the drain's walk of a renamed directory at root: newWalk
// with links stored as links, never followed.
func WalkLinks(root string, warn func(string, error)) (*walk.Walker, error) {
	return newWalk(root, walk.StoreLinks, false, warn)
}

// localEntry is what a walk yielded, as the merge of reconcile and verify
// takes it.
func localEntry(f walk.Entry) entry {
	e := entry{rel: f.Rel, time: f.Info.ModTime(), path: f.Path(), link: f.Link}
	switch {
	case f.Link:
		e.rel += LinkSuffix
		e.size = f.Info.Size() // the length of its target
	case !f.Dir:
		e.size = f.Info.Size()
	}
	return e
}
