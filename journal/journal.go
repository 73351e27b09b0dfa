package journal

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/bbolt"
)

// Bucket names. Each path has at most one record, in pending or in failed.
var (
	bucketPending = []byte("pending") // path -> record
	bucketOrder   = []byte("order")   // big-endian seq -> path; its NextSequence is the seq counter
	bucketFailed  = []byte("failed")  // path -> record
	bucketMeta    = []byte("meta")    // key -> value, for the status command
)

// ErrClosed is returned by Sync and the syncer-side methods after Close.
var ErrClosed = errors.New("journal: closed")

// Options tune group commit. The zero value is usable.
type Options struct {
	// CommitInterval is how long the committer lets records gather before it
	// commits them, unless someone (Sync, Done, …) is waiting. Default 5ms.
	CommitInterval time.Duration
	// BurstInterval replaces CommitInterval while records arrive in a burst
	// (the last commit carried at least burstRecords): each commit costs
	// two fdatasyncs whatever its size, about 4 ms of CPU on this project's
	// machine, so an untar committing every 5 ms spent a fifth of a core on
	// them. Records are still committed within it, and Sync (fsync) does
	// not wait for it. A crash loses nothing either way: the start-up scan
	// finds what the journal missed. Default 10 × CommitInterval.
	BurstInterval time.Duration
	// MaxBatch caps the operations per transaction, so one huge burst does
	// not become one huge transaction. Default 4096.
	MaxBatch int
	// OnCommit, if set, is told how long each commit attempt took (one
	// transaction, its fsyncs included) and its error, for metrics. It
	// runs on the committer and must not block.
	OnCommit func(d time.Duration, err error)
	// MappedMax, if set, bounds the state file's pages mapped into the
	// process as LimitMapped does, checked at every commit: a burst of
	// records (a day offline written at once) maps the B+tree's leaves faster
	// than LimitMapped looks.
	MappedMax int64
}

// Journal is safe for concurrent use.
type Journal struct {
	db     *bbolt.DB
	opts   Options
	notify chan struct{}
	wake   chan struct{} // the queue became non-empty
	urgent chan struct{} // a caller waits for the next commit
	stop   chan struct{}
	done   chan struct{}

	mu    sync.Mutex
	queue []op
	spare []op // the previous batch's backing array, reused
	// inCommit is the batch being committed (out of queue, not yet in
	// the database), for Has.
	inCommit []op
	// enqueued and durable count record ops (not control ops) ever queued
	// and ever committed. Batches are prefixes of the queue, so a record
	// numbered n is durable once durable >= n.
	enqueued  uint64
	durable   uint64
	commitErr error         // the last commit's error; nil after a success
	committed chan struct{} // closed and replaced after every commit attempt
	closed    bool
}

// op is one queued operation: a record (kind != 0) or a control op (fn != nil)
// from the syncer side that wants its result once committed.
type op struct {
	kind  Op
	path  string
	from  string
	isDir bool
	at    time.Time // when recorded
	// Changed records of one path made back to back (an untar's create,
	// chown, chmod and utimes of a file) are queued as one op: n is how
	// many, last when the latest was made.
	n    int
	last time.Time

	fn  func(tx *bbolt.Tx) error
	res chan error
}

// Open prepares the journal's buckets in db and starts the committer. The
// caller keeps ownership of db and closes it after Close.
func Open(db *bbolt.DB, opts Options) (*Journal, error) {
	if opts.CommitInterval == 0 {
		opts.CommitInterval = 5 * time.Millisecond
	}
	if opts.BurstInterval <= 0 {
		opts.BurstInterval = 10 * opts.CommitInterval
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 4096
	}
	err := db.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketPending, bucketOrder, bucketFailed, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("journal: open: %w", err)
	}
	j := &Journal{
		db:        db,
		opts:      opts,
		notify:    make(chan struct{}, 1),
		wake:      make(chan struct{}, 1),
		urgent:    make(chan struct{}, 1),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		committed: make(chan struct{}),
	}
	go j.run()
	return j, nil
}

// Close commits what is queued and stops the committer. Records made after
// Close are dropped, so the FUSE layer must stop recording first. It returns
// the final commit's error, if any: those records are not durable.
func (j *Journal) Close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true
	j.mu.Unlock()
	close(j.stop)
	<-j.done
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.durable < j.enqueued {
		err := j.commitErr
		if err == nil {
			err = ErrClosed
		}
		return fmt.Errorf("journal: close: %d records not committed: %w", j.enqueued-j.durable, err)
	}
	return nil
}

