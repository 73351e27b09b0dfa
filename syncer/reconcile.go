package syncer

import (
	"context"
	"errors"
	"fmt"
	"github.com/s3sync/s3sync/internal/confine"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/s3sync/s3sync/internal/walk"
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

// entry is one path on either side of the merge.
type entry struct {
	rel   string
	size  int64
	time  time.Time // local mtime or object LastModified
	path  string    // local
	etag  string    // s3
	class string    // s3
	// link: a symlink stored as its .rclonelink object (rel ends in the
	// suffix): a local link, or such an object in a download with --links.
	link bool
}

// stream is a key-ordered source of entries.
type stream interface {
	next() (entry, bool)
	err() error
}

type localStream struct {
	w *walk.Walker
}

func (s *localStream) next() (entry, bool) {
	f, ok := s.w.Next()
	if !ok {
		return entry{}, false
	}
	return localEntry(f), true
}

func (s *localStream) err() error { return nil }

// s3Stream lists a prefix in the background, a page ahead of the merge.
type s3Stream struct {
	ch     chan entry
	mu     sync.Mutex
	e      error
	cancel context.CancelFunc
}

func newS3Stream(ctx context.Context, r Remote, loc remote.Location) *s3Stream {
	ctx, cancel := context.WithCancel(ctx)
	s := &s3Stream{ch: make(chan entry, 2000), cancel: cancel}
	go func() {
		defer close(s.ch)
		err := r.List(ctx, loc.Bucket, loc.Prefix, func(o remote.Object) error {
			rel := strings.TrimPrefix(o.Key, loc.Prefix)
			if rel == "" {
				return nil // the prefix's own folder marker
			}
			select {
			case s.ch <- entry{rel: rel, size: o.Size, time: o.LastModified, etag: o.ETag, class: o.StorageClass}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		s.mu.Lock()
		s.e = err
		s.mu.Unlock()
	}()
	return s
}

func (s *s3Stream) next() (entry, bool) {
	e, ok := <-s.ch
	return e, ok
}

func (s *s3Stream) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.e
}

// filtered drops excluded paths, so they are neither sent nor deleted.
type filtered struct {
	stream
	f *Filters
}

func (s filtered) next() (entry, bool) {
	for {
		e, ok := s.stream.next()
		if !ok || !s.f.ExcludedKey(e.rel) {
			return e, ok
		}
	}
}

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

type emptyStream struct{}

func (emptyStream) next() (entry, bool) { return entry{}, false }
func (emptyStream) err() error          { return nil }

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

// sameContent reports whether s and d are known to hold the same bytes:
// a local file's checksums against a single-part ETag (an MD5) or, after a
// HEAD, the store's CRC64NVME (and the MD5 where the HEAD says the object's
// encryption leaves the ETag one). Unknown counts as different, and so does a
// file or object that cannot be read: the transfer then reports why.
func (rc *run) sameContent(s, d entry) bool {
	a, err := rc.contentOf(rc.src, s)
	if err != nil {
		return false
	}
	b, err := rc.contentOf(rc.dst, d)
	if err != nil {
		return false
	}
	// A listing's ETag that matches an MD5 proves the same content; one
	// that does not may just not be an MD5 (SSE-KMS, SSE-C): a HEAD says.
	if same, known := sameContent(a, b); known && same {
		return true
	}
	for i, e := range []Endpoint{rc.src, rc.dst} {
		if !e.IsS3 {
			continue
		}
		en, c := s, &a
		if i == 1 {
			en, c = d, &b
		}
		info, err := rc.r.Head(rc.ctx, e.S3.Bucket, e.S3.Prefix+en.rel)
		if err != nil || info.ETag != en.etag {
			return false // gone, or changed since the listing
		}
		*c = c.withHead(info)
	}
	same, known := sameContent(a, b)
	return known && same
}

// contentOf is what the listing or the local file says of en's content.
func (rc *run) contentOf(e Endpoint, en entry) (content, error) {
	if e.IsS3 {
		return objectContent(en.etag), nil
	}
	if en.link {
		c, size, _, err := linkContent(rc.ctx, ByPath(en.path))
		if err == nil && size != en.size {
			err = errChangedSinceWalk
		}
		return c, err
	}
	d, st, err := rc.h.sum(rc.ctx, en.path, en.rel)
	if err != nil {
		return content{}, err
	}
	if st.Size != en.size {
		return content{}, errChangedSinceWalk
	}
	return localContent(d), nil
}

var errChangedSinceWalk = errors.New("changed since the walk")

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

// flushDeletes deletes keys at the S3 destination in one batch request.
func (rc *run) flushDeletes(keys []string, etags []string) {
	rc.pool.submit(rc.ctx, func() {
		failed := rc.deleteListed(keys, etags)
		bad := map[string]error{}
		for _, f := range failed {
			bad[f.Key] = f.Err
		}
		for _, k := range keys {
			shown := rc.dst.S3.URL(k)
			if err, ok := bad[k]; ok {
				rc.c.failed.Add(1)
				rc.opts.Report(Event{Kind: EventFailed, Op: "delete", Src: shown, Err: err})
				continue
			}
			rc.c.deleted.Add(1)
			rc.opts.Report(Event{Kind: EventDone, Op: "delete", Src: shown})
		}
	})
}

func isGlacier(class string) bool { return class == "GLACIER" || class == "DEEP_ARCHIVE" }

// transfer queues s for sending to the destination; d is the destination's
// entry when exists, localPath the file a download writes.
func (rc *run) transfer(s, d entry, exists bool, localPath string) {
	if work, ok := rc.prepare(s, d, exists, localPath); ok {
		rc.pool.submit(rc.ctx, work)
	}
}

// prepare checks and announces a transfer of s and returns the work to do,
// or false when there is none (skipped, or only shown in a dry run).
func (rc *run) prepare(s, d entry, exists bool, localPath string) (func(), bool) {
	srcShown, dstShown := rc.show(rc.src, s), rc.show(rc.dst, s)
	op := rc.dir.String()
	var dstKey string
	if rc.dir != Download {
		dstKey = rc.dst.S3.Prefix + s.rel
		if len(dstKey) > MaxKeyLen {
			rc.skip(srcShown, fmt.Errorf("key is %d bytes, over S3's limit of %d", len(dstKey), MaxKeyLen))
			return nil, false
		}
	}
	if rc.dir != Upload && isGlacier(s.class) && !rc.opts.ForceGlacier {
		rc.skip(srcShown, fmt.Errorf("object is of storage class %s and must be restored first (or use --force-glacier-transfer)", s.class))
		return nil, false
	}
	exact := rc.dir == Download && exists && rc.opts.Compare.ExactTimestamps && !rc.opts.Compare.Checksum && s.size == d.size
	rc.opts.Report(Event{Kind: EventPlanned, Op: op, Src: srcShown, Dst: dstShown, Size: s.size})
	if rc.opts.DryRun && !exact {
		rc.opts.Report(Event{Kind: EventDone, Op: op, Src: srcShown, Dst: dstShown, Size: s.size, DryRun: true})
		return nil, false
	}
	return func() {
		var err error
		switch rc.dir {
		case Upload:
			var res UploadResult
			c := rc.listed(d, exists)
			if s.link {
				res, err = UploadLinkIf(rc.ctx, rc.r, ByPath(s.path), rc.dst.S3.Bucket, dstKey, rc.opts.StorageClass, c)
			} else {
				res, err = UploadFileIf(rc.ctx, rc.r, ByPath(s.path), rc.dst.S3.Bucket, dstKey, rc.opts.StorageClass, nil, c)
			}
			err = rc.conflicted(err, c)
			if err == nil {
				s.size = res.Size
				rc.c.uploaded.Add(1)
			}
		case Download:
			if exact {
				// The listing has only LastModified; the time we restored
				// is in the metadata, so --exact-timestamps asks for it.
				info, herr := rc.r.Head(rc.ctx, rc.src.S3.Bucket, rc.src.S3.Prefix+s.rel)
				if herr == nil && !info.Mtime.IsZero() && info.Mtime.Equal(d.time) {
					return
				}
				if rc.opts.DryRun {
					rc.opts.Report(Event{Kind: EventDone, Op: op, Src: srcShown, Dst: dstShown, Size: s.size, DryRun: true})
					return
				}
			}
			restore := rc.opts.Restore
			restore.Warn = func(err error) {
				rc.opts.Report(Event{Kind: EventWarning, Op: op, Src: srcShown, Dst: dstShown, Err: err})
			}
			if s.link {
				_, err = downloadLink(rc.ctx, rc.r, rc.src.S3.Bucket, rc.src.S3.Prefix+s.rel, s.etag, rc.root, strings.TrimSuffix(s.rel, LinkSuffix))
			} else {
				_, err = DownloadFile(rc.ctx, rc.r, rc.src.S3.Bucket, rc.src.S3.Prefix+s.rel, s.etag, rc.root, s.rel, restore)
			}
			if err == nil {
				rc.c.downloaded.Add(1)
			}
		case Copy:
			o := remote.PutOptions{StorageClass: rc.opts.StorageClass, SourceETag: s.etag}
			c := rc.listed(d, exists)
			c.Set(&o)
			_, err = rc.r.Copy(rc.ctx, rc.src.S3.Bucket, rc.src.S3.Prefix+s.rel, rc.dst.S3.Bucket, dstKey, s.size, o)
			err = rc.conflicted(err, c)
			if err == nil {
				rc.c.copied.Add(1)
			}
		}
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return
			}
			if rc.dir == Upload && (errors.Is(err, fs.ErrPermission) || errors.Is(err, fs.ErrNotExist)) {
				// Unreadable, or deleted since the walk: as the AWS CLI
				// does, a warning and the rest goes on.
				rc.skip(srcShown, err)
				return
			}
			rc.c.failed.Add(1)
			rc.opts.Report(Event{Kind: EventFailed, Op: op, Src: srcShown, Dst: dstShown, Err: err})
			return
		}
		rc.c.bytes.Add(s.size)
		rc.opts.Report(Event{Kind: EventDone, Op: op, Src: srcShown, Dst: dstShown, Size: s.size})
	}, true
}

// target returns where a download of s goes. A key that would land outside
// the destination, or below another key that is itself an object ("x/y"
// after "x"), is reported and counted as skipped. Every source entry
// passes here, transferred or not, so the checks hold on re-runs too.
func (rc *run) target(s entry) (localPath string, ok bool) {
	if rc.dir != Download {
		return "", true
	}
	rel := s.rel
	if s.link {
		rel = strings.TrimSuffix(rel, LinkSuffix)
	}
	p, err := LocalPath(rc.dst.Local, rel)
	if err == nil {
		err = CheckKeyName(rel)
	}
	if err != nil {
		rc.skip(rc.src.Show(s.rel), err)
		return "", false
	}
	if err := parentLink(rc.dst.Local, rc.realDst, rel, rc.opts.Links, &rc.safeDir); err != nil {
		rc.skip(rc.src.Show(s.rel), err)
		return "", false
	}
	parent := rc.objectParent(rel)
	if s.link {
		// A link made by this run is no folder to write below, whether
		// or not it exists yet (downloads run in parallel).
		rc.objDirs[rel+"/"] = s.rel
	}
	if parent != "" {
		rc.skip(rc.src.Show(s.rel), fmt.Errorf("the bucket also holds %s as a file, and a local file cannot also be a folder", rc.src.Show(parent)))
		return "", false
	}
	return p, true
}

// objectParent returns an earlier object key that rel needs as a folder
// ("x" for "x/y"), or "". Listings are sorted, so such a key came first;
// entries whose folder range the listing has passed are dropped.
func (rc *run) objectParent(rel string) string {
	found := ""
	for i := 0; i < len(rel); i++ {
		if rel[i] == '/' {
			if k, ok := rc.objDirs[rel[:i+1]]; ok {
				found = k
				break
			}
		}
	}
	rc.objDirs[rel+"/"] = rel
	if rc.seen++; rc.seen%1024 == 0 {
		for dirKey := range rc.objDirs {
			// Keys below "x/" sort before "x0" ('0' follows '/').
			if dirKey[:len(dirKey)-1]+"0" <= rel {
				delete(rc.objDirs, dirKey)
			}
		}
	}
	return found
}
