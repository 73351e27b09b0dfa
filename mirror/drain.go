package mirror

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"

	"github.com/s3sync/s3sync/cache"
	"github.com/s3sync/s3sync/internal/confine"
	"github.com/s3sync/s3sync/journal"
	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/syncer"
)

// Journal is what the drain loop needs from the journal: ordered pending
// records, and the three ways a record ends (done, retry later, failed).
type Journal interface {
	Notify() <-chan struct{}
	Pending(fn func(journal.Record) bool) error
	Done(r journal.Record) error
	DoneWith(r journal.Record, also func(tx *bbolt.Tx) error) error
	Retry(r journal.Record, err error) error
	Fail(r journal.Record, err error) error
	SetMeta(key string, v []byte) error
	// Changed records that path changed (another name of a file the
	// drain syncs: see Hardlinks).
	Changed(path string)
}

// MetaLastUpload is the journal meta key holding the last upload's time
// (RFC 3339), for status while unmounted.
const MetaLastUpload = "last_upload"

// Cache is the per-path record of what the remote holds.
type Cache interface {
	Get(path string) (cache.Entry, bool, error)
	Put(path string, e cache.Entry) error
	Delete(path string) error
	PutTx(tx *bbolt.Tx, path string, e cache.Entry) error
	DeleteTx(tx *bbolt.Tx, path string) error
	Walk(prefix string, fn func(path string, e cache.Entry) error) error
	syncer.Uploads
	Conflicts
	Intents
	Skips
}

// Skips are the paths not stored because S3 cannot hold what they are
// (cache.Cache.Skip).
type Skips interface {
	Skip(path, kind string) (bool, error)
	Unskip(path string) error
	Skipped(fn func(path, kind string) error) error
}

// Intents are the PUTs of markers that may land before the cache knows of
// them (cache.Cache.PutIntent).
type Intents interface {
	PutIntent(path string) error
	HasIntent(path string) (bool, error)
	DeleteIntent(path string) error
	Intents(fn func(path string) error) error
}

// DrainOptions are the mount's sync flags.
type DrainOptions struct {
	Delete       bool
	Filters      *syncer.Filters
	StorageClass string
	Settle       time.Duration // how long a path must stay unchanged before it is sent
	Concurrency  int
	Log          *slog.Logger
	// MaxBackoff caps the wait between attempts (default 30s).
	MaxBackoff time.Duration
	// MaxLag bounds how long a file that keeps changing waits for the
	// settle delay (default 30s or ten settle delays, whichever is more).
	MaxLag time.Duration
	// Writing, if set, says whether a file is still open for writing (the
	// mount's fs.Mounted.Writing). Such a file waits, up to MaxLag: under
	// FUSE passthrough its writes are not seen, so the settle delay alone
	// could send it half-written (dd's first record is at its dup2, before
	// any data). Call WriterClosed when a file is closed.
	Writing func(path string) bool
	// OpenFileLag bounds that wait (default 25s, at most MaxLag): with the
	// mount recording open files that changed every 5s, a file kept open
	// for writing is backed up at least every 30s.
	OpenFileLag time.Duration
	// Conditions is what the store honours of conditional requests
	// (remote.ProbeConditions): deletes are sent with the ETag last seen,
	// batched where the store honours that, else one by one. nil (not
	// probed): one by one.
	Conditions *remote.Conditions
	// WriterID names this state's writes in the objects' metadata
	// (remote.PutOptions.Writer), so an earlier write of its own whose
	// answer was lost, even before a crash, is not taken for another
	// writer's. "" stores none.
	WriterID string
	// Hardlinks is what the start-up scan learnt of WORKDIR's hard links
	// (nil: nothing yet; the drain learns them as it goes).
	Hardlinks *Hardlinks
}

