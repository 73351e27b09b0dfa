package syncer

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/s3sync/s3sync/cache"
	"github.com/s3sync/s3sync/internal/dirstat"
)

// LocalFile is one regular file found by the local walk, a symlink in a
// walk that stores links, or an empty directory (Dir), whose Rel is its
// marker's "dir/".
type LocalFile struct {
	Rel   string // slash-separated path below the root
	Path  string // path to open
	Size  int64  // a link's: the length of its target
	Mtime time.Time
	// Link: a symlink, to be stored as rclone's Rel+".rclonelink" object.
	Link bool
	Dir  bool
}

// Key is the key suffix that stores f.
func (f LocalFile) Key() string {
	if f.Link {
		return f.Rel + LinkSuffix
	}
	return f.Rel
}

// TempPrefix starts the names of s3sync's own temporary download files;
// walks never report them, so an interrupted clone leaves nothing to upload.
const TempPrefix = ".s3sync-tmp-"

// LocalWalk yields a directory tree's regular files and empty directories
// (as "dir/", where a bucket holds their marker) in S3 key order (UTF-8
// bytes of the relative path). Within a directory it sorts a subdirectory
// "a" as "a/", so that "a-b" < "a/x" < "a0" as in a bucket listing, and it
// holds only the listings of the directories on the current path, so memory
// does not grow with the number of files.
type LocalWalk struct {
	follow bool
	warn   func(path string, err error)
	stack  []*walkFrame
	seen   map[fileID]bool // directories on the current path, for symlink loops

	links bool // symlinks are yielded as links (key name+".rclonelink"), never followed
	// beneath, when set, is the real path of the root: a followed symlink
	// to a directory is descended only if it resolves below it.
	beneath string
}

type fileID struct{ dev, ino uint64 }

type walkFrame struct {
	dir     string
	rel     string // "" or "sub/dir/"
	id      fileID
	entries []walkEntry
	next    int
	// f stays open while the frame is on the stack: entries are lstat-ed
	// relative to it (fstatat), ahead of Next up to stated.
	f      *os.File
	stated int
}

type walkEntry struct {
	name string
	key  string // name, or name+"/" for a directory
	dir  bool
	link bool // yielded as a link
	// info is a followed symlink's target (os.Stat at listing time).
	info os.FileInfo
	// lst and lerr are the entry's own lstat, done by statAhead.
	lst  os.FileInfo
	lerr error
}

// statBatch bounds how far ahead of Next the walk lstat-s a directory's
// files: far enough to keep dirstat's goroutines busy, near enough that a
// file is still stat-ed moments before it is yielded, as one at a time.
const statBatch = 512

// newLocalWalk starts a walk at root. follow makes symlinks count as what
// they point to (the AWS CLI's default); without it symlinks are skipped.
// warn receives each entry that cannot be synced and why; the walk goes on.
func newLocalWalk(root string, follow bool, warn func(string, error)) (*LocalWalk, error) {
	mode := skipLinks
	if follow {
		mode = followLinks
	}
	return newWalk(root, walkOptions{symlinks: mode}, warn)
}

// symlinkMode says what a walk does with the symlinks it finds.
type symlinkMode int

const (
	skipLinks   symlinkMode = iota // --no-follow-symlinks
	followLinks                    // the AWS CLI's default: as what they point to
	storeLinks                     // --links and the mount: as links, never followed
)

type walkOptions struct {
	symlinks symlinkMode
	// beneath (with followLinks): descend into a symlinked directory only
	// when it resolves below the root, so a download's walk of its
	// destination never lists, and so never deletes, files elsewhere.
	beneath bool
}

// newWalk starts a walk at root (itself followed if a symlink: the user
// named it).
func newWalk(root string, o walkOptions, warn func(string, error)) (*LocalWalk, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", root)
	}
	w := &LocalWalk{follow: o.symlinks == followLinks, links: o.symlinks == storeLinks, warn: warn, seen: map[fileID]bool{}}
	if o.beneath && w.follow {
		if w.beneath, err = filepath.EvalSymlinks(root); err != nil {
			return nil, err
		}
	}
	w.push(root, "", st)
	return w, nil
}

// WalkLinks walks the tree at root as the mount stores it: symlinks are
// yielded as links, never followed. warn receives each entry that cannot
// be synced and why (a *NotRegularError for a FIFO, socket or device); the
// walk goes on.
func WalkLinks(root string, warn func(path string, err error)) (*LocalWalk, error) {
	return newWalk(root, walkOptions{symlinks: storeLinks}, warn)
}

// outside reports whether the symlink at path resolves outside w.beneath.
func (w *LocalWalk) outside(path string) bool {
	real, err := filepath.EvalSymlinks(path)
	return err != nil || !within(real, w.beneath)
}

// within reports whether the clean absolute path p is root or below it.
func within(p, root string) bool {
	return p == root || root == "/" || under(p, root)
}

func idOf(fi os.FileInfo) fileID {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fileID{uint64(st.Dev), st.Ino}
	}
	return fileID{}
}

