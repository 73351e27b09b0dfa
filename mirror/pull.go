package mirror

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s3sync/s3sync/cache"
	"github.com/s3sync/s3sync/internal/confine"
	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/syncer"
)

// Pull: a mount follows the bucket (mount --pull). Each round lists the
// prefix and compares every object with the cache entry of its path, the
// ETag this side last wrote or saw:
//
//   - the same ETag: nothing to do (no request beyond the listing);
//   - a new or changed object over a local file unchanged since it was last
//     synced (size and mtime as the cache recorded them, no change pending
//     in the journal): downloaded and renamed into place, and the cache
//     records it, so the drain does not send it back;
//   - a changed object over a local file with unsent changes: the local
//     file is left alone and the bucket's version goes beside it as a
//     conflict copy (ConflictName with the host "remote"); the cache
//     records the bucket's ETag as seen, so this side's next upload of the
//     file replaces it without losing it, and the copy is uploaded as new;
//   - a cache entry whose object is gone: the local file is removed if it is
//     unchanged since it was last synced, else kept (and sent again).
//
// The checks are made again just before the rename or removal; a file open
// through the mount, or one the drain is working on, waits for a later
// round.

// PullJournal is what the pull needs of the journal (journal.Journal).
type PullJournal interface {
	// Has reports whether path has a change the bucket does not hold yet.
	Has(path string) (bool, error)
	// Changed records that path changed in WORKDIR.
	Changed(path string)
}

// PullMount is what the pull needs of the FUSE mount (fs.Mounted).
type PullMount interface {
	// IsOpen reports whether rel is open through the mount.
	IsOpen(rel string) bool
	// Invalidate drops the kernel's cached entry for rel, after it was
	// replaced or removed in WORKDIR behind the mount's back.
	Invalidate(rel string)
}

// pullHost names the bucket's version in the conflict copies a pull makes:
// which machine wrote it is not recorded in the object.
const pullHost = "remote"

// Puller brings changes other writers made in the bucket into WORKDIR. It
// works beside a Drainer on the same state and never on a path the drain
// has in flight.
type Puller struct {
	d     *Drainer
	j     PullJournal
	mount PullMount
	opts  PullOptions

	mu sync.Mutex // one round at a time
	// seen holds, per key below the prefix, the ETag the last round dealt
	// with. An object without a cache entry or a local file is downloaded
	// only when it is not seen with that ETag: a file removed here (without
	// --delete its object stays) is not brought back while the mount runs.
	seen map[string]string
	// refused holds, per key below the prefix, the ETag of an object the
	// pull will not bring in (it would pass through a link, clashes with
	// another key, or is no plain path): it is warned of once, not every
	// round, until it changes.
	refused map[string]string
}

// PullOptions tune a Puller.
type PullOptions struct {
	// Mount is the FUSE mount over WORKDIR; nil when it is not mounted.
	Mount PullMount
	// MaxDelete bounds the local removals of one round (--max-delete): a
	// bucket emptied by mistake, or a listing that comes back empty, must
	// not empty WORKDIR. A round over it removes nothing.
	MaxDelete syncer.MaxDelete
}

// NewPuller makes a Puller for d's bucket, state and WORKDIR.
func NewPuller(d *Drainer, j PullJournal, o PullOptions) *Puller {
	return &Puller{d: d, j: j, mount: o.Mount, opts: o, seen: map[string]string{}, refused: map[string]string{}}
}

// PullStats counts what a round did.
type PullStats struct {
	Listed     int
	Downloaded int // new or changed objects brought into WORKDIR
	Removed    int // local paths removed because their objects are gone
	Conflicts  int // bucket versions put beside a file with unsent edits
	Deferred   int // left for a later round (open, in flight, not yet sent)
	Failed     int
	Refused    int // keys never brought in (see Puller.refused), warned of once
}

// Run pulls every interval until ctx ends, the first round at once.
func (p *Puller) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTimer(0)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st, err := p.Pull(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			// Once per outage: offline, the drain says so already.
			if !failing {
				p.d.opts.Log.Warn("pull: could not read the bucket; trying again every round", "err", err)
			}
			failing = true
		default:
			if failing {
				failing = false
				p.d.opts.Log.Info("pull: reading the bucket again")
			}
			if st.Downloaded+st.Removed+st.Conflicts > 0 {
				p.d.opts.Log.Info("pulled changes from the bucket", "downloaded", st.Downloaded, "removed", st.Removed, "conflicts", st.Conflicts)
			}
		}
		t.Reset(interval)
	}
}

