package syncer

import (
	"context"
	"os"
	"time"

	"github.com/s3sync/s3sync/cache"
	"github.com/s3sync/s3sync/remote"
)

// Uploads keeps the mount's multipart uploads in progress (cache.Cache
// implements it), so that a large upload interrupted by a crash continues
// from its finished parts instead of starting again.
type Uploads interface {
	GetUpload(path string) (cache.Upload, bool, error)
	PutUpload(path string, u cache.Upload) error
	DeleteUpload(path string) error
	Uploads(fn func(path string, u cache.Upload) error) error
}

// Resume ties one file's upload to its entry in Uploads (Store, under
// Rel), so a crash does not lose its finished parts: a fresh one for each
// upload.
type Resume struct {
	Store Uploads
	Rel   string
	// recorded: an entry exists (found, or made by OnCreate) and must go
	// once the upload is over.
	recorded bool
}

// prepare sets o up to continue the upload recorded for the file if the
// file is exactly as it was when that upload began (size, mtime, ctime,
// inode), and to record a new one otherwise; an upload of other content is
// aborted.
func (rs *Resume) prepare(ctx context.Context, r Remote, bucket, key string, st fileState, o *remote.PutOptions) error {
	u, ok, err := rs.Store.GetUpload(rs.Rel)
	if err != nil {
		return err
	}
	rs.recorded = ok
	if ok && u.ID != "" {
		if u.Key == key && began(u, st) {
			o.ResumeID = u.ID
		} else if err := r.AbortUpload(ctx, bucket, u.Key, u.ID); err != nil {
			return err
		}
	}
	o.OnCreate = func(id string) error {
		rs.recorded = true
		return rs.Store.PutUpload(rs.Rel, cache.Upload{Key: key, ID: id, Size: st.size, Mtime: st.mtime, Ctime: st.ctime, Ino: st.ino, Started: time.Now()})
	}
	return nil
}

// began reports whether the upload u was begun for the file as st
// describes it now (size, mtime, ctime, inode).
func began(u cache.Upload, st fileState) bool {
	return u.Size == st.size && u.Mtime.Equal(st.mtime) && u.Ctime.Equal(st.ctime) && u.Ino == st.ino
}

// CanResume reports whether the multipart upload u recorded for a file can
// be continued from the open file f: f is exactly as it was when u began.
func CanResume(u cache.Upload, f *os.File) bool {
	st, err := statOf(f)
	return err == nil && u.ID != "" && began(u, st)
}

func (rs *Resume) forget() {
	if rs.recorded {
		rs.Store.DeleteUpload(rs.Rel)
		rs.recorded = false
	}
}
