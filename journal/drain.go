package journal

import (
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/s3sync/s3sync/internal/boltbucket"
	"github.com/s3sync/s3sync/internal/boltmem"
)

// Batches: the pending records are handed out a run at a time, each read
// in one read transaction that is over when the caller gets the run (the
// caller may end records meanwhile, and a long-lived read transaction
// would block bbolt from growing the file under writers). The first run is
// small, since the drain loop often stops at the first record (not settled
// yet) on every commit while files are being written; later runs grow to
// pendingChunk.
const (
	pendingFirstChunk = 16
	pendingChunk      = 256
)

// Batch is a run of committed pending records in Seq order, and where the
// next run starts.
type Batch struct {
	Records []Record
	after   uint64 // the last order key read
	chunk   int    // how many order keys the next run reads; 0 before the first
	rel     boltmem.Counter
}

// Next reads the run of pending records after b (the zero Batch: the
// first run); a run with no Records is the end. A record re-recorded
// since an earlier run moves to the back and may come again. The Records
// of b are reused.
func (j *Journal) Next(b Batch) (Batch, error) {
	if b.chunk == 0 {
		b.chunk = pendingFirstChunk
	}
	for {
		recs := b.Records[:0]
		var last uint64
		err := j.db.View(func(tx *bbolt.Tx) error {
			bk := openBuckets(tx)
			c := bk.order.Cursor()
			n := 0
			for k, v := c.Seek(seqKey(b.after + 1)); k != nil && n < b.chunk; k, v = c.Next() {
				n++
				b.rel.Step(tx)
				last = seqFromKey(k)
				data := bk.pending.Get(v)
				if data == nil {
					continue
				}
				r, err := unmarshalRecord(string(v), data)
				if err != nil {
					return err
				}
				if r.Seq != last {
					continue // a stale order key; the record's own key comes later
				}
				recs = append(recs, r)
			}
			return nil
		})
		if err != nil {
			return Batch{}, fmt.Errorf("journal: pending: %w", err)
		}
		b.Records = recs
		if last == 0 {
			return b, nil // the end
		}
		b.after = last
		b.chunk = min(2*b.chunk, pendingChunk)
		if len(recs) > 0 {
			return b, nil
		}
		// Only stale order keys in this run: read on.
	}
}

// Pending calls fn with committed pending records in Seq order until fn
// returns false or none are left, a Batch at a time: for callers that
// take each record in turn (the drain loop takes the batches itself).
func (j *Journal) Pending(fn func(Record) bool) error {
	var b Batch
	for {
		var err error
		if b, err = j.Next(b); err != nil || len(b.Records) == 0 {
			return err
		}
		for _, r := range b.Records {
			if !fn(r) {
				return nil
			}
		}
	}
}

func seqFromKey(k []byte) uint64 {
	var s uint64
	for _, c := range k {
		s = s<<8 | uint64(c)
	}
	return s
}

// current returns path's pending record if its Seq is still seq. A
// mismatch means the path was re-recorded (or already handled) while the
// syncer worked on the old record, which must then stay as it is.
func (b buckets) current(path string, seq uint64) (Record, bool, error) {
	data := b.pending.Get([]byte(path))
	if data == nil {
		return Record{}, false, nil
	}
	r, err := unmarshalRecord(path, data)
	if err != nil {
		return Record{}, false, err
	}
	return r, r.Seq == seq, nil
}

func (b buckets) removePending(r Record) error {
	if err := b.order.Delete(seqKey(r.Seq)); err != nil {
		return err
	}
	return b.pending.Delete([]byte(r.Path))
}

// Done removes r once the remote holds its change, unless the path was
// re-recorded since r was read. It returns after the removal is durable.
func (j *Journal) Done(r Record) error { return j.DoneWith(r, nil) }

// DoneWith is Done, with also run in the same transaction whether or not r
// is still current: the caller's own bookkeeping of what the remote now
// holds (the cache) commits atomically with the record's end, in one fsync
// instead of two. also must validate before it writes: its error is
// returned and the rest of the group commit goes on.
func (j *Journal) DoneWith(r Record, also func(tx *bbolt.Tx) error) error {
	return j.ifCurrent("done", r, also, func(b buckets, cur Record) error {
		return b.removePending(cur)
	})
}

// Retry notes a transient failure of r: Attempts grows, Err is set, and the
// record stays pending with the same Seq (so its place in the queue is kept).
// Nothing happens if the path was re-recorded meanwhile.
func (j *Journal) Retry(r Record, failure error) error {
	now := time.Now()
	return j.ifCurrent("retry", r, nil, func(b buckets, cur Record) error {
		cur.Attempts++
		cur.Err, cur.ErrTime = errString(failure), now
		return b.pending.Put([]byte(cur.Path), cur.marshal())
	})
}

