package cache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/s3sync/s3sync/internal/boltmem"
	"go.etcd.io/bbolt"

	"github.com/s3sync/s3sync/internal/binenc"
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
	// Kind is what the path is in WORKDIR, which decides its object's key:
	// a file's key is its path, a symlink's is path+".rclonelink" (rclone's
	// --links format) and an empty directory's marker is path+"/".
	Kind Kind
	// Meta says Mode, UID and GID were recorded (entries written before
	// they were kept have none, and are not compared on them).
	Meta bool
	// Mode is the permission bits (07777) the object's metadata holds.
	Mode uint32
	// UID and GID are the owner the object's metadata holds.
	UID, GID uint32
}

// Kind says what a cache entry's path is in WORKDIR.
type Kind uint8

const (
	KindFile Kind = iota // a regular file, stored under its path
	KindLink             // a symlink, stored as path+".rclonelink"
	KindDir              // a directory, stored as the marker path+"/"
)

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
// Put and Delete settle path's intent (see PutIntent).
func (c *Cache) Put(path string, e Entry) error {
	if err := checkKey(path); err != nil {
		return fmt.Errorf("cache: put %q: %w", path, err)
	}
	data := e.marshal()
	err := c.write(func(b *bbolt.Bucket) error {
		if err := settleIntent(b.Tx(), path, e.Kind); err != nil {
			return err
		}
		return b.Put([]byte(path), data)
	})
	if err != nil {
		return fmt.Errorf("cache: put %q: %w", path, err)
	}
	return nil
}

// Write is one change to what the cache says of a path, made with the
// end of a journal record in one transaction (state.State.Done).
type Write struct {
	Path string
	// Entry is what the remote now holds for Path.
	Entry Entry
	// Delete: the remote holds nothing the cache knows of for Path; Entry
	// is not looked at.
	Delete bool
}

// ApplyTx makes writes, in order, inside the caller's write transaction on
// the same database. Each validates before it writes; the first error is
// returned, and the writes before it stay in tx.
func (c *Cache) ApplyTx(tx *bbolt.Tx, writes []Write) error {
	for _, w := range writes {
		var err error
		if w.Delete {
			err = c.deleteTx(tx, w.Path)
		} else {
			err = c.putTx(tx, w.Path, w.Entry)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// putTx is Put inside tx. It validates before it writes.
func (c *Cache) putTx(tx *bbolt.Tx, path string, e Entry) error {
	if err := checkKey(path); err != nil {
		return fmt.Errorf("cache: put %q: %w", path, err)
	}
	if err := settleIntent(tx, path, e.Kind); err != nil {
		return fmt.Errorf("cache: put %q: %w", path, err)
	}
	if err := tx.Bucket(bucketCache).Put([]byte(path), e.marshal()); err != nil {
		return fmt.Errorf("cache: put %q: %w", path, err)
	}
	return nil
}

// deleteTx is Delete inside tx.
func (c *Cache) deleteTx(tx *bbolt.Tx, path string) error {
	if err := settleDeleted(tx, path); err != nil {
		return fmt.Errorf("cache: delete %q: %w", path, err)
	}
	if err := tx.Bucket(bucketCache).Delete([]byte(path)); err != nil {
		return fmt.Errorf("cache: delete %q: %w", path, err)
	}
	return nil
}

// Delete forgets path; deleting an absent path is not an error.
func (c *Cache) Delete(path string) error {
	err := c.write(func(b *bbolt.Bucket) error {
		if err := settleDeleted(b.Tx(), path); err != nil {
			return err
		}
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

// Empty reports whether the cache has no entries, without reading them.
func (c *Cache) Empty() (bool, error) {
	var empty bool
	err := c.db.View(func(tx *bbolt.Tx) error {
		k, _ := tx.Bucket(bucketCache).Cursor().First()
		empty = k == nil
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("cache: %w", err)
	}
	return empty, nil
}

// Len returns the number of entries. It reads every page of the cache.
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
	n      int // entries returned
	rel    boltmem.Counter
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
	it.n++
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
			it.rel.Step(tx)
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

// entryVersion 2 appends Kind and the metadata to version 1's fields;
// version 1 entries still read, as files without metadata.
const entryVersion = 2

const entryMeta = 1 // flag: Meta

var errCorrupt = errors.New("corrupt cache entry")

func (e *Entry) marshal() []byte {
	b := make([]byte, 0, 40+len(e.ETag)+len(e.StorageClass))
	b = append(b, entryVersion)
	b = binary.AppendVarint(b, e.Size)
	b = binenc.AppendTime(b, e.Mtime)
	b = binenc.AppendString(b, e.ETag)
	b = binenc.AppendString(b, e.StorageClass)
	b = binenc.AppendTime(b, e.Synced)
	var flags byte
	if e.Meta {
		flags |= entryMeta
	}
	b = append(b, byte(e.Kind), flags)
	b = binary.AppendUvarint(b, uint64(e.Mode))
	b = binary.AppendUvarint(b, uint64(e.UID))
	b = binary.AppendUvarint(b, uint64(e.GID))
	return b
}

func unmarshalEntry(data []byte) (Entry, error) {
	d := binenc.Decoder{B: data}
	v := d.Byte()
	if v != 1 && v != entryVersion {
		return Entry{}, fmt.Errorf("version %d: %w", v, errCorrupt)
	}
	var e Entry
	e.Size = d.Varint()
	e.Mtime = d.Time()
	e.ETag = d.String()
	e.StorageClass = d.String()
	e.Synced = d.Time()
	if v >= 2 {
		e.Kind = Kind(d.Byte())
		e.Meta = d.Byte()&entryMeta != 0
		e.Mode = uint32(d.Uvarint())
		e.UID = uint32(d.Uvarint())
		e.GID = uint32(d.Uvarint())
	}
	if d.Bad {
		return Entry{}, errCorrupt
	}
	return e, nil
}