// Changed records that path was created or modified in any way.
func (j *Journal) Changed(path string) {
	j.record(op{kind: OpChanged, path: path})
}

// Removed records that path was unlinked or, with isDir, removed as a directory.
func (j *Journal) Removed(path string, isDir bool) {
	j.record(op{kind: OpRemoved, path: path, isDir: isDir})
}

// Renamed records to as renamed from from, and from as removed, in one
// transaction. The rename gets the lower Seq so the syncer sees it while the
// remote still holds from and can copy server-side before deleting.
func (j *Journal) Renamed(from, to string, isDir bool) {
	if from == to {
		// rename(2) onto itself changes nothing; recording a removal of the
		// path would be wrong, a change is harmless.
		j.Changed(to)
		return
	}
	if from == "" {
		if isDir {
			// A directory whose whole tree changed place without a
			// source to copy from (renameat2 RENAME_EXCHANGE): the
			// syncer walks it, as it walks a renamed one.
			j.record(op{kind: OpRenamed, path: to, isDir: true})
			return
		}
		j.Changed(to)
		return
	}
	j.record(op{kind: OpRenamed, path: to, from: from, isDir: isDir})
}

func (j *Journal) record(o op) {
	// The working directory's root has no object; an empty key would also
	// make bbolt fail the whole batch.
	if o.path == "" {
		return
	}
	o.at = time.Now()
	o.last, o.n = o.at, 1
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return
	}
	j.enqueued++
	if k := len(j.queue) - 1; k >= 0 && o.kind == OpChanged && j.queue[k].kind == OpChanged && j.queue[k].path == o.path {
		j.queue[k].last = o.last
		j.queue[k].n++
		j.mu.Unlock()
		return
	}
	j.queue = append(j.queue, o)
	first := len(j.queue) == 1
	j.mu.Unlock()
	if first {
		select {
		case j.wake <- struct{}{}:
		default:
		}
	}
}

// Throttle returns at once unless more than maxQueued ops wait for the
// committer; then it asks for a commit and waits for that attempt. Whoever
// makes changes faster than they commit calls it before making more (the
// FUSE layer before each operation that changes something), so the queue
// stays bounded; recording itself never waits.
func (j *Journal) Throttle() {
	j.mu.Lock()
	if j.closed || len(j.queue) <= maxQueued {
		j.mu.Unlock()
		return
	}
	ch := j.committed
	j.mu.Unlock()
	j.hurry()
	<-ch
}

// maxQueued is how many ops may wait for the committer before Throttle
// waits (a few MiB). Changes come faster than scattered records commit (a
// day offline written at once by 8 writers: ~10,000 a second on this
// project's 2-core machine), and the queue held them all: 19 MiB of heap at
// the peak of a million. Bursts of neighbours (an untar) commit MaxBatch at
// a time and stay under it.
const maxQueued = 8192

// Sync returns once every record made before the call is durable. It
// returns the commit's error if the disk refuses the records (they stay
// queued and are retried), ctx's error, or ErrClosed.
func (j *Journal) Sync(ctx context.Context) error {
	j.mu.Lock()
	target := j.enqueued
	for j.durable < target {
		if j.closed {
			// Close commits what is queued; wait for it to say how it went.
			j.mu.Unlock()
			<-j.done
			j.mu.Lock()
			defer j.mu.Unlock()
			if j.durable >= target {
				return nil
			}
			if j.commitErr != nil {
				return fmt.Errorf("journal: sync: %w", j.commitErr)
			}
			return ErrClosed
		}
		ch := j.committed
		j.mu.Unlock()
		j.hurry()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("journal: sync: %w", ctx.Err())
		}
		j.mu.Lock()
		if j.durable < target && j.commitErr != nil {
			err := j.commitErr
			j.mu.Unlock()
			return fmt.Errorf("journal: sync: %w", err)
		}
	}
	j.mu.Unlock()
	return nil
}

func (j *Journal) hurry() {
	select {
	case j.urgent <- struct{}{}:
	default:
	}
}

// Notify is signalled after each commit that added pending records. It is
// buffered, so a signal sent while the syncer is busy is not lost.
func (j *Journal) Notify() <-chan struct{} { return j.notify }

// exec runs fn in the next group commit and returns its error, or the
// commit's. Running the syncer's updates through the committer lets
// concurrent workers share one fsync, and orders them with the records
// queued before them.
func (j *Journal) exec(fn func(tx *bbolt.Tx) error) error {
	res := make(chan error, 1)
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return ErrClosed
	}
	j.queue = append(j.queue, op{fn: fn, res: res})
	j.mu.Unlock()
	j.hurry()
	return <-res
}
