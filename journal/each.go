package journal

import (
	"fmt"

	"github.com/s3sync/s3sync/internal/boltmem"
	"go.etcd.io/bbolt"
)

// eachChunk is how many records EachPending reads per read transaction:
// large enough that a million records cost a few hundred transactions,
// small enough that none holds bbolt's remap lock for long (a writer that
// grows the file waits for the readers).
const eachChunk = 4096

// EachPending calls fn with every committed pending record, in path order,
// until fn returns false. Unlike Pending it does not follow the queue: it
// reads the records themselves, one cursor step each, which is what a
// count or a summary needs (status, at a million pending). A record
// changed during the walk may be seen as it was or as it is.
func (j *Journal) EachPending(fn func(Record) bool) error {
	var after []byte
	var rel boltmem.Counter
	recs := make([]Record, 0, eachChunk)
	for {
		recs = recs[:0]
		err := j.db.View(func(tx *bbolt.Tx) error {
			c := openBuckets(tx).pending.Cursor()
			var k, v []byte
			if after == nil {
				k, v = c.First()
			} else if k, v = c.Seek(after); k != nil && string(k) == string(after) {
				k, v = c.Next()
			}
			for ; k != nil && len(recs) < eachChunk; k, v = c.Next() {
				rel.Step(tx)
				r, err := unmarshalRecord(string(k), v)
				if err != nil {
					return err
				}
				recs = append(recs, r)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("journal: pending: %w", err)
		}
		for _, r := range recs {
			if !fn(r) {
				return nil
			}
		}
		if len(recs) < eachChunk {
			return nil
		}
		after = []byte(recs[len(recs)-1].Path)
	}
}
