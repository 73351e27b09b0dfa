package journal

import (
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/s3sync/s3sync/internal/boltmem"
)

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
