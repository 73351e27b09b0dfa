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
}

// Every is how many records a long read goes between releases: a few MiB of
// pages at most.
const Every = 16384

// Counter releases the mapping once every Every steps of a long read.
type Counter struct{ n int }

// Step counts one record read in tx, releasing the mapping every Every.
func (c *Counter) Step(tx *bbolt.Tx) {
	if c.n++; c.n%Every == 0 {
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
