package cache

import "fmt"

// bucketSkipped holds the paths the mirror does not store and why: FIFOs,
// sockets and device nodes, which S3 cannot hold and `aws s3 sync` and
// rclone skip too. They are not failures (nothing will make them succeed),
// and they are not silent either: `status` lists them.
var bucketSkipped = []byte("skipped")

// skipTable holds each skipped path's kind of file.
var skipTable = side[string]{name: bucketSkipped,
	encode: func(kind string) []byte { return []byte(kind) },
	decode: func(b []byte) (string, error) { return string(b), nil }}

// Skip records that path is not stored because it is a kind of file
// (e.g. "named pipe (FIFO)"), and reports whether that is news (the path
// was not recorded as this kind before): the caller tells the user once.
func (c *Cache) Skip(path, kind string) (bool, error) {
	old, _, err := skipTable.get(c, path)
	if err != nil {
		return false, fmt.Errorf("cache: skipped %q: %w", path, err)
	}
	if old == kind {
		return false, nil
	}
	if err := skipTable.put(c, path, kind); err != nil {
		return false, fmt.Errorf("cache: skip %q: %w", path, err)
	}
	return true, nil
}

// Unskip forgets that path was skipped (it is something else now, or
// gone). Without a record it only reads: it runs for every synced path.
func (c *Cache) Unskip(path string) error {
	if _, ok, err := skipTable.get(c, path); err != nil || !ok {
		return err
	}
	return skipTable.delete(c, path)
}

// Skipped calls fn for every skipped path, in path order, with its kind.
func (c *Cache) Skipped(fn func(path, kind string) error) error {
	return skipTable.each(c, fn)
}
