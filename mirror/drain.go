package mirror

import (
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/s3sync/s3sync/cache"
	"github.com/s3sync/s3sync/internal/confine"
	"github.com/s3sync/s3sync/journal"
	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/syncer"
)

// Journal is what the drain loop needs from the journal: ordered pending
// records, and two of the three ways a record ends (retry later, failed;
// done is Ender's).
type Journal interface {
	Notify() <-chan struct{}
	// Next hands out the pending records a run at a time (see
	// journal.Journal.Next).
	Next(b journal.Batch) (journal.Batch, error)
	Retry(r journal.Record, err error) error
	Fail(r journal.Record, err error) error
	SetMeta(key string, v []byte) error
	// Changed records that path changed (another name of a file the
	// drain syncs: see Hardlinks).
	Changed(path string)
}

// Ender ends a record whose change the remote now holds (state.State).
type Ender interface {
	// Done removes r from the journal, unless its path was re-recorded
	// since, and makes writes to the cache either way, in one
	// transaction: the cache never says the bucket holds what the journal
	// still has to send, nor the other way round. A write the cache
	// refuses is returned, and r stays pending.
	Done(r journal.Record, writes []cache.Write) error
}

// MetaLastUpload is the journal meta key holding the last upload's time
// (RFC 3339), for status while unmounted.
const MetaLastUpload = "last_upload"

// Cache is the per-path record of what the remote holds.
type Cache interface {
	Get(path string) (cache.Entry, bool, error)
	Put(path string, e cache.Entry) error
	Delete(path string) error
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
	end     Ender
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

// NewDrainer wires a drain loop; Run starts it. j, c and end are one
// state's (state.State: its Journal, its Cache, and itself).
func NewDrainer(r syncer.Remote, j Journal, c Cache, end Ender, workdir string, loc remote.Location, opts DrainOptions) *Drainer {
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
		r: r, j: j, c: c, end: end, workdir: workdir, loc: loc, opts: opts,
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

func (d *Drainer) key(rel string) string { return d.loc.Prefix + rel }
