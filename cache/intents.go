package cache

import (
	"fmt"
	"strings"

	"go.etcd.io/bbolt"
)

// Intents: keys whose PUT is about to be sent for a path the cache holds no
// entry of that kind for, kept durably until the cache learns the outcome.
// A directory's marker ("dir/") and a symlink's object ("l.rclonelink")
// are the cases: their keys are not the path of the record that makes them,
// so if the PUT lands and the process dies before the cache entry commits,
// and the path is then replaced by something else, nothing else would
// remember that the bucket holds that key. An intent is named by its key
// (relative to the prefix); writing the entry it was for (a marker's or a
// link's, see ObjectRel) settles it in the same transaction, as does
// deleting a marker's entry.

// LinkSuffix is what a symlink's key adds to its path (rclone's --links).
const LinkSuffix = ".rclonelink"

// ObjectRel is the key, relative to the prefix, that holds path's entry
// of kind k.
func ObjectRel(path string, k Kind) string {
	switch k {
	case KindLink:
		return path + LinkSuffix
	case KindDir:
		// A marker's cache key ("a/b/") already ends in "/".
		return strings.TrimSuffix(path, "/") + "/"
	}
	return path
}

var bucketIntents = []byte("intents")

// intentTable holds a key per intent; the value says nothing.
var intentTable = side[struct{}]{name: bucketIntents,
	encode: func(struct{}) []byte { return []byte{1} },
	decode: func([]byte) (struct{}, error) { return struct{}{}, nil }}

// PutIntent records that a PUT of path's key may land before the cache
// knows of it; it is durable on return.
func (c *Cache) PutIntent(path string) error {
	if err := intentTable.put(c, path, struct{}{}); err != nil {
		return fmt.Errorf("cache: put intent %q: %w", path, err)
	}
	return nil
}

// HasIntent reports whether path has an intent not yet settled.
func (c *Cache) HasIntent(path string) (bool, error) {
	_, ok, err := intentTable.get(c, path)
	if err != nil {
		return false, fmt.Errorf("cache: get intent %q: %w", path, err)
	}
	return ok, nil
}

// DeleteIntent settles the intent of key path without a cache entry: the
// key was found to hold nothing of this side's, or was deleted.
func (c *Cache) DeleteIntent(path string) error {
	if err := intentTable.delete(c, path); err != nil {
		return fmt.Errorf("cache: delete intent %q: %w", path, err)
	}
	return nil
}

// Intents calls fn for every path with an intent not yet settled (few: at
// most the PUTs in flight when a process died).
func (c *Cache) Intents(fn func(path string) error) error {
	return intentTable.each(c, func(path string, _ struct{}) error { return fn(path) })
}

// settleIntent drops, inside a write transaction, the intent an entry
// of kind k written for path settles: a marker's or a link's (files have
// none, and cost no lookup).
func settleIntent(tx *bbolt.Tx, path string, k Kind) error {
	if strings.HasSuffix(path, "/") {
		k = KindDir // a marker's path, whatever an old entry says
	}
	if k == KindFile {
		return nil
	}
	if b := tx.Bucket(bucketIntents); b != nil {
		return b.Delete([]byte(ObjectRel(path, k)))
	}
	return nil
}

// settleDeleted is settleIntent for a deleted entry, whose kind is not
// read: a marker's path says it is one.
func settleDeleted(tx *bbolt.Tx, path string) error {
	return settleIntent(tx, path, KindFile)
}
