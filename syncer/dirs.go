package syncer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/s3sync/s3sync/internal/confine"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/s3sync/s3sync/cache"
	"github.com/s3sync/s3sync/remote"
)

// Empty directories. S3 has no directories, so a directory with nothing in
// it would vanish from a restore: a git repository whose refs/heads is
// empty after `git gc`, a Maildir's tmp/. Such a directory is stored as a
// zero-byte marker object "dir/" (as rclone's --create-empty-src-dirs and
// s3fs do), and a marker in a bucket, ours or made by a console, is made a
// directory by downloads. A marker of a directory that later got files may
// stay: its files bring the directory back anyway.

// IsMarker reports whether rel (a key suffix, a cache key or a journal
// path) names a directory marker: "dir/".
func IsMarker(rel string) bool { return strings.HasSuffix(rel, "/") }

// MarkerDir is the directory a marker stands for: "a/b/" → "a/b".
func MarkerDir(marker string) string { return strings.TrimSuffix(marker, "/") }

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
			if !strings.HasPrefix(e.Name(), TempPrefix) && !cache.Special(e.Type()) {
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

// isLocalDir reports whether p is a directory (following symlinks, as the
// walks that would have yielded its files do).
func isLocalDir(p string) bool {
	info, err := os.Stat(p)
	return err == nil && info.IsDir()
}

// putMarker stores the zero-byte marker key, with the directory's mtime
// as x-amz-meta-mtime and its mode and owner as rclone's metadata keys
// ("40700": st_mode with the directory type bits, as rclone's local backend
// reports a directory's), and returns its ETag.
func putMarker(ctx context.Context, r Remote, bucket, key string, mtime time.Time, storageClass string, p remote.Posix) (string, error) {
	up, err := r.Upload(ctx, bucket, key, bytes.NewReader(nil), 0, remote.PutOptions{StorageClass: storageClass, Mtime: mtime, Posix: p})
	return up.ETag, err
}

// The mount's drain: a marker exists for each directory of WORKDIR that
// has nothing in it. A directory's own record (mkdir, chmod, a start-up
// scan) and the removal of its last entry make it; rmdir removes it with
// --delete, as removals of files do.

// syncMarker brings one marker ("dir/", a start-up scan's record) up to
// date: made when the directory is there and empty, forgotten (and deleted
// with --delete) when it is gone or no longer a directory.
func (d *Drainer) syncMarker(ctx context.Context, marker string, st *step) error {
	dir := MarkerDir(marker)
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
	p := PosixOf(info)
	e, known, err := d.c.Get(marker)
	if err != nil {
		return err
	} else if known && (e.Meta && !e.MetaDiffers(info) || !p.HasMode) {
		return nil
	}
	key := d.key(marker)
	if len(key) > MaxKeyLen {
		return permanent("the marker key of empty directory %s is %d bytes, over S3's limit of %d; rename it", dir, len(key), MaxKeyLen)
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
		if MayHaveLanded(err) {
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
	info, err := lstatBeneath(d.workdir, MarkerDir(marker))
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

// Reconcile: the local walk yields an empty directory as "dir/", the
// listing a marker as "dir/", and the merge pairs them. A marker is sent
// once; a directory and its marker are the same whatever their times say,
// and a marker whose directory exists with files in it is kept.

// marker handles a marker that is on the source side only: upload puts it,
// download makes the directory, a copy copies it.
func (rc *run) marker(s entry) {
	switch rc.dir {
	case Upload:
		rc.uploadMarker(s)
	case Download:
		rc.downloadMarker(s)
	default:
		rc.copyMarker(s)
	}
}

// copyMarker copies a marker server-side, as the object it is. Some stores
// (Versity Gateway) refuse to copy one ("DirectoryObjectContainsData"): an
// empty marker is then put anew with the source's mtime, mode and owner.
func (rc *run) copyMarker(s entry) {
	srcShown, dstShown := rc.src.Show(s.rel), rc.dst.Show(s.rel)
	key := rc.dst.S3.Prefix + s.rel
	if len(key) > MaxKeyLen {
		rc.skip(srcShown, fmt.Errorf("key is %d bytes, over S3's limit of %d", len(key), MaxKeyLen))
		return
	}
	rc.opts.Report(Event{Kind: EventPlanned, Op: "copy", Src: srcShown, Dst: dstShown, Size: s.size})
	if rc.opts.DryRun {
		rc.opts.Report(Event{Kind: EventDone, Op: "copy", Src: srcShown, Dst: dstShown, Size: s.size, DryRun: true})
		return
	}
	rc.pool.submit(rc.ctx, func() {
		srcKey := rc.src.S3.Prefix + s.rel
		_, err := rc.r.Copy(rc.ctx, rc.src.S3.Bucket, srcKey, rc.dst.S3.Bucket, key, s.size,
			remote.PutOptions{StorageClass: rc.opts.StorageClass, SourceETag: s.etag})
		if err != nil && s.size == 0 && !remote.IsGlobal(err) && !errors.Is(err, remote.ErrNotFound) &&
			!errors.Is(err, remote.ErrChanged) && !errors.Is(err, context.Canceled) {
			var info remote.Info
			if info, err = rc.r.Head(rc.ctx, rc.src.S3.Bucket, srcKey); err == nil {
				_, err = putMarker(rc.ctx, rc.r, rc.dst.S3.Bucket, key, info.Mtime, rc.opts.StorageClass, info.Posix)
			}
		}
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				rc.c.failed.Add(1)
				rc.opts.Report(Event{Kind: EventFailed, Op: "copy", Src: srcShown, Dst: dstShown, Err: err})
			}
			return
		}
		rc.c.copied.Add(1)
		rc.c.bytes.Add(s.size)
		rc.opts.Report(Event{Kind: EventDone, Op: "copy", Src: srcShown, Dst: dstShown, Size: s.size})
	})
}

func (rc *run) uploadMarker(s entry) {
	srcShown, dstShown := rc.src.Show(s.rel), rc.dst.Show(s.rel)
	key := rc.dst.S3.Prefix + s.rel
	if len(key) > MaxKeyLen {
		rc.skip(srcShown, fmt.Errorf("the marker key of this empty directory is %d bytes, over S3's limit of %d", len(key), MaxKeyLen))
		return
	}
	rc.opts.Report(Event{Kind: EventPlanned, Op: "upload", Src: srcShown, Dst: dstShown})
	if rc.opts.DryRun {
		rc.opts.Report(Event{Kind: EventDone, Op: "upload", Src: srcShown, Dst: dstShown, DryRun: true})
		return
	}
	rc.pool.submit(rc.ctx, func() {
		info, err := os.Stat(s.path)
		if err != nil {
			// Removed since the walk, or unreadable: as for a file.
			rc.skip(srcShown, err)
			return
		}
		_, err = putMarker(rc.ctx, rc.r, rc.dst.S3.Bucket, key, s.time, rc.opts.StorageClass, PosixOf(info))
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				rc.c.failed.Add(1)
				rc.opts.Report(Event{Kind: EventFailed, Op: "upload", Src: srcShown, Dst: dstShown, Err: err})
			}
			return
		}
		rc.c.uploaded.Add(1)
		rc.opts.Report(Event{Kind: EventDone, Op: "upload", Src: srcShown, Dst: dstShown})
	})
}

