package cache

import (
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/bbolt"

	"github.com/s3sync/s3sync/internal/binenc"
)

var bucketSums = []byte("sums")

// Stamp identifies one version of a local file as the kernel describes it.
// Any write, truncate, chmod, rename over or replacement changes at least one
// of these, so a checksum recorded with a Stamp is valid while the Stamp is.
type Stamp struct {
	Size  int64
	Mtime int64 // nanoseconds since the epoch
	Ctime int64 // nanoseconds since the epoch
	Ino   uint64
}

// Digest is a file's content checksums: what S3 shows as a single-part ETag
// (MD5) and as x-amz-checksum-crc64nvme.
type Digest struct {
	MD5       [16]byte
	CRC64NVME uint64
}

// RacyWindow is how much older than the start of hashing a file's ctime must
// be for its Digest to be kept. Timestamps come from a coarse clock, so a
// write in the same tick as the hash (and after it) could leave the Stamp
// unchanged; git calls such entries "racy" and does the same.
const RacyWindow = time.Second

// Sums remembers local files' Digests between runs (verify, reconcile
// --checksum), in its own bucket of the state database, keyed by path. It is
// safe for concurrent use. Puts are buffered; Flush writes them.
type Sums struct {
	db *bbolt.DB

	mu      sync.Mutex
	pending map[string][]byte
}

// sumsBatch is how many Puts are buffered before they are written in one
// transaction.
const sumsBatch = 512

// OpenSums prepares the sums bucket in db. The caller keeps ownership of db
// and calls Flush before closing it.
func OpenSums(db *bbolt.DB) (*Sums, error) {
	err := db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketSums)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cache: open sums: %w", err)
	}
	return &Sums{db: db, pending: map[string][]byte{}}, nil
}

// Get returns path's Digest if one was recorded for exactly this Stamp. A
// read error counts as a miss: the file is hashed again.
func (s *Sums) Get(path string, st Stamp) (Digest, bool) {
	s.mu.Lock()
	data, ok := s.pending[path]
	s.mu.Unlock()
	if !ok {
		s.db.View(func(tx *bbolt.Tx) error {
			if v := tx.Bucket(bucketSums).Get([]byte(path)); v != nil {
				data = append([]byte(nil), v...)
			}
			return nil
		})
	}
	if data == nil {
		return Digest{}, false
	}
	got, d, err := unmarshalSum(data)
	if err != nil || got != st {
		return Digest{}, false
	}
	return d, true
}

// Put records d for path as read while the file had Stamp st, hashing having
// started at hashedAt. A racy entry (see RacyWindow) is not kept.
func (s *Sums) Put(path string, st Stamp, d Digest, hashedAt time.Time) error {
	if st.Ctime > hashedAt.Add(-RacyWindow).UnixNano() {
		return nil
	}
	if err := checkKey(path); err != nil {
		return fmt.Errorf("cache: put sum %q: %w", path, err)
	}
	s.mu.Lock()
	s.pending[path] = marshalSum(st, d)
	full := len(s.pending) >= sumsBatch
	s.mu.Unlock()
	if full {
		return s.Flush()
	}
	return nil
}

// Flush writes the buffered Puts in one transaction.
func (s *Sums) Flush() error {
	s.mu.Lock()
	batch := s.pending
	s.pending = map[string][]byte{}
	s.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketSums)
		for k, v := range batch {
			if err := b.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cache: write sums: %w", err)
	}
	return nil
}

const sumVersion = 1

func marshalSum(st Stamp, d Digest) []byte {
	b := make([]byte, 0, 64)
	b = append(b, sumVersion)
	b = binary.AppendVarint(b, st.Size)
	b = binary.AppendVarint(b, st.Mtime)
	b = binary.AppendVarint(b, st.Ctime)
	b = binary.AppendUvarint(b, st.Ino)
	b = binenc.AppendString(b, string(d.MD5[:]))
	return binary.BigEndian.AppendUint64(b, d.CRC64NVME)
}

func unmarshalSum(data []byte) (Stamp, Digest, error) {
	dec := binenc.Decoder{B: data}
	if v := dec.Byte(); v != sumVersion {
		return Stamp{}, Digest{}, fmt.Errorf("version %d: %w", v, errCorrupt)
	}
	var st Stamp
	var d Digest
	st.Size = dec.Varint()
	st.Mtime = dec.Varint()
	st.Ctime = dec.Varint()
	st.Ino = dec.Uvarint()
	md5 := dec.String()
	if dec.Bad || len(md5) != len(d.MD5) || len(dec.B) != 8 {
		return Stamp{}, Digest{}, errCorrupt
	}
	copy(d.MD5[:], md5)
	d.CRC64NVME = binary.BigEndian.Uint64(dec.B)
	return st, d, nil
}
