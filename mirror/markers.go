package mirror

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"syscall"
	"time"

	"github.com/s3sync/s3sync/cache"
	"github.com/s3sync/s3sync/internal/confine"
	"github.com/s3sync/s3sync/internal/walk"
	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/syncer"
)

// Empty directories in the mount's drain: a marker exists for each
// directory of WORKDIR that has nothing in it. A directory's own record
// (mkdir, chmod, a start-up scan) and the removal of its last entry make
// it; rmdir removes it with --delete, as removals of files do.

// emptyDir reports whether the directory at p holds nothing S3 can store:
// s3sync's own temporary files and FIFOs, sockets and devices aside.
func emptyDir(p string) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	return emptyOpenDir(f)
}

// emptyDirIn is emptyDir of the directory rel below root.
func emptyDirIn(root *confine.Root, rel string) (bool, error) {
	fd, err := root.OpenDir(rel, false)
	if err != nil {
		return false, err
	}
	f := os.NewFile(uintptr(fd), root.Join(rel))
	defer f.Close()
	return emptyOpenDir(f)
}

func emptyOpenDir(f *os.File) (bool, error) {
	for {
		ents, err := f.ReadDir(16)
		for _, e := range ents {
			if walk.Storable(e.Name(), e.Type()) {
				return false, nil
			}
		}
		if err == io.EOF {
			return true, nil
		}
		if err != nil {
			return false, err
		}
	}
}

// syncMarker brings one marker ("dir/", a start-up scan's record) up to
// date: made when the directory is there and empty, forgotten (and deleted
// with --delete) when it is gone or no longer a directory.
func (d *Drainer) syncMarker(ctx context.Context, marker string, st *step) error {
	dir := syncer.MarkerDir(marker)
	full := filepath.Join(d.workdir, filepath.FromSlash(dir))
	info, err := lstatBeneath(d.workdir, dir)
	if err == nil && info.IsDir() {
		return d.ensureMarker(ctx, dir, full, info, st)
	}
	if err != nil && !notExist(err) {
		return err
	}
	if err := d.settleKey(ctx, dir, cache.KindDir); err != nil {
		return err
	}
	if err := d.removeFile(ctx, marker, st); err != nil {
		return err
	}
	return d.markEmptyParent(ctx, dir, st)
}

// ensureMarker puts the marker of the directory dir (at full) if it is
// empty and the cache does not already hold one with the directory's mode
// and owner: a chmod of an empty directory puts the zero-byte marker again.
// A directory with entries needs none: its files bring it back (and its
// mode is not kept).
func (d *Drainer) ensureMarker(ctx context.Context, dir, full string, info os.FileInfo, st *step) error {
	marker := objectRel(dir, cache.KindDir)
	if dir == "" || dir == "." || d.opts.Filters.ExcludedKey(marker) {
		return nil
	}
	empty, err := emptyDir(full)
	if notExist(err) {
		return nil // gone since: its removal is recorded
	}
	if err != nil {
		return err
	}
	if !empty {
		return d.adoptMarker(ctx, marker, st)
	}
	p := syncer.PosixOf(info)
	e, known, err := d.c.Get(marker)
	if err != nil {
		return err
	} else if known && (e.Meta && !e.MetaDiffers(info) || !p.HasMode) {
		return nil
	}
	key := d.key(marker)
	if len(key) > syncer.MaxKeyLen {
		return permanent("the marker key of empty directory %s is %d bytes, over S3's limit of %d; rename it", dir, len(key), syncer.MaxKeyLen)
	}
	seen := ""
	if known {
		seen = e.ETag
	} else if err := d.c.PutIntent(marker); err != nil {
		// Durable before the PUT: if it lands and this process dies
		// before the entry below commits, the next one still knows the
		// bucket may hold the marker (see settleKey).
		return err
	}
	etag, err := d.putMarkerIf(ctx, key, info.ModTime(), p, seen)
	if err != nil {
		if syncer.MayHaveLanded(err) {
			d.setDoubt(marker, true)
		}
		return err
	}
	d.setDoubt(marker, false)
	now := time.Now()
	return d.cachePut(st, marker, withPosix(cache.Entry{Kind: cache.KindDir, Mtime: info.ModTime(), ETag: etag,
		StorageClass: d.opts.StorageClass, Synced: now}, p))
}

