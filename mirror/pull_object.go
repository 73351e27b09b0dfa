package mirror

import (
	"context"
	"errors"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s3sync/s3sync/cache"
	"github.com/s3sync/s3sync/internal/confine"
	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/syncer"
)

// Pull, one listed object: brought into WORKDIR, or kept beside a local
// file with unsent changes.

// object deals with one listed object (rel: its key below the prefix) and
// reports whether it is done with it (false, nil: left for a later round).
func (p *Puller) object(ctx context.Context, rel string, o remote.Object, st *PullStats) (bool, error) {
	d := p.d
	lrel, kind := rel, cache.KindFile
	switch {
	case syncer.IsMarker(rel):
		kind = cache.KindDir
	case strings.HasSuffix(rel, syncer.LinkSuffix):
		lrel, kind = strings.TrimSuffix(rel, syncer.LinkSuffix), cache.KindLink
	}
	root, err := d.root()
	if err != nil {
		return false, err
	}
	full := strings.TrimSuffix(lrel, "/") // below root
	e, ok, err := d.c.Get(lrel)
	if err != nil {
		return false, err
	}
	if ok && e.Kind == kind && (e.ETag == o.ETag || e.ETag == "") {
		return true, nil // in sync (an entry without ETag predates them)
	}
	if !ok && p.seen[rel] == o.ETag {
		return true, nil // dealt with before: removed here since
	}
	release, claimed := d.claim(lrel)
	if !claimed {
		return false, nil
	}
	defer release()
	if p.isOpen(lrel) {
		return false, nil
	}
	// Read again now that the drain cannot change it.
	if e, ok, err = d.c.Get(lrel); err != nil {
		return false, err
	}
	if ok && e.Kind == kind && e.ETag == o.ETag {
		return true, nil
	}
	if kind == cache.KindDir {
		return p.marker(ctx, lrel, full, o, st)
	}
	info, err := root.Lstat(full)
	if err != nil && parentLinked(err) {
		return false, syncer.ParentErr(root, full, err)
	}
	if err != nil && !notExist(err) {
		return false, err
	}
	if err != nil {
		// Nothing here: new, or removed here and not yet sent.
		if has, err := p.pending(lrel); has || err != nil {
			return false, err
		}
		ne, err := p.fetch(ctx, o, kind, full, nil)
		if err != nil {
			if later(err) {
				return false, nil
			}
			return false, err
		}
		return true, p.took(lrel, ne, st)
	}
	if ok && e.Kind == kind {
		same, err := p.unchanged(lrel, e, info)
		if err != nil {
			return false, err
		}
		if same {
			if mine, err := p.ownWrite(ctx, o); mine || err != nil {
				return false, err
			}
			ne, err := p.fetch(ctx, o, kind, full, func() error { return p.stillUnchanged(lrel, full, e) })
			if err != nil {
				if later(err) {
					return false, nil
				}
				return false, err
			}
			return true, p.took(lrel, ne, st)
		}
	}
	// The local file has changes the bucket does not hold, or is there
	// without this side ever having synced it.
	if mine, err := p.ownWrite(ctx, o); mine || err != nil {
		return false, err
	}
	if !ok {
		if has, err := p.pending(lrel); has || err != nil {
			// Its upload (If-None-Match) finds out, and keeps both if
			// they differ; the next round sees the outcome.
			return false, err
		}
		if same, err := p.sameAsLocal(ctx, o, kind, full); err != nil {
			return false, err
		} else if same {
			e := entryOf(kind, info, o.ETag)
			if err := d.c.Put(lrel, e); err != nil {
				return false, err
			}
			d.synced(lrel)
			return true, nil
		}
	}
	return p.keepLocal(ctx, lrel, full, o, kind, e, ok, st)
}

// took records a path the pull brought in: the cache holds what is now
// local, so neither the drain nor the next start-up scan sends it back.
func (p *Puller) took(rel string, e cache.Entry, st *PullStats) error {
	if err := p.d.c.Put(rel, e); err != nil {
		return err
	}
	p.d.synced(rel)
	p.invalidate(rel)
	st.Downloaded++
	return nil
}

// keepLocal leaves the local file, which holds changes the bucket does not,
// and puts the bucket's version beside it as a conflict copy. The cache
// then records the bucket's version as seen, so this side's next upload
// replaces it: the name ends up with this side's version, the copy with the
// other's, on both sides.
func (p *Puller) keepLocal(ctx context.Context, rel, full string, o remote.Object, kind cache.Kind, e cache.Entry, known bool, st *PullStats) (bool, error) {
	d := p.d
	copyRel := ConflictName(rel, pullHost, d.cf.now())
	if _, err := p.fetch(ctx, o, kind, copyRel, nil); err != nil {
		if later(err) {
			return false, nil
		}
		return false, err
	}
	// Not in the bucket yet: the drain sends it as a new file.
	p.j.Changed(copyRel)
	p.invalidate(copyRel)
	switch {
	case known && e.Kind == kind:
		e.ETag = o.ETag
	case !known:
		// Size -1 matches no file: this side's version is sent.
		e = cache.Entry{Kind: kind, Size: -1, ETag: o.ETag, Synced: time.Now()}
	}
	if !known || e.Kind == kind {
		if err := d.c.Put(rel, e); err != nil {
			return false, err
		}
	}
	p.j.Changed(rel)
	if _, err := d.c.CloseConflict(rel); err != nil {
		return false, err
	}
	st.Conflicts++
	d.opts.Log.Warn("pull: another writer changed this file in the bucket while it has unsent changes here; the bucket's version is kept beside it", "path", rel, "copy", copyRel)
	return true, nil
}

