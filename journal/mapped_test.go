package journal

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/s3sync/s3sync/internal/boltmem"
	"go.etcd.io/bbolt"
)

// fillDB writes about size bytes of values and reopens the database, so
// that nothing of it is mapped yet.
func fillDB(t *testing.T, size int) (*bbolt.DB, string) {
	t.Helper()
	dir := t.TempDir()
	db, err := testDB(dir)
	if err != nil {
		t.Fatal(err)
	}
	val := bytes.Repeat([]byte("v"), 1000)
	for i := 0; i < size/len(val); i += 1000 {
		err := db.Update(func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("t"))
			if err != nil {
				return err
			}
			for j := i; j < i+1000; j++ {
				if err := b.Put([]byte(fmt.Sprintf("%09d", j)), val); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	if db, err = testDB(dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, dir
}

// readAll touches every page of the table and checks the values.
func readAll(t *testing.T, db *bbolt.DB) int {
	t.Helper()
	n := 0
	err := db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte("t")).ForEach(func(k, v []byte) error {
			if len(v) != 1000 || v[0] != 'v' || v[999] != 'v' {
				return fmt.Errorf("%s: value of %d bytes", k, len(v))
			}
			n++
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestReleaseMapped: after a scan of the whole file, its pages no longer
// count in this process's memory, and the data reads the same after.
func TestReleaseMapped(t *testing.T) {
	const size = 48 << 20
	db, _ := fillDB(t, size)
	before := boltmem.FileRSS()
	n := readAll(t, db)
	scanned := boltmem.FileRSS()
	if scanned-before < size/2 {
		t.Fatalf("the scan mapped only %d MiB of a %d MiB file; the test measures nothing", (scanned-before)>>20, size>>20)
	}
	ReleaseMapped(db)
	if after := boltmem.FileRSS(); after-before > size/8 {
		t.Errorf("file-backed memory %d MiB before the scan, %d MiB after it, %d MiB after ReleaseMapped; want it back near the start",
			before>>20, scanned>>20, after>>20)
	}
	if got := readAll(t, db); got != n {
		t.Errorf("read %d values after release, %d before", got, n)
	}
}

// TestLimitMapped: with LimitMapped running, a scan of a file larger than
// its bound leaves at most about the bound mapped.
func TestLimitMapped(t *testing.T) {
	const size = 48 << 20
	db, _ := fillDB(t, size)
	base := boltmem.FileRSS()
	stop := LimitMapped(db, base+8<<20)
	defer stop()
	readAll(t, db)
	deadline := time.Now().Add(5 * time.Second)
	for boltmem.FileRSS() > base+16<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("file-backed memory %d MiB, more than %d MiB over the %d MiB at the start, 5 s after the scan",
				boltmem.FileRSS()>>20, 16, base>>20)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMappedMaxInCommits: with MappedMax, commits drop the mapping as they
// go (even inside the write transaction), and every record is still there,
// intact, afterwards.
func TestMappedMaxInCommits(t *testing.T) {
	db, err := testDB(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	j, err := Open(db, Options{MappedMax: 1}) // release at every commit
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	const n = 60000
	for i := range n {
		j.Changed(fmt.Sprintf("dir%03d/file-with-a-longish-name-%06d", i%500, i))
		if i%5000 == 4999 {
			if err := j.Sync(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := j.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	seen := 0
	if err := j.EachPending(func(r Record) bool {
		var d, f int
		if _, err := fmt.Sscanf(r.Path, "dir%03d/file-with-a-longish-name-%06d", &d, &f); err != nil || f%500 != d {
			t.Errorf("record %q", r.Path)
		}
		seen++
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if seen != n {
		t.Fatalf("%d records pending, want %d", seen, n)
	}
}

// TestCommitMappedBounded: with MappedMax, a burst of changes scattered over
// a large journal commits in transactions that each map at most about
// commitMapped of the state file, instead of a 64 KiB window for each of up
// to commitNodes nodes; every change is still committed, in order.
func TestCommitMappedBounded(t *testing.T) {
	defer func(v int64) { commitMapped = v }(commitMapped)
	commitMapped = 1 << 20
	const files, changes = 100000, 8192
	dir := t.TempDir()
	db, err := testDB(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mu sync.Mutex
	var base, most int64
	// Each commit starts with nothing of the file mapped: what is mapped
	// after it is its own.
	j, err := Open(db, Options{MappedMax: 1, OnCommit: func(time.Duration, error) {
		mu.Lock()
		most = max(most, boltmem.FileRSS()-base)
		mu.Unlock()
		ReleaseMapped(db)
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	order := fillThenScatter(t, j, files, changes, func() {
		if st, err := os.Stat(filepath.Join(dir, testDBName)); err != nil || st.Size() < 16<<20 {
			t.Fatalf("state file of %v bytes (%v): too small to measure anything", st.Size(), err)
		}
		ReleaseMapped(db)
		mu.Lock()
		base, most = boltmem.FileRSS(), 0
		mu.Unlock()
	})
	syncT(t, j)
	mu.Lock()
	got := most
	mu.Unlock()
	if bound := commitMapped + 6<<20; got > bound {
		t.Errorf("a commit of the scattered burst mapped %d KiB of the state file, want at most %d KiB", got>>10, bound>>10)
	}
	t.Logf("at most %d KiB mapped by a commit", got>>10)
	checkScatteredOrder(t, j, files, order)
}
