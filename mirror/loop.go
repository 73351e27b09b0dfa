package mirror

import (
	"context"
	"sync"
	"time"

	"github.com/s3sync/s3sync/journal"
)

// The loop: which pending records start when, on how many workers, and
// what wakes it.

func (d *Drainer) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Kick makes the loop look at the journal again now (after RetryFailed).
func (d *Drainer) Kick() { d.poke() }

// WriterClosed says the last handle that could change some file was closed.
// The loop looks again now only if its last pass held a record back for a
// file open for writing: an untar closes thousands of files a second, and
// waking the loop for each costs more CPU than serving the file's requests.
func (d *Drainer) WriterClosed() {
	if d.heldForWriter.Load() {
		d.poke()
	}
}

// writing is DrainOptions.Writing, noting first that a close may now be
// worth a wake-up: a close racing the question then still wakes the loop.
func (d *Drainer) writing(path string) bool {
	d.heldForWriter.Store(true)
	return d.opts.Writing(path)
}

// Run drains until ctx ends. Work in flight is finished (or cancelled with
// ctx) before it returns.
func (d *Drainer) Run(ctx context.Context) error {
	if err := d.pruneSkipped(); err != nil {
		d.opts.Log.Warn("could not check the skipped files", "err", err)
	}
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
	held := false
	defer func() {
		if !held {
			d.heldForWriter.Store(false)
		}
	}()
	if cr, ok := d.r.(credentialReloader); ok && reload {
		// Rotated keys, a refreshed session token, a fixed profile: the
		// next attempt uses whatever the chain says now.
		if err := cr.ReloadCredentials(ctx); err != nil {
			d.opts.Log.Debug("reload credentials", "err", err)
		}
	}
	// take starts r if it is ready and a worker is free; false: stop
	// looking further down the queue for now.
	take := func(r journal.Record) bool {
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
		if d.opts.Writing != nil && r.Op != journal.OpRemoved && now.Before(r.First.Add(d.opts.OpenFileLag)) && d.writing(r.Path) {
			held = true
			// WriterClosed brings us back when it is closed; look again anyway
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
	}
	var b journal.Batch
	var err error
batches:
	for {
		if b, err = d.j.Next(b); err != nil || len(b.Records) == 0 {
			break
		}
		for _, r := range b.Records {
			if !take(r) {
				break batches
			}
		}
	}
	if err != nil && ctx.Err() == nil {
		d.opts.Log.Error("read journal", "err", err)
	}
	return next
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
