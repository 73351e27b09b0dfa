package remote_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"hash/crc64"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/remote"
)

// Every upload stores a full-object CRC64NVME that the store verified:
// single PUTs and multipart alike, so verify can check content later.
func TestUploadStoresFullObjectChecksum(t *testing.T) {
	s3test.Each(t, func(t *testing.T) {
		srv := s3test.Get(t)
		bucket := srv.NewBucket(t)
		c := newClient(t, func(c *remote.Config) { c.MultipartThreshold = 5 << 20; c.PartSize = 5 << 20 })
		ctx := context.Background()
		for _, size := range []int{0, 4096, 2 << 20, 12<<20 + 7} {
			data := make([]byte, size)
			rand.Read(data)
			key := "sum/" + strings.Repeat("x", size%7+1)
			up, err := c.Upload(ctx, bucket, key, bytes.NewReader(data), int64(size), remote.PutOptions{})
			if err != nil {
				t.Fatalf("%d bytes: %v", size, err)
			}
			want := remote.EncodeCRC64(crc64.Update(0, crc64.MakeTable(0x9a6c9329ac4bc9b5), data))
			info, err := c.Head(ctx, bucket, key)
			if err != nil {
				t.Fatal(err)
			}
			if info.Checksum != want || info.ChecksumType != "FULL_OBJECT" {
				t.Errorf("%d bytes: stored checksum %q (%s), want %q FULL_OBJECT", size, info.Checksum, info.ChecksumType, want)
			}
			if up.Checksum != "" && up.Checksum != want {
				t.Errorf("%d bytes: upload answered checksum %q, want %q", size, up.Checksum, want)
			}
		}
	})
}

// flipping reads the same bytes the first time through and different ones
// afterwards: a file written to between the hash and the send.
type flipping struct {
	data  []byte
	reads atomic.Int64
	after int64 // bytes read before the content changes
}

func (f *flipping) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(f.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.data[off:])
	if f.reads.Add(int64(n)) > f.after {
		for i := range p[:n] {
			p[i] ^= 0xff
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// A body that changes between the hash and the send is refused by the
// store, for a single PUT and for a part; the key keeps its old content.
// (Bodies up to 8 MiB are read once and sent from memory, so only parts of
// objects over 78 GiB are read twice; the test lowers that bound.)
func TestUploadRefusesChangedBody(t *testing.T) {
	s3test.Each(t, func(t *testing.T) {
		defer remote.ReadTwiceAbove(1 << 20)()
		srv := s3test.Get(t)
		bucket := srv.NewBucket(t)
		c := newClient(t, func(c *remote.Config) { c.MultipartThreshold = 5 << 20; c.PartSize = 5 << 20 })
		ctx := context.Background()
		for _, size := range []int{2 << 20, 11 << 20} {
			key := "torn"
			if _, err := c.Upload(ctx, bucket, key, strings.NewReader("old"), 3, remote.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			data := make([]byte, size)
			rand.Read(data)
			// Changes after the first 5 MiB were hashed: for the single PUT
			// while it is sent, for multipart in the first part's send.
			f := &flipping{data: data, after: int64(min(size, 5<<20))}
			_, err := c.Upload(ctx, bucket, key, f, int64(size), remote.PutOptions{})
			if !errors.Is(err, remote.ErrBadDigest) {
				t.Errorf("%d bytes: upload of a body that changed: err = %v, want remote.ErrBadDigest", size, err)
			}
			if body, _ := srv.Get(t, bucket, key); body != "old" {
				t.Errorf("%d bytes: object now holds %d bytes, want the old content", size, len(body))
			}
		}
	})
}

// Check runs before the object becomes visible: its error aborts a
// multipart upload, leaving the old object and no upload behind.
func TestUploadCheckAborts(t *testing.T) {
	s3test.Each(t, func(t *testing.T) {
		srv := s3test.Get(t)
		bucket := srv.NewBucket(t)
		c := newClient(t, func(c *remote.Config) { c.MultipartThreshold = 5 << 20; c.PartSize = 5 << 20 })
		ctx := context.Background()
		if _, err := c.Upload(ctx, bucket, "k", strings.NewReader("old"), 3, remote.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		changed := errors.New("file changed")
		for _, size := range []int{100, 11 << 20} {
			data := make([]byte, size)
			_, err := c.Upload(ctx, bucket, "k", bytes.NewReader(data), int64(size), remote.PutOptions{Check: func() error { return changed }})
			if !errors.Is(err, changed) {
				t.Errorf("%d bytes: err = %v, want the Check's error", size, err)
			}
			if body, _ := srv.Get(t, bucket, "k"); body != "old" {
				t.Errorf("%d bytes: object replaced despite the failed check", size)
			}
		}
		if n := srv.MultipartUploads(t, bucket); n != 0 {
			t.Errorf("%d multipart uploads left behind", n)
		}
	})
}

// A conditional copy copies only the content it was told about.
func TestCopySourceIfMatch(t *testing.T) {
	s3test.Each(t, func(t *testing.T) {
		srv := s3test.Get(t)
		bucket := srv.NewBucket(t)
		c := newClient(t, nil)
		ctx := context.Background()
		first, err := c.Upload(ctx, bucket, "f", strings.NewReader("first"), 5, remote.PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Upload(ctx, bucket, "f", strings.NewReader("second"), 6, remote.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		_, err = c.Copy(ctx, bucket, "f", bucket, "g", 5, remote.PutOptions{SourceETag: first.ETag})
		if !errors.Is(err, remote.ErrChanged) {
			t.Fatalf("copy of a source that changed: err = %v, want remote.ErrChanged", err)
		}
		if _, err := c.Head(ctx, bucket, "g"); !errors.Is(err, remote.ErrNotFound) {
			t.Errorf("g exists after a refused copy: %v", err)
		}
		info, _ := c.Head(ctx, bucket, "f")
		etag, err := c.Copy(ctx, bucket, "f", bucket, "g", 6, remote.PutOptions{SourceETag: info.ETag})
		if err != nil {
			t.Fatal(err)
		}
		if body, _ := srv.Get(t, bucket, "g"); body != "second" || etag == "" {
			t.Errorf("copy: body %q etag %q", body, etag)
		}
	})
}

// A download whose bytes do not match the stored checksum fails instead of
// handing back corrupt content.
func TestDownloadCheckedAgainstStoredChecksum(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	c := newClient(t, nil)
	ctx := context.Background()
	data := bytes.Repeat([]byte("backup "), 1000)
	if _, err := c.Upload(ctx, bucket, "k", bytes.NewReader(data), int64(len(data)), remote.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	srv.CorruptObject(t, bucket, "k")
	var buf bytes.Buffer
	if _, err := c.Download(ctx, bucket, "k", "", &buf); err == nil {
		t.Fatalf("download of a corrupted object succeeded (%d bytes)", buf.Len())
	}
}
