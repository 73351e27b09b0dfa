package cache

import (
	"fmt"
	"strings"

	"go.etcd.io/bbolt"
)

// Intents: keys whose PUT is about to be sent for a path the cache holds no
// entry for, kept durably until the cache learns the outcome. A directory's
// marker is the case: its key ("dir/") is not the key of the record that
// makes it ("dir"), so if the PUT lands and the process dies before the
// cache entry commits, and the directory is then replaced by a file, nothing
// else would remember that the bucket holds "dir/". Put and Delete of the
// path (the outcome, either way) settle its intent in the same transaction.

var bucketIntents = []byte("intents")

// PutIntent records that a PUT of path's key may land before the cache
// knows of it; it is durable on return.
func (c *Cache) PutIntent(path string) error {
	if err := c.putSide(bucketIntents, path, []byte{1}); err != nil {
		return fmt.Errorf("cache: put intent %q: %w", path, err)
	}
	return nil
}

// HasIntent reports whether path has an intent not yet settled.
func (c *Cache) HasIntent(path string) (bool, error) {
	data, err := c.getSide(bucketIntents, path)
	if err != nil {
		return false, fmt.Errorf("cache: get intent %q: %w", path, err)
	}
	return data != nil, nil
}

// DeleteIntent settles path's intent without a cache entry: its key was
// found to hold nothing of this side's, or was deleted.
func (c *Cache) DeleteIntent(path string) error {
	err := c.db.Update(func(tx *bbolt.Tx) error {
		return settleIntent(tx, path)
	})
	if err != nil {
		return fmt.Errorf("cache: delete intent %q: %w", path, err)
	}
	return nil
}

// Intents calls fn for every path with an intent not yet settled (few: at
// most the PUTs in flight when a process died).
func (c *Cache) Intents(fn func(path string) error) error {
	var all []string
	err := c.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketIntents)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error {
			all = append(all, string(k))
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("cache: intents: %w", err)
	}
	for _, p := range all {
		if err := fn(p); err != nil {
			return err
		}
	}
	return nil
}

// settleIntent drops path's intent inside a write transaction. Only
// markers have intents, so other paths cost no lookup.
func settleIntent(tx *bbolt.Tx, path string) error {
	if !strings.HasSuffix(path, "/") {
		return nil
	}
	if b := tx.Bucket(bucketIntents); b != nil {
		return b.Delete([]byte(path))
	}
	return nil
}
