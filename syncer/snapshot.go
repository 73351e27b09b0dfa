package syncer

import (
	"context"
	"errors"
	"os"

	"golang.org/x/sys/unix"

	"github.com/s3sync/s3sync/remote"
)

// errNoSnapshot: the file's filesystem cannot clone it.
var errNoSnapshot = errors.New("filesystem cannot reflink")

// snapshot clones path (FICLONE, a reflink: no data is copied) into an
// unnamed file in the same directory, nobody else can write to it. The
// kernel takes the clone with both files locked, so it is the file as it
// was at one moment, however busy the writers. The returned state is the
// source's before the clone: its mtime is not newer than the clone's
// content, so a cache entry made from it can only make the next comparison
// send the file again, never skip a change.
func snapshot(path Local) (*os.File, fileState, error) {
	src, err := path.open(false)
	if err != nil {
		return nil, fileState{}, err
	}
	defer src.Close()
	before, err := statOf(src)
	if err != nil {
		return nil, fileState{}, err
	}
	clone, err := path.tmpfile()
	if err != nil {
		return nil, fileState{}, errNoSnapshot
	}
	if err := unix.IoctlFileClone(int(clone.Fd()), int(src.Fd())); err != nil {
		clone.Close()
		return nil, fileState{}, errNoSnapshot
	}
	return clone, before, nil
}

// uploadSnapshot sends a reflink snapshot of path: for a file that never
// stops changing (a VM image, a database) that the usual upload cannot
// catch unchanged.
func uploadSnapshot(ctx context.Context, r Remote, path Local, bucket, key, storageClass string, c Cond) (UploadResult, error) {
	clone, before, err := snapshot(path)
	if err != nil {
		return UploadResult{}, err
	}
	defer clone.Close()
	st, err := statOf(clone)
	if err != nil {
		return UploadResult{}, err
	}
	o := remote.PutOptions{StorageClass: storageClass, Mtime: before.mtime, Posix: before.posix()}
	c.Set(&o)
	up, err := r.Upload(ctx, bucket, key, clone, st.size, o)
	if err != nil {
		return UploadResult{}, err
	}
	return UploadResult{Size: st.size, Mtime: before.mtime, ETag: up.ETag, Posix: before.posix()}, nil
}
