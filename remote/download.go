package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Download writes bucket/key to w and returns what the GET answered. When
// ifMatch is not empty the object must still have that ETag (ErrChanged
// otherwise), so a listing and a download cannot disagree unnoticed. A body
// that does not match the object's stored full-object checksum fails
// (the SDK checks it as it streams).
func (c *Client) Download(ctx context.Context, bucket, key, ifMatch string, w io.Writer) (Info, error) {
	info, n, err := c.download(ctx, bucket, key, ifMatch, w)
	c.observe(Transfer{Op: OpDownload, Size: n, Err: err})
	return info, err
}

// download is Download; it also returns the bytes written to w.
func (c *Client) download(ctx context.Context, bucket, key, ifMatch string, w io.Writer) (Info, int64, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled}
	if ifMatch != "" {
		in.IfMatch = aws.String(ifMatch)
	}
	c.sseKey(&in.SSECustomerAlgorithm, &in.SSECustomerKey, &in.SSECustomerKeyMD5)
	out, err := c.s3.GetObject(ctx, in)
	if err != nil {
		return Info{}, 0, wrap("download", bucket, key, err)
	}
	defer out.Body.Close()
	n, err := io.Copy(w, out.Body)
	if err != nil {
		return Info{}, n, wrap("download", bucket, key, err)
	}
	if out.ContentLength != nil && n != *out.ContentLength {
		return Info{}, n, wrap("download", bucket, key, fmt.Errorf("short body: %d of %d bytes", n, *out.ContentLength))
	}
	info := newInfo(key, n, out.LastModified, out.ETag, out.StorageClass, out.Metadata)
	info.Checksum, info.ChecksumType = aws.ToString(out.ChecksumCRC64NVME), string(out.ChecksumType)
	info.Encryption = encryptionOf(out.ServerSideEncryption, out.SSECustomerAlgorithm)
	return info, n, nil
}

// Head answers an object's size, times, metadata and stored checksum;
// ErrNotFound when absent.
func (c *Client) Head(ctx context.Context, bucket, key string) (Info, error) {
	in := &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled}
	c.sseKey(&in.SSECustomerAlgorithm, &in.SSECustomerKey, &in.SSECustomerKeyMD5)
	out, err := c.s3.HeadObject(ctx, in)
	if err != nil {
		return Info{}, wrap("head", bucket, key, err)
	}
	info := newInfo(key, aws.ToInt64(out.ContentLength), out.LastModified, out.ETag, out.StorageClass, out.Metadata)
	info.Checksum, info.ChecksumType = aws.ToString(out.ChecksumCRC64NVME), string(out.ChecksumType)
	info.Encryption = encryptionOf(out.ServerSideEncryption, out.SSECustomerAlgorithm)
	return info, nil
}

// newInfo is what a GET or HEAD answered, with x-amz-meta-mtime, mode, uid
// and gid read.
func newInfo(key string, size int64, lastModified *time.Time, etag *string, class types.StorageClass, meta map[string]string) Info {
	info := Info{
		Object: Object{
			Key: key, Size: size, LastModified: aws.ToTime(lastModified),
			ETag: aws.ToString(etag), StorageClass: string(class),
		},
		Metadata: meta,
	}
	var ok bool
	info.Posix, info.PosixErr = ParsePosix(meta)
	if v := meta[metaMtime]; v != "" {
		if info.Mtime, ok = ParseMtime(v); !ok {
			info.PosixErr = errors.Join(info.PosixErr, fmt.Errorf("x-amz-meta-mtime %q is not a time a file can have; the object's LastModified is used", v))
		}
	}
	return info
}
