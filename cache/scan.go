package cache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/s3sync/s3sync/internal/walk"
)

// Scan compares the working directory with the cache, so changes made while
// nothing was journaling them (before a mount, during a crash) are found.
//
// changed(path) is called for every regular file or symlink that has no
// entry, or whose size or mtime (to the nanosecond) or kind (a file that is
// now a symlink, or the reverse) differs from its entry, or whose mode or
// owner differs from an entry that records them; a symlink's size and
// mtime are its own (lstat), never its target's;
// removed(path) for every entry whose file is gone or is no longer a regular
// file or symlink. skip (may be nil) excludes paths from both sides: a
// skipped path, or an entry under a skipped directory, is never reported.
//
// Directory markers go by their key "dir/": changed("dir/") for an empty
// directory without a marker entry, removed("dir/") for a marker entry
// whose directory is gone. A marker entry of a directory that now has files
// is left alone, and markers are not compared by size or time, only by
// mode and owner (a chmod of an empty directory).
//
// The walk and the cache are merged in key order, so memory stays at one
// directory listing per level and the cache is read in short transactions;
// the callbacks run outside any transaction and may record into the journal.
func (c *Cache) Scan(workdir string, skip func(path string) bool, changed func(path string), removed func(path string)) error {
	_, err := c.ScanCount(workdir, skip, changed, removed)
	return err
}

// ScanCount is Scan, and also says how many entries the cache holds (Scan
// reads them all; Len would read them all again, in one transaction).
func (c *Cache) ScanCount(workdir string, skip func(path string) bool, changed func(path string), removed func(path string)) (entries int, err error) {
	return c.ScanLinked(workdir, skip, changed, removed, nil, nil)
}

// ScanLinked is ScanCount that also calls linked, before changed, for every
// file or symlink with more than one name (hard links), with its device
// and inode: a change made through one name is a change of all of them;
// and special for every FIFO, socket or device (which S3 cannot hold).
func (c *Cache) ScanLinked(workdir string, skip func(path string) bool, changed func(path string), removed func(path string), linked func(path string, dev, ino uint64), special func(path string, info os.FileInfo)) (entries int, err error) {
	it := c.iter("")
	defer func() { entries = it.n }()
	key, e, ok := it.next()
	// gone reports cache keys that sort before the walk's position.
	gone := func(key string) {
		if strings.HasSuffix(key, "/") {
			key = strings.TrimSuffix(key, "/")
			if info, err := os.Lstat(filepath.Join(workdir, filepath.FromSlash(key))); err == nil && info.IsDir() || skipped(key, skip) {
				return
			}
			key += "/"
		} else if skipped(key, skip) {
			return
		}
		removed(key)
	}
	w, err := walkTree(workdir, skip, special)
	if err != nil {
		return 0, fmt.Errorf("cache: scan: %w", err)
	}
	defer w.Close()
	for f, more := w.Next(); more; f, more = w.Next() {
		if it.err != nil {
			return 0, it.err // the rest of the walk would all look new
		}
		p, info := f.Rel, f.Info
		for ok && key < p {
			gone(key)
			key, e, ok = it.next()
		}
		if linked != nil && !info.IsDir() {
			if st, isSt := info.Sys().(*syscall.Stat_t); isSt && st.Nlink > 1 {
				linked(p, uint64(st.Dev), st.Ino)
			}
		}
		if ok && key == p {
			if !info.IsDir() && (e.Size != info.Size() || !e.Mtime.Equal(info.ModTime()) || e.Kind != kindOf(info)) || e.MetaDiffers(info) {
				changed(p)
			}
			key, e, ok = it.next()
			continue
		}
		changed(p)
	}
	if err := w.Err(); err != nil {
		return 0, fmt.Errorf("cache: scan: %w", err)
	}
	for ok {
		gone(key)
		key, _, ok = it.next()
	}
	return 0, it.err
}

// walkTree starts the scan's walk of workdir: every file and symlink (never
// followed, each at its own name, which is its cache key), every name as
// the journal would have recorded it, and empty directories as their
// markers "dir/"; special, when set, hears of the FIFOs, sockets and
// devices it passes over. A file or directory that disappears during the
// walk is passed over; any other error stops it, because a scan would take
// an unreadable directory's files for deleted ones.
func walkTree(workdir string, skip func(string) bool, special func(string, os.FileInfo)) (*walk.Walker, error) {
	stopped := false
	w, err := walk.New(workdir, walk.Options{
		Links: walk.StoreLinks, Skip: skip, AllNames: true, Eager: true,
		Warn: func(path string, err error) error {
			var se *walk.SpecialError
			if errors.As(err, &se) {
				if special != nil {
					special(se.Rel, se.Info)
				}
				return nil
			}
			stopped = true
			return fmt.Errorf("cache: walk %s: %w", path, err)
		},
	})
	if err != nil && !stopped {
		err = fmt.Errorf("cache: walk %s: %w", workdir, err)
	}
	return w, err
}

// kindOf is the Kind a walked path is stored as.
func kindOf(info os.FileInfo) Kind {
	if info.Mode()&os.ModeSymlink != 0 {
		return KindLink
	}
	return KindFile
}

// skipped says whether the walk would have excluded path: skip matched it
// or one of its parent directories.
func skipped(path string, skip func(string) bool) bool {
	if skip == nil {
		return false
	}
	if skip(path) {
		return true
	}
	for i := strings.LastIndexByte(path, '/'); i > 0; i = strings.LastIndexByte(path[:i], '/') {
		if skip(path[:i]) {
			return true
		}
	}
	return false
}
