package cache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/bbolt"
)

var bucketCache = []byte("cache")

// Entry is what the remote holds for a path, as of the last upload or
// download.
type Entry struct {
	Size int64
	// Mtime is the local file's mtime at upload, to the nanosecond, so a
	// later Scan can tell a rewrite that kept the size.
	Mtime        time.Time
	ETag         string
	StorageClass string
	// Synced is when the remote was brought up to date.
	Synced time.Time
}

// Cache is safe for concurrent use.
type Cache struct {
	db *bbolt.DB

	// Group commit for Put and Delete: the first writer commits, and
	// writers arriving meanwhile queue up and share the next transaction.
	// A lone writer pays one fsync and no delay (bbolt's db.Batch would
	// add its MaxBatchDelay); concurrent transfer workers share fsyncs.
	mu         sync.Mutex
	queue      []write
	committing bool
}

type write struct {
	fn  func(b *bbolt.Bucket) error
	res chan error
}

// Open prepares the cache's bucket in db. The caller keeps ownership of db.
func Open(db *bbolt.DB) (*Cache, error) {
	err := db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketCache)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cache: open: %w", err)
	}
	return &Cache{db: db}, nil
}

// Get returns path's entry and whether there is one.
func (c *Cache) Get(path string) (Entry, bool, error) {
	var (
		e     Entry
		found bool
	)
	err := c.db.View(func(tx *bbolt.Tx) error {
		data := tx.Bucket(bucketCache).Get([]byte(path))
		if data == nil {
			return nil
		}
		found = true
		var err error
		e, err = unmarshalEntry(data)
		return err
	})
	if err != nil {
		return Entry{}, false, fmt.Errorf("cache: get %q: %w", path, err)
	}
	return e, found, nil
}

// Put records that the remote holds e for path. It returns once the entry
// is durable; concurrent Puts and Deletes share a transaction and its fsync.
func (c *Cache) Put(path string, e Entry) error {
	if err := checkKey(path); err != nil {
		return fmt.Errorf("cache: put %q: %w", path, err)
	}
	data := e.marshal()
	err := c.write(func(b *bbolt.Bucket) error {
		return b.Put([]byte(path), data)
	})
	if err != nil {
		return fmt.Errorf("cache: put %q: %w", path, err)
	}
	return nil
}

// Delete forgets path; deleting an absent path is not an error.
func (c *Cache) Delete(path string) error {
	err := c.write(func(b *bbolt.Bucket) error {
		return b.Delete([]byte(path))
	})
	if err != nil {
		return fmt.Errorf("cache: delete %q: %w", path, err)
	}
	return nil
}

// checkKey rejects what bbolt would refuse, so one bad path can't fail the
// transaction it shares with other writers.
func checkKey(path string) error {
	if path == "" || len(path) > bbolt.MaxKeySize {
		return ErrBadPath
	}
	return nil
}

// ErrBadPath is returned by Put for an empty or overlong path.
var ErrBadPath = errors.New("cache: empty or overlong path")

func (c *Cache) write(fn func(b *bbolt.Bucket) error) error {
	res := make(chan error, 1)
	c.mu.Lock()
	c.queue = append(c.queue, write{fn, res})
	if c.committing {
		c.mu.Unlock()
		return <-res
	}
	c.committing = true
	for len(c.queue) > 0 {
		batch := c.queue
		c.queue = nil
		c.mu.Unlock()
		err := c.db.Update(func(tx *bbolt.Tx) error {
			b := tx.Bucket(bucketCache)
			for _, w := range batch {
				if err := w.fn(b); err != nil {
					return err
				}
			}
			return nil
		})
		for _, w := range batch {
			w.res <- err
		}
		c.mu.Lock()
	}
	c.committing = false
	c.mu.Unlock()
	return <-res
}

