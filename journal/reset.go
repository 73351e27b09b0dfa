package journal

import (
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/s3sync/s3sync/internal/boltbucket"
)

// Reset drops every pending and failed record and returns how many there
// were. It is for a state dir adopted by another working directory or
// remote: its records describe changes to a folder that is not there, and
// applying one (a removal above all) to what is there now would be wrong.
// Meta values are kept.
func (j *Journal) Reset() (int, error) {
	var n int
	err := j.exec(func(tx *bbolt.Tx) error {
		b := openBuckets(tx)
		n = 0
		for _, bk := range []*bbolt.Bucket{b.pending, b.failed} {
			cleared, err := boltbucket.Clear(bk)
			if err != nil {
				return err
			}
			n += cleared
		}
		// The queue's keys name the pending records just dropped.
		_, err := boltbucket.Clear(b.order)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("journal: reset: %w", err)
	}
	return n, nil
}
