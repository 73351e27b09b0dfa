package cache

import (
	"bytes"

	"go.etcd.io/bbolt"
)

// Side buckets (multipart uploads in progress, open conflicts) hold one
// small record per path beside the entries; these are their one way in.

// getSide returns a copy of path's record in the side bucket name, or nil
// when there is none (or no such bucket yet).
func (c *Cache) getSide(name []byte, path string) ([]byte, error) {
	var data []byte
	err := c.db.View(func(tx *bbolt.Tx) error {
		if b := tx.Bucket(name); b != nil {
			if v := b.Get([]byte(path)); v != nil {
				data = bytes.Clone(v)
			}
		}
		return nil
	})
	return data, err
}

// putSide stores path's record in the side bucket name, made if needed;
// durable on return.
func (c *Cache) putSide(name []byte, path string, data []byte) error {
	if err := checkKey(path); err != nil {
		return err
	}
	return c.db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(name)
		if err != nil {
			return err
		}
		return b.Put([]byte(path), data)
	})
}
