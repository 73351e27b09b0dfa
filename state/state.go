package state

import (
	"errors"

	"go.etcd.io/bbolt"

	"github.com/s3sync/s3sync/cache"
	"github.com/s3sync/s3sync/journal"
)

// Options tune Open.
type Options struct {
	// Journal tunes the journal's group commit: a mount sets its metrics
	// hook (OnCommit) and its bound on mapped memory (MappedMax).
	Journal journal.Options
}

// State is an open state dir: its journal and its cache on one database.
type State struct {
	dir       string
	db        *bbolt.DB
	j         *journal.Journal
	c         *cache.Cache
	stopLimit func()
}

// Open opens the state in dir, making dir (private) and the database if
// needed, for a mount or for status: it starts the journal's committer and
// keeps the database's mapped pages from holding more than
// journal.DefaultMappedMax of resident memory until Close. It returns an
// error wrapping ErrLocked if another process holds the state for more
// than a second.
func Open(dir string, opts Options) (*State, error) {
	db, err := openDB(dir)
	if err != nil {
		return nil, err
	}
	stop := journal.LimitMapped(db, journal.DefaultMappedMax)
	j, err := journal.Open(db, opts.Journal)
	if err != nil {
		stop()
		db.Close()
		return nil, err
	}
	c, err := cache.Open(db)
	if err != nil {
		j.Close()
		stop()
		db.Close()
		return nil, err
	}
	return &State{dir: dir, db: db, j: j, c: c, stopLimit: stop}, nil
}

// Journal is the state's journal of changes not yet in the bucket.
func (s *State) Journal() *journal.Journal { return s.j }

// Cache is the state's record of what the remote holds for each path.
func (s *State) Cache() *cache.Cache { return s.c }

// Close commits what the journal has queued and closes the database. It
// returns the journal's error if records were not committed (see
// journal.Journal.Close); the journal may be closed before.
func (s *State) Close() error {
	jerr := s.j.Close()
	s.stopLimit()
	return errors.Join(jerr, s.db.Close())
}

// Done ends r, whose change the remote now holds, and makes writes, what
// the cache now says of the paths its work touched, in one transaction
// and one fsync: the journal never says a change is sent while the cache
// still says the bucket holds the old state, nor the other way round. r
// is removed unless its path was re-recorded since; writes are made
// either way. A write the cache refuses (an empty or overlong path) is
// returned, and r stays pending.
func (s *State) Done(r journal.Record, writes []cache.Write) error {
	return s.j.DoneWith(r, func(tx *bbolt.Tx) error { return s.c.ApplyTx(tx, writes) })
}
