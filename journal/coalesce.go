package journal

import (
	"time"

	"go.etcd.io/bbolt"
)

// buckets are the journal's buckets in one write transaction; put is
// where the records of one path coalesce.
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
