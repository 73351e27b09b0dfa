package cache

import (
	"bytes"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/s3sync/s3sync/internal/boltbucket"
)

// Side tables (multipart uploads in progress, open conflicts, intents,
// skipped paths) hold one small record per path in a bucket of their own
// beside the entries, made when first written; side is their one way in.
type side[T any] struct {
	name   []byte
	encode func(T) []byte
	decode func([]byte) (T, error)
}

// get returns path's record and whether there is one (there is none
// before the bucket is made). An undecodable record is an error.
func (s side[T]) get(c *Cache, path string) (T, bool, error) {
	var data []byte
	err := c.db.View(func(tx *bbolt.Tx) error {
		if b := tx.Bucket(s.name); b != nil {
			if v := b.Get([]byte(path)); v != nil {
				data = bytes.Clone(v)
			}
		}
		return nil
	})
	var v T
	if err != nil || data == nil {
		return v, false, err
	}
	if v, err = s.decode(data); err != nil {
		return v, false, err
	}
	return v, true, nil
}

// put stores path's record, making the bucket if needed; durable on
// return.
func (s side[T]) put(c *Cache, path string, v T) error {
	if err := checkKey(path); err != nil {
		return err
	}
	data := s.encode(v)
	return c.db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(s.name)
		if err != nil {
			return err
		}
		return b.Put([]byte(path), data)
	})
}

// delete forgets path's record; forgetting none is not an error.
func (s side[T]) delete(c *Cache, path string) error {
	return c.db.Update(func(tx *bbolt.Tx) error {
		if b := tx.Bucket(s.name); b != nil {
			return b.Delete([]byte(path))
		}
		return nil
	})
}

// each calls fn for every record, in path order, outside the transaction,
// and returns fn's first error as it is. An undecodable record is passed
// over: it loses a resume or a notice, and nothing else would show it
// either.
func (s side[T]) each(c *Cache, fn func(path string, v T) error) error {
	type raw struct {
		path string
		data []byte
	}
	var all []raw
	err := c.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(s.name)
		if b == nil {
			return nil
		}
		var err error
		all, err = boltbucket.Collect(b, func(k, v []byte) (raw, error) { return raw{string(k), bytes.Clone(v)}, nil })
		return err
	})
	if err != nil {
		return fmt.Errorf("cache: %s: %w", s.name, err)
	}
	for _, r := range all {
		v, err := s.decode(r.data)
		if err != nil {
			continue
		}
		if err := fn(r.path, v); err != nil {
			return err
		}
	}
	return nil
}
