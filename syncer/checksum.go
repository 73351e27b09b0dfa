package syncer

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/s3sync/s3sync/cache"
	"github.com/s3sync/s3sync/internal/confine"
	"github.com/s3sync/s3sync/internal/walk"
	"github.com/s3sync/s3sync/remote"
)

// SumCache remembers local files' checksums between runs, keyed by the path
// relative to the local root; *cache.Sums implements it.
type SumCache interface {
	// Get returns the Digest recorded for rel with exactly this Stamp.
	Get(rel string, st cache.Stamp) (cache.Digest, bool)
	// Put records d, read while the file had Stamp st, hashing having
	// started at hashedAt. An error means only that it was not kept.
	Put(rel string, st cache.Stamp, d cache.Digest, hashedAt time.Time) error
}

var _ SumCache = (*cache.Sums)(nil)

// ErrChangedWhileHashing means a local file was written to during every
// attempt to read its checksum.
var ErrChangedWhileHashing = errors.New("file kept changing while its checksum was read")

// hasher reads local files' checksums, through the cache when there is one,
// a few files at a time: hashing is CPU and disk bound, and more readers
// than cores only make each slower.
type hasher struct {
	cache  SumCache
	sem    chan struct{}
	hashed atomic.Int64 // files read
	cached atomic.Int64 // files answered by the cache
}

func newHasher(c SumCache) *hasher {
	return &hasher{cache: c, sem: make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))}
}

// sum returns the Digest of the file at path (rel: its key below the local
// root) and the Stamp it had while read, so the caller compares the size and
// mtime that go with that content.
func (h *hasher) sum(ctx context.Context, path, rel string) (cache.Digest, cache.Stamp, error) {
	for range 3 {
		d, st, changed, err := h.sumOnce(ctx, path, rel)
		if err != nil || !changed {
			return d, st, err
		}
	}
	return cache.Digest{}, cache.Stamp{}, fmt.Errorf("%s: %w", path, ErrChangedWhileHashing)
}

func (h *hasher) sumOnce(ctx context.Context, path, rel string) (d cache.Digest, st cache.Stamp, changed bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return d, st, false, err
	}
	defer f.Close()
	if st, err = stampOf(f); err != nil {
		return d, st, false, err
	}
	if h.cache != nil {
		if d, ok := h.cache.Get(rel, st); ok {
			h.cached.Add(1)
			return d, st, false, nil
		}
	}
	select {
	case h.sem <- struct{}{}:
	case <-ctx.Done():
		return d, st, false, ctx.Err()
	}
	defer func() { <-h.sem }()
	// A write in the stamp's clock tick, or begun before the stamp and
	// still copying, would tear the digest unseen (see settledState and
	// waitForWriters), and the cache would keep it under the stamp.
	for deadline := time.Now().Add(maxTickWait); !time.Unix(0, st.Ctime).Before(coarseNow()) && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
		if st, err = stampOf(f); err != nil {
			return d, st, false, err
		}
	}
	if err := waitForWriters(f); err != nil {
		return d, st, false, err
	}
	start := time.Now()
	if d, err = digest(ctx, f); err != nil {
		return d, st, false, fmt.Errorf("read %s: %w", path, err)
	}
	after, err := stampOf(f)
	if err != nil {
		return d, st, false, err
	}
	if after != st {
		return d, st, true, nil
	}
	h.hashed.Add(1)
	if h.cache != nil {
		h.cache.Put(rel, st, d, start)
	}
	return d, st, false, nil
}

func stampOf(f *os.File) (cache.Stamp, error) {
	fi, err := f.Stat()
	if err != nil {
		return cache.Stamp{}, err
	}
	if !fi.Mode().IsRegular() {
		return cache.Stamp{}, fmt.Errorf("%s is not a regular file", walk.Kind(fi.Mode()))
	}
	st := cache.Stamp{Size: fi.Size(), Mtime: fi.ModTime().UnixNano()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.Ctime = sys.Ctim.Nano()
		st.Ino = sys.Ino
	}
	return st, nil
}

