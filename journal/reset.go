package journal

import (
	"fmt"

	"go.etcd.io/bbolt"
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
		n = b.pending.Stats().KeyN + b.failed.Stats().KeyN
		for _, bk := range []*bbolt.Bucket{b.pending, b.order, b.failed} {
			// Collect first: deleting under a cursor skips keys.
			var keys [][]byte
			if err := bk.ForEach(func(k, _ []byte) error {
				keys = append(keys, append([]byte(nil), k...))
				return nil
			}); err != nil {
				return err
			}
			for _, k := range keys {
				if err := bk.Delete(k); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("journal: reset: %w", err)
	}
	return n, nil
}
