package syncer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/s3sync/s3sync/internal/confine"
	"github.com/s3sync/s3sync/remote"
)

// Endpoint is one side of a reconcile: a local directory or a bucket prefix.
type Endpoint struct {
	Local string          // local directory, when not S3
	S3    remote.Location // when IsS3
	IsS3  bool
	Arg   string // as the user wrote it, for output lines
}

// ParseEndpoint reads a command-line argument.
func ParseEndpoint(arg string) (Endpoint, error) {
	if remote.IsS3URL(arg) {
		loc, err := remote.ParseURL(arg)
		if err != nil {
			return Endpoint{}, err
		}
		return Endpoint{S3: loc, IsS3: true, Arg: arg}, nil
	}
	if strings.Contains(arg, "://") {
		return Endpoint{}, fmt.Errorf("%q: only local paths and s3:// URLs are supported", arg)
	}
	return Endpoint{Local: arg, Arg: arg}, nil
}

// Show renders rel on this side the way the AWS CLI prints it.
func (e Endpoint) Show(rel string) string {
	if e.IsS3 {
		return e.S3.URL(e.S3.Prefix + rel)
	}
	base := e.Arg
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	return base + rel
}

// Options are reconcile's flags.
type Options struct {
	Delete       bool // --delete
	DryRun       bool // --dryrun
	Compare      Compare
	Filters      *Filters
	StorageClass string // --storage-class
	NoFollow     bool   // --no-follow-symlinks
	ForceGlacier bool   // --force-glacier-transfer
	Concurrency  int    // --concurrency
	// Restore is what downloads restore from the objects' mode, uid and
	// gid (--metadata); Restore.Warn is set by Reconcile.
	Restore Restore
	// Sums caches local checksums between runs for Compare.Checksum; nil
	// reads every file it compares.
	Sums   SumCache
	Report func(Event)

	// Links (--links) stores local symlinks as rclone's .rclonelink
	// objects, never following them, and downloads such objects as links.
	Links bool
	// MaxDelete is --max-delete; the zero value refuses mass deletion.
	MaxDelete MaxDelete
	// IfUnchanged (--if-unchanged) makes every upload, copy and delete at
	// an S3 destination conditional on the key being as this run listed
	// it (If-Match its ETag, If-None-Match: * where it had none): a key
	// another writer changed meanwhile is reported (remote.ErrConflict)
	// and left alone. See ifunchanged.go.
	IfUnchanged bool
}

// DefaultConcurrency is the number of transfers in flight.
const DefaultConcurrency = 32

