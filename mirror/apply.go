package mirror

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/s3sync/s3sync/cache"
	"github.com/s3sync/s3sync/internal/walk"
	"github.com/s3sync/s3sync/journal"
	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/syncer"
)

// Applying one record: what the bucket must hold for a path now.

// apply makes the remote hold what WORKDIR holds at r.Path now.
func (d *Drainer) apply(ctx context.Context, r journal.Record, st *step) error {
	if r.Op == journal.OpRemoved && r.IsDir {
		return d.removeTree(ctx, r.Path, st.doubt)
	}
	if r.Op == journal.OpRenamed || (r.IsDir && st.doubt) {
		// A directory removed (or renamed away) here before the rename
		// coalesced into it: what it held must go, as after a change
		// (which the journal keeps a removal; a rename must keep its
		// source for the copy). mv build build.old; mv build.new build.
		//
		// In doubt (an earlier process tried this record, or an answer
		// was lost), a directory's files may have objects the cache never
		// learnt of: ask the bucket, or a file deleted since (say while
		// unmounted, where nothing records it) keeps its object for good.
		if err := d.removeGone(ctx, r.Path, r.IsDir && st.doubt); err != nil {
			return err
		}
	}
	if r.IsDir {
		// A directory rename, possibly with a later change coalesced onto
		// it: its files were never journaled one by one.
		if st.doubt {
			// An earlier try (before a crash, or with a lost answer) may
			// have put the directory's marker: syncTree's look at the
			// marker adopts it if the directory no longer needs one.
			d.setDoubt(objectRel(r.Path, cache.KindDir), true)
		}
		return d.syncTree(ctx, r.Path, r.From)
	}
	return d.syncPath(ctx, r.Path, r.From, st)
}

// syncPath brings one path up to date; from is a rename hint.
func (d *Drainer) syncPath(ctx context.Context, rel, from string, st *step) error {
	if syncer.IsMarker(rel) {
		return d.syncMarker(ctx, rel, st)
	}
	if d.opts.Filters.Excluded(rel) {
		return nil
	}
	full := filepath.Join(d.workdir, filepath.FromSlash(rel))
	info, err := lstatBeneath(d.workdir, rel)
	if err == nil || notExist(err) {
		// A marker or a link put for what rel was before a crash goes,
		// if rel is no longer that.
		if notExist(err) || !info.IsDir() {
			if err := d.settleKey(ctx, rel, cache.KindDir); err != nil {
				return err
			}
		}
		if notExist(err) || info.Mode()&fs.ModeSymlink == 0 {
			if err := d.settleKey(ctx, rel, cache.KindLink); err != nil {
				return err
			}
		}
	}
	if notExist(err) {
		if err := d.removeFile(ctx, rel, st); err != nil {
			return err
		}
		if err := d.c.Unskip(rel); err != nil {
			return err
		}
		d.removedLink(rel)
		return d.markEmptyParent(ctx, rel, st)
	}
	if err != nil {
		return err
	}
	if !info.IsDir() && info.Mode()&fs.ModeSymlink == 0 && !info.Mode().IsRegular() {
		// What was stored under the name goes (the file it was is gone).
		if err := d.removeFile(ctx, rel, st); err != nil {
			return err
		}
		return d.skipSpecial(rel, info.Mode())
	}
	if err := d.c.Unskip(rel); err != nil {
		return err
	}
	d.followLinks(rel, info)
	if info.IsDir() {
		// mkdir, chmod of a directory, or a file replaced by one: S3 has
		// no directories, and every file that enters this one through the
		// mount is recorded on its own (a renamed-in tree comes as a
		// directory rename), so walking it here would only race those
		// records and upload their files twice. A file that was here is
		// gone, though. Empty, it needs its marker.
		if err := d.removeFile(ctx, rel, st); err != nil {
			return err
		}
		return d.ensureMarker(ctx, rel, full, info, st)
	}
	if info.Mode()&fs.ModeSymlink != 0 {
		return d.syncLink(ctx, rel, full, st)
	}
	if err := d.sharedKey(rel, full); err != nil {
		return err
	}
	if err := d.dropLink(ctx, rel); err != nil {
		return err
	}
	return d.syncFile(ctx, rel, full, info, from, st)
}

// skipSpecial records that rel, a FIFO, socket or device node, is not
// stored: S3 holds files, links and folders. `aws s3 sync` and rclone skip
// such files with a notice too. It is told once (per path and kind) and
// listed by status as skipped, never as failed: nothing would make it
// succeed, and a failed list full of them would hide real failures.
func (d *Drainer) skipSpecial(rel string, m fs.FileMode) error {
	return d.skipKind(rel, walk.Kind(m))
}

// pruneSkipped forgets the skipped paths that are no longer FIFOs,
// sockets or devices (renamed or removed with their folder, or changed
// while unmounted, which no record tells).
func (d *Drainer) pruneSkipped() error {
	var gone []string
	err := d.c.Skipped(func(rel, _ string) error {
		info, err := lstatBeneath(d.workdir, rel)
		if err != nil || info.Mode().IsRegular() || info.IsDir() || info.Mode()&fs.ModeSymlink != 0 {
			gone = append(gone, rel)
		}
		return nil
	})
	for _, rel := range gone {
		if err == nil {
			err = d.c.Unskip(rel)
		}
	}
	return err
}

func (d *Drainer) skipKind(rel, kind string) error {
	news, err := d.c.Skip(rel, kind)
	if news {
		d.opts.Log.Warn("not stored: S3 holds regular files, symlinks and folders only; status lists it as skipped", "path", rel, "kind", kind)
	}
	return err
}

