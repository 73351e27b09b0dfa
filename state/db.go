package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// DBName is the state database's file name inside the state directory.
const DBName = "state.db"

// ErrLocked reports that another process has the state database open. bbolt
// takes an exclusive flock, so two mounts of one working directory can't
// interleave their journals.
var ErrLocked = errors.New("another s3sync process holds the state dir")

// openDB opens (creating if needed) the state database. The file is
// private to the user, and so is a directory openDB makes: paths in the
// journal reveal what the user is working on. A directory that exists is
// used as it is, never chmod-ed (it may be one the user shares on
// purpose); a command that takes one from the user checks it first.
//
// It returns an error wrapping ErrLocked if another process holds the
// database for more than a second.
func openDB(dir string) (*bbolt.DB, error) {
	// The messages say "journal", as they did before package state: a
	// script may match them.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("journal: create state dir: %w", err)
	}
	path := filepath.Join(dir, DBName)
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("journal: open %s: %w (%w)", path, ErrLocked, err)
	}
	if err != nil {
		return nil, fmt.Errorf("journal: open %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		db.Close()
		return nil, fmt.Errorf("journal: chmod %s: %w", path, err)
	}
	return db, nil
}
