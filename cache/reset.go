package cache

import (
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/s3sync/s3sync/internal/boltbucket"
)

// Reset forgets every entry, open conflict and intent (not the multipart
// uploads in progress) and returns how many entries there were: for a state dir adopted by another working
// directory or remote, whose entries describe what the bucket held for a
// folder that is not there. An empty cache makes the next mount compare
// WORKDIR with the bucket, as a first mount does.
func (c *Cache) Reset() (int, error) {
	var n int
	err := c.db.Update(func(tx *bbolt.Tx) error {
		var err error
		if n, err = boltbucket.Clear(tx.Bucket(bucketCache)); err != nil {
			return err
		}
		// Conflicts and intents were of what the old folder or remote
		// held.
		for _, name := range [][]byte{bucketConflicts, bucketIntents, bucketSkipped} {
			if tx.Bucket(name) != nil {
				if err := tx.DeleteBucket(name); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("cache: reset: %w", err)
	}
	return n, nil
}