// Drainer sends the journal's pending changes to the bucket in the
// background: several workers, one operation per path at a time, after
// the settle delay. Transient failures back off exponentially with jitter;
// permanent ones go to the journal's failed list, never dropped.
type Drainer struct {
	r       syncer.Remote
	j       Journal
	c       Cache
	workdir string
	loc     remote.Location
	opts    DrainOptions

	mu sync.Mutex
	// inflight holds the paths being worked on; true marks a tree record
	// (a directory renamed or removed), whose work writes or deletes the
	// keys of everything below it.
	inflight  map[string]bool
	notBefore map[string]time.Time // per-path backoff
	// sources counts the in-flight records that may copy server-side from
	// an old path (a rename's From): nothing may change the objects at or
	// below such a path until the copy is done (see blocked).
	sources map[string]int
	// inDoubt holds paths whose upload failed in a way that may still
	// have stored the object (a dropped connection, a 5xx after the body
	// went): if the file is then removed, its key is deleted even though
	// the cache never learnt of it.
	inDoubt map[string]bool
	// started: records older than this may have been in flight when an
	// earlier process died, with the same doubt.
	started time.Time
	// A pause stops the whole drain: the endpoint is unreachable, the
	// credentials or the clock are refused, or every request is denied.
	// Retrying one file cannot help then, and failing files would be wrong.
	paused     pauseKind
	pauseErr   error
	pauseUntil time.Time // wait before trying again
	outage     int       // consecutive failures that paused
	// denied holds the paths that got AccessDenied in a row, with no
	// success between: once deniedEverywhere different paths were denied
	// the drain pauses instead of failing file after file. One key the
	// policy forbids, retried alone, is not "every request".
	denied map[string]bool
	// denials counts AccessDenied answers per path (its other failures,
	// an outage's retries among them, do not count): a path fails for a
	// denial only after deniedEverywhere of them.
	denials map[string]int
	// reload: the credentials were refused; read the chain again before
	// the next attempt.
	reload     bool
	lastUpload time.Time
	// lastActivity is when the journal last took new records: while
	// changes keep arriving, uploads wait (see readyAt).
	lastActivity time.Time
	lastErr      string
	wake         chan struct{}
	// heldForWriter: the last pass held a record back because its file
	// was open for writing (set before asking, so a close racing the
	// question still counts), so a close may be what it waits for.
	heldForWriter atomic.Bool
	workers       workerPool
	cf            *conflictState

	// rootOnce opens WORKDIR as a confine.Root the first time the drain
	// or the pull touches it.
	rootOnce sync.Once
	rootFS   *confine.Root
	rootErr  error

	links *Hardlinks
}

// root is WORKDIR as a confine.Root: every pull write goes through it.
func (d *Drainer) root() (*confine.Root, error) {
	d.rootOnce.Do(func() {
		d.rootFS, d.rootErr = confine.Open(d.workdir)
		if d.rootErr == nil {
			runtime.AddCleanup(d, func(r *confine.Root) { r.Close() }, d.rootFS)
		}
	})
	return d.rootFS, d.rootErr
}

// local is the file rel of WORKDIR (full its path) as the drain reads it:
// below WORKDIR's root where the kernel has openat2.
func (d *Drainer) local(rel, full string) syncer.Local {
	if root, err := d.root(); err == nil {
		return syncer.Below(root, rel, full)
	}
	return syncer.ByPath(full)
}

