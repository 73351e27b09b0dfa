package mirror

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/s3sync/s3sync/cache"
	"github.com/s3sync/s3sync/internal/walk"
	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/syncer"
)

// Trees: a directory's record (rmdir, a directory renamed) stands for
// everything below it, which the journal never recorded one by one.

// removeTree handles rmdir or a directory renamed away: every cached path
// below it that is gone from WORKDIR is removed.
func (d *Drainer) removeTree(ctx context.Context, rel string, doubt bool) error {
	if err := d.removeGone(ctx, rel, doubt); err != nil {
		return err
	}
	if err := d.pruneSkipped(); err != nil {
		return err
	}
	// What is at rel now: the removal may have coalesced with what
	// followed it, or with what came before.
	info, statErr := os.Lstat(filepath.Join(d.workdir, filepath.FromSlash(rel)))
	if statErr == nil && !info.IsDir() {
		// A file again (rmdir x; echo > x).
		return d.syncPath(ctx, rel, "", immediate)
	}
	// A file before it was a directory (rm x; mkdir x; rmdir x): that
	// file's object goes too.
	if e, ok, err := d.c.Get(rel); err != nil {
		return err
	} else if ok && e.Kind != cache.KindDir {
		if err := d.removeFile(ctx, rel, immediate); err != nil {
			return err
		}
	}
	if statErr == nil {
		// A directory again (rmdir x; mkdir x): empty, it needs its marker.
		return d.syncMarker(ctx, objectRel(rel, cache.KindDir), immediate)
	}
	return d.markEmptyParent(ctx, rel, immediate)
}