// Reconcile makes dst match src by the AWS CLI's sync rules. It returns an
// error only when the run as a whole could not be done (a listing failed,
// a bucket is missing); per-file failures and skips are reported through
// opts.Report and counted in the Summary.
func Reconcile(ctx context.Context, r Remote, src, dst Endpoint, opts Options) (Summary, error) {
	if !src.IsS3 && !dst.IsS3 {
		return Summary{}, errors.New("one of SRC and DST must be an s3:// URL (for local to local, use rsync)")
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.Report == nil {
		opts.Report = func(Event) {}
	}
	dir := Copy
	switch {
	case !src.IsS3:
		dir = Upload
	case !dst.IsS3:
		dir = Download
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rc := &run{r: r, src: src, dst: dst, opts: opts, dir: dir, ctx: ctx, objDirs: map[string]string{}}
	if opts.Compare.Checksum {
		rc.h = newHasher(opts.Sums)
	}

	var srcS, dstS stream
	// incomplete holds the source paths (relative, slash-separated) that
	// could not be read. The walk is pulled by the merge loop, so its
	// warnings arrive on this goroutine.
	var incomplete []string
	warnLocal := func(path string, err error) {
		rc.skip(path, err)
		if rel, rerr := filepath.Rel(src.Local, path); rerr == nil {
			incomplete = append(incomplete, filepath.ToSlash(rel))
		}
	}
	if dir == Upload {
		w, err := newWalk(src.Local, opts.symlinks(), false, warnLocal)
		if err != nil {
			return Summary{}, fmt.Errorf("source: %w", err)
		}
		defer w.Close()
		srcS = &localStream{w}
	} else {
		s := newS3Stream(ctx, r, src.S3)
		defer s.cancel()
		srcS = s
		if dir == Download && opts.Links {
			srcS = markLinks{s}
		}
	}
	if dir == Download {
		if err := os.MkdirAll(dst.Local, 0o755); err != nil && !opts.DryRun {
			return Summary{}, fmt.Errorf("destination: %w", err)
		}
		// The destination's walk never descends into a symlinked folder
		// outside it, so --delete cannot delete files there.
		w, err := newWalk(dst.Local, opts.symlinks(), true, func(string, error) {})
		if err == nil {
			rc.realDst, err = filepath.EvalSymlinks(dst.Local)
		}
		if err == nil {
			// Every write below DST goes through one root: with --links
			// nothing is written through a symlink; without, a link is
			// followed only while it stays inside DST.
			var root *confine.Root
			if root, err = confine.Open(dst.Local); err == nil {
				defer root.Close()
				rc.root = root
				if !opts.Links {
					rc.root = root.FollowInside()
				}
			}
		}
		if err == nil {
			defer w.Close()
			dstS = &localStream{w}
		} else if opts.DryRun && os.IsNotExist(err) {
			dstS = emptyStream{}
		} else {
			return Summary{}, fmt.Errorf("destination: %w", err)
		}
	} else {
		s := newS3Stream(ctx, r, dst.S3)
		defer s.cancel()
		dstS = s
	}
	if !opts.Filters.Empty() {
		srcS = filtered{srcS, opts.Filters}
		dstS = filtered{dstS, opts.Filters}
	}
	dstS = countedStream{dstS, &rc.del.total}

	rc.pool = newPool(opts.Concurrency)
	s, sok := srcS.next()
	d, dok := dstS.next()
	for (sok || dok) && ctx.Err() == nil {
		switch {
		case sok && (!dok || s.rel < d.rel):
			rc.onlySrc(s)
			s, sok = srcS.next()
		case dok && (!sok || d.rel < s.rel):
			if serr := srcS.err(); serr != nil {
				// The source listing broke off: what seems to be only at
				// the destination may well be at the source. Delete nothing.
				dok = false
				continue
			}
			if !underAny(d.rel, incomplete) {
				rc.nextSrc = ""
				if sok {
					rc.nextSrc = s.rel
				}
				rc.onlyDst(d)
			}
			d, dok = dstS.next()
		default:
			rc.both(s, d)
			s, sok = srcS.next()
			d, dok = dstS.next()
		}
	}
	// A listing that broke off makes the deletions found so far a guess.
	rc.finishDeletes(srcS.err() == nil && dstS.err() == nil && ctx.Err() == nil)
	opts.Report(Event{Kind: EventPlanDone})
	rc.pool.wait()
	if err := srcS.err(); err != nil {
		return rc.c.summary(), err
	}
	if err := dstS.err(); err != nil {
		return rc.c.summary(), err
	}
	if rc.refused != nil && ctx.Err() == nil {
		return rc.c.summary(), rc.refused
	}
	return rc.c.summary(), ctx.Err()
}

// underAny reports whether rel lies below a source directory that could not
// be read, in which case its absence from the source proves nothing.
func underAny(rel string, incomplete []string) bool {
	for _, p := range incomplete {
		if p == "." || rel == p || strings.HasPrefix(rel, p+"/") {
			return true
		}
	}
	return false
}

type run struct {
	r    Remote
	src  Endpoint
	dst  Endpoint
	opts Options
	dir  Direction
	ctx  context.Context
	pool *pool
	c    counters
	h    *hasher // with Compare.Checksum
	// probe: --if-unchanged's deletes learn once what the store honours.
	probe     sync.Once
	batchETag bool

	del     deletions      // what --delete found, done once the total is known
	refused *DeleteRefusal // --max-delete refused del
	// objDirs remembers, during a download, object keys that later keys
	// may use as a folder ("x" and "x/y"), keyed by "x/"; pruned as the
	// listing moves past them so it stays small.
	objDirs map[string]string
	seen    int
	// realDst is a download's destination as a real path; safeDir a folder
	// below it known to have no symlink on the way (see parentLink).
	realDst string
	safeDir string
	// root is a download's destination, which every local write and
	// delete goes through.
	root *confine.Root
	// prevSrc and nextSrc are the source keys either side of the one
	// onlyDst is at: whether the source holds keys below a directory.
	prevSrc, nextSrc string
}

func (rc *run) skip(what string, err error) {
	rc.c.skipped.Add(1)
	rc.opts.Report(Event{Kind: EventSkipped, Src: what, Err: err})
}

func (rc *run) onlySrc(s entry) {
	rc.prevSrc = s.rel
	if IsMarker(s.rel) {
		rc.marker(s)
		return
	}
	if rc.waitsForDelete(s) {
		return
	}
	if localPath, ok := rc.target(s); ok {
		rc.transfer(s, entry{}, false, localPath)
	}
}

func (rc *run) both(s, d entry) {
	rc.prevSrc = s.rel
	if IsMarker(s.rel) {
		return // a directory and its marker, or two markers: the same
	}
	localPath, ok := rc.target(s)
	if !ok {
		return
	}
	if rc.opts.Compare.Checksum && s.size == d.size {
		// Reading a file or a HEAD per pair: in the pool, not here.
		rc.pool.submit(rc.ctx, func() {
			if !rc.sameContent(s, d) {
				if work, ok := rc.prepare(s, d, true, localPath); ok {
					work()
				}
			}
		})
		return
	}
	if ShouldTransfer(rc.dir, Side{s.size, s.time}, Side{d.size, d.time}, rc.opts.Compare) || rc.linkDiffers(s, d) {
		rc.transfer(s, d, true, localPath)
	}
}

// onlyDst collects d for deletion: whether anything is deleted depends on
// how much, which is known only once the merge is over (finishDeletes).
func (rc *run) onlyDst(d entry) {
	if !rc.opts.Delete {
		return
	}
	up := 0
	if IsMarker(d.rel) {
		if rc.keepMarker(d, rc.nextSrc) {
			return
		}
		if !rc.dst.IsS3 {
			up = rc.emptyParents(d.rel)
		}
	}
	rc.del.add(d, up, rc.dir == Download)
}
