package journal

import (
	"time"

	"github.com/s3sync/s3sync/internal/boltmem"
	"go.etcd.io/bbolt"
)

// The long reads of the journal and the cache drop the state file's mapped
// pages as they go (boltmem.Counter); LimitMapped catches the rest: whenever
// the process's file-backed resident memory passes max, it drops them all.

// DefaultMappedMax is LimitMapped's usual bound on file-backed resident
// memory (the binary's own text counts too, ~20 MiB): with the heap's
// 100 MiB soft limit, under the 150 MiB a command may peak at. Long reads
// keep to the same bound (boltmem.Counter).
const DefaultMappedMax = boltmem.Max

// mappedEvery is how often LimitMapped looks (a read of /proc/self/statm):
// a scan maps at most a few hundred MiB a second, so the bound is overshot
// by a few tens of MiB at most. What reads the whole file in one go (bbolt's
// Bucket.Stats) would overshoot it: the mount's start-up avoids that.
const mappedEvery = 100 * time.Millisecond

// LimitMapped keeps db's mapped pages from holding more than max bytes of
// this process's resident memory, until stop is called.
func LimitMapped(db *bbolt.DB, max int64) (stop func()) {
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(mappedEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			if boltmem.Over(max) {
				ReleaseMapped(db)
			}
		}
	}()
	return func() {
		close(done)
		<-exited
	}
}

// ReleaseMapped drops db's mapped pages from this process's resident
// memory (see boltmem).
func ReleaseMapped(db *bbolt.DB) {
	_ = db.View(func(tx *bbolt.Tx) error {
		boltmem.Release(tx)
		return nil
	})
}