// downloadMarker makes the directory of a marker that the destination walk
// did not yield (it yields only empty directories): one that exists with
// entries is left alone, silently, so a re-run prints nothing.
func (rc *run) downloadMarker(s entry) {
	srcShown, dstShown := rc.src.Show(s.rel), rc.dst.Show(s.rel)
	rel := MarkerDir(s.rel)
	p, err := LocalPath(rc.dst.Local, rel)
	if err == nil {
		err = CheckKeyName(rel)
	}
	if err != nil {
		rc.skip(srcShown, err)
		return
	}
	if parent := rc.objectParent(s.rel); parent != "" {
		rc.skip(srcShown, fmt.Errorf("the bucket also holds %s as a file, and a local file cannot also be a folder", rc.src.Show(parent)))
		return
	}
	info, err := os.Lstat(p)
	if err == nil && info.IsDir() || err == nil && info.Mode()&fs.ModeSymlink != 0 && !rc.opts.Links && isLocalDir(p) {
		return
	}
	if err == nil && !rc.opts.DryRun {
		rc.skip(srcShown, fmt.Errorf("%s is a file here, but the bucket holds a folder of that name", p))
		return
	}
	if s.size > 0 {
		// Other stores than ours accept content under a key ending in
		// "/"; no tool can read it back as a file. Not a failure: the
		// folder is what the key means.
		rc.opts.Report(Event{Kind: EventSkipped, Src: srcShown,
			Err: fmt.Errorf("its %d bytes are not written: a key ending in \"/\" names a folder (the folder is made)", s.size)})
	}
	rc.opts.Report(Event{Kind: EventPlanned, Op: "download", Src: srcShown, Dst: dstShown})
	if rc.opts.DryRun {
		rc.opts.Report(Event{Kind: EventDone, Op: "download", Src: srcShown, Dst: dstShown, DryRun: true})
		return
	}
	// Made here, in key order, as local deletes are: the folder exists
	// before any key below it is looked at.
	if err := rc.root.MkdirAll(rel, 0o755); err != nil {
		rc.c.failed.Add(1)
		rc.opts.Report(Event{Kind: EventFailed, Op: "download", Src: srcShown, Dst: dstShown, Err: ParentErr(rc.root, rel, err)})
		return
	}
	rc.pool.submit(rc.ctx, func() {
		// The listing has no x-amz-meta-mtime; without it the folder
		// keeps the time it was made, which is no failure.
		mt := s.time
		if info, err := rc.r.Head(rc.ctx, rc.src.S3.Bucket, rc.src.S3.Prefix+s.rel); err == nil {
			if !info.Mtime.IsZero() {
				mt = info.Mtime
			}
			restore := rc.opts.Restore
			restore.Warn = func(err error) {
				rc.opts.Report(Event{Kind: EventWarning, Op: "download", Src: srcShown, Dst: dstShown, Err: err})
			}
			if err := RestoreDir(rc.root, rel, info, restore); err != nil {
				rc.c.failed.Add(1)
				rc.opts.Report(Event{Kind: EventFailed, Op: "download", Src: srcShown, Dst: dstShown, Err: err})
				return
			}
		}
		rc.root.Chtimes(rel, mt, mt)
		rc.c.downloaded.Add(1)
		rc.opts.Report(Event{Kind: EventDone, Op: "download", Src: srcShown, Dst: dstShown})
	})
}