// digest reads r to the end once for both checksums.
func digest(ctx context.Context, r io.Reader) (cache.Digest, error) {
	m := md5.New()
	c := remote.NewCRC64NVME()
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return cache.Digest{}, err
		}
		n, err := r.Read(buf)
		m.Write(buf[:n])
		c.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			return cache.Digest{}, err
		}
	}
	var d cache.Digest
	copy(d.MD5[:], m.Sum(nil))
	d.CRC64NVME = c.Sum64()
	return d, nil
}

// HoldsFile reports whether the object info describes (from a HEAD) holds
// exactly what the file rel below root holds now: by the store's CRC64NVME
// or single-part MD5 where there is one, else by size and x-amz-meta-mtime.
func HoldsFile(ctx context.Context, root *confine.Root, rel string, info remote.Info) bool {
	// Opened without following anything: a link here is no file that
	// holds the object, wherever it points.
	f, err := root.Open(rel)
	if err != nil {
		return false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() != info.Size {
		return false
	}
	obj := objectContent(info.ETag).withHead(info)
	if obj.crc == "" && obj.md5 == "" {
		return info.Mtime.Equal(st.ModTime())
	}
	dg, err := digest(ctx, f)
	if err != nil {
		return false
	}
	same, known := sameContent(localContent(dg), obj)
	return known && same
}

// content is what is known of one side's bytes; "" is unknown.
type content struct {
	md5  string // lowercase hex: a local file's, or a single-part ETag
	crc  string // base64 of the big-endian CRC64NVME, as S3 shows it
	etag string // a multipart ETag, unquoted
	// encrypted is the encryption (SSE-KMS, SSE-C) that made a HEAD's
	// ETag something other than an MD5; "" when it may be one.
	encrypted string
}

func localContent(d cache.Digest) content {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], d.CRC64NVME)
	return content{md5: hex.EncodeToString(d.MD5[:]), crc: base64.StdEncoding.EncodeToString(b[:])}
}

// objectContent is what a listing's ETag says: the MD5 of a single-part
// upload (32 hex digits), or a multipart ETag ("<hex>-N"), which is an MD5 of
// the parts' MD5s and so depends on the part size.
func objectContent(etag string) content {
	etag = strings.Trim(etag, `"`)
	if len(etag) == 32 && isHex(etag) {
		return content{md5: strings.ToLower(etag)}
	}
	return content{etag: etag}
}

// withHead adds the store's full-object CRC64NVME from a HEAD, and drops
// what the ETag seemed to say when the object's encryption means it is not
// an MD5.
func (c content) withHead(info remote.Info) content {
	if !info.ETagMayBeMD5() {
		c.md5, c.etag, c.encrypted = "", "", info.Encryption
	}
	if info.Checksum != "" && info.ChecksumType != "COMPOSITE" {
		c.crc = info.Checksum
	}
	return c
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if !('0' <= ch && ch <= '9' || 'a' <= ch && ch <= 'f' || 'A' <= ch && ch <= 'F') {
			return false
		}
	}
	return true
}

// sameContent compares what both sides' checksums say. The store's own
// CRC64NVME comes first: an ETag is not an MD5 for SSE-KMS and SSE-C
// objects. known is false when no checksum is known on both sides.
func sameContent(a, b content) (same, known bool) {
	switch {
	case a.crc != "" && b.crc != "":
		return a.crc == b.crc, true
	case a.md5 != "" && b.md5 != "":
		return a.md5 == b.md5, true
	case a.etag != "" && a.etag == b.etag:
		// Equal multipart ETags: the same parts, byte for byte. Unequal
		// ones prove nothing (another part size gives another ETag).
		return true, true
	}
	return false, false
}

// whyUnknown says why sameContent could not tell, for a person.
func whyUnknown(a, b content) string {
	for _, c := range []content{a, b} {
		if c.md5 == "" && c.crc == "" && c.encrypted != "" {
			return c.encrypted + " object, whose ETag is not an MD5, and no stored CRC64NVME"
		}
		if c.md5 == "" && c.crc == "" {
			return "multipart ETag and no stored CRC64NVME"
		}
	}
	return "no checksum of the same kind on both sides"
}
