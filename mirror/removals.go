package mirror

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/s3sync/s3sync/journal"
	"github.com/s3sync/s3sync/state"
	"github.com/s3sync/s3sync/syncer"
)

// RemovalScan takes the removals the start-up scan finds (files the cache
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
type RemovalScan struct {
	ctx       context.Context
	j         *journal.Journal
	delete    bool
	maxDelete syncer.MaxDelete
	limited   bool
	found     int // removals found
	fresh     int // of them, not the journal's already (see journal.Covered)
	check     []string
	kept      []string
	over      bool // more than keepRemovals: kept was dropped
}

// keepRemovals bounds the paths a RemovalScan holds (about 5 MiB at
// typical path lengths); a var for tests.
var keepRemovals = 65536

// coveredBatch is how many paths one journal.Covered transaction checks.
const coveredBatch = 4096

// scanSyncEvery is how many changes the start-up scan records between
// waits for the journal to commit them (a few MiB of queue at most).
const scanSyncEvery = 16384

// NewRemovalScan gates the removals recorded into j by the mount's
// --delete and --max-delete.
func NewRemovalScan(ctx context.Context, j *journal.Journal, delete bool, maxDelete syncer.MaxDelete) *RemovalScan {
	return &RemovalScan{ctx: ctx, j: j, delete: delete, maxDelete: maxDelete, limited: delete && !maxDelete.Unlimited()}
}

// Add takes one removal the scan found.
func (s *RemovalScan) Add(p string) {
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

func (s *RemovalScan) record(p string) {
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
func (s *RemovalScan) count() {
	covered, err := s.j.Covered(s.check)
	for i := range s.check {
		if err != nil || !covered[i] {
			s.fresh++
		}
	}
	s.check = s.check[:0]
}

// Finish decides, once the scan is over and the cache held cached
// entries; rescan runs the scan again with only its removals (for more
// than keepRemovals of them). It returns how many were recorded, and the
// refusal, if there was one, for status to show (RecordScanRefusal).
func (s *RemovalScan) Finish(cached int, rescan func(removed func(string)) error, log *slog.Logger) (int, *state.ScanRefusal, error) {
	if !s.limited || s.found == 0 {
		if s.delete && s.found > 0 {
			log.Info("deleting from the bucket the files removed from WORKDIR while it was not mounted", "files", s.found)
		}
		return s.found, nil, nil
	}
	s.count()
	maxDelete, fresh := s.maxDelete, s.fresh
	if !maxDelete.Allows(int64(fresh), int64(cached)) {
		log.Warn(fmt.Sprintf("%d of the %d files the bucket holds for WORKDIR (%.0f%%) are gone from it since it was last mounted, over %s: "+
			"none of them is deleted from the bucket, and the mount serves and uploads as usual; if they were removed on purpose, mount again with --max-delete %d (or 100%%)",
			fresh, cached, float64(fresh)*100/float64(max(cached, 1)), maxDelete, fresh))
		return 0, &state.ScanRefusal{Files: fresh, Of: cached, Limit: maxDelete.String(), Allow: fmt.Sprintf("--max-delete %d", fresh), At: time.Now()}, nil
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

// RecordScanRefusal keeps the deletions this start-up's scan refused in the
// state (nil: none), so that status shows them long after this log.
func RecordScanRefusal(st *state.State, r *state.ScanRefusal, log *slog.Logger) {
	if err := st.SetScanRefusal(r); err != nil {
		log.Warn("could not keep the refused deletions in the state; only this log tells of them", "err", err)
	}
}
