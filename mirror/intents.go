package mirror

import (
	"context"
	"io/fs"
	"strings"

	"github.com/s3sync/s3sync/cache"
	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/syncer"
)

// Intents: a marker's or a link's PUT may land before the cache learns of
// it (a crash, a lost answer); it is settled once the path is known not to
// be that any more.

// settleKey runs once rel is known not to be of kind k (a directory, for
// its marker; a symlink, for its .rclonelink object) any more: a PUT of that
// key which may have landed unrecorded (an intent left by a crash or a lost
// answer, see ensureMarker and syncLink) is deleted if it is this side's
// own and removals are on. Without an intent it is one local lookup and no
// request.
func (d *Drainer) settleKey(ctx context.Context, rel string, k cache.Kind) error {
	key := objectRel(rel, k)
	if intent, err := d.c.HasIntent(key); err != nil || !intent {
		return err
	}
	entry := rel
	if k == cache.KindDir {
		entry = key // a marker's entry is named by its key
	}
	if e, ok, err := d.c.Get(entry); err != nil {
		return err
	} else if ok && e.Kind == k {
		// Known: its removal goes by the entry, as any file's.
		return d.c.DeleteIntent(key)
	}
	if err := d.deleteUnrecorded(ctx, entry, key); err != nil {
		return err
	}
	d.setDoubt(entry, false)
	return d.c.DeleteIntent(key)
}

// deleteUnrecorded deletes key (relative to the prefix), which the cache
// does not know of, if removals are on and it holds this side's own write
// (rel is its path in WORKDIR, for conflicts): one HEAD, and a DELETE if so.
func (d *Drainer) deleteUnrecorded(ctx context.Context, rel, key string) error {
	if !d.opts.Delete || d.opts.Filters.ExcludedKey(key) {
		return nil
	}
	etag, own, err := d.ownObject(ctx, rel, d.key(key))
	if err != nil || !own {
		return err
	}
	return d.deleteItems(ctx, []string{rel}, []remote.DeleteItem{{Key: d.key(key), ETag: etag}})
}

// intentGone reports, for removeGone, whether the path of an intent's key
// (see cache.Cache.PutIntent) is no longer what the key was put for.
func (d *Drainer) intentGone(key string) bool {
	if syncer.IsMarker(key) {
		return d.markerGone(key)
	}
	// The only other intents are links' (syncLink).
	info, err := lstatBeneath(d.workdir, strings.TrimSuffix(key, syncer.LinkSuffix))
	return notExist(err) || err == nil && info.Mode()&fs.ModeSymlink == 0
}
