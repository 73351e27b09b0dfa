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

	"github.com/s3sync/s3sync/cache"
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
