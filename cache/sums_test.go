package cache

import (
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

func TestSums(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenSums(db)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	st := Stamp{Size: 10, Mtime: 1700000000123456789, Ctime: now.Add(-time.Hour).UnixNano(), Ino: 42}
	d := Digest{MD5: [16]byte{1, 2, 3, 15: 16}, CRC64NVME: 0x0123456789abcdef}
	if err := s.Put("a/b.txt", st, d, now); err != nil {
		t.Fatal(err)
	}
	// A file whose ctime is within RacyWindow of the hash could change
	// again unseen: not kept.
	racy := st
	racy.Ctime = now.Add(-RacyWindow / 2).UnixNano()
	if err := s.Put("racy", racy, d, now); err != nil {
		t.Fatal(err)
	}
	if got, ok := s.Get("a/b.txt", st); !ok || got != d {
		t.Fatalf("Get before Flush = %v, %v; want %v", got, ok, d)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db, err = bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err = OpenSums(db)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := s.Get("a/b.txt", st); !ok || got != d {
		t.Fatalf("Get after reopen = %v, %v; want %v", got, ok, d)
	}
	if _, ok := s.Get("racy", racy); ok {
		t.Error("a racy entry was kept")
	}
	// Any change of the stamp makes the entry invalid.
	for name, change := range map[string]func(*Stamp){
		"size":  func(s *Stamp) { s.Size++ },
		"mtime": func(s *Stamp) { s.Mtime++ },
		"ctime": func(s *Stamp) { s.Ctime++ },
		"inode": func(s *Stamp) { s.Ino++ },
	} {
		other := st
		change(&other)
		if _, ok := s.Get("a/b.txt", other); ok {
			t.Errorf("a changed %s still hits", name)
		}
	}
	// A corrupt value is a miss, not an error.
	db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketSums).Put([]byte("bad"), []byte{1, 2}) })
	if _, ok := s.Get("bad", Stamp{}); ok {
		t.Error("a corrupt entry hits")
	}
}