// Pull runs one round. It fails only when the listing does; a path that
// cannot be brought in is logged, counted and tried again next round.
func (p *Puller) Pull(ctx context.Context) (PullStats, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var st PullStats
	d := p.d
	start := time.Now()
	listed := map[string]bool{}
	dirs := map[string]bool{} // every directory holding a listed key
	seen := map[string]string{}
	refused := map[string]string{}
	if _, err := d.root(); err != nil {
		return st, fmt.Errorf("pull: %w", err)
	}
	err := d.r.List(ctx, d.loc.Bucket, d.loc.Prefix, func(o remote.Object) error {
		rel := o.Key[len(d.loc.Prefix):]
		st.Listed++
		listed[rel] = true
		for dir := path.Dir(strings.TrimSuffix(rel, "/")); dir != "." && !dirs[dir]; dir = path.Dir(dir) {
			dirs[dir] = true
		}
		if p.skip(rel) {
			return nil
		}
		if err := refusal(rel, listed); err != nil {
			p.refuse(rel, o.ETag, err, refused, &st)
			return nil
		}
		handled, err := p.object(ctx, rel, o, &st)
		switch {
		case err != nil && errors.Is(err, syncer.ErrThroughLink):
			p.refuse(rel, o.ETag, err, refused, &st)
		case err != nil && ctx.Err() == nil:
			st.Failed++
			d.opts.Log.Warn("pull: cannot bring this change in; trying again at the next round", "path", rel, "err", err)
		case handled:
			seen[rel] = o.ETag
		case err == nil:
			st.Deferred++
		}
		return ctx.Err()
	})
	if err != nil {
		// Without the whole listing a missing key proves nothing.
		for k, v := range seen {
			p.seen[k] = v
		}
		return st, fmt.Errorf("pull: list %s: %w", d.loc, err)
	}
	p.seen = seen
	p.refused = refused
	var gone []string
	var total int64
	err = d.c.Walk("", func(rel string, e cache.Entry) error {
		total++
		// An entry synced after the listing started may be an upload the
		// listing passed before it landed.
		if !listed[objectRel(rel, e.Kind)] && e.Synced.Before(start) && !p.skip(rel) {
			gone = append(gone, rel)
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	if !p.opts.MaxDelete.Allows(int64(len(gone)), total) {
		d.opts.Log.Warn("pull: the bucket no longer holds many files this side has; none is removed here (mount with a higher --max-delete if that is meant)",
			"gone", len(gone), "of", total, "limit", p.opts.MaxDelete.String())
		st.Deferred += len(gone)
		return st, nil
	}
	// Deepest first: a directory's files before its marker.
	sort.Sort(sort.Reverse(sort.StringSlice(gone)))
	for _, rel := range gone {
		if ctx.Err() != nil {
			return st, nil
		}
		if err := p.removed(ctx, rel, start, dirs, &st); err != nil {
			st.Failed++
			d.opts.Log.Warn("pull: cannot apply a deletion from the bucket; trying again at the next round", "path", rel, "err", err)
		}
	}
	return st, nil
}

// refusal says why the key rel (below the prefix) is never brought into
// WORKDIR, or nil: not a plain relative path, a control character in its
// name, or a clash with a key listed before it (listed) that this side
// keeps: "x" and "x.rclonelink" (the file wins), or a key below a file or
// a link ("x/y" after "x" or "x.rclonelink"). Listings are in key order,
// and "x" < "x.rclonelink" < "x/", so the same key wins on every machine
// and every round.
func refusal(rel string, listed map[string]bool) error {
	name := strings.TrimSuffix(rel, "/")
	if err := syncer.CheckKeyName(name); err != nil {
		return err
	}
	if l, ok := strings.CutSuffix(name, syncer.LinkSuffix); ok && listed[l] {
		return fmt.Errorf("%w: the bucket holds both %q and the symlink %q; the file is kept, the link is not made", errClash, l, rel)
	}
	for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
		if listed[dir] {
			return fmt.Errorf("%w: the bucket also holds %q as a file, and a file cannot also be a folder", errClash, dir)
		}
		if listed[dir+syncer.LinkSuffix] {
			return fmt.Errorf("%w: the bucket also holds %q as a symlink; nothing is written through a link", errClash, dir)
		}
	}
	if syncer.IsMarker(rel) && (listed[name] || listed[name+syncer.LinkSuffix]) {
		return fmt.Errorf("%w: the bucket also holds %q as a file or a link", errClash, name)
	}
	return nil
}

// errClash: two keys of the bucket want the same local name.
var errClash = errors.New("clashing keys")

// refuse skips the object rel for this round and warns of it once per
// ETag.
func (p *Puller) refuse(rel, etag string, err error, refused map[string]string, st *PullStats) {
	st.Refused++
	refused[rel] = etag
	if prev, ok := p.refused[rel]; ok && prev == etag {
		return
	}
	p.d.opts.Log.Warn("pull: a key of the bucket is not brought in (warned once)", "key", p.d.loc.Prefix+rel, "err", err)
}

// skip says whether rel is none of the pull's business: s3sync's own
// probe and temporary names, excluded paths.
func (p *Puller) skip(rel string) bool {
	if rel == "" {
		return true // the prefix's own marker: WORKDIR itself
	}
	base := path.Base(strings.TrimSuffix(rel, "/"))
	return strings.HasPrefix(base, remote.ProbePrefix) || strings.HasPrefix(base, syncer.TempPrefix) ||
		p.d.opts.Filters.Excluded(strings.TrimSuffix(rel, syncer.LinkSuffix))
}

func (p *Puller) isOpen(rel string) bool { return p.mount != nil && p.mount.IsOpen(rel) }

func (p *Puller) invalidate(rel string) {
	if p.mount != nil {
		p.mount.Invalidate(strings.TrimSuffix(rel, "/"))
	}
}

// pending reports whether the journal holds an unsent change of rel.
func (p *Puller) pending(rel string) (bool, error) {
	has, err := p.j.Has(rel)
	if err != nil || has || !syncer.IsMarker(rel) {
		return has, err
	}
	return p.j.Has(syncer.MarkerDir(rel))
}

// unchanged reports whether the local path is still what e recorded when
// it was last synced (info its lstat) and no change of it is pending.
func (p *Puller) unchanged(rel string, e cache.Entry, info os.FileInfo) (bool, error) {
	switch e.Kind {
	case cache.KindDir:
		if !info.IsDir() {
			return false, nil
		}
	case cache.KindLink:
		if info.Mode()&fs.ModeSymlink == 0 || info.Size() != e.Size || !info.ModTime().Equal(e.Mtime) {
			return false, nil
		}
	default:
		if !info.Mode().IsRegular() || info.Size() != e.Size || !info.ModTime().Equal(e.Mtime) {
			return false, nil
		}
	}
	has, err := p.pending(rel)
	return !has, err
}

// stillUnchanged is unchanged at the last moment before a replace or
// remove; an error says why not.
func (p *Puller) stillUnchanged(rel, full string, e cache.Entry) error {
	root, err := p.d.root()
	if err != nil {
		return err
	}
	info, err := root.Lstat(full)
	if err != nil {
		return err
	}
	ok, err := p.unchanged(rel, e, info)
	if err != nil {
		return err
	}
	if !ok || p.isOpen(rel) {
		return errChangedHere
	}
	return nil
}

// errChangedHere: the local file changed (or was opened) while the pull
// worked on it; it waits for a later round.
var errChangedHere = errors.New("changed here meanwhile")

// errLocalExists: a path the pull was creating was made here meanwhile.
var errLocalExists = errors.New("made here meanwhile")

// later reports whether err only means "try again next round".
func later(err error) bool {
	return errors.Is(err, errChangedHere) || errors.Is(err, errLocalExists) || errors.Is(err, remote.ErrChanged) || errors.Is(err, remote.ErrNotFound)
}

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
		return syncer.HoldsLink(ctx, syncer.Below(root, full, root.Join(full)), info), nil
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
