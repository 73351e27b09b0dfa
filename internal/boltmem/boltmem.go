// Package boltmem keeps a bbolt database's mapped pages from counting in the
// process's resident memory.
//
// bbolt reads its file through a shared read-only mapping, and every page a
// read touches stays mapped: a read of a million records (a mount's start-up
// scan, status over a day offline) leaves the whole state file, 300–600 MiB,
// counted as the process's own, though it is only the page cache. Dropping
// the pages from the mapping (madvise MADV_DONTNEED) gives that back; the
// page cache keeps them, so the next read of one is a minor fault, not a
// disk read. Nothing is written through the mapping, so nothing is lost.
package boltmem

import (
	"bytes"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"

	"go.etcd.io/bbolt"
)

// Release drops the pages of tx's database from this process's mapping. It
// must run inside tx: bbolt cannot remap the file while a transaction is
// open, so the range is the mapping's own.
func Release(tx *bbolt.Tx) {
	db := tx.DB()
	addr, size := db.Info().Data, tx.Size()
	if addr == 0 || size <= 0 {
		return
	}
	syscall.Syscall(syscall.SYS_MADVISE, addr, uintptr(size), syscall.MADV_DONTNEED)
	releases.Add(1)
	afterRelease.Store(FileRSS())
}

// afterRelease is FileRSS just after the last Release: what the process has
// mapped besides the state file, its own binary above all. It can only be
// stale upwards (the kernel reclaimed some of the binary's pages since),
// which keeps the process's file-backed memory at most what it was allowed
// then.
var afterRelease atomic.Int64

// releases counts Release calls (tests).
var releases atomic.Int64

// headroom is how much of the state file a bound leaves mapped at least,
// over what the process maps besides it.
const headroom = Max - 20<<20

// Over reports whether the process's file-backed resident memory is over
// limit, or over what it was after the last Release plus headroom when that
// is more: a binary whose own mapped text is larger than Max's allowance
// (another build, more code run) would otherwise have every check release
// the mapping, and every read fault its pages in again.
func Over(limit int64) bool {
	return FileRSS() > Bound(limit)
}

// Bound is the bound Over applies for limit.
func Bound(limit int64) int64 {
	return max(limit, afterRelease.Load()+headroom)
}

// Max is the file-backed resident memory above which a Counter drops the
// mapping: the binary's own text counts too (~20 MiB), so a long read keeps
// less than 10 MiB of the state file mapped; the commit of a burst of
// changes maps up to a few tens of MiB more for a moment (journal).
const Max = 28 << 20

// checkEvery is how many records a long read goes between looks at
// FileRSS. The kernel maps 16 pages around each page a read faults in
// (fault-around), and a large page-cache folio whole (up to 64 pages seen),
// so 64 records read in no particular order can map a few MiB.
const checkEvery = 64

// Counter drops the mapping during a long read whenever the process's
// file-backed resident memory passes Max (or its own Max, if set; see Over).
type Counter struct {
	Max int64
	n   int
}

// Step counts one record read in tx; every checkEvery it looks at FileRSS
// and releases the mapping if it is over the bound.
func (c *Counter) Step(tx *bbolt.Tx) {
	if c.n++; c.n%checkEvery != 0 {
		return
	}
	bound := c.Max
	if bound <= 0 {
		bound = Max
	}
	if Over(bound) {
		Release(tx)
	}
}

// FileRSS is this process's file-backed resident memory in bytes (shared
// pages in /proc/self/statm), or 0 if it cannot be read.
func FileRSS() int64 {
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
