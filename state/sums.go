package state

import (
	"go.etcd.io/bbolt"

	"github.com/s3sync/s3sync/cache"
)

// Sums is a state's checksum store, opened alone (OpenSums).
type Sums struct {
	*cache.Sums
	db *bbolt.DB
}

// OpenSums opens only the checksum store of the state in dir, making dir
// (private) and the database if needed: verify and reconcile --checksum
// use nothing else of it, and start no journal. Like Open, it returns an
// error wrapping ErrLocked if another process (a running mount) holds the
// state.
func OpenSums(dir string) (*Sums, error) {
	db, err := openDB(dir)
	if err != nil {
		return nil, err
	}
	sums, err := cache.OpenSums(db)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Sums{Sums: sums, db: db}, nil
}

// Close writes the buffered checksums and closes the database. It returns
// the write's error, if any: those checksums are not kept.
func (s *Sums) Close() error {
	ferr := s.Flush()
	s.db.Close()
	return ferr
}
