package mirror

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/s3sync/s3sync/cache"
	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/syncer"
)

// maxMetaCopy is the largest object whose metadata is replaced by one
// server-side copy (S3's CopyObject limit); a larger one is sent again,
// which keeps its full-object checksum, rather than copied in parts.
const maxMetaCopy = 5 << 30

// syncMeta brings the object's mode and owner metadata up to date when the
// content is what the cache recorded: a server-side copy of the object onto
// itself with replaced metadata, conditional on the cached ETag, instead of
// a second upload. It reports done=false, without error, when the caller
// must upload instead: the object is gone or holds something else, or is
// too large for one copy.
func (d *Drainer) syncMeta(ctx context.Context, rel, key string, e cache.Entry, info os.FileInfo, st *step) (done bool, err error) {
	p := syncer.PosixOf(info)
	if !p.HasMode {
		return true, nil // no stat_t: nothing to store
	}
	if e.ETag == "" || e.Size > maxMetaCopy {
		return false, nil
	}
	etag, err := d.r.Copy(ctx, d.loc.Bucket, key, d.loc.Bucket, key, e.Size,
		remote.PutOptions{StorageClass: d.opts.StorageClass, SourceETag: e.ETag, Mtime: e.Mtime, Posix: p, Writer: d.opts.WriterID})
	if errors.Is(err, remote.ErrNotFound) || errors.Is(err, remote.ErrChanged) {
		return false, nil
	}
	if err != nil {
		if syncer.MayHaveLanded(err) {
			d.setDoubt(rel, true)
		}
		return true, err
	}
	st.release()
	d.setDoubt(rel, false)
	e.ETag, e.Synced = etag, time.Now()
	return true, d.cachePut(st, rel, withPosix(e, p))
}

// withPosix is e recording that its object's metadata holds p.
func withPosix(e cache.Entry, p remote.Posix) cache.Entry {
	if !p.HasMode || !p.HasUID || !p.HasGID {
		e.Meta, e.Mode, e.UID, e.GID = false, 0, 0, 0
		return e
	}
	e.Meta, e.Mode, e.UID, e.GID = true, p.Mode&0o7777, p.UID, p.GID
	return e
}
