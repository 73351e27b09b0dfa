package mirror

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/s3sync/s3sync/cache"
	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/syncer"
)

// Other writers. Another machine may write the same prefix. Every write of
// the mount is conditional on the version this side last saw (the cache
// entry's ETag: If-Match; no entry: If-None-Match: *), and so is every
// delete where the store honours it. When the store refuses one (412), the
// key holds a version this side never saw: unless it is this side's own
// (an earlier write whose answer was lost), both versions are kept — the
// other writer's under the name, this side's as a conflict copy beside it
// (ConflictName) — and the conflict is recorded for status.

// Conflicts keeps the open conflicts (cache.Cache implements it).
type Conflicts interface {
	GetConflict(path string) (cache.Conflict, bool, error)
	PutConflict(path string, cf cache.Conflict) error
	CloseConflict(path string) (bool, error)
}

// expect is the condition for writing a key this side last saw as e
// (ok: there was an entry).
func expect(e cache.Entry, ok bool) syncer.Cond {
	if ok && e.ETag != "" {
		return syncer.Cond{IfMatch: e.ETag}
	}
	if ok {
		return syncer.Cond{} // an entry without an ETag (made before ETags were kept)
	}
	return syncer.Cond{IfNoneMatch: true}
}

// ConflictName is where this side's version of rel goes when another
// writer's holds rel: NAME.conflict-HOST-YYYYMMDD-HHMMSS.EXT (UTC), close to
// Syncthing's naming, the extension kept last so the copy opens with the
// same application. A name without extension (or a dotfile) gets none:
// "Makefile.conflict-laptop-20261126-193000".
func ConflictName(rel, host string, t time.Time) string {
	dir, base := path.Split(rel)
	name, ext := base, ""
	if i := strings.LastIndexByte(base, '.'); i > 0 {
		name, ext = base[:i], base[i:]
	}
	return dir + name + ".conflict-" + host + "-" + t.UTC().Format("20060102-150405") + ext
}

var conflictRe = regexp.MustCompile(`\.conflict-[A-Za-z0-9-]+-\d{8}-\d{6}(\.[^./]*)?$`)

// IsConflictCopy reports whether rel is named as ConflictName names.
func IsConflictCopy(rel string) bool { return conflictRe.MatchString(rel) }

// ConflictHost is this machine's short host name, as conflict copies name
// it: letters, digits and "-" only ("unknown" when there is none).
func ConflictHost() string {
	h, _ := os.Hostname()
	h, _, _ = strings.Cut(h, ".")
	h = strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, h)
	if h = strings.Trim(h, "-"); h == "" {
		return "unknown"
	}
	return h
}

// sentVersion is what an upload whose answer was lost sent: if the key
// later holds an object of this size and x-amz-meta-mtime, it is that
// upload's, not another writer's.
type sentVersion struct {
	size  int64
	mtime time.Time
}

// conflictState is the drain's memory for conflicts.
type conflictState struct {
	host string
	now  func() time.Time
	mu   sync.Mutex
	sent map[string][]sentVersion
}

func newConflictState() *conflictState {
	return &conflictState{host: ConflictHost(), now: time.Now, sent: map[string][]sentVersion{}}
}

// noteSent remembers a write to rel whose outcome is unknown.
func (s *conflictState) noteSent(rel string, size int64, mtime time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := append(s.sent[rel], sentVersion{size, mtime})
	if len(v) > 8 {
		v = v[len(v)-8:]
	}
	s.sent[rel] = v
}

func (s *conflictState) forget(rel string) {
	s.mu.Lock()
	delete(s.sent, rel)
	s.mu.Unlock()
}

func (s *conflictState) wasSent(rel string, info remote.Info) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.sent[rel] {
		if v.size == info.Size && !info.Mtime.IsZero() && v.mtime.Equal(info.Mtime) {
			return true
		}
	}
	return false
}

// errKeptBoth ends a record whose upload was refused for another writer's
// version: this side's went to the conflict copy, the name keeps theirs.
var errKeptBoth = errors.New("conflict: both versions kept")