// adoptMarker runs for a directory that needs no marker (it has entries):
// if an earlier PUT of its marker may have landed unrecorded (the record
// is in doubt: a lost answer, or a crash), a marker of this side's own in
// the bucket gets its cache entry, so that removing the directory later
// deletes it. Otherwise nothing: no request.
func (d *Drainer) adoptMarker(ctx context.Context, marker string, st *step) error {
	intent, err := d.c.HasIntent(marker)
	if err != nil {
		return err
	}
	d.mu.Lock()
	doubt := st.doubt || d.inDoubt[marker] || intent
	d.mu.Unlock()
	if !doubt {
		return nil
	}
	if _, ok, err := d.c.Get(marker); err != nil || ok {
		if ok && intent {
			return d.c.DeleteIntent(marker)
		}
		return err
	}
	etag, own, err := d.ownObject(ctx, marker, d.key(marker))
	if err != nil {
		return err
	}
	d.setDoubt(marker, false)
	if !own {
		if intent {
			return d.c.DeleteIntent(marker)
		}
		return nil
	}
	return d.cachePut(st, marker, cache.Entry{Kind: cache.KindDir, ETag: etag, StorageClass: d.opts.StorageClass, Synced: time.Now()})
}

// putMarkerIf puts a marker conditional on what this side last saw of it
// (seen, "" for nothing). A marker the cache does not know of goes only
// where the key is free: one already there (another machine's empty
// directory of the same name) is the same directory, and is taken as it
// is. A known marker another writer put again holds no content to lose:
// its mode and owner are set again, conditional on what it holds now.
func (d *Drainer) putMarkerIf(ctx context.Context, key string, mtime time.Time, p remote.Posix, seen string) (string, error) {
	o := remote.PutOptions{StorageClass: d.opts.StorageClass, Mtime: mtime, Posix: p, IfMatch: seen, IfNoneMatch: seen == "", Writer: d.opts.WriterID}
	up, err := d.r.Upload(ctx, d.loc.Bucket, key, bytes.NewReader(nil), 0, o)
	if !errors.Is(err, remote.ErrConflict) && !(seen != "" && errors.Is(err, remote.ErrNotFound)) {
		return up.ETag, err
	}
	info, err := d.r.Head(ctx, d.loc.Bucket, key)
	switch {
	case errors.Is(err, remote.ErrNotFound):
		o.IfMatch, o.IfNoneMatch = "", true
	case err != nil:
		return "", err
	case seen == "":
		return info.ETag, nil
	default:
		o.IfMatch = info.ETag
	}
	up, err = d.r.Upload(ctx, d.loc.Bucket, key, bytes.NewReader(nil), 0, o)
	return up.ETag, err
}

// markEmptyParent runs after rel was removed from WORKDIR (or renamed
// away): a directory left empty by it needs its marker, or a restore loses
// it (Maildir's tmp/ once its mail moved to new/).
func (d *Drainer) markEmptyParent(ctx context.Context, rel string, st *step) error {
	parent := path.Dir(rel)
	if parent == "." || parent == "/" {
		return nil
	}
	full := filepath.Join(d.workdir, filepath.FromSlash(parent))
	info, err := os.Lstat(full)
	if err != nil && !notExist(err) {
		return nil // its own record comes
	}
	if err != nil || !info.IsDir() {
		// Gone too: its own removal record comes. A marker put for it
		// before a crash is settled now all the same.
		return d.settleKey(ctx, parent, cache.KindDir)
	}
	return d.ensureMarker(ctx, parent, full, info, st)
}

// markerGone reports, for removeTree, whether the directory of a marker
// cache key is no longer a directory in WORKDIR.
func (d *Drainer) markerGone(marker string) bool {
	info, err := lstatBeneath(d.workdir, syncer.MarkerDir(marker))
	return err == nil && !info.IsDir() || notExist(err)
}

// parentLinked: a path could not be reached below the root because a
// folder on the way is a symlink (ELOOP; EXDEV: one leading outside) or a
// file (ENOTDIR).
func parentLinked(err error) bool {
	return errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.EXDEV) || errors.Is(err, syscall.ENOTDIR)
}

// notExist: the path is gone, or a parent is no longer a directory.
func notExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// objectRel is the key suffix (below the prefix) that stores WORKDIR's rel
// as kind k: a file under its path, a symlink as path+".rclonelink", an
// empty directory as the marker path+"/".
func objectRel(rel string, k cache.Kind) string { return cache.ObjectRel(rel, k) }