// push lists dir and makes it the current directory; empty reports that
// it was read in full and holds nothing S3 can store (s3sync's temporary
// files, FIFOs, sockets and devices aside).
func (w *LocalWalk) push(dir, rel string, fi os.FileInfo) (empty bool) {
	f, err := os.Open(dir)
	if err != nil {
		w.warn(dir, err)
		return false
	}
	dents, err := f.ReadDir(-1)
	if err != nil {
		w.warn(dir, err)
		// Keep what was read: a partial listing still syncs those files.
	}
	empty = err == nil
	entries := make([]walkEntry, 0, len(dents))
	for _, d := range dents {
		name := d.Name()
		if !strings.HasPrefix(name, TempPrefix) && !cache.Special(d.Type()) {
			empty = false
		}
		e := walkEntry{name: name, key: name}
		switch t := d.Type(); {
		case t.IsDir():
			e.dir = true
		case t&fs.ModeSymlink != 0 && w.links:
			e.link, e.key = true, name+LinkSuffix
		case t&fs.ModeSymlink != 0:
			if !w.follow {
				continue
			}
			info, err := os.Stat(filepath.Join(dir, name))
			if err != nil {
				w.warn(filepath.Join(dir, name), fmt.Errorf("broken symlink: %w", err))
				continue
			}
			if info.IsDir() && w.beneath != "" && w.outside(filepath.Join(dir, name)) {
				continue
			}
			e.info = info
			e.dir = info.IsDir()
		}
		if e.dir {
			e.key = name + "/"
		}
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].key < entries[j].key })
	if w.links {
		entries = w.dropSharedKeys(dir, entries)
	}
	id := idOf(fi)
	w.seen[id] = true
	w.stack = append(w.stack, &walkFrame{dir: dir, rel: rel, id: id, entries: entries, f: f})
	return empty
}

// statAhead lstat-s, on a few goroutines, the entries from top.next on
// that Next will lstat, up to the next directory (whose walk may take a
// while) or statBatch of them.
func (w *LocalWalk) statAhead(top *walkFrame) {
	end := top.next
	for end < len(top.entries) && end-top.next < statBatch && !top.entries[end].dir {
		end++
	}
	if end == top.next {
		end++ // a directory: lstat-ed alone, when Next reaches it
	}
	batch := top.entries[top.next:end]
	dirfd := int(top.f.Fd())
	dirstat.Each(len(batch), func(i int) {
		if e := &batch[i]; e.info == nil {
			e.lst, e.lerr = dirstat.LstatAt(dirfd, top.dir, e.name)
		}
	})
	top.stated = end
}

// Close releases the directories the walk holds open; a walk run to its
// end has released them already.
func (w *LocalWalk) Close() {
	for _, fr := range w.stack {
		fr.f.Close()
	}
	w.stack = nil
}

// Next returns the next file or empty directory in key order; ok is false
// at the end.
func (w *LocalWalk) Next() (f LocalFile, ok bool) {
	for len(w.stack) > 0 {
		top := w.stack[len(w.stack)-1]
		if top.next >= len(top.entries) {
			delete(w.seen, top.id)
			top.f.Close()
			w.stack = w.stack[:len(w.stack)-1]
			continue
		}
		if top.next >= top.stated {
			w.statAhead(top)
		}
		e := top.entries[top.next]
		top.next++
		path := filepath.Join(top.dir, e.name)
		rel := top.rel + e.name
		if strings.HasPrefix(e.name, TempPrefix) {
			continue
		}
		if !utf8.ValidString(e.name) {
			w.warn(path, fmt.Errorf("name is not valid UTF-8, which S3 keys must be"))
			continue
		}
		info := e.info
		if info == nil {
			if info = e.lst; e.lerr != nil {
				if !os.IsNotExist(e.lerr) { // vanished since the listing: nothing to sync
					w.warn(path, e.lerr)
				}
				continue
			}
		}
		if e.dir {
			if !info.IsDir() {
				continue // replaced since the listing
			}
			if w.seen[idOf(info)] {
				w.warn(path, fmt.Errorf("symlink loop: directory already being walked"))
				continue
			}
			if w.push(path, rel+"/", info) {
				return LocalFile{Rel: rel + "/", Path: path, Mtime: info.ModTime(), Dir: true}, true
			}
			continue
		}
		if e.link {
			if info.Mode()&fs.ModeSymlink == 0 {
				continue // replaced since the listing: its own change will tell
			}
			return LocalFile{Rel: rel, Path: path, Size: info.Size(), Mtime: info.ModTime(), Link: true}, true
		}
		if e.info == nil && (info.IsDir() || info.Mode()&fs.ModeSymlink != 0) {
			continue // a file when listed, replaced since: its own change will tell
		}
		if !info.Mode().IsRegular() {
			w.warn(path, &NotRegularError{KindOf(info.Mode())})
			continue
		}
		return LocalFile{Rel: rel, Path: path, Size: info.Size(), Mtime: info.ModTime()}, true
	}
	return LocalFile{}, false
}

// NotRegularError: a walk found a FIFO, socket or device, which S3
// cannot hold; Kind names it (KindOf).
type NotRegularError struct{ Kind string }

func (e *NotRegularError) Error() string { return e.Kind + " is not a regular file" }

// KindOf names the type of a file of mode m for a person ("socket").
func KindOf(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m.IsDir():
		return "directory"
	}
	return "special file"
}
