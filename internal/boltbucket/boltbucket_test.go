package boltbucket

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"go.etcd.io/bbolt"
)

// Collect reads a bucket in key order and stops at the first error; Clear
// empties it whole, however many keys (deleting under a cursor would skip
// every other one).
func TestCollectAndClear(t *testing.T) {
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	name := []byte("b")
	var want []string
	err = db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket(name)
		if err != nil {
			return err
		}
		for i := range 3000 {
			k := fmt.Sprintf("k%05d", i)
			want = append(want, k)
			if err := b.Put([]byte(k), []byte("v"+k)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err = db.View(func(tx *bbolt.Tx) error {
		got, err := Collect(tx.Bucket(name), func(k, v []byte) (string, error) {
			if string(v) != "v"+string(k) {
				return "", fmt.Errorf("%s holds %s", k, v)
			}
			return string(k), nil
		})
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			t.Errorf("Collect read %d keys, want %d in order", len(got), len(want))
		}
		n := 0
		if _, err := Collect(tx.Bucket(name), func(k, _ []byte) (int, error) {
			if n++; n == 10 {
				return 0, boom
			}
			return n, nil
		}); !errors.Is(err, boom) || n != 10 {
			t.Errorf("Collect after an error: %v at key %d, want boom at 10", err, n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		n, err := Clear(tx.Bucket(name))
		if err != nil {
			return err
		}
		if k, _ := tx.Bucket(name).Cursor().First(); n != len(want) || k != nil {
			t.Errorf("Clear: %d deleted, first key left %q; want %d, none", n, k, len(want))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