// RestoreDir gives the directory rel below root the mode and owner of its
// marker's metadata (info), as o allows, as a download does a file's.
func RestoreDir(root *confine.Root, rel string, info remote.Info, o Restore) error {
	fd, err := root.OpenDir(rel, false)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), root.Join(rel))
	defer f.Close()
	return o.applyAs(f, info, syscall.S_IFDIR)
}

// keepMarker reports whether --delete must leave a marker that is at the
// destination only. Uploading: the source directory exists, with files
// (the walk yields only empty ones), which bring it back anyway. Downloading,
// where the marker is an empty local directory: the bucket holds keys below
// it (next is the source's next key, and keys below "dir/" follow it).
func (rc *run) keepMarker(d entry, next string) bool {
	switch rc.dir {
	case Upload:
		return isLocalDir(filepath.Join(rc.src.Local, filepath.FromSlash(MarkerDir(d.rel))))
	case Download:
		return strings.HasPrefix(next, d.rel)
	}
	return false
}

// emptyParents says how many parents of the empty local directory marker
// may go with it under --delete if that leaves them empty: up to the first
// one the source holds keys below (downloads into it may still be in
// flight) or filters exclude. Keys below a folder are contiguous in key
// order, so the source keys either side of the merge's position tell.
// So one run gives what the next would.
func (rc *run) emptyParents(marker string) int {
	n := 0
	for dir := path.Dir(MarkerDir(marker)); dir != "." && dir != "/"; dir = path.Dir(dir) {
		m := dir + "/"
		if strings.HasPrefix(rc.prevSrc, m) || strings.HasPrefix(rc.nextSrc, m) || rc.opts.Filters.ExcludedKey(m) {
			break
		}
		n++
	}
	return n
}

// removeEmptyParents removes up to up parents of the deleted marker's
// directory, stopping at the first that is not empty.
func (rc *run) removeEmptyParents(marker string, up int) {
	for dir := path.Dir(MarkerDir(marker)); up > 0 && dir != "." && dir != "/"; dir, up = path.Dir(dir), up-1 {
		if removeEmptyDir(rc.root, dir) != nil {
			return
		}
		rc.c.deleted.Add(1)
		rc.opts.Report(Event{Kind: EventDone, Op: "delete", Src: rc.dst.Show(dir + "/")})
	}
}

// errNotEmpty: a directory got entries since the walk found it empty.
var errNotEmpty = errors.New("directory not empty")

// removeEmptyDir deletes an empty local directory for --delete; one that
// got entries since the walk is left alone (errNotEmpty).
func removeEmptyDir(root *confine.Root, rel string) error {
	err := root.RemoveDir(rel)
	if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
		return errNotEmpty
	}
	return err
}

// quickMarker settles a verify pair that involves a marker: a marker and a
// directory match whatever their sizes and times; a marker on one side
// matches a local directory on the other even with files in it (the walk
// yields only empty ones). It reports false for anything else.
func (v *verifier) quickMarker(j *verifyJob) bool {
	rel := j.s.rel
	if !j.hasS {
		rel = j.d.rel
	}
	if !IsMarker(rel) {
		return false
	}
	if j.hasS && j.hasD {
		j.compared = true
		return true
	}
	other := v.dst
	if !j.hasS {
		other = v.src
	}
	if !other.IsS3 && isLocalDir(filepath.Join(other.Local, filepath.FromSlash(MarkerDir(rel)))) {
		j.compared = true
		return true
	}
	return false
}
