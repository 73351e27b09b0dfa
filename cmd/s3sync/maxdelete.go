package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/s3sync/s3sync/journal"
	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/state"
	"github.com/s3sync/s3sync/syncer"
)

// refusedErr is the exit for a run whose deletions --max-delete refused:
// the rest of the run was done, and repeating it changes nothing until a
// person decides, so it is exit 2 (as skipped files are), or 1 if
// transfers failed as well.
func refusedErr(r *syncer.DeleteRefusal, sum syncer.Summary) error {
	code := exitSkipped
	if sum.Failed > 0 {
		code = exitFailed
	}
	return &exitError{code: code, msg: r.Error()}
}

// removalScan takes the removals the start-up scan finds (files the cache
// knows that are gone from WORKDIR) as it finds them. With --delete each
// becomes a deleted object, so a WORKDIR emptied while unmounted would
// empty the bucket: under a --max-delete limit nothing is recorded until
// they are all counted, and over the limit none is (the cache keeps them,
// so the next mount asks again) while the mount goes on serving and
// uploading. Without --delete, or with no limit, each is recorded at once.
//
// It holds at most keepRemovals paths: a million files deleted while
// unmounted are counted, and recorded by a second scan once allowed,
// rather than held in memory.
type removalScan struct {
	ctx     context.Context
	j       *journal.Journal
	sf      syncFlags
	limited bool
	found   int // removals found
	fresh   int // of them, not the journal's already (see journal.Covered)
	check   []string
	kept    []string
	over    bool // more than keepRemovals: kept was dropped
}

// keepRemovals bounds the paths a removalScan holds (about 5 MiB at
// typical path lengths); a var for tests.
var keepRemovals = 65536

// coveredBatch is how many paths one journal.Covered transaction checks.
const coveredBatch = 4096

func newRemovalScan(ctx context.Context, j *journal.Journal, sf syncFlags) *removalScan {
	return &removalScan{ctx: ctx, j: j, sf: sf, limited: sf.delete && !sf.maxDelete.Unlimited()}
}

// add takes one removal the scan found.
func (s *removalScan) add(p string) {
	s.found++
	if !s.limited {
		s.record(p)
		return
	}
	if s.found > keepRemovals {
		s.kept, s.over = nil, true
	} else {
		s.kept = append(s.kept, p)
	}
	s.check = append(s.check, p)
	if len(s.check) == coveredBatch {
		s.count()
	}
}

func (s *removalScan) record(p string) {
	s.j.Removed(p, false)
	if s.found%scanSyncEvery == 0 {
		// As the scan's changes: the journal commits more slowly than
		// the scan finds them (see scanSyncEvery).
		s.j.Sync(s.ctx)
	}
}

// count adds the paths waiting in check to fresh, but those the journal
// already holds a removal for: removed through the mount, or allowed
// before. One it cannot tell about counts, as the cautious answer.
func (s *removalScan) count() {
	covered, err := s.j.Covered(s.check)
	for i := range s.check {
		if err != nil || !covered[i] {
			s.fresh++
		}
	}
	s.check = s.check[:0]
}

// finish decides, once the scan is over and the cache held cached
// entries; rescan runs the scan again with only its removals (for more
// than keepRemovals of them). It returns how many were recorded, and the
// refusal, if there was one, for status to show.
func (s *removalScan) finish(cached int, rescan func(removed func(string)) error, log *slog.Logger) (int, *state.ScanRefusal, error) {
	if !s.limited || s.found == 0 {
		if s.sf.delete && s.found > 0 {
			log.Info("deleting from the bucket the files removed from WORKDIR while it was not mounted", "files", s.found)
		}
		return s.found, nil, nil
	}
	s.count()
	sf, fresh := s.sf, s.fresh
	if !sf.maxDelete.Allows(int64(fresh), int64(cached)) {
		log.Warn(fmt.Sprintf("%d of the %d files the bucket holds for WORKDIR (%.0f%%) are gone from it since it was last mounted, over %s: "+
			"none of them is deleted from the bucket, and the mount serves and uploads as usual; if they were removed on purpose, mount again with --max-delete %d (or 100%%)",
			fresh, cached, float64(fresh)*100/float64(max(cached, 1)), sf.maxDelete, fresh))
		return 0, &state.ScanRefusal{Files: fresh, Of: cached, Limit: sf.maxDelete.String(), Allow: fmt.Sprintf("--max-delete %d", fresh), At: time.Now()}, nil
	}
	if fresh > 0 {
		log.Info("deleting from the bucket the files removed from WORKDIR while it was not mounted", "files", fresh)
	}
	allowed, found := s.found, 0
	s.found = 0
	if !s.over {
		for _, p := range s.kept {
			s.found++
			s.record(p)
		}
		s.kept = nil
		return s.found, nil, nil
	}
	err := rescan(func(p string) {
		// Only as many as were counted and allowed: one gone since the
		// count waits for the next start-up (the cache keeps it).
		if found++; found <= allowed {
			s.found++
			s.record(p)
		}
	})
	return s.found, nil, err
}

// deleteCounter counts the objects the mount deletes, for the log: a
// deletion is the one change a person cannot take back from the bucket.
type deleteCounter struct {
	n atomic.Int64
}

// observe is remote.Config.ObserveTransfer: it counts the keys of each
// delete whose requests all went through.
func (d *deleteCounter) observe(t remote.Transfer) {
	if t.Op == remote.OpDelete && t.Err == nil {
		d.n.Add(int64(t.Keys - len(t.Failed)))
	}
}

// logEvery logs the deletions made since the last line, every interval
// while there are any, and once more when stop is closed.
func (d *deleteCounter) logEvery(interval time.Duration, log *slog.Logger, stop <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var logged int64
	flush := func() {
		if n := d.n.Load(); n > logged {
			log.Info("deleted from the bucket", "objects", n-logged, "since start", n)
			logged = n
		}
	}
	for {
		select {
		case <-t.C:
			flush()
		case <-stop:
			flush()
			return
		}
	}
}