// NewDrainer wires a drain loop; Run starts it.
func NewDrainer(r syncer.Remote, j Journal, c Cache, workdir string, loc remote.Location, opts DrainOptions) *Drainer {
	if opts.Concurrency <= 0 {
		opts.Concurrency = syncer.DefaultConcurrency
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	if opts.MaxLag <= 0 {
		opts.MaxLag = max(30*time.Second, 10*opts.Settle)
	}
	if opts.OpenFileLag <= 0 {
		opts.OpenFileLag = 25 * time.Second
	}
	opts.OpenFileLag = min(opts.OpenFileLag, opts.MaxLag)
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Hardlinks == nil {
		opts.Hardlinks = NewHardlinks()
	}
	return &Drainer{links: opts.Hardlinks,
		r: r, j: j, c: c, workdir: workdir, loc: loc, opts: opts,
		inflight: map[string]bool{}, notBefore: map[string]time.Time{}, sources: map[string]int{}, inDoubt: map[string]bool{}, denied: map[string]bool{}, denials: map[string]int{}, started: time.Now(),
		wake: make(chan struct{}, 1), workers: newWorkerPool(), cf: newConflictState(),
	}
}

// State is the drain loop's view for status output.
type State struct {
	Offline    bool   // paused because the endpoint is unreachable
	OfflineErr string // its error
	// Paused says why the whole drain waits, when it does ("" otherwise),
	// in words for people; PausedErr is the error behind it.
	Paused     string
	PausedErr  string
	LastUpload time.Time
	LastError  string
	InFlight   int
}

// State reports whether the drain is paused and when the last upload
// finished.
func (d *Drainer) State() State {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := State{LastUpload: d.lastUpload, LastError: d.lastErr, InFlight: len(d.inflight)}
	if d.paused != notPaused {
		s.Paused, s.PausedErr = pauseWords[d.paused], d.pauseErr.Error()
		if d.paused == pausedUnreachable {
			s.Offline, s.OfflineErr = true, s.PausedErr
		}
	}
	return s
}

// errPermanent marks failures that retrying cannot fix.
type errPermanent struct{ error }

func (e errPermanent) Unwrap() error { return e.error }

func permanent(format string, a ...any) error { return errPermanent{fmt.Errorf(format, a...)} }

// step is one record's work in progress.
type step struct {
	// release frees the worker slot: it is called once the remote work
	// is done, so the next transfer starts while this record's end waits
	// for its commit (the path stays in flight until then, so it is not
	// picked up twice).
	release func()
	// deferred: cache writes wait in writes and commit with the record's
	// end (journal.DoneWith). Tree walks write as they go instead, so a
	// failure half-way keeps what was already sent.
	deferred bool
	writes   []cacheWrite
	// doubt: the record may have had an upload land unrecorded (see
	// Drainer.inDoubt), so a removal deletes the key even without a
	// cache entry.
	doubt bool
}

type cacheWrite struct {
	path string
	e    cache.Entry
	del  bool
}

// immediate is the step for work inside a tree walk.
var immediate = &step{release: func() {}}

func (d *Drainer) cachePut(st *step, rel string, e cache.Entry) error {
	if st.deferred {
		st.writes = append(st.writes, cacheWrite{path: rel, e: e})
		return nil
	}
	return d.c.Put(rel, e)
}

func (d *Drainer) cacheDelete(st *step, rel string) error {
	if st.deferred {
		st.writes = append(st.writes, cacheWrite{path: rel, del: true})
		return nil
	}
	return d.c.Delete(rel)
}

func (d *Drainer) applyWrites(tx *bbolt.Tx, writes []cacheWrite) error {
	for _, w := range writes {
		var err error
		if w.del {
			err = d.c.DeleteTx(tx, w.path)
		} else {
			err = d.c.PutTx(tx, w.path, w.e)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// flushWrites commits cache writes on their own, for a record that did not
// end in success: what the remote now holds is true all the same.
func (d *Drainer) flushWrites(st *step) {
	for _, w := range st.writes {
		var err error
		if w.del {
			err = d.c.Delete(w.path)
		} else {
			err = d.c.Put(w.path, w.e)
		}
		if err != nil {
			d.opts.Log.Error("cache", "path", w.path, "err", err)
		}
	}
	st.writes = nil
}

// handle applies r and ends its record.
func (d *Drainer) handle(ctx context.Context, r journal.Record, release func()) {
	d.mu.Lock()
	doubt := d.inDoubt[r.Path] || r.First.Before(d.started)
	d.mu.Unlock()
	st := &step{release: release, deferred: true, doubt: doubt}
	err := d.apply(ctx, r, st)
	release()
	if ctx.Err() != nil || err != nil {
		d.flushWrites(st)
	}
	if ctx.Err() != nil {
		return // shutting down: the record stays pending for the next start
	}
	log := d.opts.Log
	denied := errors.Is(err, remote.ErrAccessDenied)
	d.mu.Lock()
	if denied {
		d.denied[r.Path] = true
		d.denials[r.Path]++
	} else {
		delete(d.denials, r.Path)
		if err == nil || !remote.IsGlobal(err) {
			clear(d.denied)
		}
	}
	kind := pauseFor(err, len(d.denied))
	forbidden := d.denials[r.Path] >= deniedEverywhere
	if forbidden {
		delete(d.denials, r.Path)
	}
	d.mu.Unlock()
	switch {
	case err == nil:
		d.mu.Lock()
		delete(d.notBefore, r.Path)
		was := d.paused
		d.paused, d.pauseErr, d.outage = notPaused, nil, 0
		d.mu.Unlock()
		if was == pausedUnreachable {
			log.Info("endpoint reachable again; draining")
		} else if was != notPaused {
			log.Info("requests work again; draining")
		}
		if jerr := d.j.DoneWith(r, func(tx *bbolt.Tx) error { return d.applyWrites(tx, st.writes) }); jerr != nil {
			log.Error("journal done", "path", r.Path, "err", jerr)
		}
	case kind != notPaused:
		// One pause for everyone, not one per path: a dead endpoint or
		// refused credentials are not hammered by every pending file,
		// and no file is failed for what is not its fault.
		d.noteErr(err)
		d.mu.Lock()
		d.outage++
		// Capped lower than other retries: when requests work again,
		// draining should resume within seconds.
		wait := backoff(d.outage, min(d.opts.MaxBackoff, 10*time.Second))
		d.pauseUntil = time.Now().Add(wait)
		if d.paused != kind {
			log.Warn(pauseWords[kind], "err", err)
		}
		d.paused, d.pauseErr = kind, err
		d.reload = kind == pausedCredentials || kind == pausedDenied
		d.mu.Unlock()
		if jerr := d.j.Retry(r, err); jerr != nil {
			log.Error("journal retry", "path", r.Path, "err", jerr)
		}
	case isPermanent(err) && (!denied || forbidden):
		// A denial fails the file only once it was denied a few times
		// while other requests went through: a key the policy forbids.
		log.Warn("cannot sync; moved to the failed list (s3sync status shows it)", "path", r.Path, "err", err)
		d.noteErr(err)
		if jerr := d.j.Fail(r, err); jerr != nil {
			log.Error("journal fail", "path", r.Path, "err", jerr)
		}
	default:
		d.noteErr(err)
		d.mu.Lock()
		d.notBefore[r.Path] = time.Now().Add(backoff(r.Attempts+1, d.opts.MaxBackoff))
		d.mu.Unlock()
		log.Info("will retry", "path", r.Path, "err", err)
		if jerr := d.j.Retry(r, err); jerr != nil {
			log.Error("journal retry", "path", r.Path, "err", jerr)
		}
	}
}

func (d *Drainer) noteErr(err error) {
	d.mu.Lock()
	d.lastErr = err.Error()
	d.mu.Unlock()
}

func isPermanent(err error) bool {
	var p errPermanent
	return errors.As(err, &p) || remote.IsPermanent(err)
}

// backoff is capped exponential with jitter: about 0.5s, 1s, 2s, … max.
func backoff(attempt int, max time.Duration) time.Duration {
	d := 500 * time.Millisecond << min(attempt-1, 16)
	if d > max || d <= 0 {
		d = max
	}
	return d/2 + rand.N(d/2+1)
}

func (d *Drainer) key(rel string) string { return d.loc.Prefix + rel }
