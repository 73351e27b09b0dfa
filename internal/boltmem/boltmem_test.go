package boltmem

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"
)

// TestCounterBoundsALongRead: one read transaction over a 48 MiB table,
// stepping a Counter per record, ends with a few MiB of it mapped, not all
// of it; without the steps it ends with most of it mapped. The values read
// are the same either way.
func TestCounterBoundsALongRead(t *testing.T) {
	const records, size = 48 << 10, 1000
	path := filepath.Join(t.TempDir(), "db")
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	val := bytes.Repeat([]byte("v"), size)
	for i := 0; i < records; i += 4096 {
		must(t, db.Update(func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("t"))
			if err != nil {
				return err
			}
			for j := i; j < i+4096; j++ {
				if err := b.Put([]byte(fmt.Sprintf("%08d", j)), val); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	must(t, db.Close())
	for _, step := range []bool{false, true} {
		db, err := bbolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		base := FileRSS()
		var c Counter
		n := 0
		must(t, db.View(func(tx *bbolt.Tx) error {
			return tx.Bucket([]byte("t")).ForEach(func(k, v []byte) error {
				if step {
					c.Step(tx)
				}
				if !bytes.Equal(v, val) {
					return fmt.Errorf("%s: wrong value", k)
				}
				n++
				return nil
			})
		}))
		grown := FileRSS() - base
		db.Close()
		if n != records {
			t.Fatalf("read %d records, want %d", n, records)
		}
		bound := int64(2 * Every * size)
		switch {
		case step && grown > bound:
			t.Errorf("with a Counter, a read of %d MiB left %d MiB mapped, want at most %d", records*size>>20, grown>>20, bound>>20)
		case !step && grown <= bound:
			t.Fatalf("without a Counter the read left only %d MiB mapped: the test measures nothing", grown>>20)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