// uploadChecked uploads the file at full to rel's key on condition c and,
// when the store refuses the condition, finds out why: the key holds this
// side's own earlier write (its answer lost) or this very content (then
// the upload goes on against that version), or nothing (the other writer
// deleted it: uploaded as new), or another writer's version (both kept:
// errKeptBoth).
func (d *Drainer) uploadChecked(ctx context.Context, rel, full, key string, c syncer.Cond) (syncer.UploadResult, error) {
	c.Writer = d.opts.WriterID
	for range 3 {
		res, err := syncer.UploadFileIf(ctx, d.r, d.local(rel, full), d.loc.Bucket, key, d.opts.StorageClass, &syncer.Resume{Store: d.c, Rel: rel}, c)
		if !c.Refused(err) {
			return res, err
		}
		if res.Size != 0 || !res.Mtime.IsZero() {
			// The SDK's own retry of a request that landed is refused
			// for it.
			d.cf.noteSent(rel, res.Size, res.Mtime)
		}
		next, theirs, err := d.reexamine(ctx, rel, key, cache.KindFile, func(info remote.Info) bool { return d.holdsFile(ctx, rel, info) })
		if err != nil {
			return syncer.UploadResult{}, err
		}
		if theirs != nil {
			return syncer.UploadResult{}, d.keepBoth(ctx, rel, *theirs, func(ctx context.Context, copyKey string, c syncer.Cond) (syncer.UploadResult, error) {
				return syncer.UploadFileIf(ctx, d.r, d.local(rel, full), d.loc.Bucket, copyKey, d.opts.StorageClass, nil, c)
			}, "")
		}
		c = next
		c.Writer = d.opts.WriterID
	}
	return syncer.UploadResult{}, fmt.Errorf("upload of %s refused again and again: the key keeps changing", rel)
}

// reexamine HEADs key after a refused write of rel: absent → write it as
// new; this side's own (ours reports it, or an in-doubt write) → write
// against that version; anything else → theirs.
func (d *Drainer) reexamine(ctx context.Context, rel, key string, kind cache.Kind, ours func(remote.Info) bool) (next syncer.Cond, theirs *remote.Info, err error) {
	info, err := d.r.Head(ctx, d.loc.Bucket, key)
	if errors.Is(err, remote.ErrNotFound) {
		return syncer.Cond{IfNoneMatch: true}, nil, nil
	}
	if err != nil {
		return syncer.Cond{}, nil, err
	}
	mine := d.opts.WriterID != "" && info.Metadata[remote.MetaWriter] == d.opts.WriterID
	if mine || d.cf.wasSent(rel, info) || ours(info) {
		d.opts.Log.Debug("the bucket holds this side's own write; going on from it", "path", rel)
		// Known now, whatever comes next: a removal of the file must
		// delete this object.
		e := cache.Entry{Kind: kind, Size: info.Size, Mtime: info.Mtime, ETag: info.ETag, StorageClass: d.opts.StorageClass, Synced: time.Now()}
		if err := d.c.Put(rel, e); err != nil {
			return syncer.Cond{}, nil, err
		}
		return syncer.Cond{IfMatch: info.ETag}, nil, nil
	}
	return syncer.Cond{}, &info, nil
}

// holdsFile is syncer.HoldsFile for rel below WORKDIR.
func (d *Drainer) holdsFile(ctx context.Context, rel string, info remote.Info) bool {
	root, err := d.root()
	return err == nil && syncer.HoldsFile(ctx, root, rel, info)
}

// keepBoth stores this side's version of rel as its conflict copy (the
// one already open for rel, refreshed, or a new one) with put, records the
// conflict, and logs it when it is new. theirs is what the key holds.
// suffix is added to the copy's key (LinkSuffix for a link).
func (d *Drainer) keepBoth(ctx context.Context, rel string, theirs remote.Info, put func(ctx context.Context, copyKey string, c syncer.Cond) (syncer.UploadResult, error), suffix string) error {
	old, open, err := d.c.GetConflict(rel)
	if err != nil {
		return err
	}
	now := d.cf.now()
	copyRel, c := ConflictName(rel, d.cf.host, now), syncer.Cond{IfNoneMatch: true}
	if open && old.Kind == cache.ConflictChanged && old.Copy != "" {
		copyRel, c = old.Copy, syncer.Cond{IfMatch: old.CopyETag}
	}
	c.Writer = d.opts.WriterID
	res, err := put(ctx, d.key(copyRel+suffix), c)
	if c.IfMatch != "" && c.Refused(err) {
		// Someone changed or removed the copy: a new one.
		copyRel = ConflictName(rel, d.cf.host, now)
		res, err = put(ctx, d.key(copyRel+suffix), syncer.Cond{IfNoneMatch: true, Writer: d.opts.WriterID})
	}
	if err != nil {
		return err
	}
	cf := cache.Conflict{Kind: cache.ConflictChanged, Copy: copyRel, CopyETag: res.ETag, RemoteETag: theirs.ETag, Since: now, Updated: now}
	fresh := !open || old.Kind != cache.ConflictChanged || old.Copy != copyRel
	if !fresh {
		cf.Since = old.Since
	}
	if err := d.c.PutConflict(rel, cf); err != nil {
		return err
	}
	d.cf.forget(rel)
	d.setDoubt(rel, false)
	if fresh {
		d.opts.Log.Warn("conflict: another writer changed this file in the bucket; both versions kept, this side's as the conflict copy (s3sync status lists it)",
			"path", rel, "copy", copyRel+suffix)
	}
	return errKeptBoth
}

