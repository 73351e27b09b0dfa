package mirror

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/s3sync/s3sync/cache"
	"github.com/s3sync/s3sync/journal"
	"github.com/s3sync/s3sync/remote"
)

// How a record's work ends: the cache writes it made wait in its step and
// commit with the record's end (done), or on their own when it is retried
// later or failed.

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
	// end (Ender.Done). Tree walks write as they go instead, so a
	// failure half-way keeps what was already sent.
	deferred bool
	writes   []cache.Write
	// doubt: the record may have had an upload land unrecorded (see
	// Drainer.inDoubt), so a removal deletes the key even without a
	// cache entry.
	doubt bool
}

// immediate is the step for work inside a tree walk.
var immediate = &step{release: func() {}}

func (d *Drainer) cachePut(st *step, rel string, e cache.Entry) error {
	if st.deferred {
		st.writes = append(st.writes, cache.Write{Path: rel, Entry: e})
		return nil
	}
	return d.c.Put(rel, e)
}

func (d *Drainer) cacheDelete(st *step, rel string) error {
	if st.deferred {
		st.writes = append(st.writes, cache.Write{Path: rel, Delete: true})
		return nil
	}
	return d.c.Delete(rel)
}

// flushWrites commits cache writes on their own, for a record that did not
// end in success: what the remote now holds is true all the same.
func (d *Drainer) flushWrites(st *step) {
	for _, w := range st.writes {
		var err error
		if w.Delete {
			err = d.c.Delete(w.Path)
		} else {
			err = d.c.Put(w.Path, w.Entry)
		}
		if err != nil {
			d.opts.Log.Error("cache", "path", w.Path, "err", err)
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
		if jerr := d.end.Done(r, st.writes); jerr != nil {
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
