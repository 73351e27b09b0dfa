package boltmem

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"go.etcd.io/bbolt"
)

// TestCounterBoundsALongRead: one read transaction over a 48 MiB table,
// stepping a Counter per record, keeps at most a few MiB over the Counter's
// bound mapped all along, whether it walks the table in key order or looks
// records up in no particular order (where the kernel maps 16 pages or more
// around each page faulted in); without the steps most of the table ends up
// mapped. The values read are the same either way.
func TestCounterBoundsALongRead(t *testing.T) {
	const records, size = 48 << 10, 1000
	const slack = 12 << 20
	path := filepath.Join(t.TempDir(), "db")
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	val := bytes.Repeat([]byte("v"), size)
	fillTable(t, db, records, val)
	must(t, db.Close())
	scattered := rand.New(rand.NewPCG(1, 2)).Perm(records)
	for _, tc := range []struct {
		name      string
		scattered bool
		step      bool
	}{
		{"in key order", false, true},
		{"scattered", true, true},
		{"in key order without a Counter", false, false},
		{"scattered without a Counter", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := bbolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			afterRelease.Store(0) // another test's floor (a file it mapped) is not this one's
			base := FileRSS()
			c := Counter{Max: base + 4<<20}
			var most int64
			n := 0
			visit := func(tx *bbolt.Tx, k, v []byte) error {
				if tc.step {
					c.Step(tx)
				}
				if !bytes.Equal(v, val) {
					return fmt.Errorf("%x: wrong value", k)
				}
				if n++; n%64 == 0 {
					most = max(most, FileRSS()-base)
				}
				return nil
			}
			must(t, db.View(func(tx *bbolt.Tx) error {
				b := tx.Bucket([]byte("t"))
				if !tc.scattered {
					return b.ForEach(func(k, v []byte) error { return visit(tx, k, v) })
				}
				for _, i := range scattered {
					if err := visit(tx, key(i), b.Get(key(i))); err != nil {
						return err
					}
				}
				return nil
			}))
			if n != records {
				t.Fatalf("read %d records, want %d", n, records)
			}
			bound := c.Max - base + slack
			switch {
			case tc.step && most > bound:
				t.Errorf("with a Counter bounded at %d MiB over the start, a read of %d MiB mapped up to %d MiB, want at most %d",
					(c.Max-base)>>20, records*size>>20, most>>20, bound>>20)
			case !tc.step && most <= bound:
				t.Fatalf("without a Counter the read mapped only %d MiB: the test measures nothing", most>>20)
			}
		})
	}
}

// fillTable puts records values val under key(0..records-1) in table "t",
// 4096 to a transaction.
func fillTable(t *testing.T, db *bbolt.DB, records int, val []byte) {
	t.Helper()
	for i := 0; i < records; i += 4096 {
		must(t, db.Update(func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("t"))
			if err != nil {
				return err
			}
			for j := i; j < i+4096; j++ {
				if err := b.Put(key(j), val); err != nil {
					return err
				}
			}
			return nil
		}))
	}
}

func key(i int) []byte { return binary.BigEndian.AppendUint64(nil, uint64(i)) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestCounterAboveMaxWithoutTheFile: when the process maps more than Max
// besides the state file (here another file, as a larger binary's own text
// would be), a long read still keeps the state file's pages to about
// headroom, and releases only when those grow past it: not at every check,
// which would fault every page in again after each release.
func TestCounterAboveMaxWithoutTheFile(t *testing.T) {
	const records, size = 48 << 10, 1000
	dir := t.TempDir()
	other := bytes.Repeat([]byte("o"), Max+8<<20)
	must(t, os.WriteFile(filepath.Join(dir, "other"), other, 0o600))
	f, err := os.Open(filepath.Join(dir, "other"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := syscall.Mmap(int(f.Fd()), 0, len(other), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(m)
	var sum byte
	for i := 0; i < len(m); i += 4096 {
		sum += m[i]
	}
	if FileRSS() <= Max {
		t.Fatalf("file-backed RSS %d MiB with the other file mapped, want over Max (%d MiB): the test measures nothing", FileRSS()>>20, Max>>20)
	}

	db, err := bbolt.Open(filepath.Join(dir, "db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	val := bytes.Repeat([]byte("v"), size)
	fillTable(t, db, records, val)
	// Whatever an earlier test left: this process's own floor now.
	releaseAll(db)
	base := FileRSS()
	before := releases.Load()
	var c Counter
	var most int64
	n := 0
	must(t, db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte("t")).ForEach(func(k, v []byte) error {
			c.Step(tx)
			if n++; n%64 == 0 {
				most = max(most, FileRSS()-base)
			}
			return nil
		})
	}))
	got := releases.Load() - before
	if checks := int64(records / checkEvery); got > checks/10 {
		t.Errorf("%d releases in %d checks: the read released at nearly every check", got, checks)
	}
	if most > headroom+12<<20 {
		t.Errorf("the read kept up to %d MiB of the state file mapped, want about %d", most>>20, headroom>>20)
	}
	sink = sum
}

// sink keeps the touches of the other file from being optimised away.
var sink byte

// releaseAll drops db's mapping in a transaction of its own.
func releaseAll(db *bbolt.DB) {
	_ = db.View(func(tx *bbolt.Tx) error { Release(tx); return nil })
}
