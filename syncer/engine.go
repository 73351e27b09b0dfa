package syncer

import (
	"context"
	"io"
	"sync"
	"sync/atomic"

	"github.com/s3sync/s3sync/remote"
)

// Remote is what the syncer needs from S3; *remote.Client implements it.
// Errors wrap remote's sentinels (remote.ErrNotFound, …).
type Remote interface {
	// List calls fn for each object under prefix in key order.
	List(ctx context.Context, bucket, prefix string, fn func(remote.Object) error) error
	// Upload stores size bytes of r at key, with a checksum the store
	// verifies (remote.ErrBadDigest if the body changed on the way); o.Check
	// runs before the object becomes visible.
	Upload(ctx context.Context, bucket, key string, r io.ReaderAt, size int64, o remote.PutOptions) (remote.Uploaded, error)
	// Download writes the object to w; with ifMatch set, remote.ErrChanged
	// if its ETag differs.
	Download(ctx context.Context, bucket, key, ifMatch string, w io.Writer) (remote.Info, error)
	// Head returns an object's metadata, remote.ErrNotFound if absent.
	Head(ctx context.Context, bucket, key string) (remote.Info, error)
	// Copy copies an object server-side, keeping its metadata, and returns
	// the new ETag; with o.SourceETag, remote.ErrChanged if the source no
	// longer has it.
	Copy(ctx context.Context, srcBucket, srcKey, dstBucket, dstKey string, size int64, o remote.PutOptions) (string, error)
	// AbortUpload gives up an unfinished multipart upload.
	AbortUpload(ctx context.Context, bucket, key, id string) error
	// Delete removes keys in batches; failed keys are returned.
	Delete(ctx context.Context, bucket string, keys []string) ([]remote.DeleteError, error)
	// DeleteIf removes items, each only while it holds its ETag (when set
	// and the store honours it; remote.ErrConflict otherwise), in batches
	// or with single one request each.
	DeleteIf(ctx context.Context, bucket string, items []remote.DeleteItem, single bool) ([]remote.DeleteError, error)
}

var _ Remote = (*remote.Client)(nil)

// EventKind says what an Event reports.
type EventKind int

const (
	EventDone     EventKind = iota + 1 // a transfer or delete finished (or would, in a dry run)
	EventFailed                        // a transfer or delete failed
	EventSkipped                       // an entry that cannot be synced: unsafe key, special file, …
	EventPlanned                       // a transfer was queued (for progress totals)
	EventPlanDone                      // every transfer is queued: the totals are final
	EventWarning                       // the transfer went on, but something was off (Err says what)
)

// Event is one line of what happened, for the command's output.
type Event struct {
	Kind   EventKind
	Op     string // "upload", "download", "copy", "delete"
	Src    string // as shown to the user: a local path or s3://bucket/key
	Dst    string // "" for deletes
	Size   int64
	DryRun bool
	Err    error
}

// Summary counts what a run did.
type Summary struct {
	Uploaded, Downloaded, Copied, Deleted int64
	Bytes                                 int64 // transferred
	Failed, Skipped                       int64
}

type counters struct {
	uploaded, downloaded, copied, deleted, bytes, failed, skipped atomic.Int64
}

func (c *counters) summary() Summary {
	return Summary{
		Uploaded: c.uploaded.Load(), Downloaded: c.downloaded.Load(), Copied: c.copied.Load(),
		Deleted: c.deleted.Load(), Bytes: c.bytes.Load(), Failed: c.failed.Load(), Skipped: c.skipped.Load(),
	}
}

// pool runs tasks on a fixed number of workers.
type pool struct {
	tasks chan func()
	wg    sync.WaitGroup
}

func newPool(n int) *pool {
	p := &pool{tasks: make(chan func(), n*4)}
	for range n {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for t := range p.tasks {
				t()
			}
		}()
	}
	return p
}

func (p *pool) submit(ctx context.Context, t func()) bool {
	select {
	case p.tasks <- t:
		return true
	case <-ctx.Done():
		return false
	}
}

func (p *pool) wait() {
	close(p.tasks)
	p.wg.Wait()
}