// Fail moves r to the failed list after a permanent failure, unless the path
// was re-recorded meanwhile. A failed record stays visible until RetryFailed
// or a new change to its path makes it pending again.
func (j *Journal) Fail(r Record, failure error) error {
	now := time.Now()
	return j.ifCurrent("fail", r, nil, func(b buckets, cur Record) error {
		if err := b.removePending(cur); err != nil {
			return err
		}
		cur.Attempts++
		cur.Err, cur.ErrTime = errString(failure), now
		return b.failed.Put([]byte(cur.Path), cur.marshal())
	})
}

// ifCurrent runs fn in a committed transaction when r is still the pending
// record of its path (same Seq); a path re-recorded since is left alone.
// also, if set, runs first in the same transaction either way.
func (j *Journal) ifCurrent(op string, r Record, also func(tx *bbolt.Tx) error, fn func(b buckets, cur Record) error) error {
	err := j.exec(func(tx *bbolt.Tx) error {
		if also != nil {
			if err := also(tx); err != nil {
				return err
			}
		}
		b := openBuckets(tx)
		cur, ok, err := b.current(r.Path, r.Seq)
		if err != nil || !ok {
			return err
		}
		return fn(b, cur)
	})
	if err != nil {
		return fmt.Errorf("journal: %s %q: %w", op, r.Path, err)
	}
	return nil
}

// records reads every record of bk (pending or failed), in path order.
func records(bk *bbolt.Bucket) ([]Record, error) {
	return boltbucket.Collect(bk, func(k, v []byte) (Record, error) { return unmarshalRecord(string(k), v) })
}

func errString(err error) string {
	if err == nil {
		return "unknown error"
	}
	return err.Error()
}

// Failed returns the failed list in path order.
func (j *Journal) Failed() ([]Record, error) {
	var recs []Record
	err := j.db.View(func(tx *bbolt.Tx) error {
		var err error
		recs, err = records(openBuckets(tx).failed)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("journal: failed list: %w", err)
	}
	return recs, nil
}

// RetryFailed makes every failed record pending again, at the back of the
// queue with a fresh Attempts count, and returns how many there were. Err and
// ErrTime are kept so the status command can still say why it failed before.
func (j *Journal) RetryFailed() (int, error) {
	var n int
	err := j.exec(func(tx *bbolt.Tx) error {
		n = 0
		b := openBuckets(tx)
		// Collect first: deleting under a cursor skips keys.
		recs, err := records(b.failed)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if err := b.failed.Delete([]byte(r.Path)); err != nil {
				return err
			}
			if b.pending.Get([]byte(r.Path)) != nil {
				continue // already pending again; that record supersedes this one
			}
			r.Attempts = 0
			if err := b.add(r); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("journal: retry failed: %w", err)
	}
	if n > 0 {
		select {
		case j.notify <- struct{}{}:
		default:
		}
	}
	return n, nil
}

// Stats summarises the committed journal for the status command.
type Stats struct {
	Pending int
	Failed  int
	// Oldest is the earliest First among pending records: how far behind
	// the remote is. Zero when nothing is pending.
	Oldest time.Time
}

// Stats reads every pending record (to find Oldest); it is meant for status
// output, not for a hot loop.
func (j *Journal) Stats() (Stats, error) {
	var s Stats
	var rel boltmem.Counter
	err := j.db.View(func(tx *bbolt.Tx) error {
		b := openBuckets(tx)
		s.Failed = b.failed.Stats().KeyN
		return b.pending.ForEach(func(k, v []byte) error {
			rel.Step(tx)
			r, err := unmarshalRecord(string(k), v)
			if err != nil {
				return err
			}
			s.Pending++
			if s.Oldest.IsZero() || r.First.Before(s.Oldest) {
				s.Oldest = r.First
			}
			return nil
		})
	})
	if err != nil {
		return Stats{}, fmt.Errorf("journal: stats: %w", err)
	}
	return s, nil
}

// SetMeta stores a small value for the status command (last sync time,
// remote URL, …). It returns once the value is durable.
func (j *Journal) SetMeta(key string, v []byte) error {
	v = append([]byte(nil), v...) // the caller may reuse v before the commit
	err := j.exec(func(tx *bbolt.Tx) error {
		return openBuckets(tx).meta.Put([]byte(key), v)
	})
	if err != nil {
		return fmt.Errorf("journal: set meta %q: %w", key, err)
	}
	return nil
}

// Meta returns the value stored under key, or nil and no error if there is none.
func (j *Journal) Meta(key string) ([]byte, error) {
	var v []byte
	err := j.db.View(func(tx *bbolt.Tx) error {
		if data := openBuckets(tx).meta.Get([]byte(key)); data != nil {
			v = append([]byte{}, data...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("journal: meta %q: %w", key, err)
	}
	return v, nil
}
