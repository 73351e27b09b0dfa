package boltmem

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"path/filepath"
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

func key(i int) []byte { return binary.BigEndian.AppendUint64(nil, uint64(i)) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
