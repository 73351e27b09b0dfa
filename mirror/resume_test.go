package mirror_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sys/unix"

	"github.com/s3sync/s3sync/cache"
	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/mirror"
	"github.com/s3sync/s3sync/remote"
)

// At mount start, uploads recorded for files changed or removed since are
// aborted and forgotten; an unchanged file's is kept for resuming.
func TestAbortStaleUploads(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	c, err := remote.New(context.Background(), remote.Config{EndpointURL: srv.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	store := openCache(t)
	work := t.TempDir()
	loc := remote.Location{Bucket: bucket, Prefix: "p/"}
	ctx := context.Background()
	for _, name := range []string{"same", "changed", "gone"} {
		p := filepath.Join(work, name)
		os.WriteFile(p, []byte(name), 0o644)
		f, _ := os.Open(p)
		st, _ := statOf(f)
		f.Close()
		out, err := srv.Client().CreateMultipartUpload(ctx, &s3CreateInput{Bucket: &bucket, Key: ptr("p/" + name)})
		if err != nil {
			t.Fatal(err)
		}
		store.PutUpload(name, cache.Upload{Key: "p/" + name, ID: *out.UploadId, Size: st.size, Mtime: st.mtime, Ctime: st.ctime, Ino: st.ino})
	}
	os.WriteFile(filepath.Join(work, "changed"), []byte("CHANGED"), 0o644)
	os.Remove(filepath.Join(work, "gone"))
	n, err := mirror.AbortStaleUploads(ctx, c, store, work, loc, slog.New(slog.DiscardHandler))
	if err != nil || n != 2 {
		t.Fatalf("aborted %d (%v), want 2", n, err)
	}
	if left := srv.MultipartUploads(t, bucket); left != 1 {
		t.Errorf("%d uploads left, want the unchanged file's", left)
	}
	for name, want := range map[string]bool{"same": true, "changed": false, "gone": false} {
		if _, ok, _ := store.GetUpload(name); ok != want {
			t.Errorf("%s recorded: %v, want %v", name, ok, want)
		}
	}
}

type s3CreateInput = s3.CreateMultipartUploadInput

func ptr(s string) *string { return &s }

// fileStamp is what an upload's record holds of its file.
type fileStamp struct {
	size         int64
	mtime, ctime time.Time
	ino          uint64
}

func statOf(f *os.File) (fileStamp, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fileStamp{}, err
	}
	return fileStamp{size: st.Size, mtime: time.Unix(st.Mtim.Unix()), ctime: time.Unix(st.Ctim.Unix()), ino: st.Ino}, nil
}