// syncFile calls st.release once the remote holds the file, before the
// cache entry is committed.
func (d *Drainer) syncFile(ctx context.Context, rel, full string, info os.FileInfo, from string, st *step) error {
	key := d.key(rel)
	if len(key) > syncer.MaxKeyLen {
		return permanent("key is %d bytes, over S3's limit of %d; rename the file", len(key), syncer.MaxKeyLen)
	}
	if e, ok, err := d.c.Get(rel); err != nil {
		return err
	} else if ok && e.Size == info.Size() && e.Mtime.Equal(info.ModTime()) {
		if e.Kind != cache.KindFile || (e.Meta && !e.MetaDiffers(info)) {
			return nil // the remote already holds exactly this
		}
		// Only the mode or owner changed (or the entry predates them).
		if done, err := d.syncMeta(ctx, rel, key, e, info, st); done || err != nil {
			return err
		}
	}
	if from != "" && from != rel {
		// A rename: copy server-side what the cache says the old key
		// holds, if the file still has that size and mtime, and only if
		// the old key still holds exactly that content (its ETag): a
		// source rewritten since, or a cache entry lost in a crash, must
		// not put the new bytes under this name.
		if e, ok, _ := d.c.Get(from); ok && e.Kind == cache.KindFile && e.ETag != "" && e.Size == info.Size() && e.Mtime.Equal(info.ModTime()) {
			// The metadata is the file's now: a chmod may have come with
			// the rename.
			p := syncer.PosixOf(info)
			o := remote.PutOptions{StorageClass: d.opts.StorageClass, SourceETag: e.ETag, Mtime: e.Mtime, Posix: p, Writer: d.opts.WriterID}
			if err := d.expectFile(rel, &o); err != nil {
				return err
			}
			etag, err := d.r.Copy(ctx, d.loc.Bucket, d.key(from), d.loc.Bucket, key, e.Size, o)
			if err == nil {
				st.release()
				d.setDoubt(rel, false)
				d.synced(rel)
				e.ETag, e.Synced = etag, time.Now()
				return d.cachePut(st, rel, withPosix(e, p))
			}
			if !errors.Is(err, remote.ErrNotFound) && !errors.Is(err, remote.ErrChanged) && !errors.Is(err, remote.ErrConflict) {
				if syncer.MayHaveLanded(err) {
					d.setDoubt(rel, true)
					d.cf.noteSent(rel, e.Size, e.Mtime)
				}
				return err
			}
			// The old object is gone or holds something else, or the
			// new name holds another writer's version: upload, which
			// tells which.
		}
	}
	var o remote.PutOptions
	if err := d.expectFile(rel, &o); err != nil {
		return err
	}
	res, err := d.uploadChecked(ctx, rel, full, key, syncer.Cond{IfMatch: o.IfMatch, IfNoneMatch: o.IfNoneMatch})
	if errors.Is(err, errKeptBoth) {
		st.release()
		return nil
	}
	now := time.Now()
	if res.ETag != "" {
		// The object holds what the file had at res's size and mtime,
		// whatever comes next: the cache must know, or a removal of the
		// file would leave the object behind.
		d.mu.Lock()
		d.lastUpload = now
		d.mu.Unlock()
		d.setDoubt(rel, false)
		e := withPosix(cache.Entry{Size: res.Size, Mtime: res.Mtime, ETag: res.ETag, StorageClass: d.opts.StorageClass, Synced: now}, res.Posix)
		if err == nil {
			st.release()
			d.synced(rel)
			return d.cachePut(st, rel, e)
		}
		if perr := d.c.Put(rel, e); perr != nil {
			return perr
		}
	}
	if res.InDoubt {
		d.setDoubt(rel, true)
		d.cf.noteSent(rel, res.Size, res.Mtime)
	}
	switch {
	case notExist(err):
		return d.removeFile(ctx, rel, st)
	case errors.Is(err, fs.ErrPermission):
		// This file only: retrying will not make it readable.
		return permanent("cannot read %s: %w", rel, err)
	}
	return err
}

// setDoubt records whether rel's key may hold an object the cache does not
// know of (see Drainer.inDoubt): set when a write's outcome is unknown,
// cleared once a write is known to have landed or the key was deleted.
func (d *Drainer) setDoubt(rel string, doubt bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if doubt {
		d.inDoubt[rel] = true
	} else {
		delete(d.inDoubt, rel)
	}
}

// removeFile forgets a path that no longer exists, deleting its object
// with --delete. Without it the object stays in the bucket, as with aws s3
// sync; the cache entry goes, since WORKDIR no longer has that file.
func (d *Drainer) removeFile(ctx context.Context, rel string, st *step) error {
	e, ok, err := d.c.Get(rel)
	if err != nil {
		return err
	}
	// The local file is gone: a conflict on it is over (the delete
	// below may find a new one).
	d.synced(rel)
	if !ok && !st.doubt {
		return nil
	}
	if d.opts.Delete && !d.opts.Filters.Excluded(rel) {
		items := []remote.DeleteItem{{Key: d.key(keyOf(rel, e)), ETag: e.ETag}}
		paths := []string{rel}
		if !ok {
			items, paths = nil, nil
			for _, k := range d.doubtKeys(rel) {
				etag, own, err := d.ownObject(ctx, rel, k)
				if err != nil {
					return err
				}
				if own {
					items, paths = append(items, remote.DeleteItem{Key: k, ETag: etag}), append(paths, rel)
				}
			}
		}
		if err := d.deleteItems(ctx, paths, items); err != nil {
			return err
		}
		d.setDoubt(rel, false)
	}
	if !ok {
		return nil
	}
	return d.cacheDelete(st, rel)
}
