package journal

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/s3sync/s3sync/internal/boltmem"
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

// run is the committer.
func (j *Journal) run() {
	defer close(j.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var backoff time.Duration
	last := 0 // records in the last commit
	for {
		if backoff == 0 {
			select {
			case <-j.stop:
				j.commitAll()
				return
			case <-j.urgent:
			case <-j.wake:
				// Let more records join this batch, unless someone waits.
				if last >= burstRecords {
					timer.Reset(j.opts.BurstInterval)
				} else {
					timer.Reset(j.opts.CommitInterval)
				}
				select {
				case <-timer.C:
				case <-j.urgent:
					timer.Stop()
				case <-j.stop:
					timer.Stop()
				}
			}
		} else {
			timer.Reset(backoff)
			select {
			case <-timer.C:
			case <-j.stop:
				timer.Stop()
				j.commitAll()
				return
			}
		}
		n, err := j.commitAll()
		if err != nil {
			backoff = min(max(2*backoff, 10*time.Millisecond), time.Second)
		} else {
			backoff = 0
		}
		last = n
	}
}

// burstRecords: a commit of this many records means a burst is on.
const burstRecords = 32

// commitAll commits batches until the queue is empty or a commit fails, and
// returns how many records it committed.
func (j *Journal) commitAll() (int, error) {
	total := 0
	// batch is what of whole is not committed yet: a transaction that
	// reaches its bound (see commit) leaves the rest of its batch to the next one,
	// which goes before anything queued since, so batches stay prefixes of
	// the queue.
	var whole, batch []op
	for {
		j.mu.Lock()
		if len(batch) == 0 {
			if len(j.queue) == 0 {
				j.mu.Unlock()
				return total, nil
			}
			if len(j.queue) <= j.opts.MaxBatch {
				whole, j.queue = j.queue, j.spare[:0]
			} else {
				whole = append(j.spare[:0], j.queue[:j.opts.MaxBatch]...)
				n := copy(j.queue, j.queue[j.opts.MaxBatch:])
				clear(j.queue[n:])
				j.queue = j.queue[:n]
			}
			j.spare = nil
			batch = whole
		}
		j.inCommit = batch
		j.mu.Unlock()

		start := time.Now()
		records, applied, err := j.commit(batch)
		if j.opts.OnCommit != nil {
			j.opts.OnCommit(time.Since(start), err)
		}

		j.mu.Lock()
		if err != nil {
			// Keep the records, in order, ahead of anything queued since:
			// an acknowledged change must never be dropped. Control ops fail
			// now; their callers retry at their own pace.
			kept := make([]op, 0, len(batch)+len(j.queue))
			for _, o := range batch {
				if o.fn == nil {
					kept = append(kept, o)
				} else {
					o.res <- err
				}
			}
			j.queue = append(kept, j.queue...)
			j.commitErr = err
			j.inCommit, whole, batch = nil, nil, nil
		} else {
			j.durable += uint64(records)
			j.commitErr = nil
			done := batch[:applied]
			for _, o := range done {
				if o.res != nil {
					o.res <- nil // replaced below when fn failed
				}
			}
			clear(done)
			batch = batch[applied:]
			j.inCommit = batch // still to commit, for Has
			if len(batch) == 0 {
				j.inCommit = nil
				j.spare = whole[:0]
			}
		}
		close(j.committed)
		j.committed = make(chan struct{})
		j.mu.Unlock()

		if err != nil {
			return total, err
		}
		total += records
		if records > 0 {
			select {
			case j.notify <- struct{}{}:
			default:
			}
		}
	}
}

// commitNodes bounds the B+tree nodes one transaction may load to change
// (bbolt's TxStats.NodeCount). Each costs the heap a copy of its page's
// entries and, at the commit, a page to write. Records of paths that are
// neighbours in key order (an untar, a build) share nodes and commit
// MaxBatch at a time; records scattered over a large journal (every file of
// a big tree edited in no particular order) load a leaf or two each, and a
// batch of 4096 of them held 40 MiB of heap.
const commitNodes = 1024

// commitMapped bounds, with Options.MappedMax, how much of the state file
// one transaction may map: the kernel maps 64 KiB around each page a read
// touches, so 1024 nodes scattered over a state file of hundreds of MiB
// mapped 64 MiB, counted in the process's resident memory until the next
// release, on top of what a concurrent read maps. Nodes close together in the file share those windows, and a
// small state file has few: the bound then cuts nothing.
var commitMapped int64 = 8 << 20

// commitMappedEvery is how many ops a transaction applies between looks at the
// process's file-backed memory (a read of /proc/self/statm): a scattered
// record maps a few windows, so a transaction overshoots commitMapped by a
// few MiB at most.
const commitMappedEvery = 16

// commit applies a prefix of batch in one transaction, stopping once the
// transaction has loaded commitNodes nodes or, with Options.MappedMax,
// mapped commitMapped bytes of the state file (at least one op goes in),
// and returns how many record ops and how many ops in all it applied. A
// control op's own error goes to its caller and does not fail the batch;
// control ops validate before they write, so a failing one has changed
// nothing.
func (j *Journal) commit(batch []op) (records, applied int, err error) {
	opErrs := make(map[int]error)
	err = j.db.Update(func(tx *bbolt.Tx) error {
		clear(opErrs)
		records, applied = 0, 0
		// Once per transaction: the commit reads every node it changed
		// again as it writes them out, so a release half-way would only
		// have their pages mapped again.
		var mappedStop int64
		if j.opts.MappedMax > 0 {
			if boltmem.Over(j.opts.MappedMax) {
				boltmem.Release(tx)
			}
			mappedStop = boltmem.FileRSS() + commitMapped
		}
		b := openBuckets(tx)
		for i, o := range batch {
			if st := tx.Stats(); i > 0 && st.GetNodeCount() >= commitNodes {
				break
			}
			if mappedStop > 0 && i > 0 && i%commitMappedEvery == 0 && boltmem.FileRSS() > mappedStop {
				break
			}
			applied = i + 1
			if o.fn != nil {
				if err := o.fn(tx); err != nil {
					opErrs[i] = err
				}
				continue
			}
			records += o.n
			var err error
			if o.kind == OpRenamed {
				err = b.put(o.path, OpRenamed, o.from, o.isDir, o.at, o.last)
				if err == nil && o.from != "" {
					err = b.put(o.from, OpRemoved, "", o.isDir, o.at, o.last)
				}
			} else {
				err = b.put(o.path, o.kind, "", o.isDir, o.at, o.last)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return records, applied, fmt.Errorf("journal: commit: %w", err)
	}
	// Deliver control-op errors before commitAll sends nil to the rest: res
	// is buffered(1), so the first send wins and commitAll's is dropped.
	for i, e := range opErrs {
		batch[i].res <- e
		batch[i].res = nil
	}
	return records, applied, nil
}

type buckets struct {
	pending, order, failed, meta *bbolt.Bucket
}

func openBuckets(tx *bbolt.Tx) buckets {
	return buckets{
		pending: tx.Bucket(bucketPending),
		order:   tx.Bucket(bucketOrder),
		failed:  tx.Bucket(bucketFailed),
		meta:    tx.Bucket(bucketMeta),
	}
}

// put records a change to path, coalescing onto its pending or failed record.
func (b buckets) put(path string, kind Op, from string, isDir bool, first, last time.Time) error {
	r := Record{Path: path, Op: kind, From: from, IsDir: isDir, First: first, Last: last}
	old := b.pending.Get([]byte(path))
	inPending := old != nil
	if old == nil {
		old = b.failed.Get([]byte(path))
	}
	if old != nil {
		// An undecodable old record is replaced rather than failing the
		// batch: the new record says everything the syncer needs.
		if prev, err := unmarshalRecord(path, old); err == nil {
			r.First = prev.First
			if kind == OpChanged && prev.From != "" {
				r.From, r.IsDir = prev.From, prev.IsDir
			}
			if kind == OpChanged && prev.Op == OpRenamed && prev.From == "" && prev.IsDir {
				// A tree record without a source (RENAME_EXCHANGE) stays
				// one: a chmod of the directory must not make the syncer
				// skip walking it.
				r.Op, r.IsDir = OpRenamed, true
			}
			if (kind == OpChanged || kind == OpRemoved) && prev.Op == OpRemoved && prev.IsDir {
				// A directory removed (or renamed away) and made again,
				// even as a file or link removed since: the objects of
				// the files it held still have to go. Its new files are
				// recorded one by one.
				r.Op, r.IsDir = OpRemoved, true
			}
			if inPending {
				if err := b.order.Delete(seqKey(prev.Seq)); err != nil {
					return err
				}
			}
		}
	}
	if !inPending && old != nil {
		if err := b.failed.Delete([]byte(path)); err != nil {
			return err
		}
	}
	if err := b.add(r); err != nil {
		return err
	}
	if kind == OpChanged && r.From != "" {
		// The rename's record went to the back: its source's removal
		// goes behind it again, or the syncer would remove the source
		// (and forget what the bucket holds there) before the rename
		// could copy from it, and upload instead.
		return b.requeueRemoval(r.From)
	}
	return nil
}

// requeueRemoval moves path's pending removal, if it has one, to the back of
// the queue.
func (b buckets) requeueRemoval(path string) error {
	v := b.pending.Get([]byte(path))
	if v == nil {
		return nil
	}
	prev, err := unmarshalRecord(path, v)
	if err != nil || prev.Op != OpRemoved {
		return nil
	}
	if err := b.order.Delete(seqKey(prev.Seq)); err != nil {
		return err
	}
	return b.add(prev)
}

// add stores r as pending under a new Seq at the back of the queue.
func (b buckets) add(r Record) error {
	seq, err := b.order.NextSequence()
	if err != nil {
		return err
	}
	r.Seq = seq
	if err := b.pending.Put([]byte(r.Path), r.marshal()); err != nil {
		return err
	}
	return b.order.Put(seqKey(seq), []byte(r.Path))
}
