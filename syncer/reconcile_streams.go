package syncer

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/s3sync/s3sync/internal/walk"
	"github.com/s3sync/s3sync/remote"
)

// The merge's two sides: a local walk or an S3 listing, each yielding
// entries in key order.

// entry is one path on either side of the merge.
type entry struct {
	rel   string
	size  int64
	time  time.Time // local mtime or object LastModified
	path  string    // local
	etag  string    // s3
	class string    // s3
	// link: a symlink stored as its .rclonelink object (rel ends in the
	// suffix): a local link, or such an object in a download with --links.
	link bool
}

// stream is a key-ordered source of entries.
type stream interface {
	next() (entry, bool)
	err() error
}

type localStream struct {
	w *walk.Walker
}

func (s *localStream) next() (entry, bool) {
	f, ok := s.w.Next()
	if !ok {
		return entry{}, false
	}
	return localEntry(f), true
}

func (s *localStream) err() error { return nil }

// s3Stream lists a prefix in the background, a page ahead of the merge.
type s3Stream struct {
	ch     chan entry
	mu     sync.Mutex
	e      error
	cancel context.CancelFunc
}

func newS3Stream(ctx context.Context, r Remote, loc remote.Location) *s3Stream {
	ctx, cancel := context.WithCancel(ctx)
	s := &s3Stream{ch: make(chan entry, 2000), cancel: cancel}
	go func() {
		defer close(s.ch)
		err := r.List(ctx, loc.Bucket, loc.Prefix, func(o remote.Object) error {
			rel := strings.TrimPrefix(o.Key, loc.Prefix)
			if rel == "" {
				return nil // the prefix's own folder marker
			}
			select {
			case s.ch <- entry{rel: rel, size: o.Size, time: o.LastModified, etag: o.ETag, class: o.StorageClass}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		s.mu.Lock()
		s.e = err
		s.mu.Unlock()
	}()
	return s
}

func (s *s3Stream) next() (entry, bool) {
	e, ok := <-s.ch
	return e, ok
}

func (s *s3Stream) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.e
}

// filtered drops excluded paths, so they are neither sent nor deleted.
type filtered struct {
	stream
	f *Filters
}

func (s filtered) next() (entry, bool) {
	for {
		e, ok := s.stream.next()
		if !ok || !s.f.ExcludedKey(e.rel) {
			return e, ok
		}
	}
}

type emptyStream struct{}

func (emptyStream) next() (entry, bool) { return entry{}, false }
func (emptyStream) err() error          { return nil }
