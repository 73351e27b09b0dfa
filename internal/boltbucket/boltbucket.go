// Package boltbucket holds the loops over a whole bbolt bucket that the
// journal and the cache share: read every record out of a transaction, and
// empty a bucket.
package boltbucket

import "go.etcd.io/bbolt"

// Collect returns fn's value for every key of b, in key order, stopping at
// fn's first error. fn must copy what it keeps out of k and v: they are
// valid only inside the transaction.
func Collect[T any](b *bbolt.Bucket, fn func(k, v []byte) (T, error)) ([]T, error) {
	var out []T
	err := b.ForEach(func(k, v []byte) error {
		x, err := fn(k, v)
		if err != nil {
			return err
		}
		out = append(out, x)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Clear deletes every key of b and returns how many there were.
func Clear(b *bbolt.Bucket) (int, error) {
	// Collect first: deleting under a cursor skips keys.
	keys, err := Collect(b, func(k, _ []byte) ([]byte, error) { return append([]byte(nil), k...), nil })
	if err != nil {
		return 0, err
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}
