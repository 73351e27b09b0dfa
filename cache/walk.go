package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/s3sync/s3sync/internal/dirstat"
)

// WalkSorted calls fn for every regular file and symlink under root, in S3
// key order: paths are slash-separated, relative to root, and ordered as
// bytes, which means a directory "a" sorts as "a/" among its siblings.
// Entries are lstat-ed, so symlinks are yielded, never followed; special
// files (sockets, FIFOs, devices) are not yielded, and directories only
// when empty, as "a/" (their marker's key) with the directory's info.
//
// skip (may be nil) is called with every path, directories included (as
// "a", without a trailing slash); a skipped directory is not descended.
// A file or directory that disappears during the walk is passed over; any
// other error stops the walk, because a caller comparing against a
// listing would take an unreadable directory's files for deleted ones. An
// error from fn stops the walk and is returned; filepath.SkipAll stops it
// without error. Memory is one directory listing per level of depth.
func WalkSorted(root string, skip func(string) bool, fn func(path string, info os.FileInfo) error) error {
	err := walkDir(root, "", skip, fn, nil)
	if errors.Is(err, filepath.SkipAll) {
		return nil
	}
	return err
}

// walkSorted is WalkSorted telling special of the files it passes over.
func walkSorted(root string, skip func(string) bool, special func(string, os.FileInfo), fn func(path string, info os.FileInfo) error) error {
	err := walkDir(root, "", skip, fn, special)
	if errors.Is(err, filepath.SkipAll) {
		return nil
	}
	return err
}

type dirItem struct {
	key   string // name, with "/" appended for a directory
	entry fs.DirEntry
	// info and err are the entry's lstat, done ahead on a few goroutines:
	// at a million files the start-up scan is one lstat per file, and done
	// one at a time they were most of a mount's start-up (4.7 s of it at
	// 300,000 files on a loaded 2-core machine).
	info os.FileInfo
	err  error
}

// walkDir walks rel below root; special, when set, hears of the FIFOs,
// sockets and devices fn is not given.
func walkDir(root, rel string, skip func(string) bool, fn func(string, os.FileInfo) error, special func(string, os.FileInfo)) error {
	dir := filepath.Join(root, filepath.FromSlash(rel))
	d, err := os.Open(dir)
	var ents []fs.DirEntry
	if err == nil {
		ents, err = d.ReadDir(-1)
		// The files are stat-ed relative to d (fstatat), then it is closed.
		defer func() {
			if d != nil {
				d.Close()
			}
		}()
	}
	if err != nil {
		if rel != "" && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)) {
			return nil // removed or replaced since its parent was listed
		}
		return fmt.Errorf("cache: walk %s: %w", dir, err)
	}
	if rel != "" && !holdsStorable(ents) {
		// Nothing S3 can hold: the marker keeps the directory (and the
		// special files in it are told of).
		if special != nil {
			for _, ent := range ents {
				if skip != nil && skip(rel+"/"+ent.Name()) {
					continue
				}
				info, err := ent.Info()
				if err == nil && Special(info.Mode().Type()) {
					special(rel+"/"+ent.Name(), info)
				}
			}
		}
		info, err := os.Lstat(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("cache: walk %s: %w", dir, err)
		}
		return fn(rel+"/", info)
	}
	items := make([]dirItem, len(ents))
	for i, ent := range ents {
		key := ent.Name()
		if ent.IsDir() {
			key += "/"
		}
		items[i] = dirItem{key: key, entry: ent}
	}
	slices.SortFunc(items, func(a, b dirItem) int { return strings.Compare(a.key, b.key) })
	// Skipped items are stat-ed too: skip is the caller's and runs on the
	// walk's goroutine only.
	dirfd := int(d.Fd())
	dirstat.Each(len(items), func(i int) {
		if !items[i].entry.IsDir() {
			items[i].info, items[i].err = dirstat.LstatAt(dirfd, dir, items[i].entry.Name())
		}
	})
	d.Close()
	d = nil

	for _, it := range items {
		p := it.entry.Name()
		if rel != "" {
			p = rel + "/" + p
		}
		if skip != nil && skip(p) {
			continue
		}
		if it.entry.IsDir() {
			if err := walkDir(root, p, skip, fn, special); err != nil {
				return err
			}
			continue
		}
		info, err := it.info, it.err
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("cache: walk %s: %w", filepath.Join(root, filepath.FromSlash(p)), err)
		}
		if t := info.Mode().Type(); t != 0 && t != fs.ModeSymlink {
			if special != nil && !info.IsDir() {
				special(p, info)
			}
			continue
		}
		if info.IsDir() {
			// It was a file when listed and became a directory: the walk
			// already passed its sort position as a directory, so leave it
			// to the journal (or the next scan).
			continue
		}
		if err := fn(p, info); err != nil {
			return err
		}
	}
	return nil
}

// Special reports whether a file of type t is a FIFO, socket or device,
// which S3 cannot hold: such files are skipped, and a directory holding
// nothing else counts as empty, so that its marker gives it back on a
// restore.
func Special(t fs.FileMode) bool {
	return t&(fs.ModeNamedPipe|fs.ModeSocket|fs.ModeDevice|fs.ModeCharDevice|fs.ModeIrregular) != 0
}

// holdsStorable reports whether a directory's entries include one S3 can
// hold (a file, link or directory).
func holdsStorable(ents []fs.DirEntry) bool {
	for _, ent := range ents {
		if !Special(ent.Type()) {
			return true
		}
	}
	return false
}
