package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/s3sync/s3sync/journal"
	"github.com/s3sync/s3sync/remote"
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

// scanRemovals decides about the removals the start-up scan found (files
// the cache knows that are gone from WORKDIR). With --delete each becomes
// a deleted object, so a WORKDIR emptied while unmounted would empty the
// bucket: over the limit none is recorded (the cache keeps them, so the
// next mount asks again) and the mount goes on serving and uploading.
// Without --delete a removal deletes nothing in the bucket and every one
// is recorded. It returns how many were recorded, and the refusal, if
// there was one, for status to show.
func scanRemovals(j *journal.Journal, removed []string, cached int, sf syncFlags, log *slog.Logger) (int, *scanRefusal) {
	if len(removed) == 0 {
		return 0, nil
	}
	if sf.delete {
		// Paths the journal already holds a record for were removed
		// through the mount, or allowed before: not this scan's to decide.
		covered := journaled(j)
		fresh := 0
		for _, p := range removed {
			if !covered.has(p) {
				fresh++
			}
		}
		if !sf.maxDelete.Allows(int64(fresh), int64(cached)) {
			log.Warn(fmt.Sprintf("%d of the %d files the bucket holds for WORKDIR (%.0f%%) are gone from it since it was last mounted, over %s: "+
				"none of them is deleted from the bucket, and the mount serves and uploads as usual; if they were removed on purpose, mount again with --max-delete %d (or 100%%)",
				fresh, cached, float64(fresh)*100/float64(max(cached, 1)), sf.maxDelete, fresh))
			return 0, &scanRefusal{Files: fresh, Of: cached, Limit: sf.maxDelete.String(), Allow: fmt.Sprintf("--max-delete %d", fresh), At: time.Now()}
		}
		if fresh > 0 {
			log.Info("deleting from the bucket the files removed from WORKDIR while it was not mounted", "files", fresh)
		}
	}
	for _, p := range removed {
		j.Removed(p, false)
	}
	return len(removed), nil
}

// journalSet is the paths the journal holds records for, pending or
// failed: exact paths, and the directories of tree records.
type journalSet struct {
	paths map[string]bool
	dirs  map[string]bool // "dir/"
}

func journaled(j *journal.Journal) journalSet {
	s := journalSet{paths: map[string]bool{}, dirs: map[string]bool{}}
	add := func(r journal.Record) {
		for _, p := range []string{r.Path, r.From} {
			if p == "" {
				continue
			}
			s.paths[p] = true
			if r.IsDir {
				s.dirs[p+"/"] = true
			}
		}
	}
	j.Pending(func(r journal.Record) bool { add(r); return true })
	if failed, err := j.Failed(); err == nil {
		for _, r := range failed {
			add(r)
		}
	}
	return s
}

func (s journalSet) has(p string) bool {
	if s.paths[p] {
		return true
	}
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && s.dirs[p[:i+1]] {
			return true
		}
	}
	return false
}

// deleteCounter counts the objects the mount deletes, for the log: a
// deletion is the one change a person cannot take back from the bucket.
type deleteCounter struct {
	*remote.Client
	n atomic.Int64
}

func (d *deleteCounter) Delete(ctx context.Context, bucket string, keys []string) ([]remote.DeleteError, error) {
	failed, err := d.Client.Delete(ctx, bucket, keys)
	if err == nil {
		d.n.Add(int64(len(keys) - len(failed)))
	}
	return failed, err
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
