package mirror

import (
	"context"
	"errors"
	"path"
	"strings"
	"time"

	"github.com/s3sync/s3sync/cache"
	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/syncer"
)

// Pull, one cache entry whose object the bucket no longer holds: the
// local path goes, unless it changed here since.

// removed deals with a cache entry whose object the listing did not hold:
// deleted in the bucket by another writer.
func (p *Puller) removed(ctx context.Context, rel string, start time.Time, dirs map[string]bool, st *PullStats) error {
	d := p.d
	release, claimed := d.claim(rel)
	if !claimed {
		st.Deferred++
		return nil
	}
	defer release()
	e, ok, err := d.c.Get(rel)
	if err != nil || !ok || !e.Synced.Before(start) {
		return err
	}
	// The listing is no snapshot: make sure.
	if _, err := d.r.Head(ctx, d.loc.Bucket, d.key(objectRel(rel, e.Kind))); !errors.Is(err, remote.ErrNotFound) {
		return err
	}
	root, err := d.root()
	if err != nil {
		return err
	}
	full := strings.TrimSuffix(rel, "/")
	if p.isOpen(rel) {
		st.Deferred++
		return nil
	}
	info, err := root.Lstat(full)
	if notExist(err) {
		if has, err := p.pending(rel); has || err != nil {
			return err // the drain is on it
		}
		return d.c.Delete(rel)
	}
	if err != nil {
		return err
	}
	same, err := p.unchanged(rel, e, info)
	if err != nil {
		return err
	}
	if !same {
		// Changed here since: kept, and sent again as a new file.
		if e.Kind != cache.KindDir {
			if err := d.c.Delete(rel); err != nil {
				return err
			}
			p.j.Changed(rel)
			d.opts.Log.Info("pull: deleted in the bucket but changed here; kept, and sent again", "path", rel)
		}
		return nil
	}
	if e.Kind == cache.KindDir {
		if empty, _ := emptyDirIn(root, full); !empty || dirs[syncer.MarkerDir(rel)] {
			return d.c.Delete(rel) // files hold it now
		}
	}
	if err := p.stillUnchanged(rel, full, e); err != nil {
		if later(err) {
			st.Deferred++
			return nil
		}
		return err
	}
	if err := root.Remove(full); err != nil {
		return err
	}
	if err := d.c.Delete(rel); err != nil {
		return err
	}
	d.synced(rel)
	st.Removed++
	p.invalidate(p.removeEmptyParents(strings.TrimSuffix(rel, "/"), dirs))
	return nil
}

// removeEmptyParents removes the directories above rel that the removal
// left empty, up to one the bucket still has keys in (or a marker for), or
// one with a pending change here; it returns the topmost path removed.
func (p *Puller) removeEmptyParents(rel string, dirs map[string]bool) string {
	top := rel
	for dir := path.Dir(rel); dir != "." && !dirs[dir]; dir = path.Dir(dir) {
		if _, ok, err := p.d.c.Get(dir + "/"); ok || err != nil {
			break
		}
		if has, err := p.pending(dir); has || err != nil || p.isOpen(dir) {
			break
		}
		if root, err := p.d.root(); err != nil || root.RemoveDir(dir) != nil {
			break // not empty
		}
		top = dir
	}
	return top
}
