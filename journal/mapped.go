package journal

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
	"time"

	"go.etcd.io/bbolt"
)

// bbolt reads the state file through a shared read-only mapping, and every
// page a scan touches stays mapped into this process: a mount's start-up
// scan of a million files' cache entries, or status over a million pending
// records, leaves the whole file (300–600 MiB) counted in the process's
// resident memory for good, though it is only the page cache. LimitMapped
// drops those pages from the mapping (madvise MADV_DONTNEED) whenever the
// process's file-backed resident memory passes max. The page cache keeps
// them: the next read of a page is a minor fault, not a disk read. Nothing
// is written through the mapping, so nothing can be lost by dropping it.

// DefaultMappedMax is LimitMapped's usual bound on file-backed resident
// memory (the binary's own text counts too, ~20 MiB).
const DefaultMappedMax = 64 << 20

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
			if rssFile() > max {
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
// memory. It runs in a read transaction, during which bbolt cannot remap
// the file, so the range is the mapping's own.
func ReleaseMapped(db *bbolt.DB) {
	_ = db.View(func(tx *bbolt.Tx) error {
		addr, size := db.Info().Data, tx.Size()
		if addr == 0 || size <= 0 {
			return nil
		}
		syscall.Syscall(syscall.SYS_MADVISE, addr, uintptr(size), syscall.MADV_DONTNEED)
		return nil
	})
}

// rssFile is this process's file-backed resident memory in bytes (shared
// pages in /proc/self/statm), or 0 if it cannot be read.
func rssFile() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) < 3 {
		return 0
	}
	pages, err := strconv.ParseInt(string(f[2]), 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}