// Len returns the number of entries.
func (c *Cache) Len() (int, error) {
	var n int
	err := c.db.View(func(tx *bbolt.Tx) error {
		n = tx.Bucket(bucketCache).Stats().KeyN
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("cache: len: %w", err)
	}
	return n, nil
}

// Walk calls fn for every entry whose path starts with prefix ("" for all),
// in byte order of the paths. fn runs outside any transaction, so it may call
// Put or Delete; changes made during the walk may or may not be seen. An
// error from fn stops the walk and is returned as is.
func (c *Cache) Walk(prefix string, fn func(path string, e Entry) error) error {
	it := c.iter(prefix)
	for {
		path, e, ok := it.next()
		if !ok {
			return it.err
		}
		if err := fn(path, e); err != nil {
			return err
		}
	}
}

// walkChunk bounds how many entries one read transaction holds. A read
// transaction open for a whole walk of a huge cache would block bbolt from
// growing the file under writers (the journal commits while Scan runs).
const walkChunk = 1024

type entryKV struct {
	path string
	e    Entry
}

// iterator reads the cache in chunks of walkChunk, each in its own short
// read transaction, resuming after the last key it returned.
type iterator struct {
	c      *Cache
	prefix []byte
	buf    []entryKV
	i      int
	last   []byte
	eof    bool
	err    error
}

func (c *Cache) iter(prefix string) *iterator {
	return &iterator{c: c, prefix: []byte(prefix)}
}

func (it *iterator) next() (string, Entry, bool) {
	if it.i == len(it.buf) {
		if it.eof || it.err != nil {
			return "", Entry{}, false
		}
		it.fill()
		if it.i == len(it.buf) {
			return "", Entry{}, false
		}
	}
	kv := it.buf[it.i]
	it.i++
	return kv.path, kv.e, true
}

func (it *iterator) fill() {
	it.buf, it.i = it.buf[:0], 0
	err := it.c.db.View(func(tx *bbolt.Tx) error {
		cur := tx.Bucket(bucketCache).Cursor()
		var k, v []byte
		if it.last == nil {
			k, v = cur.Seek(it.prefix)
		} else {
			k, v = cur.Seek(it.last)
			if k != nil && string(k) == string(it.last) {
				k, v = cur.Next()
			}
		}
		for ; k != nil && len(it.buf) < walkChunk; k, v = cur.Next() {
			if !hasPrefix(k, it.prefix) {
				it.eof = true
				return nil
			}
			e, err := unmarshalEntry(v)
			if err != nil {
				return fmt.Errorf("%q: %w", k, err)
			}
			it.buf = append(it.buf, entryKV{path: string(k), e: e})
		}
		if k == nil {
			it.eof = true
		}
		return nil
	})
	if err != nil {
		it.err = fmt.Errorf("cache: walk: %w", err)
		it.buf = it.buf[:0]
		return
	}
	if len(it.buf) > 0 {
		it.last = []byte(it.buf[len(it.buf)-1].path)
	}
}

func hasPrefix(k, prefix []byte) bool {
	return len(k) >= len(prefix) && string(k[:len(prefix)]) == string(prefix)
}

const entryVersion = 1

var errCorrupt = errors.New("corrupt cache entry")

func (e *Entry) marshal() []byte {
	b := make([]byte, 0, 40+len(e.ETag)+len(e.StorageClass))
	b = append(b, entryVersion)
	b = binary.AppendVarint(b, e.Size)
	b = appendTime(b, e.Mtime)
	b = appendString(b, e.ETag)
	b = appendString(b, e.StorageClass)
	b = appendTime(b, e.Synced)
	return b
}

func unmarshalEntry(data []byte) (Entry, error) {
	d := decoder{b: data}
	if v := d.byte(); v != entryVersion {
		return Entry{}, fmt.Errorf("version %d: %w", v, errCorrupt)
	}
	var e Entry
	e.Size = d.varint()
	e.Mtime = d.time()
	e.ETag = d.string()
	e.StorageClass = d.string()
	e.Synced = d.time()
	if d.bad {
		return Entry{}, errCorrupt
	}
	return e, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendTime keeps nanoseconds and the zero time exactly; UnixNano can't
// represent the zero time.
func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.bad = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.bad || n > uint64(len(d.b)) {
		d.bad = true
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) time() time.Time {
	if d.byte() == 0 {
		return time.Time{}
	}
	sec := d.varint()
	nsec := d.uvarint()
	if d.bad || nsec >= 1e9 {
		d.bad = true
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec))
}
