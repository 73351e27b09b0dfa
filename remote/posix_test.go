package remote_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/remote"
)

// Uploads (single and multipart) store mode, uid and gid as rclone's
// --metadata does: the st_mode in octal with its type bits, ids in decimal.
// HEAD and GET read them back.
func TestUploadStoresPosixMetadata(t *testing.T) {
	s3test.Each(t, func(t *testing.T) {
		srv := s3test.Get(t)
		bucket := srv.NewBucket(t)
		c := newClient(t, func(c *remote.Config) { c.MultipartThreshold = 5 << 20; c.PartSize = 5 << 20 })
		ctx := context.Background()
		mtime := time.Unix(1600000000, 5)
		p := remote.FilePosix(0o100000|0o4755, 1234, 5678)
		for key, size := range map[string]int{"small": 3, "multipart": 6 << 20} {
			data := bytes.Repeat([]byte("a"), size)
			if _, err := c.Upload(ctx, bucket, key, bytes.NewReader(data), int64(size), remote.PutOptions{Mtime: mtime, Posix: p}); err != nil {
				t.Fatal(err)
			}
			_, meta := srv.Get(t, bucket, key)
			want := map[string]string{"mode": "104755", "uid": "1234", "gid": "5678", "mtime": "1600000000.000000005"}
			for k, v := range want {
				if meta[k] != v {
					t.Errorf("size %d: x-amz-meta-%s = %q, want %q (all: %v)", size, k, meta[k], v, meta)
				}
			}
			info, err := c.Head(ctx, bucket, key)
			if err != nil {
				t.Fatal(err)
			}
			if info.Posix != p || info.PosixErr != nil {
				t.Errorf("size %d: HEAD read %+v, %v; want %+v", size, info.Posix, info.PosixErr, p)
			}
			var buf bytes.Buffer
			if info, err = c.Download(ctx, bucket, key, "", &buf); err != nil || info.Posix != p {
				t.Errorf("size %d: GET read %+v, %v; want %+v", size, info.Posix, err, p)
			}
		}
	})
}

// A copy with Mtime set replaces the metadata, onto the object itself too
// (how a chmod reaches the bucket without a re-upload), conditional on the
// source's ETag; a copy without keeps the source's.
func TestCopyReplacesPosixMetadata(t *testing.T) {
	s3test.Each(t, func(t *testing.T) {
		srv := s3test.Get(t)
		bucket := srv.NewBucket(t)
		c := newClient(t, nil)
		ctx := context.Background()
		mtime := time.Unix(1600000000, 0)
		up, err := c.Upload(ctx, bucket, "f", strings.NewReader("hello"), 5, remote.PutOptions{Mtime: mtime, Posix: remote.FilePosix(0o100644, 1, 2)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Copy(ctx, bucket, "f", bucket, "kept", 5, remote.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, meta := srv.Get(t, bucket, "kept"); meta["mode"] != "100644" || meta["uid"] != "1" || meta["gid"] != "2" {
			t.Errorf("a plain copy did not keep the metadata: %v", meta)
		}
		want := remote.FilePosix(0o100700, 3, 4)
		etag, err := c.Copy(ctx, bucket, "f", bucket, "f", 5, remote.PutOptions{Mtime: mtime, Posix: want, SourceETag: up.ETag})
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Head(ctx, bucket, "f")
		if err != nil {
			t.Fatal(err)
		}
		if info.Checksum != up.Checksum {
			t.Errorf("the copy onto itself lost the stored checksum: %q, was %q", info.Checksum, up.Checksum)
		}
		if info.Posix != want || !info.Mtime.Equal(mtime) || info.ETag != etag {
			t.Errorf("after the copy onto itself: %+v mtime %v etag %q (copy said %q)", info.Posix, info.Mtime, info.ETag, etag)
		}
		if body, _ := srv.Get(t, bucket, "f"); body != "hello" {
			t.Errorf("body after the metadata copy: %q", body)
		}
		_, err = c.Copy(ctx, bucket, "f", bucket, "f", 5, remote.PutOptions{Mtime: mtime, Posix: want, SourceETag: `"0123456789abcdef0123456789abcdef"`})
		if !errors.Is(err, remote.ErrChanged) {
			t.Errorf("copy onto itself from a stale ETag: %v, want remote.ErrChanged", err)
		}
	})
}

// What rclone writes reads back; what is malformed is left out with a
// reason, and the rest still counts.
func TestParsePosix(t *testing.T) {
	cases := []struct {
		meta map[string]string
		want remote.Posix
		bad  []string // keys named in the error
	}{
		{map[string]string{"mode": "100644", "uid": "1000", "gid": "100"}, remote.FilePosix(0o100644, 1000, 100), nil},
		{map[string]string{"mode": "104755"}, remote.Posix{Mode: 0o104755, HasMode: true}, nil},
		{map[string]string{"mode": "0644"}, remote.Posix{Mode: 0o644, HasMode: true}, nil},
		{map[string]string{"mode": "755", "uid": "0", "gid": "0"}, remote.FilePosix(0o755, 0, 0), nil},
		{map[string]string{}, remote.Posix{}, nil},
		// s3fs writes the mode in decimal: 33188 is 0100644.
		{map[string]string{"mode": "33188", "uid": "7"}, remote.Posix{UID: 7, HasUID: true}, []string{"mode"}},
		// Go's os.FileMode layout (setuid is 1<<23), never a real st_mode.
		{map[string]string{"mode": "40000755"}, remote.Posix{}, []string{"mode"}},
		{map[string]string{"mode": "rwxr-xr-x", "uid": "-1", "gid": "root"}, remote.Posix{}, []string{"mode", "uid", "gid"}},
		{map[string]string{"uid": "4294967295", "gid": "4294967296"}, remote.Posix{}, []string{"uid", "gid"}},
	}
	for _, c := range cases {
		got, err := remote.ParsePosix(c.meta)
		if got != c.want {
			t.Errorf("ParsePosix(%v) = %+v, want %+v", c.meta, got, c.want)
		}
		if (err != nil) != (len(c.bad) > 0) {
			t.Errorf("ParsePosix(%v): err %v, want errors for %v", c.meta, err, c.bad)
		}
		for _, k := range c.bad {
			if err != nil && !strings.Contains(err.Error(), "x-amz-meta-"+k) {
				t.Errorf("ParsePosix(%v): error %q does not name %s", c.meta, err, k)
			}
		}
	}
}
