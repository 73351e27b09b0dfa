// Package walk is the one directory walker: the mount's start-up scan, the
// local side of reconcile and verify, and the drain's walk of a directory
// renamed through the mount all read a local tree through it.
//
// A walk yields the tree's files, symlinks and empty directories in S3 key
// order (the UTF-8 bytes of the slash-separated path below the root), which
// is not the order of a plain recursive walk: a subdirectory "a" sorts as
// "a/", so "a-b" < "a/x" < "a0", as in a bucket listing. So a walk can be
// merged with a listing or with the cache, in one pass, holding only the
// listings of the directories on the current path.
//
// The package knows what S3 can hold (files, links, directories, as markers)
// but not how a bucket or the cache stores them; it does no I/O other than
// reading the tree.
package walk

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"unicode/utf8"
)

// Links says what a walk does with the symlinks it finds.
type Links int

const (
	SkipLinks   Links = iota // passed over (reconcile's --no-follow-symlinks)
	FollowLinks              // as what they point to (the AWS CLI's default)
	StoreLinks               // yielded as links, never followed (--links, the mount)
)

// Options say how a walk treats what it finds.
type Options struct {
	Links Links
	// LinkSuffix (with StoreLinks) is what a link's key adds to its name
	// (rclone's ".rclonelink"): a link sorts at that key, and a link whose
	// key is also the name of a file beside it is warned about and passed
	// over. Without it a link sorts at its own name (the cache's key).
	LinkSuffix string
	// Beneath (with FollowLinks): a symlink to a directory is descended
	// only when it resolves below the root, so that a walk of a download's
	// destination never lists, and so never deletes, files elsewhere.
	Beneath bool
	// Skip, when set, is asked about every path (a directory's without a
	// trailing slash) on the walk's goroutine: a skipped path is not
	// yielded, a skipped directory not descended.
	Skip func(rel string) bool
	// AllNames yields s3sync's temporary files and names that are not
	// valid UTF-8 like any other name: the start-up scan reports what the
	// journal would have recorded, and the drain judges it. Otherwise
	// temporary files are passed over (and do not keep a directory from
	// being empty), and a name S3 keys cannot hold is warned about.
	AllNames bool
	// Eager lstat-s a directory's files up to a batch ahead even across
	// its subdirectories: the most parallel, for a scan that takes the tree
	// as one picture. Otherwise no file is lstat-ed before the
	// subdirectories listed before it have been walked, so that a transfer
	// sees it as it was moments before.
	Eager bool
	// Warn hears of each thing the walk passes over that a person may
	// need to know about, with its path (the root's joined with the
	// relative path): an unreadable directory, a special file
	// (*SpecialError), a broken symlink or a loop, a name S3 cannot hold.
	// Returning an error stops the walk: Next returns false and Err the
	// error. A file or directory that vanishes or changes kind during the
	// walk is passed over in silence: its own change will tell.
	Warn func(path string, err error) error
}

// Entry is one thing a walk yields: a regular file; a symlink, with
// StoreLinks (Link); or an empty directory (Dir), which is a directory
// holding nothing S3 can store (FIFOs, sockets, devices and, unless
// AllNames, s3sync's temporary files aside), whose Rel is its marker's
// "dir/".
type Entry struct {
	Rel string // slash-separated path below the root
	// Info is the entry's lstat; a followed symlink's target's stat; an
	// empty directory's own stat.
	Info fs.FileInfo
	Link bool
	Dir  bool

	parent, name string
}

// Path is the entry's path: the root's joined with Rel.
func (e Entry) Path() string { return filepath.Join(e.parent, e.name) }

// Walker walks one tree. Its methods are for one goroutine.
type Walker struct {
	o       Options
	stack   []*frame
	seen    map[fileID]bool // directories on the current path, for loops
	beneath string          // the root's real path, with Beneath
	err     error
}

type fileID struct{ dev, ino uint64 }

func idOf(fi fs.FileInfo) fileID {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fileID{uint64(st.Dev), st.Ino}
	}
	return fileID{}
}

