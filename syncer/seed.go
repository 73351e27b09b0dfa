package syncer

import (
	"context"
	"os"

	"github.com/s3sync/s3sync/cache"
	"github.com/s3sync/s3sync/remote"
)

// SeedCache fills an empty cache from the bucket listing on a first mount,
// so files already in the bucket (say, from an earlier reconcile) are not
// sent again: a file counts as held when the listing says an upload would
// not transfer it, by the same rule reconcile uses, and a directory marker
// when its directory exists.
func SeedCache(ctx context.Context, r Remote, c Cache, workdir string, loc remote.Location) (int, error) {
	type put struct {
		rel string
		e   cache.Entry
	}
	var batch []put
	n := 0
	// Puts from concurrent goroutines share one commit in the cache.
	flush := func() error {
		errs := make(chan error, len(batch))
		for _, p := range batch {
			go func() { errs <- c.Put(p.rel, p.e) }()
		}
		var first error
		for range batch {
			if err := <-errs; err != nil && first == nil {
				first = err
			}
		}
		n += len(batch)
		batch = batch[:0]
		return first
	}
	err := r.List(ctx, loc.Bucket, loc.Prefix, func(o remote.Object) error {
		rel := o.Key[len(loc.Prefix):]
		if isMarker(rel) {
			e, ok := seedMarker(workdir, rel, o)
			if !ok {
				return nil
			}
			batch = append(batch, put{rel, e})
			if len(batch) == 256 {
				return flush()
			}
			return nil
		}
		p, err := LocalPath(workdir, rel)
		if err != nil {
			return nil
		}
		info, err := os.Stat(p)
		if err != nil || !info.Mode().IsRegular() {
			return nil
		}
		if ShouldTransfer(Upload, Side{info.Size(), info.ModTime()}, Side{o.Size, o.LastModified}, Compare{}) {
			return nil
		}
		batch = append(batch, put{rel, cache.Entry{Size: info.Size(), Mtime: info.ModTime(), ETag: o.ETag, StorageClass: o.StorageClass, Synced: o.LastModified}})
		if len(batch) == 256 {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	return n, err
}

// seedMarker is the cache entry for the marker object o ("dir/") when
// WORKDIR has that directory.
func seedMarker(workdir, rel string, o remote.Object) (cache.Entry, bool) {
	p, err := LocalPath(workdir, markerDir(rel))
	if err != nil {
		return cache.Entry{}, false
	}
	info, err := os.Lstat(p)
	if err != nil || !info.IsDir() {
		return cache.Entry{}, false
	}
	return cache.Entry{Kind: cache.KindDir, Mtime: info.ModTime(), ETag: o.ETag, StorageClass: o.StorageClass, Synced: o.LastModified}, true
}
