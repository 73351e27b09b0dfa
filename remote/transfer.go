package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

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
	return map[string]string{metaMtime: FormatMtime(o.Mtime)}
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

// Upload stores size bytes read from r at bucket/key, in one request below
// the multipart threshold and in parallel parts above it. It returns the new
// object's ETag.
func (c *Client) Upload(ctx context.Context, bucket, key string, r io.ReaderAt, size int64, o PutOptions) (string, error) {
	if size >= c.cfg.MultipartThreshold {
		etag, err := c.uploadMultipart(ctx, bucket, key, r, size, o)
		return etag, wrap("upload", bucket, key, err)
	}
	out, err := c.s3.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(bucket),
		Key:           aws.String(key),
		Body:          io.NewSectionReader(r, 0, size),
		ContentLength: aws.Int64(size),
		ContentType:   contentType(key, o),
		Metadata:      o.metadata(),
		StorageClass:  types.StorageClass(o.StorageClass),
	}, c.payloadOpts()...)
	if err != nil {
		return "", wrap("upload", bucket, key, err)
	}
	return aws.ToString(out.ETag), nil
}

func (c *Client) uploadMultipart(ctx context.Context, bucket, key string, r io.ReaderAt, size int64, o PutOptions) (string, error) {
	create, err := c.s3.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket:       aws.String(bucket),
		Key:          aws.String(key),
		ContentType:  contentType(key, o),
		Metadata:     o.metadata(),
		StorageClass: types.StorageClass(o.StorageClass),
	})
	if err != nil {
		return "", err
	}
	partSize := PartSizeFor(size, c.cfg.PartSize)
	parts, err := c.runParts(ctx, size, partSize, func(ctx context.Context, n int32, off, length int64) (string, error) {
		out, err := c.s3.UploadPart(ctx, &s3.UploadPartInput{
			Bucket:        aws.String(bucket),
			Key:           aws.String(key),
			UploadId:      create.UploadId,
			PartNumber:    aws.Int32(n),
			Body:          io.NewSectionReader(r, off, length),
			ContentLength: aws.Int64(length),
		}, c.payloadOpts()...)
		if err != nil {
			return "", err
		}
		return aws.ToString(out.ETag), nil
	})
	return c.finishMultipart(ctx, bucket, key, create.UploadId, parts, err)
}

// finishMultipart completes an upload whose parts all went through
// (partsErr nil), and otherwise, or when completing fails, aborts it.
func (c *Client) finishMultipart(ctx context.Context, bucket, key string, uploadID *string, parts []types.CompletedPart, partsErr error) (string, error) {
	err := partsErr
	if err == nil {
		var out *s3.CompleteMultipartUploadOutput
		out, err = c.s3.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
			Bucket:          aws.String(bucket),
			Key:             aws.String(key),
			UploadId:        uploadID,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		})
		if err == nil {
			return aws.ToString(out.ETag), nil
		}
	}
	// Abort with a fresh context: the caller's may be the one cancelled,
	// and an abandoned upload keeps costing storage.
	c.s3.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{
		Bucket: aws.String(bucket), Key: aws.String(key), UploadId: uploadID,
	})
	return "", err
}

// runParts runs do for each part of an object of size bytes, at most
// PartConcurrency at a time, and returns the completed parts in order.
func (c *Client) runParts(ctx context.Context, size, partSize int64, do func(ctx context.Context, n int32, off, length int64) (string, error)) ([]types.CompletedPart, error) {
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
			etag, err := do(ctx, n, off, length)
			if err != nil {
				once.Do(func() { firstErr = err; cancel() })
				return
			}
			parts[i] = types.CompletedPart{PartNumber: aws.Int32(n), ETag: aws.String(etag)}
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

// Download writes bucket/key to w and returns what the GET answered. When
// ifMatch is not empty the object must still have that ETag (ErrChanged
// otherwise), so a listing and a download cannot disagree unnoticed.
func (c *Client) Download(ctx context.Context, bucket, key, ifMatch string, w io.Writer) (Info, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if ifMatch != "" {
		in.IfMatch = aws.String(ifMatch)
	}
	out, err := c.s3.GetObject(ctx, in)
	if err != nil {
		return Info{}, wrap("download", bucket, key, err)
	}
	defer out.Body.Close()
	n, err := io.Copy(w, out.Body)
	if err != nil {
		return Info{}, wrap("download", bucket, key, err)
	}
	if out.ContentLength != nil && n != *out.ContentLength {
		return Info{}, wrap("download", bucket, key, fmt.Errorf("short body: %d of %d bytes", n, *out.ContentLength))
	}
	return newInfo(key, n, out.LastModified, out.ETag, out.StorageClass, out.Metadata), nil
}

// Head answers an object's size, times and metadata; ErrNotFound when absent.
func (c *Client) Head(ctx context.Context, bucket, key string) (Info, error) {
	out, err := c.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
		ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		return Info{}, wrap("head", bucket, key, err)
	}
	info := newInfo(key, aws.ToInt64(out.ContentLength), out.LastModified, out.ETag, out.StorageClass, out.Metadata)
	info.Checksum, info.ChecksumType = aws.ToString(out.ChecksumCRC64NVME), string(out.ChecksumType)
	return info, nil
}

