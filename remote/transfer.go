package remote

import (
	"context"
	"mime"
	"path"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// What uploads (upload.go) and copies (copy.go) share: the metadata an
// object carries, part sizes, and the running and finishing of multipart
// uploads.

const metaMtime = "mtime"

// PartSizeFor returns the part size for an object of size bytes: at least
// min, grown in whole MiB so that no object needs more than 10,000 parts.
func PartSizeFor(size, min int64) int64 {
	ps := min
	if need := (size + maxParts - 1) / maxParts; need > ps {
		const mib = 1 << 20
		ps = (need + mib - 1) / mib * mib
	}
	return ps
}

func (o PutOptions) metadata() map[string]string {
	if o.Mtime.IsZero() {
		return nil
	}
	meta := map[string]string{metaMtime: FormatMtime(o.Mtime)}
	o.Posix.put(meta)
	if o.Writer != "" {
		meta[MetaWriter] = o.Writer
	}
	return meta
}

func contentType(key string, o PutOptions) *string {
	if o.ContentType != "" {
		return aws.String(o.ContentType)
	}
	if t := mime.TypeByExtension(path.Ext(key)); t != "" {
		return aws.String(t)
	}
	return nil
}

// finishMultipart completes an upload of size bytes whose parts all went
// through (partsErr nil), and otherwise, or when completing fails, aborts
// it.
func (c *Client) finishMultipart(ctx context.Context, in *s3.CompleteMultipartUploadInput, size int64, partsErr error) (string, error) {
	err := partsErr
	if err == nil {
		var out *s3.CompleteMultipartUploadOutput
		out, err = c.s3.CompleteMultipartUpload(withLoad(ctx, load{bytes: size}), in)
		if err == nil {
			return aws.ToString(out.ETag), nil
		}
	}
	c.abort(ctx, aws.ToString(in.Bucket), aws.ToString(in.Key), in.UploadId)
	return "", err
}

// abort gives up an upload with a fresh context: the caller's may be the
// one cancelled, and an abandoned upload keeps costing storage. Bounded, so
// a hung endpoint does not hold the worker.
func (c *Client) abort(ctx context.Context, bucket, key string, id *string) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	c.AbortUpload(actx, bucket, key, aws.ToString(id))
}

// runParts runs do for each part of an object of size bytes, at most
// PartConcurrency at a time, and returns the completed parts in order.
func (c *Client) runParts(ctx context.Context, size, partSize int64, do func(ctx context.Context, n int32, off, length int64) (types.CompletedPart, error)) ([]types.CompletedPart, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	count := int((size + partSize - 1) / partSize)
	if count == 0 {
		count = 1
	}
	parts := make([]types.CompletedPart, count)
	sem := make(chan struct{}, c.cfg.PartConcurrency)
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for i := range count {
		off := int64(i) * partSize
		length := min(partSize, size-off)
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			n := int32(i + 1)
			part, err := do(ctx, n, off, length)
			if err != nil {
				once.Do(func() { firstErr = err; cancel() })
				return
			}
			parts[i] = part
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return parts, nil
}
