package cache

import (
	"fmt"

	"go.etcd.io/bbolt"
)

// bucketSkipped holds the paths the mirror does not store and why: FIFOs,
// sockets and device nodes, which S3 cannot hold and `aws s3 sync` and
// rclone skip too. They are not failures (nothing will make them succeed),
// and they are not silent either: `status` lists them.
var bucketSkipped = []byte("skipped")

// Skip records that path is not stored because it is a kind of file
// (e.g. "named pipe (FIFO)"), and reports whether that is news (the path
// was not recorded as this kind before): the caller tells the user once.
func (c *Cache) Skip(path, kind string) (bool, error) {
	old, err := c.getSide(bucketSkipped, path)
	if err != nil {
		return false, fmt.Errorf("cache: skipped %q: %w", path, err)
	}
	if string(old) == kind {
		return false, nil
	}
	if err := c.putSide(bucketSkipped, path, []byte(kind)); err != nil {
		return false, fmt.Errorf("cache: skip %q: %w", path, err)
	}
	return true, nil
}

// Unskip forgets that path was skipped (it is something else now, or
// gone). Without a record it only reads: it runs for every synced path.
func (c *Cache) Unskip(path string) error {
	if old, err := c.getSide(bucketSkipped, path); err != nil || old == nil {
		return err
	}
	return c.db.Update(func(tx *bbolt.Tx) error {
		if b := tx.Bucket(bucketSkipped); b != nil {
			return b.Delete([]byte(path))
		}
		return nil
	})
}

// Skipped calls fn for every skipped path, in path order, with its kind.
func (c *Cache) Skipped(fn func(path, kind string) error) error {
	type item struct{ path, kind string }
	var all []item
	err := c.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketSkipped)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			all = append(all, item{string(k), string(v)})
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, it := range all {
		if err := fn(it.path, it.kind); err != nil {
			return err
		}
	}
	return nil
}