// expectFile sets o's condition for writing rel's file key: the ETag its
// cache entry recorded, or absent.
func (d *Drainer) expectFile(rel string, o *remote.PutOptions) error {
	e, ok, err := d.c.Get(rel)
	if err != nil {
		return err
	}
	c := expect(e, ok && e.Kind == cache.KindFile)
	c.Writer = d.opts.WriterID
	c.Set(o)
	return nil
}

// synced is called once the bucket holds this side's version of rel (or
// this side's removal of it): a conflict on rel is over.
func (d *Drainer) synced(rel string) {
	d.cf.forget(rel)
	if closed, err := d.c.CloseConflict(rel); err != nil {
		d.opts.Log.Error("cache", "path", rel, "err", err)
	} else if closed {
		d.opts.Log.Info("conflict resolved: the bucket holds this side's version again", "path", rel)
	}
}

// deleteOwn deletes key after its conditional delete was refused if it
// holds this side's own write (one whose answer was lost), and reports
// whether it did (or the key is gone).
func (d *Drainer) deleteOwn(ctx context.Context, rel, key string, single bool) (bool, error) {
	info, err := d.r.Head(ctx, d.loc.Bucket, key)
	if errors.Is(err, remote.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	mine := d.opts.WriterID != "" && info.Metadata[remote.MetaWriter] == d.opts.WriterID
	if !mine && !d.cf.wasSent(rel, info) {
		return false, nil
	}
	failed, err := d.r.DeleteIf(ctx, d.loc.Bucket, []remote.DeleteItem{{Key: key, ETag: info.ETag}}, single)
	if err != nil {
		return false, err
	}
	if len(failed) > 0 {
		return false, failed[0].Err
	}
	return true, nil
}

// ownObject says whether key (rel's) holds a write of this side's that the
// cache does not know of (an upload whose answer was lost), and its ETag:
// only such an object may be deleted on a removal the cache cannot vouch
// for. A key that is gone is not this side's to delete.
func (d *Drainer) ownObject(ctx context.Context, rel, key string) (string, bool, error) {
	info, err := d.r.Head(ctx, d.loc.Bucket, key)
	if errors.Is(err, remote.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	mine := d.opts.WriterID != "" && info.Metadata[remote.MetaWriter] == d.opts.WriterID
	return info.ETag, mine || d.cf.wasSent(rel, info), nil
}

// deleteItems deletes keys (paths are their WORKDIR paths, for conflicts)
// on the condition that each still holds the ETag given with it, where the
// store honours that (DrainOptions.Conditions). A key whose condition
// failed is left in place: it holds another writer's version; the
// conflict is recorded (deleted here, changed there) and logged.
func (d *Drainer) deleteItems(ctx context.Context, paths []string, items []remote.DeleteItem) error {
	if len(items) == 0 {
		return nil
	}
	cd := d.opts.Conditions
	// Not probed: one conditional DeleteObject each, which more stores
	// honour than the batch's ETags.
	single := cd == nil || cd.Delete && !cd.BatchDelete
	if cd != nil && !cd.Delete && !cd.BatchDelete {
		for i := range items {
			items[i].ETag = "" // ignored by the store anyway
		}
	}
	failed, err := d.r.DeleteIf(ctx, d.loc.Bucket, items, single)
	if err != nil {
		return err
	}
	var firstErr error
	for _, f := range failed {
		if !errors.Is(f.Err, remote.ErrConflict) {
			if firstErr == nil {
				firstErr = f.Err
			}
			continue
		}
		rel := ""
		for i, it := range items {
			if it.Key == f.Key {
				rel = paths[i]
			}
		}
		if own, err := d.deleteOwn(ctx, rel, f.Key, single); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		} else if own {
			continue
		}
		now := d.cf.now()
		if err := d.c.PutConflict(rel, cache.Conflict{Kind: cache.ConflictDeleted, Since: now, Updated: now}); err != nil {
			return err
		}
		d.opts.Log.Warn("conflict: not deleted from the bucket, another writer changed it since this side last saw it (s3sync status lists it)", "path", rel, "key", f.Key)
	}
	return firstErr
}