// removeGone removes what the cache holds below the directory rel and
// WORKDIR no longer does (their objects with --delete).
func (d *Drainer) removeGone(ctx context.Context, rel string, doubt bool) error {
	var gone []string
	var goneKeys []string // their object key suffixes
	var goneETags []string
	isGone := func(p string) bool {
		if syncer.IsMarker(p) {
			return d.markerGone(p)
		}
		_, err := lstatBeneath(d.workdir, p)
		return notExist(err)
	}
	err := d.c.Walk(rel+"/", func(p string, e cache.Entry) error {
		if isGone(p) {
			gone = append(gone, p)
			goneKeys = append(goneKeys, keyOf(p, e))
			goneETags = append(goneETags, e.ETag)
		}
		return nil
	})
	if err != nil {
		return err
	}
	d.mu.Lock()
	for p := range d.inDoubt {
		doubt = doubt || syncer.Under(p, rel)
	}
	d.mu.Unlock()
	// Markers below (or of) rel whose PUT may have landed unrecorded
	// before a crash (see ensureMarker).
	var intents []string
	err = d.c.Intents(func(p string) error {
		if p == rel+"/" || syncer.Under(p, rel) {
			intents = append(intents, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	doubt = doubt || len(intents) > 0
	for _, p := range gone {
		d.synced(p) // gone here: a conflict on it is over
	}
	if d.opts.Delete {
		var items []remote.DeleteItem
		var paths []string
		for i, p := range gone {
			if !d.opts.Filters.Excluded(p) {
				items = append(items, remote.DeleteItem{Key: d.key(goneKeys[i]), ETag: goneETags[i]})
				paths = append(paths, p)
			}
		}
		if doubt {
			// Uploads below may have landed unrecorded: ask the bucket.
			known := map[string]bool{}
			for _, it := range items {
				known[it.Key] = true
			}
			var unknown, unknownPaths []string
			err := d.r.List(ctx, d.loc.Bucket, d.key(rel)+"/", func(o remote.Object) error {
				p := o.Key[len(d.loc.Prefix):]
				if lp, ok := strings.CutSuffix(p, syncer.LinkSuffix); ok && !isGone(lp) {
					return nil // a link's object, and the link is still there
				}
				if !known[o.Key] && isGone(p) && !d.opts.Filters.Excluded(p) {
					unknown = append(unknown, o.Key)
					unknownPaths = append(unknownPaths, p)
				}
				return nil
			})
			if err != nil {
				return err
			}
			// Only this side's own writes: an object below the folder
			// that another machine put there is not this removal's.
			for i, k := range unknown {
				etag, own, err := d.ownObject(ctx, unknownPaths[i], k)
				if err != nil {
					return err
				}
				if own {
					items = append(items, remote.DeleteItem{Key: k, ETag: etag})
					paths = append(paths, unknownPaths[i])
				}
			}
		}
		if err := d.deleteItems(ctx, paths, items); err != nil {
			return err
		}
	}
	for _, p := range gone {
		if err := d.c.Delete(p); err != nil {
			return err
		}
	}
	for _, p := range intents {
		if d.intentGone(p) {
			if err := d.c.DeleteIntent(p); err != nil {
				return err
			}
		}
	}
	if d.opts.Delete {
		d.mu.Lock()
		for p := range d.inDoubt {
			if syncer.Under(p, rel) && isGone(p) {
				delete(d.inDoubt, p)
			}
		}
		d.mu.Unlock()
	}
	return nil
}

// syncTree syncs every file below the directory rel; from, when set, is
// the directory's old name, whose objects can be copied server-side.
func (d *Drainer) syncTree(ctx context.Context, rel, from string) error {
	root := filepath.Join(d.workdir, filepath.FromSlash(rel))
	if info, err := lstatBeneath(d.workdir, rel); err == nil && !info.IsDir() {
		// Now a file or a symlink (never walked through): sync what it is.
		return d.syncPath(ctx, rel, "", immediate)
	} else if notExist(err) {
		return d.removeTree(ctx, rel, false)
	}
	if e, ok, err := d.c.Get(rel); err != nil {
		return err
	} else if ok && e.Kind != cache.KindDir {
		// A file or link was here (a directory swapped with it by
		// RENAME_EXCHANGE): its object goes, as when a file becomes a
		// directory.
		if err := d.removeFile(ctx, rel, immediate); err != nil {
			return err
		}
	}
	var firstErr error
	w, err := syncer.WalkLinks(root, func(path string, err error) {
		var nr *walk.SpecialError
		if errors.As(err, &nr) {
			// Skipped, not failed: it must not hold up the rest of the tree.
			if sub, rerr := filepath.Rel(root, path); rerr == nil {
				if serr := d.skipKind(rel+"/"+filepath.ToSlash(sub), walk.Kind(nr.Info.Mode())); serr != nil && firstErr == nil {
					firstErr = serr
				}
			}
			return
		}
		if firstErr == nil && !errors.Is(err, fs.ErrNotExist) {
			firstErr = permanent("%s: %w", path, err)
		}
	})
	if errors.Is(err, fs.ErrNotExist) {
		return d.removeTree(ctx, rel, false)
	}
	if err != nil {
		// Not a directory any more: sync whatever it is now.
		if info, serr := os.Lstat(root); serr == nil && !info.IsDir() {
			return d.syncPath(ctx, rel, "", immediate)
		}
		return err
	}
	defer w.Close()
	if err := d.syncMarker(ctx, rel+"/", immediate); err != nil {
		return err
	}
	for {
		f, ok := w.Next()
		if !ok {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		sub := rel + "/" + f.Rel
		if f.Dir {
			if err := d.syncMarker(ctx, sub, immediate); err != nil {
				if !isPermanent(err) {
					return err
				}
				d.opts.Log.Warn("cannot sync", "path", sub, "err", err)
				if firstErr == nil {
					firstErr = err
				}
			}
			continue
		}
		if d.opts.Filters.Excluded(sub) {
			continue
		}
		hint := ""
		if from != "" {
			hint = from + "/" + f.Rel
		}
		var err error
		if f.Link {
			if info, serr := os.Lstat(f.Path()); serr == nil {
				d.followLinks(sub, info)
			}
			err = d.syncLink(ctx, sub, f.Path(), immediate)
		} else if info, serr := os.Lstat(f.Path()); serr != nil || !info.Mode().IsRegular() {
			continue // gone or replaced since the walk: its own record handles it
		} else {
			d.followLinks(sub, info)
			if err = d.sharedKey(sub, f.Path()); err == nil {
				if err = d.dropLink(ctx, sub); err == nil {
					err = d.syncFile(ctx, sub, f.Path(), info, hint, immediate)
				}
			}
		}
		if err != nil {
			if isPermanent(err) {
				// One bad file must not hold back the rest of the tree;
				// record it on its own so it is visible in the failed list.
				d.opts.Log.Warn("cannot sync", "path", sub, "err", err)
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			return err
		}
	}
	// Objects under the old name are the old name's removal record's
	// business.
	return firstErr
}
