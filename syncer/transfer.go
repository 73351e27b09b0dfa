package syncer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/s3sync/s3sync/remote"
)

// MaxKeyLen is S3's limit on a key, in UTF-8 bytes.
const MaxKeyLen = 1024

// ErrKeepsChanging means a file was modified during every upload attempt.
var ErrKeepsChanging = errors.New("file kept changing during upload; it will be sent once it is left alone")

// UploadResult is what the remote holds after an upload.
type UploadResult struct {
	Size  int64
	Mtime time.Time
	ETag  string
}

// UploadFile sends the current content of path to bucket/key and checks
// that the file did not change while it was read (size or mtime); if it
// did, it tries again, up to three times.
func UploadFile(ctx context.Context, r Remote, path, bucket, key, storageClass string) (UploadResult, error) {
	var lastErr error
	for range 3 {
		res, changed, err := uploadOnce(ctx, r, path, bucket, key, storageClass)
		if err != nil || !changed {
			return res, err
		}
		lastErr = ErrKeepsChanging
	}
	return UploadResult{}, lastErr
}

func uploadOnce(ctx context.Context, r Remote, path, bucket, key, storageClass string) (UploadResult, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return UploadResult{}, false, err
	}
	defer f.Close()
	before, err := f.Stat()
	if err != nil {
		return UploadResult{}, false, err
	}
	if !before.Mode().IsRegular() {
		return UploadResult{}, false, fmt.Errorf("%s is not a regular file", kindOf(before.Mode()))
	}
	etag, err := r.Upload(ctx, bucket, key, f, before.Size(), remote.PutOptions{StorageClass: storageClass, Mtime: before.ModTime()})
	if err != nil {
		return UploadResult{}, false, err
	}
	after, err := f.Stat()
	if err != nil {
		return UploadResult{}, false, err
	}
	changed := after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime())
	return UploadResult{Size: before.Size(), Mtime: before.ModTime(), ETag: etag}, changed, nil
}

// errUnsafeKey marks keys that would land outside the destination.
var errUnsafeKey = errors.New("key would land outside the destination directory; not written")

// LocalPath maps a key suffix to a path below root, or fails with a reason
// when the key is not a plain relative path: "..", ".", empty components
// ("a//b"), absolute keys and NUL bytes are never written.
func LocalPath(root, rel string) (string, error) {
	if rel == "" || strings.HasPrefix(rel, "/") || strings.ContainsRune(rel, 0) {
		return "", errUnsafeKey
	}
	for part := range strings.SplitSeq(rel, "/") {
		if part == "" || part == "." || part == ".." {
			return "", errUnsafeKey
		}
	}
	p := filepath.Join(root, filepath.FromSlash(rel))
	// Belt and braces: Join cleans, so whatever passed must still be inside.
	if r, err := filepath.Rel(root, p); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return "", errUnsafeKey
	}
	return p, nil
}

// DownloadFile writes bucket/key to path through a temporary file in the
// same directory, renamed into place once complete, so an interruption
// never leaves a truncated file under the real name. The file's mtime is
// restored from x-amz-meta-mtime, else set to the object's LastModified as
// the AWS CLI does. etag, when set, must still match (the listing's).
func DownloadFile(ctx context.Context, r Remote, bucket, key, etag, path string) (remote.Info, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EEXIST) {
			return remote.Info{}, fmt.Errorf("a parent of %s is a file, so it cannot be a folder too (the bucket holds both a key and keys below it)", path)
		}
		return remote.Info{}, err
	}
	if st, err := os.Lstat(path); err == nil && st.IsDir() {
		return remote.Info{}, fmt.Errorf("%s is a directory here, but the bucket holds a file of that name", path)
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	tmp := filepath.Join(dir, TempPrefix+hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return remote.Info{}, err
	}
	info, err := r.Download(ctx, bucket, key, etag, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		mt := info.Mtime
		if mt.IsZero() {
			mt = info.LastModified
		}
		err = os.Chtimes(tmp, mt, mt)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return remote.Info{}, err
	}
	return info, nil
}