// ownWrite reports whether o is this side's own write (one whose cache
// entry was never recorded): the drain settles those.
func (p *Puller) ownWrite(ctx context.Context, o remote.Object) (bool, error) {
	if p.d.opts.WriterID == "" {
		return false, nil
	}
	info, err := p.d.r.Head(ctx, p.d.loc.Bucket, o.Key)
	if errors.Is(err, remote.ErrNotFound) {
		return true, nil // gone since the listing: next round
	}
	if err != nil {
		return false, err
	}
	return info.ETag == o.ETag && info.Metadata[remote.MetaWriter] == p.d.opts.WriterID, nil
}

// sameAsLocal reports whether the object holds exactly what the local file
// (or link) at full holds.
func (p *Puller) sameAsLocal(ctx context.Context, o remote.Object, kind cache.Kind, full string) (bool, error) {
	info, err := p.d.r.Head(ctx, p.d.loc.Bucket, o.Key)
	if err != nil {
		return false, err
	}
	if kind == cache.KindLink {
		root, err := p.d.root()
		if err != nil {
			return false, err
		}
		same := syncer.HoldsLink(ctx, syncer.Below(root, full, root.Join(full)), info)
		// Stopping is not a difference: it must not make a conflict copy.
		return same, ctx.Err()
	}
	return p.d.holdsFile(ctx, full, info), nil
}

// entryOf is the cache entry for the local path info describes, held by
// the object etag.
func entryOf(kind cache.Kind, info os.FileInfo, etag string) cache.Entry {
	e := cache.Entry{Kind: kind, Size: info.Size(), Mtime: info.ModTime(), ETag: etag, Synced: time.Now()}
	if kind == cache.KindDir {
		e.Size = 0
	}
	if kind == cache.KindFile {
		if mode, uid, gid, ok := cache.OwnerOf(info); ok {
			e.Meta, e.Mode, e.UID, e.GID = true, mode, uid, gid
		}
	}
	return e
}

// fetch downloads o as kind to full (below WORKDIR's root) and returns the
// cache entry for what it placed there. With ready nil, full must not
// exist (errLocalExists otherwise); else ready is called just before full
// is replaced.
func (p *Puller) fetch(ctx context.Context, o remote.Object, kind cache.Kind, full string, ready func() error) (cache.Entry, error) {
	d := p.d
	root, err := d.root()
	if err != nil {
		return cache.Entry{}, err
	}
	var placed os.FileInfo
	if kind == cache.KindLink {
		_, err := syncer.DownloadLinkTo(ctx, d.r, d.loc.Bucket, o.Key, o.ETag, root, full, func(tmp string) error {
			info, err := root.Lstat(tmp)
			if err != nil {
				return err
			}
			placed = info
			if ready == nil {
				return renameNew(root, tmp, full)
			}
			if err := ready(); err != nil {
				return err
			}
			return root.Rename(tmp, full, 0)
		})
		if err != nil {
			return cache.Entry{}, err
		}
		return entryOf(kind, placed, o.ETag), nil
	}
	restore := syncer.Restore{Warn: func(err error) { d.opts.Log.Warn("pull", "path", full, "err", err) }}
	_, err = syncer.DownloadFileTo(ctx, d.r, d.loc.Bucket, o.Key, o.ETag, root, full, restore, func(root *confine.Root, f *os.File, tmp, rel string) error {
		info, err := f.Stat()
		if err != nil {
			return err
		}
		// What the file is as it gets its name: a change made through the
		// mount a moment later must not count as synced.
		placed = info
		if ready == nil {
			return publishNew(root, f, tmp, rel)
		}
		if err := ready(); err != nil {
			return err
		}
		return syncer.Publish(root, f, tmp, rel)
	})
	if err != nil {
		return cache.Entry{}, err
	}
	return entryOf(kind, placed, o.ETag), nil
}

// publishNew gives the finished file its name rel only if nothing has it.
func publishNew(root *confine.Root, f *os.File, tmp, rel string) error {
	if tmp != "" {
		return renameNew(root, tmp, rel)
	}
	err := root.Link(f, rel)
	if errors.Is(err, unix.EEXIST) {
		return errLocalExists
	}
	return err
}

func renameNew(root *confine.Root, tmp, rel string) error {
	err := root.Rename(tmp, rel, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EEXIST) {
		return errLocalExists
	}
	return err
}

// marker deals with a listed directory marker ("dir/"): the directory is
// made when it is not here and no removal of it is pending.
func (p *Puller) marker(ctx context.Context, rel, full string, o remote.Object, st *PullStats) (bool, error) {
	d := p.d
	root, err := d.root()
	if err != nil {
		return false, err
	}
	info, err := root.Lstat(full)
	if err != nil && parentLinked(err) {
		return false, syncer.ParentErr(root, full, err)
	}
	if err == nil {
		if !info.IsDir() {
			return true, nil // a file here: its own upload decides
		}
		return true, d.c.Put(rel, entryOf(cache.KindDir, info, o.ETag))
	}
	if !notExist(err) {
		return false, err
	}
	if has, err := p.pending(rel); has || err != nil {
		return false, err
	}
	if err := root.MkdirAll(full, 0o755); err != nil {
		return false, syncer.ParentErr(root, full, err)
	}
	if hi, err := d.r.Head(ctx, d.loc.Bucket, o.Key); err == nil {
		restore := syncer.Restore{Warn: func(err error) { d.opts.Log.Warn("pull", "path", full, "err", err) }}
		syncer.RestoreDir(root, full, hi, restore)
		if !hi.Mtime.IsZero() {
			root.Chtimes(full, hi.Mtime, hi.Mtime)
		}
	}
	info, err = root.Lstat(full)
	if err != nil {
		return false, err
	}
	return true, p.took(rel, entryOf(cache.KindDir, info, o.ETag), st)
}
