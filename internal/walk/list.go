package walk

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/s3sync/s3sync/internal/dirstat"
)

// frame is a directory on the current path: its listing, sorted by key,
// and how far the walk is through it.
type frame struct {
	dir   string // path
	rel   string // "" or "sub/dir/"
	id    fileID
	items []item
	next  int
	// f stays open while the frame is on the stack: items are lstat-ed
	// relative to it (fstatat), ahead of Next up to stated.
	f      *os.File
	stated int
}

type item struct {
	name string
	key  string // name; name+"/" for a directory; name+LinkSuffix for a stored link
	dir  bool   // a directory, or a symlink followed to one
	link bool   // a symlink, yielded as a link
	// followed: info is a followed symlink's target (os.Stat at listing
	// time). Otherwise info and err are the item's own lstat, done by
	// statAhead.
	followed bool
	info     fs.FileInfo
	err      error
}

// statBatch bounds how far ahead of Next the walk lstat-s a directory's
// files: far enough to keep dirstat's goroutines busy, near enough that a
// file is still stat-ed moments before it is yielded, as one at a time.
const statBatch = 512

// push lists the directory f at dir and makes it the current directory;
// empty reports that it was read in full and holds nothing S3 can store.
func (w *Walker) push(f *os.File, dir, rel string, fi fs.FileInfo) (empty bool) {
	dents, err := f.ReadDir(-1)
	if err != nil {
		w.warn(dir, err)
		// Keep what was read: a partial listing still syncs those files.
	}
	empty = err == nil
	items := make([]item, 0, len(dents))
	for _, d := range dents {
		name, t := d.Name(), d.Type()
		if Storable(name, t) || w.o.AllNames && !Special(t) {
			empty = false
		}
		it := item{name: name, key: name}
		switch {
		case t.IsDir():
			it.dir = true
		case t&fs.ModeSymlink != 0 && w.o.Links == StoreLinks:
			it.link = true
			if w.o.LinkSuffix != "" {
				it.key = name + w.o.LinkSuffix
			}
		case t&fs.ModeSymlink != 0:
			if w.o.Links != FollowLinks {
				continue
			}
			path := filepath.Join(dir, name)
			info, err := os.Stat(path)
			if err != nil {
				w.warn(path, fmt.Errorf("broken symlink: %w", err))
				continue
			}
			if info.IsDir() && w.beneath != "" && w.outside(path) {
				continue
			}
			it.followed, it.info, it.dir = true, info, info.IsDir()
		}
		if it.dir {
			it.key = name + "/"
		}
		items = append(items, it)
	}
	slices.SortFunc(items, func(a, b item) int { return strings.Compare(a.key, b.key) })
	if w.o.LinkSuffix != "" {
		items = w.dropSharedKeys(dir, items)
	}
	id := idOf(fi)
	w.seen[id] = true
	w.stack = append(w.stack, &frame{dir: dir, rel: rel, id: id, items: items, f: f})
	return empty
}

// pop leaves the current directory.
func (w *Walker) pop() {
	top := w.stack[len(w.stack)-1]
	delete(w.seen, top.id)
	top.f.Close()
	w.stack = w.stack[:len(w.stack)-1]
}

// outside reports whether the symlink at path resolves outside w.beneath.
func (w *Walker) outside(path string) bool {
	real, err := filepath.EvalSymlinks(path)
	return err != nil || !Within(real, w.beneath)
}

// Within reports whether the clean absolute path p is root or below it.
func Within(p, root string) bool {
	return p == root || root == "/" || len(p) > len(root) && p[len(root)] == '/' && p[:len(root)] == root
}

// statAhead lstat-s, on a few goroutines, the items from top.next on that
// Next will lstat: statBatch of them, up to the next directory (whose walk
// may take a while) unless Eager. Directories are stat-ed when entered.
func (w *Walker) statAhead(top *frame) {
	end := top.next
	for end < len(top.items) && end-top.next < statBatch && (w.o.Eager || !top.items[end].dir) {
		end++
	}
	batch := top.items[top.next:end]
	dirfd := int(top.f.Fd())
	dirstat.Each(len(batch), func(i int) {
		if it := &batch[i]; !it.dir && !it.followed {
			it.info, it.err = dirstat.LstatAt(dirfd, top.dir, it.name)
		}
	})
	top.stated = end
}

// dropSharedKeys keeps one of two items that would be stored under the
// same key (a symlink "x" and a file "x.rclonelink"): the file, which that
// key meant before; the link is warned about. items are sorted by key.
func (w *Walker) dropSharedKeys(dir string, items []item) []item {
	shared := func(i int) bool {
		return items[i].link && (i > 0 && items[i-1].key == items[i].key ||
			i+1 < len(items) && items[i+1].key == items[i].key)
	}
	var out []item
	for i, it := range items {
		if !shared(i) {
			if out != nil {
				out = append(out, it)
			}
			continue
		}
		if out == nil {
			out = append(make([]item, 0, len(items)), items[:i]...)
		}
		w.warn(filepath.Join(dir, it.name), fmt.Errorf("symlink not stored: %s is also a file here, and both would be the object %s", it.key, it.key))
	}
	if out == nil {
		return items
	}
	return out
}
