package mirror

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/s3sync/s3sync/cache"
	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/syncer"
)

// Symlinks in the mount's drain: each is stored as rclone's NAME.rclonelink
// object (syncer.UploadLinkIf), never followed; a path that changes kind
// takes its old object away.

// keyOf is the object key suffix that stores the cache entry at p: a
// link's p+".rclonelink"; a file's p (and a directory marker's, whose
// cache key already ends in "/").
func keyOf(p string, e cache.Entry) string {
	if e.Kind == cache.KindLink {
		return p + syncer.LinkSuffix
	}
	return p
}

// syncLink makes the remote hold the symlink at rel as its .rclonelink
// object. The mount never follows a link: a link to a folder outside
// WORKDIR stores only where it points.
func (d *Drainer) syncLink(ctx context.Context, rel, full string, st *step) error {
	key := d.key(objectRel(rel, cache.KindLink))
	if len(key) > syncer.MaxKeyLen {
		return permanent("key is %d bytes, over S3's limit of %d; rename the link", len(key), syncer.MaxKeyLen)
	}
	if st, err := os.Lstat(full + syncer.LinkSuffix); err == nil && st.Mode()&fs.ModeSymlink == 0 {
		return permanent("symlink %s not stored: %s%s is a file here, and both would be the object %s; rename one", rel, rel, syncer.LinkSuffix, key)
	}
	size, mtime, err := syncer.StatLink(d.local(rel, full))
	if errors.Is(err, fs.ErrNotExist) {
		return d.removeFile(ctx, rel, st)
	}
	if err != nil {
		return err // replaced since: retried, and then seen as what it is
	}
	e, ok, err := d.c.Get(rel)
	if err != nil {
		return err
	}
	if ok && e.Kind == cache.KindLink && e.Size == size && e.Mtime.Equal(mtime) {
		return nil
	}
	if ok && e.Kind != cache.KindLink {
		if err := d.dropKind(ctx, rel, e); err != nil {
			return err
		}
		ok = false
	} else if !ok && st.doubt {
		// A file's upload may have landed unrecorded before the path
		// became this link (a crash, a lost answer): its key would
		// stay for good.
		if err := d.deleteUnrecorded(ctx, rel, rel); err != nil {
			return err
		}
	}
	if !ok {
		// Durable before the PUT, as a marker's (see settleKey).
		if err := d.c.PutIntent(objectRel(rel, cache.KindLink)); err != nil {
			return err
		}
	}
	res, err := d.uploadLinkChecked(ctx, rel, full, key, expect(e, ok))
	if errors.Is(err, errKeptBoth) {
		// The key holds another writer's link, ours went beside it.
		st.release()
		return d.c.DeleteIntent(objectRel(rel, cache.KindLink))
	}
	if res.ETag != "" {
		t := time.Now()
		d.mu.Lock()
		d.lastUpload = t
		d.mu.Unlock()
		d.setDoubt(rel, false)
		d.synced(rel)
		st.release()
		return d.cachePut(st, rel, cache.Entry{Kind: cache.KindLink, Size: res.Size, Mtime: res.Mtime,
			ETag: res.ETag, StorageClass: d.opts.StorageClass, Synced: t})
	}
	if res.InDoubt {
		d.setDoubt(rel, true)
		d.cf.noteSent(rel, res.Size, res.Mtime)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return d.removeFile(ctx, rel, st)
	}
	return err
}

// uploadLinkChecked is uploadChecked for a link: its conflict copy is a
// link too (NAME.conflict-HOST-TIME.rclonelink).
func (d *Drainer) uploadLinkChecked(ctx context.Context, rel, full, key string, c syncer.Cond) (syncer.UploadResult, error) {
	for range 3 {
		c.Writer = d.opts.WriterID
		res, err := syncer.UploadLinkIf(ctx, d.r, d.local(rel, full), d.loc.Bucket, key, d.opts.StorageClass, c)
		if !c.Refused(err) {
			return res, err
		}
		if res.Size != 0 || !res.Mtime.IsZero() {
			d.cf.noteSent(rel, res.Size, res.Mtime)
		}
		next, theirs, err := d.reexamine(ctx, rel, key, cache.KindLink, func(info remote.Info) bool {
			return syncer.HoldsLink(ctx, d.local(rel, full), info)
		})
		if err != nil {
			return syncer.UploadResult{}, err
		}
		if theirs != nil {
			return syncer.UploadResult{}, d.keepBoth(ctx, rel, *theirs, func(ctx context.Context, copyKey string, c syncer.Cond) (syncer.UploadResult, error) {
				return syncer.UploadLinkIf(ctx, d.r, d.local(rel, full), d.loc.Bucket, copyKey, d.opts.StorageClass, c)
			}, syncer.LinkSuffix)
		}
		c = next
	}
	return syncer.UploadResult{}, fmt.Errorf("upload of link %s refused again and again: the key keeps changing", rel)
}

// dropKind forgets the object rel had as another kind (a file that is now
// a link, a link that is now a file): with --delete the object goes, as
// every removal does. The entry goes at once, not with the record's end,
// so the upload that follows compares against nothing.
func (d *Drainer) dropKind(ctx context.Context, rel string, e cache.Entry) error {
	if d.opts.Delete && !d.opts.Filters.Excluded(rel) {
		if err := d.deleteItems(ctx, []string{rel}, []remote.DeleteItem{{Key: d.key(keyOf(rel, e)), ETag: e.ETag}}); err != nil {
			return err
		}
	}
	return d.c.Delete(rel)
}

// sharedKey refuses a file "x.rclonelink" next to a symlink "x": both
// would be stored as that object, and one would overwrite (and a removal
// delete) the other's.
func (d *Drainer) sharedKey(rel, full string) error {
	lrel, ok := strings.CutSuffix(rel, syncer.LinkSuffix)
	if !ok || lrel == "" || strings.HasSuffix(lrel, "/") {
		return nil
	}
	if st, err := os.Lstat(strings.TrimSuffix(full, syncer.LinkSuffix)); err == nil && st.Mode()&fs.ModeSymlink != 0 {
		return permanent("%s not stored: %s is a symlink here, stored as the object %s; rename one", rel, lrel, d.key(rel))
	}
	return nil
}

// dropLink forgets the link that rel was, now that it is a file.
func (d *Drainer) dropLink(ctx context.Context, rel string) error {
	e, ok, err := d.c.Get(rel)
	if err != nil || !ok || e.Kind != cache.KindLink {
		return err
	}
	return d.dropKind(ctx, rel, e)
}

// doubtKeys are the keys a removal of rel deletes when an upload may have
// landed that the cache does not know of: it may have been the file's or
// the link's, unless rel+".rclonelink" is a file here with its own object.
func (d *Drainer) doubtKeys(rel string) []string {
	keys := []string{d.key(rel)}
	if syncer.IsMarker(rel) {
		return keys
	}
	if _, err := os.Lstat(filepath.Join(d.workdir, filepath.FromSlash(rel)) + syncer.LinkSuffix); errors.Is(err, fs.ErrNotExist) {
		keys = append(keys, d.key(rel+syncer.LinkSuffix))
	}
	return keys
}
