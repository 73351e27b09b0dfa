package mirror

import (
	"context"
	"errors"
	"log/slog"
	"os"

	"github.com/s3sync/s3sync/cache"
	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/syncer"
)

// AbortStaleUploads runs at mount start: every multipart upload s3sync
// recorded for a file that is gone or changed since is aborted and
// forgotten; those of unchanged files stay, to be continued when their
// record is drained. Uploads under the prefix that s3sync did not record
// are left alone: another tool may be using them.
func AbortStaleUploads(ctx context.Context, r syncer.Remote, store syncer.Uploads, workdir string, loc remote.Location, log *slog.Logger) (int, error) {
	n := 0
	err := store.Uploads(func(rel string, u cache.Upload) error {
		full, err := syncer.LocalPath(workdir, rel)
		if err == nil {
			var f *os.File
			if f, err = os.Open(full); err == nil {
				resumable := syncer.CanResume(u, f)
				f.Close()
				if resumable {
					return nil
				}
			}
		}
		if u.ID != "" {
			if err := r.AbortUpload(ctx, loc.Bucket, u.Key, u.ID); err != nil && !errors.Is(err, remote.ErrNotFound) {
				return err
			}
			n++
		}
		return store.DeleteUpload(rel)
	})
	if n > 0 {
		log.Info("aborted unfinished uploads of files changed or removed since", "count", n)
	}
	return n, err
}