// newInfo is what a GET or HEAD answered, with x-amz-meta-mtime read.
func newInfo(key string, size int64, lastModified *time.Time, etag *string, class types.StorageClass, meta map[string]string) Info {
	info := Info{
		Object: Object{
			Key: key, Size: size, LastModified: aws.ToTime(lastModified),
			ETag: aws.ToString(etag), StorageClass: string(class),
		},
		Metadata: meta,
	}
	info.Mtime, _ = ParseMtime(meta[metaMtime])
	return info
}

// copySource renders x-amz-copy-source: the key percent-encoded except for
// unreserved characters and "/", so that "+" and spaces survive servers
// that decode it as a form value.
func copySource(bucket, key string) *string {
	var b strings.Builder
	b.WriteString(bucket)
	b.WriteByte('/')
	for i := 0; i < len(key); i++ {
		ch := key[i]
		if 'a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || strings.IndexByte("-_.~/", ch) >= 0 {
			b.WriteByte(ch)
		} else {
			fmt.Fprintf(&b, "%%%02X", ch)
		}
	}
	return aws.String(b.String())
}

// Copy copies srcBucket/srcKey (of size bytes) to dstBucket/dstKey on the
// server, keeping its metadata (x-amz-meta-mtime included); above 5 GiB it
// copies in parts.
func (c *Client) Copy(ctx context.Context, srcBucket, srcKey, dstBucket, dstKey string, size int64, o PutOptions) error {
	if size > maxCopyPart {
		return wrap("copy", dstBucket, dstKey, c.copyMultipart(ctx, srcBucket, srcKey, dstBucket, dstKey, size, o))
	}
	in := &s3.CopyObjectInput{
		Bucket:       aws.String(dstBucket),
		Key:          aws.String(dstKey),
		CopySource:   copySource(srcBucket, srcKey),
		StorageClass: types.StorageClass(o.StorageClass),
	}
	if !o.Mtime.IsZero() {
		in.MetadataDirective = types.MetadataDirectiveReplace
		in.Metadata = o.metadata()
		in.ContentType = contentType(dstKey, o)
	}
	_, err := c.s3.CopyObject(ctx, in)
	return wrap("copy", dstBucket, dstKey, err)
}

func (c *Client) copyMultipart(ctx context.Context, srcBucket, srcKey, dstBucket, dstKey string, size int64, o PutOptions) error {
	// UploadPartCopy does not carry metadata over: read it first.
	head, err := c.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(srcBucket), Key: aws.String(srcKey)})
	if err != nil {
		return err
	}
	meta := head.Metadata
	if !o.Mtime.IsZero() {
		meta = o.metadata()
	}
	create, err := c.s3.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String(dstBucket), Key: aws.String(dstKey), Metadata: meta,
		ContentType: head.ContentType, StorageClass: types.StorageClass(o.StorageClass),
	})
	if err != nil {
		return err
	}
	partSize := PartSizeFor(size, 512<<20)
	parts, err := c.runParts(ctx, size, partSize, func(ctx context.Context, n int32, off, length int64) (string, error) {
		out, err := c.s3.UploadPartCopy(ctx, &s3.UploadPartCopyInput{
			Bucket: aws.String(dstBucket), Key: aws.String(dstKey), UploadId: create.UploadId,
			PartNumber: aws.Int32(n), CopySource: copySource(srcBucket, srcKey),
			CopySourceRange:   aws.String(fmt.Sprintf("bytes=%d-%d", off, off+length-1)),
			CopySourceIfMatch: head.ETag,
		})
		if err != nil {
			return "", err
		}
		return aws.ToString(out.CopyPartResult.ETag), nil
	})
	_, err = c.finishMultipart(ctx, dstBucket, dstKey, create.UploadId, parts, err)
	return err
}

// DeleteError is one key a batch delete could not remove.
type DeleteError struct {
	Key string
	Err error
}

// Delete removes keys from bucket in batches of 1,000. Keys that could not
// be deleted are returned with their errors; err is for the request as a
// whole (every key in failed batches is then reported as failed too).
func (c *Client) Delete(ctx context.Context, bucket string, keys []string) ([]DeleteError, error) {
	var failed []DeleteError
	var firstErr error
	for start := 0; start < len(keys); start += 1000 {
		batch := keys[start:min(start+1000, len(keys))]
		ids := make([]types.ObjectIdentifier, len(batch))
		for i, k := range batch {
			ids[i] = types.ObjectIdentifier{Key: aws.String(k)}
		}
		out, err := c.s3.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(bucket),
			Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err != nil {
			err = wrap("delete", bucket, batch[0], err)
			if firstErr == nil {
				firstErr = err
			}
			for _, k := range batch {
				failed = append(failed, DeleteError{Key: k, Err: err})
			}
			continue
		}
		for _, e := range out.Errors {
			k := aws.ToString(e.Key)
			failed = append(failed, DeleteError{Key: k, Err: &Error{Op: "delete", Bucket: bucket, Key: k,
				Kind: kindForCode(aws.ToString(e.Code)), Err: errors.New(aws.ToString(e.Code) + ": " + aws.ToString(e.Message))}})
		}
	}
	sort.Slice(failed, func(i, j int) bool { return failed[i].Key < failed[j].Key })
	return failed, firstErr
}

func kindForCode(code string) error {
	switch code {
	case "AccessDenied":
		return ErrAccessDenied
	case "NoSuchKey":
		return ErrNotFound
	}
	return nil
}
