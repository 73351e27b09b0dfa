package remote

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

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
// copies in parts. With o.SourceETag the copy happens only if the source
// still has that ETag (ErrChanged otherwise), for single and multipart
// copies alike. It returns the new object's ETag.
func (c *Client) Copy(ctx context.Context, srcBucket, srcKey, dstBucket, dstKey string, size int64, o PutOptions) (string, error) {
	etag, err := c.copy(ctx, srcBucket, srcKey, dstBucket, dstKey, size, o)
	c.observe(Transfer{Op: OpCopy, Size: size, Err: err})
	return etag, err
}

// copy is Copy unobserved, for the client's own requests.
func (c *Client) copy(ctx context.Context, srcBucket, srcKey, dstBucket, dstKey string, size int64, o PutOptions) (string, error) {
	if size > maxCopyPart {
		etag, err := c.copyMultipart(ctx, srcBucket, srcKey, dstBucket, dstKey, size, o)
		return etag, copyCondition(wrap("copy", dstBucket, dstKey, err), o)
	}
	in := &s3.CopyObjectInput{
		Bucket:       aws.String(dstBucket),
		Key:          aws.String(dstKey),
		CopySource:   copySource(srcBucket, srcKey),
		StorageClass: types.StorageClass(o.StorageClass),
	}
	if o.SourceETag != "" {
		in.CopySourceIfMatch = aws.String(o.SourceETag)
	}
	in.IfMatch, in.IfNoneMatch = o.conditions()
	if !o.Mtime.IsZero() {
		in.MetadataDirective = types.MetadataDirectiveReplace
		in.Metadata = o.metadata()
		in.ContentType = contentType(dstKey, o)
	}
	c.sseWrite(&in.ServerSideEncryption, &in.SSEKMSKeyId, &in.SSECustomerAlgorithm, &in.SSECustomerKey, &in.SSECustomerKeyMD5)
	c.sseCopySource(&in.CopySourceSSECustomerAlgorithm, &in.CopySourceSSECustomerKey, &in.CopySourceSSECustomerKeyMD5)
	out, err := c.s3.CopyObject(withLoad(ctx, load{bytes: size}), in)
	if err != nil {
		return "", copyCondition(wrap("copy", dstBucket, dstKey, err), o)
	}
	c.confirmSSE(dstBucket, dstKey, out.ServerSideEncryption, out.SSECustomerAlgorithm)
	if out.CopyObjectResult == nil {
		return "", nil
	}
	return aws.ToString(out.CopyObjectResult.ETag), nil
}

func (c *Client) copyMultipart(ctx context.Context, srcBucket, srcKey, dstBucket, dstKey string, size int64, o PutOptions) (string, error) {
	// UploadPartCopy does not carry metadata over: read it first.
	hin := &s3.HeadObjectInput{Bucket: aws.String(srcBucket), Key: aws.String(srcKey)}
	if o.SourceETag != "" {
		hin.IfMatch = aws.String(o.SourceETag)
	}
	c.sseCopySource(&hin.SSECustomerAlgorithm, &hin.SSECustomerKey, &hin.SSECustomerKeyMD5)
	head, err := c.s3.HeadObject(ctx, hin)
	if err != nil {
		return "", err
	}
	meta := head.Metadata
	if !o.Mtime.IsZero() {
		meta = o.metadata()
	}
	cin := &s3.CreateMultipartUploadInput{
		Bucket: aws.String(dstBucket), Key: aws.String(dstKey), Metadata: meta,
		ContentType: head.ContentType, StorageClass: types.StorageClass(o.StorageClass),
	}
	c.sseWrite(&cin.ServerSideEncryption, &cin.SSEKMSKeyId, &cin.SSECustomerAlgorithm, &cin.SSECustomerKey, &cin.SSECustomerKeyMD5)
	create, err := c.s3.CreateMultipartUpload(ctx, cin)
	if err != nil {
		return "", err
	}
	c.confirmSSE(dstBucket, dstKey, create.ServerSideEncryption, create.SSECustomerAlgorithm)
	partSize := PartSizeFor(size, 512<<20)
	parts, err := c.runParts(ctx, size, partSize, func(ctx context.Context, n int32, off, length int64) (types.CompletedPart, error) {
		in := &s3.UploadPartCopyInput{
			Bucket: aws.String(dstBucket), Key: aws.String(dstKey), UploadId: create.UploadId,
			PartNumber: aws.Int32(n), CopySource: copySource(srcBucket, srcKey),
			CopySourceRange:   aws.String(fmt.Sprintf("bytes=%d-%d", off, off+length-1)),
			CopySourceIfMatch: head.ETag,
		}
		c.sseKey(&in.SSECustomerAlgorithm, &in.SSECustomerKey, &in.SSECustomerKeyMD5)
		c.sseCopySource(&in.CopySourceSSECustomerAlgorithm, &in.CopySourceSSECustomerKey, &in.CopySourceSSECustomerKeyMD5)
		out, err := c.s3.UploadPartCopy(withLoad(ctx, load{bytes: length}), in)
		if err != nil {
			return types.CompletedPart{}, err
		}
		return types.CompletedPart{PartNumber: aws.Int32(n), ETag: out.CopyPartResult.ETag}, nil
	})
	complete := &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(dstBucket), Key: aws.String(dstKey), UploadId: create.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	}
	complete.IfMatch, complete.IfNoneMatch = o.conditions()
	c.sseKey(&complete.SSECustomerAlgorithm, &complete.SSECustomerKey, &complete.SSECustomerKeyMD5)
	return c.finishMultipart(ctx, complete, size, err)
}
