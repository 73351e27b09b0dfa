package syncer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/s3sync/s3sync/internal/confine"
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