// New starts a walk at root (itself followed if a symlink: the user named
// it) and lists it. It fails when root is not a directory, or when its
// listing fails and Warn says to stop.
func New(root string, o Options) (*Walker, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", root)
	}
	w := &Walker{o: o, seen: map[fileID]bool{}}
	if w.o.Warn == nil {
		w.o.Warn = func(string, error) error { return nil }
	}
	if o.Beneath && o.Links == FollowLinks {
		if w.beneath, err = filepath.EvalSymlinks(root); err != nil {
			return nil, err
		}
	}
	f, err := os.Open(root)
	if err != nil {
		w.warn(root, err)
	} else {
		w.push(f, root, "", st)
	}
	if w.err != nil {
		w.Close()
		return nil, w.err
	}
	return w, nil
}

// Err is what stopped the walk: an error Warn returned.
func (w *Walker) Err() error { return w.err }

// Close releases the directories the walk holds open; a walk run to its
// end has released them already.
func (w *Walker) Close() {
	for _, fr := range w.stack {
		fr.f.Close()
	}
	w.stack = nil
}

func (w *Walker) warn(path string, err error) {
	if w.err == nil {
		w.err = w.o.Warn(path, err)
	}
}

// Next returns the next entry in key order; ok is false at the end, or
// when Warn stopped the walk.
func (w *Walker) Next() (e Entry, ok bool) {
	for w.err == nil && len(w.stack) > 0 {
		top := w.stack[len(w.stack)-1]
		if top.next >= len(top.items) {
			w.pop()
			continue
		}
		it := &top.items[top.next]
		if top.next >= top.stated && (w.o.Eager || !it.dir) {
			w.statAhead(top)
		}
		top.next++
		if !w.o.AllNames && strings.HasPrefix(it.name, TempPrefix) {
			continue
		}
		if !w.o.AllNames && !utf8.ValidString(it.name) {
			w.warn(filepath.Join(top.dir, it.name), errors.New("name is not valid UTF-8, which S3 keys must be"))
			continue
		}
		if it.dir {
			if e, ok := w.enter(top, it); ok {
				return e, true
			}
			continue
		}
		rel := top.rel + it.name
		if w.o.Skip != nil && w.o.Skip(rel) {
			continue
		}
		if e, ok := w.file(top, it, rel); ok {
			return e, true
		}
	}
	return Entry{}, false
}

// file is the entry it of a directory, at rel, when it is to be yielded.
func (w *Walker) file(top *frame, it *item, rel string) (Entry, bool) {
	if it.err != nil {
		if !errors.Is(it.err, fs.ErrNotExist) { // vanished since the listing: nothing to sync
			w.warn(filepath.Join(top.dir, it.name), it.err)
		}
		return Entry{}, false
	}
	info := it.info
	e := Entry{Rel: rel, Info: info, parent: top.dir, name: it.name}
	switch t := info.Mode().Type(); {
	case it.followed:
		// A symlink followed to what it points to (not a directory).
	case t == fs.ModeSymlink:
		if w.o.Links != StoreLinks || !it.link && w.o.LinkSuffix != "" {
			return Entry{}, false // a file when listed, replaced since: its own change will tell
		}
		e.Link = true
		return e, true
	case it.link && w.o.LinkSuffix != "":
		return Entry{}, false // a link when listed, replaced since, and its key with it
	case t == fs.ModeDir:
		return Entry{}, false // replaced since the listing, and its place in the order with it
	}
	if !info.Mode().IsRegular() {
		w.warn(e.Path(), &SpecialError{Rel: rel, Info: info})
		return Entry{}, false
	}
	return e, true
}

// enter opens the directory it and makes it the current one; an empty
// directory is yielded, as its marker "dir/".
func (w *Walker) enter(top *frame, it *item) (Entry, bool) {
	rel := top.rel + it.key // "sub/dir/"
	if w.o.Skip != nil && w.o.Skip(rel[:len(rel)-1]) {
		return Entry{}, false
	}
	path := filepath.Join(top.dir, it.name)
	flags := os.O_RDONLY | syscall.O_DIRECTORY
	if !it.followed {
		flags |= syscall.O_NOFOLLOW
	}
	f, err := os.OpenFile(path, flags, 0)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) && !errors.Is(err, syscall.ELOOP) {
			w.warn(path, err)
		} // else gone or replaced since the listing
		return Entry{}, false
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		w.warn(path, err)
		return Entry{}, false
	}
	if w.seen[idOf(fi)] {
		f.Close()
		w.warn(path, errors.New("symlink loop: directory already being walked"))
		return Entry{}, false
	}
	if !w.push(f, path, rel, fi) {
		return Entry{}, false
	}
	return Entry{Rel: rel, Info: fi, Dir: true, parent: top.dir, name: it.name}, true
}
