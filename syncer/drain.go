package syncer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.etcd.io/bbolt"

	"github.com/s3sync/s3sync/cache"
	"github.com/s3sync/s3sync/journal"
	"github.com/s3sync/s3sync/remote"
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
	Uploads
}

// DrainOptions are the mount's sync flags.
type DrainOptions struct {
	Delete       bool
	Filters      *Filters
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
	// any data). Call Kick when a file is closed.
	Writing func(path string) bool
	// OpenFileLag bounds that wait (default 25s, at most MaxLag): with the
	// mount recording open files that changed every 5s, a file kept open
	// for writing is backed up at least every 30s.
	OpenFileLag time.Duration
}

// Drainer sends the journal's pending changes to the bucket in the
// background: several workers, one operation per path at a time, after
// the settle delay. Transient failures back off exponentially with jitter;
// permanent ones go to the journal's failed list, never dropped.
type Drainer struct {
	r       Remote
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
	// reload: the credentials were refused; read the chain again before
	// the next attempt.
	reload     bool
	lastUpload time.Time
	// lastActivity is when the journal last took new records: while
	// changes keep arriving, uploads wait (see readyAt).
	lastActivity time.Time
	lastErr      string
	wake         chan struct{}
	workers      workerPool
}

// NewDrainer wires a drain loop; Run starts it.
func NewDrainer(r Remote, j Journal, c Cache, workdir string, loc remote.Location, opts DrainOptions) *Drainer {
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
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
	return &Drainer{
		r: r, j: j, c: c, workdir: workdir, loc: loc, opts: opts,
		inflight: map[string]bool{}, notBefore: map[string]time.Time{}, sources: map[string]int{}, inDoubt: map[string]bool{}, denied: map[string]bool{}, started: time.Now(),
		wake: make(chan struct{}, 1), workers: newWorkerPool(),
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

// pauseKind is why the drain is paused.
type pauseKind int

const (
	notPaused pauseKind = iota
	pausedUnreachable
	pausedCredentials
	pausedClock
	pausedDenied
)

var pauseWords = map[pauseKind]string{
	pausedUnreachable: "endpoint unreachable; changes are kept and sent when it returns",
	pausedCredentials: "credentials rejected or missing; draining paused, the credential chain is read again before each retry",
	pausedClock:       "the store refuses this machine's clock; draining paused until the clock is right (timedatectl, chrony)",
	pausedDenied:      "access denied on every request; draining paused until permission is restored",
}

// deniedEverywhere: AccessDenied for this many different paths in a row
// means the credentials lost access, not that a few keys are forbidden.
const deniedEverywhere = 3

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

// credentialReloader is implemented by *remote.Client.
type credentialReloader interface {
	ReloadCredentials(ctx context.Context) error
}

func (d *Drainer) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Kick makes the loop look at the journal again now (after RetryFailed).
func (d *Drainer) Kick() { d.poke() }

// Run drains until ctx ends. Work in flight is finished (or cancelled with
// ctx) before it returns.
func (d *Drainer) Run(ctx context.Context) error {
	sem := make(chan struct{}, d.opts.Concurrency)
	var wg sync.WaitGroup
	timer := time.NewTimer(0)
	defer timer.Stop()
	var saved time.Time
	saveLast := func() {
		d.mu.Lock()
		last := d.lastUpload
		d.mu.Unlock()
		if last.After(saved) {
			if d.j.SetMeta(MetaLastUpload, []byte(last.Format(time.RFC3339Nano))) == nil {
				saved = last
			}
		}
	}
	defer saveLast() // after the workers are done: runs last
	defer wg.Wait()
	lastSave := time.Now()
	for {
		if time.Since(lastSave) > 5*time.Second {
			saveLast()
			lastSave = time.Now()
		}
		next := d.pass(ctx, sem, &wg)
		wait := time.Until(next)
		if next.IsZero() || wait > time.Second {
			wait = time.Second // a periodic look also catches missed wake-ups
		}
		if wait < 5*time.Millisecond {
			wait = 5 * time.Millisecond
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-d.j.Notify():
			d.mu.Lock()
			d.lastActivity = time.Now()
			d.mu.Unlock()
		case <-d.wake:
		case <-timer.C:
		}
	}
}

// pass dispatches every pending record that may start now and returns the
// earliest time a waiting record becomes ready (zero: none waiting).
func (d *Drainer) pass(ctx context.Context, sem chan struct{}, wg *sync.WaitGroup) time.Time {
	now := time.Now()
	var next time.Time
	later := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	d.mu.Lock()
	if now.Before(d.pauseUntil) {
		t := d.pauseUntil
		d.mu.Unlock()
		return t
	}
	reload := d.reload
	d.reload = false
	d.mu.Unlock()
	if cr, ok := d.r.(credentialReloader); ok && reload {
		// Rotated keys, a refreshed session token, a fixed profile: the
		// next attempt uses whatever the chain says now.
		if err := cr.ReloadCredentials(ctx); err != nil {
			d.opts.Log.Debug("reload credentials", "err", err)
		}
	}
	err := d.j.Pending(func(r journal.Record) bool {
		if ctx.Err() != nil {
			return false
		}
		d.mu.Lock()
		_, busy := d.inflight[r.Path]
		busy = busy || d.blocked(r.Path) || (r.IsDir && d.inflightBelow(r.Path))
		nb := d.notBefore[r.Path]
		d.mu.Unlock()
		if busy {
			return true
		}
		if ready := d.readyAt(r); now.Before(ready) {
			later(ready)
			// Records come in order of their last change, so the rest
			// are not ready either: stop here rather than scan a long
			// queue on every wake-up while files are being written.
			return false
		}
		if now.Before(nb) {
			later(nb)
			return true
		}
		if d.opts.Writing != nil && r.Op != journal.OpRemoved && now.Before(r.First.Add(d.opts.OpenFileLag)) && d.opts.Writing(r.Path) {
			// Kick brings us back when it is closed; look again anyway
			// after a settle delay, and at OpenFileLag at the latest.
			again := now.Add(max(d.opts.Settle, 100*time.Millisecond))
			if lag := r.First.Add(d.opts.OpenFileLag); lag.Before(again) {
				again = lag
			}
			later(again)
			return true
		}
		select {
		case sem <- struct{}{}:
		default:
			return false // all workers busy; a finishing one wakes us
		}
		d.mu.Lock()
		d.inflight[r.Path] = r.IsDir
		if r.From != "" {
			d.sources[r.From]++
		}
		d.mu.Unlock()
		wg.Add(1)
		d.workers.run(func() {
			defer wg.Done()
			var once sync.Once
			release := func() {
				once.Do(func() {
					<-sem
					// Wake the loop once a quarter of the workers are
					// free, not after every file: each pass reads the
					// queue head.
					if len(sem) <= cap(sem)*3/4 {
						d.poke()
					}
				})
			}
			defer release()
			d.handle(ctx, r, release)
			d.mu.Lock()
			delete(d.inflight, r.Path)
			if r.From != "" {
				if d.sources[r.From]--; d.sources[r.From] == 0 {
					delete(d.sources, r.From)
				}
			}
			d.mu.Unlock()
		})
		return true
	})
	if err != nil && ctx.Err() == nil {
		d.opts.Log.Error("read journal", "err", err)
	}
	return next
}

// blocked reports whether a record for path must wait because an in-flight
// rename may still copy server-side from path, from a file below it, or
// from a file inside a directory path names (whose removal would delete
// it): a PUT, DELETE or copy there could overtake the copy. The copy is
// conditional on the ETag the cache recorded anyway (a copy that lost the
// race is refused and the file uploaded instead); holding back keeps that
// rare. Called with d.mu held.
//
// Likewise a path below an in-flight tree record waits: the tree's copy or
// upload of that key and the path's own upload would race, and the one to
// land last, possibly the older content, would stay.
func (d *Drainer) blocked(path string) bool {
	for src := range d.sources {
		if path == src || under(path, src) || under(src, path) {
			return true
		}
	}
	for p, tree := range d.inflight {
		if tree && under(path, p) {
			return true
		}
	}
	return false
}

// inflightBelow reports whether a record below dir is in flight: a tree
// record must wait for it, or an upload landing after a tree removal walked
// the cache would leave its object behind, and one racing a tree's copy of
// the same key could leave the older content. Called with d.mu held.
func (d *Drainer) inflightBelow(dir string) bool {
	for p := range d.inflight {
		if under(p, dir) {
			return true
		}
	}
	return false
}

// under reports whether p lies below the directory dir.
func under(p, dir string) bool {
	return len(p) > len(dir) && p[len(dir)] == '/' && p[:len(dir)] == dir
}

// readyAt is when a record has settled: its path unchanged for the settle
// delay and the mount as a whole quiet for a quarter of it — so a burst of
// work (an untar, a build) does not compete with its own uploads for the
// machine, and once it ends the files it wrote early go at once while the
// last ones finish settling — or, for a file or a mount that never stops
// changing, once its oldest unsent change is MaxLag old.
func (d *Drainer) readyAt(r journal.Record) time.Time {
	ready := r.Last.Add(d.opts.Settle)
	d.mu.Lock()
	quiet := d.lastActivity.Add(d.opts.Settle / 4)
	d.mu.Unlock()
	if quiet.After(ready) {
		ready = quiet
	}
	if cap := r.First.Add(d.opts.MaxLag); cap.Before(ready) {
		return cap
	}
	return ready
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
	} else if err == nil || !remote.IsGlobal(err) {
		clear(d.denied)
	}
	kind := pauseFor(err, len(d.denied))
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
	case isPermanent(err) && (!denied || r.Attempts+1 >= deniedEverywhere):
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

// pauseFor says whether err should pause the whole drain, and why.
func pauseFor(err error, denials int) pauseKind {
	switch {
	case err == nil:
		return notPaused
	case errors.Is(err, remote.ErrUnreachable):
		return pausedUnreachable
	case errors.Is(err, remote.ErrBadCredentials), errors.Is(err, remote.ErrNoCredentials):
		return pausedCredentials
	case errors.Is(err, remote.ErrClockSkew):
		return pausedClock
	case errors.Is(err, remote.ErrAccessDenied) && denials >= deniedEverywhere:
		return pausedDenied
	}
	return notPaused
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

// apply makes the remote hold what WORKDIR holds at r.Path now.
func (d *Drainer) apply(ctx context.Context, r journal.Record, st *step) error {
	if r.Op == journal.OpRemoved && r.IsDir {
		return d.removeTree(ctx, r.Path, st.doubt)
	}
	if r.IsDir {
		// A directory rename, possibly with a later change coalesced onto
		// it: its files were never journaled one by one.
		return d.syncTree(ctx, r.Path, r.From)
	}
	return d.syncPath(ctx, r.Path, r.From, st)
}

// syncPath brings one path up to date; from is a rename hint.
func (d *Drainer) syncPath(ctx context.Context, rel, from string, st *step) error {
	if d.opts.Filters.Excluded(rel) {
		return nil
	}
	full := filepath.Join(d.workdir, filepath.FromSlash(rel))
	info, err := os.Lstat(full)
	if errors.Is(err, fs.ErrNotExist) {
		return d.removeFile(ctx, rel, st)
	}
	if err != nil {
		return err
	}
	if info.IsDir() {
		// mkdir, chmod of a directory, or a file replaced by one: S3 has
		// no directories, and every file that enters this one through the
		// mount is recorded on its own (a renamed-in tree comes as a
		// directory rename), so walking it here would only race those
		// records and upload their files twice. A file that was here is
		// gone, though.
		return d.removeFile(ctx, rel, st)
	}
	if info.Mode()&fs.ModeSymlink != 0 {
		// As aws s3 sync does, a symlink is synced as what it points to:
		// a link to a directory, as the files below it.
		if info, err = os.Stat(full); err != nil {
			return permanent("symlink %s points nowhere: %w", rel, err)
		}
		if info.IsDir() {
			return d.syncTree(ctx, rel, "")
		}
	}
	if !info.Mode().IsRegular() {
		return permanent("%s is a %s; only regular files can be stored in S3", rel, kindOf(info.Mode()))
	}
	return d.syncFile(ctx, rel, full, info, from, st)
}

// syncFile calls st.release once the remote holds the file, before the
// cache entry is committed.
func (d *Drainer) syncFile(ctx context.Context, rel, full string, info os.FileInfo, from string, st *step) error {
	key := d.key(rel)
	if len(key) > MaxKeyLen {
		return permanent("key is %d bytes, over S3's limit of %d; rename the file", len(key), MaxKeyLen)
	}
	if e, ok, err := d.c.Get(rel); err != nil {
		return err
	} else if ok && e.Size == info.Size() && e.Mtime.Equal(info.ModTime()) {
		return nil // the remote already holds exactly this
	}
	if from != "" && from != rel {
		// A rename: copy server-side what the cache says the old key
		// holds, if the file still has that size and mtime, and only if
		// the old key still holds exactly that content (its ETag): a
		// source rewritten since, or a cache entry lost in a crash, must
		// not put the new bytes under this name.
		if e, ok, _ := d.c.Get(from); ok && e.ETag != "" && e.Size == info.Size() && e.Mtime.Equal(info.ModTime()) {
			etag, err := d.r.Copy(ctx, d.loc.Bucket, d.key(from), d.loc.Bucket, key, e.Size,
				remote.PutOptions{StorageClass: d.opts.StorageClass, SourceETag: e.ETag})
			if err == nil {
				st.release()
				e.ETag, e.Synced = etag, time.Now()
				return d.cachePut(st, rel, e)
			}
			if !errors.Is(err, remote.ErrNotFound) && !errors.Is(err, remote.ErrChanged) {
				if mayHaveLanded(err) {
					d.mu.Lock()
					d.inDoubt[rel] = true
					d.mu.Unlock()
				}
				return err
			}
			// The old object is gone or holds something else: upload.
		}
	}
	res, err := uploadFile(ctx, d.r, full, d.loc.Bucket, key, d.opts.StorageClass, &resumer{store: d.c, rel: rel})
	now := time.Now()
	if res.ETag != "" {
		// The object holds what the file had at res's size and mtime,
		// whatever comes next: the cache must know, or a removal of the
		// file would leave the object behind.
		d.mu.Lock()
		d.lastUpload = now
		delete(d.inDoubt, rel)
		d.mu.Unlock()
		e := cache.Entry{Size: res.Size, Mtime: res.Mtime, ETag: res.ETag, StorageClass: d.opts.StorageClass, Synced: now}
		if err == nil {
			st.release()
			return d.cachePut(st, rel, e)
		}
		if perr := d.c.Put(rel, e); perr != nil {
			return perr
		}
	}
	if res.InDoubt {
		d.mu.Lock()
		d.inDoubt[rel] = true
		d.mu.Unlock()
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return d.removeFile(ctx, rel, st)
	case errors.Is(err, fs.ErrPermission):
		// This file only: retrying will not make it readable.
		return permanent("cannot read %s: %w", rel, err)
	}
	return err
}

// removeFile forgets a path that no longer exists, deleting its object
// with --delete. Without it the object stays in the bucket, as with aws s3
// sync; the cache entry goes, since WORKDIR no longer has that file.
func (d *Drainer) removeFile(ctx context.Context, rel string, st *step) error {
	_, ok, err := d.c.Get(rel)
	if err != nil {
		return err
	}
	if !ok && !st.doubt {
		return nil
	}
	if d.opts.Delete && !d.opts.Filters.Excluded(rel) {
		if err := d.deleteKeys(ctx, []string{d.key(rel)}); err != nil {
			return err
		}
		d.mu.Lock()
		delete(d.inDoubt, rel)
		d.mu.Unlock()
	}
	if !ok {
		return nil
	}
	return d.cacheDelete(st, rel)
}

// removeTree handles rmdir or a directory renamed away: every cached path
// below it that is gone from WORKDIR is removed.
func (d *Drainer) removeTree(ctx context.Context, rel string, doubt bool) error {
	var gone []string
	isGone := func(p string) bool {
		_, err := os.Lstat(filepath.Join(d.workdir, filepath.FromSlash(p)))
		return errors.Is(err, fs.ErrNotExist)
	}
	err := d.c.Walk(rel+"/", func(p string, _ cache.Entry) error {
		if isGone(p) {
			gone = append(gone, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	d.mu.Lock()
	for p := range d.inDoubt {
		doubt = doubt || under(p, rel)
	}
	d.mu.Unlock()
	if d.opts.Delete {
		var keys []string
		for _, p := range gone {
			if !d.opts.Filters.Excluded(p) {
				keys = append(keys, d.key(p))
			}
		}
		if doubt {
			// Uploads below may have landed unrecorded: ask the bucket.
			known := map[string]bool{}
			for _, k := range keys {
				known[k] = true
			}
			err := d.r.List(ctx, d.loc.Bucket, d.key(rel)+"/", func(o remote.Object) error {
				p := o.Key[len(d.loc.Prefix):]
				if !known[o.Key] && isGone(p) && !d.opts.Filters.Excluded(p) {
					keys = append(keys, o.Key)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		if err := d.deleteKeys(ctx, keys); err != nil {
			return err
		}
	}
	for _, p := range gone {
		if err := d.c.Delete(p); err != nil {
			return err
		}
	}
	if d.opts.Delete {
		d.mu.Lock()
		for p := range d.inDoubt {
			if under(p, rel) && isGone(p) {
				delete(d.inDoubt, p)
			}
		}
		d.mu.Unlock()
	}
	// The path may now be a file again (rmdir x; echo > x).
	if info, err := os.Lstat(filepath.Join(d.workdir, filepath.FromSlash(rel))); err == nil && !info.IsDir() {
		return d.syncPath(ctx, rel, "", immediate)
	}
	return nil
}

func (d *Drainer) deleteKeys(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	failed, err := d.r.Delete(ctx, d.loc.Bucket, keys)
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		return failed[0].Err
	}
	return nil
}

// syncTree syncs every file below the directory rel; from, when set, is
// the directory's old name, whose objects can be copied server-side.
func (d *Drainer) syncTree(ctx context.Context, rel, from string) error {
	root := filepath.Join(d.workdir, filepath.FromSlash(rel))
	var firstErr error
	w, err := newLocalWalk(root, true, func(path string, err error) {
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
	for {
		f, ok := w.Next()
		if !ok {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		sub := rel + "/" + f.Rel
		if d.opts.Filters.Excluded(sub) {
			continue
		}
		hint := ""
		if from != "" {
			hint = from + "/" + f.Rel
		}
		info, err := os.Stat(f.Path)
		if err != nil {
			continue // gone since the walk: its own record handles it
		}
		if err := d.syncFile(ctx, sub, f.Path, info, hint, immediate); err != nil {
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

// SeedCache fills an empty cache from the bucket listing on a first mount,
// so files already in the bucket (say, from an earlier reconcile) are not
// sent again: a file counts as held when the listing says an upload would
// not transfer it, by the same rule reconcile uses.
func SeedCache(ctx context.Context, r Remote, c Cache, workdir string, loc remote.Location) (int, error) {
	type put struct {
		rel string
		e   cache.Entry
	}
	var batch []put
	n := 0
	// Puts from concurrent goroutines share one commit in the cache.
	flush := func() error {
		errs := make(chan error, len(batch))
		for _, p := range batch {
			go func() { errs <- c.Put(p.rel, p.e) }()
		}
		var first error
		for range batch {
			if err := <-errs; err != nil && first == nil {
				first = err
			}
		}
		n += len(batch)
		batch = batch[:0]
		return first
	}
	err := r.List(ctx, loc.Bucket, loc.Prefix, func(o remote.Object) error {
		rel := o.Key[len(loc.Prefix):]
		p, err := LocalPath(workdir, rel)
		if err != nil {
			return nil
		}
		info, err := os.Stat(p)
		if err != nil || !info.Mode().IsRegular() {
			return nil
		}
		if ShouldTransfer(Upload, Side{info.Size(), info.ModTime()}, Side{o.Size, o.LastModified}, Compare{}) {
			return nil
		}
		batch = append(batch, put{rel, cache.Entry{Size: info.Size(), Mtime: info.ModTime(), ETag: o.ETag, StorageClass: o.StorageClass, Synced: o.LastModified}})
		if len(batch) == 256 {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	return n, err
}
