package remote

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Uploaded is what the store answered for a finished upload.
type Uploaded struct {
	ETag string
	// Checksum is the full-object CRC64NVME the store verified and keeps
	// (base64, as x-amz-checksum-crc64nvme shows it); "" in MD5 mode.
	Checksum string
}

// smallBody is the size up to which a body is read into memory once,
// hashed and sent from there, rather than read twice from the file.
const smallBody = 1 << 20

var smallBufs = sync.Pool{New: func() any { b := make([]byte, smallBody); return &b }}

// Most files are far smaller than smallBody: their bodies come from
// buffers of tinyBody, so DefaultConcurrency uploads of small files hold
// 2 MiB rather than 32.
const tinyBody = 64 << 10

var tinyBufs = sync.Pool{New: func() any { b := make([]byte, tinyBody); return &b }}

// Upload stores size bytes read from r at bucket/key, in one request below
// the multipart threshold and in parallel parts above it.
//
// Every body is hashed before it is sent and its checksum travels in the
// request's header (CRC64NVME where the store keeps it, else Content-MD5),
// so the store refuses a body that differs from what was hashed
// (ErrBadDigest): a file written to during the upload never becomes a mixed
// object. o.Check, when set, is called once everything was hashed and before
// the object becomes visible (before the PUT, or before
// CompleteMultipartUpload); its error aborts the upload. The caller uses it
// to make sure the file did not change between its parts.
func (c *Client) Upload(ctx context.Context, bucket, key string, r io.ReaderAt, size int64, o PutOptions) (Uploaded, error) {
	observed := c.observeUpload(size, &o)
	up, err := c.upload(ctx, bucket, key, r, size, o)
	observed(err)
	return up, err
}

// upload is Upload unobserved, for the client's own requests.
func (c *Client) upload(ctx context.Context, bucket, key string, r io.ReaderAt, size int64, o PutOptions) (Uploaded, error) {
	for {
		md5Mode := c.md5Mode.Load()
		var (
			up  Uploaded
			err error
		)
		if size >= c.cfg.MultipartThreshold {
			up, err = c.uploadMultipart(ctx, bucket, key, r, size, o, md5Mode)
		} else {
			up, err = c.putObject(ctx, bucket, key, r, size, o, md5Mode)
		}
		err = destCondition(wrap("upload", bucket, key, err), o)
		if err != nil && !md5Mode && checksumRefused(err) {
			// A store without CRC64NVME: every S3 store checks
			// Content-MD5. Remembered for the rest of the run.
			c.md5Mode.Store(true)
			continue
		}
		return up, err
	}
}

// checksumRefused reports whether the store refused the request for its
// x-amz-checksum-crc64nvme header rather than for anything else.
func checksumRefused(err error) bool {
	if !errors.Is(err, ErrInvalidRequest) && !errors.Is(err, ErrNotImplemented) {
		return false
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "checksum") || strings.Contains(msg, "crc64")
}

func (c *Client) putObject(ctx context.Context, bucket, key string, r io.ReaderAt, size int64, o PutOptions, md5Mode bool) (Uploaded, error) {
	body, sum, done, err := readBody(ctx, r, 0, size, md5Mode)
	if err != nil {
		return Uploaded{}, err
	}
	defer done()
	if o.Check != nil {
		if err := o.Check(); err != nil {
			return Uploaded{}, err
		}
	}
	in := &s3.PutObjectInput{
		Bucket:        aws.String(bucket),
		Key:           aws.String(key),
		Body:          body,
		ContentLength: aws.Int64(size),
		ContentType:   contentType(key, o),
		Metadata:      o.metadata(),
		StorageClass:  types.StorageClass(o.StorageClass),
	}
	sum.set(&in.ChecksumCRC64NVME, &in.ContentMD5)
	in.IfMatch, in.IfNoneMatch = o.conditions()
	c.sseWrite(&in.ServerSideEncryption, &in.SSEKMSKeyId, &in.SSECustomerAlgorithm, &in.SSECustomerKey, &in.SSECustomerKeyMD5)
	out, err := c.s3.PutObject(ctx, in, c.payloadOpts()...)
	if err != nil {
		return Uploaded{}, err
	}
	c.confirmSSE(bucket, key, out.ServerSideEncryption, out.SSECustomerAlgorithm)
	return Uploaded{ETag: aws.ToString(out.ETag), Checksum: aws.ToString(out.ChecksumCRC64NVME)}, nil
}

// Bodies are hashed before they are sent. Up to bufferedBody bytes they are
// read once into memory, hashed and sent from there; larger ones (parts of
// objects over 78 GiB) are read twice, hash then send. bufferedBodies bounds
// the memory that takes, whatever the number of transfers.
const bufferedBodies = 8

var (
	bufferedBody int64 = 8 << 20 // a variable for tests only
	bodyBufs           = sync.Pool{New: func() any { b := make([]byte, bufferedBody); return &b }}
	bodySlots          = make(chan struct{}, bufferedBodies)
)

// readBody returns length bytes of r from off as a request body, with their
// checksum, and a func to call once the request is over.
func readBody(ctx context.Context, r io.ReaderAt, off, length int64, md5Mode bool) (io.ReadSeeker, bodySum, func(), error) {
	if length > bufferedBody {
		bp := smallBufs.Get().(*[]byte)
		sum, err := sumSection(r, off, length, md5Mode, *bp)
		smallBufs.Put(bp)
		return io.NewSectionReader(r, off, length), sum, func() {}, err
	}
	pool := &smallBufs
	if length <= tinyBody {
		pool = &tinyBufs
	}
	if length > smallBody {
		select {
		case bodySlots <- struct{}{}:
		case <-ctx.Done():
			return nil, bodySum{}, nil, ctx.Err()
		}
		pool = &bodyBufs
	}
	bp := pool.Get().(*[]byte)
	if int64(cap(*bp)) < length { // made while tests lowered bufferedBody
		b := make([]byte, bufferedBody)
		bp = &b
	}
	done := func() {
		pool.Put(bp)
		if pool == &bodyBufs {
			<-bodySlots
		}
	}
	buf := (*bp)[:length]
	if n, err := r.ReadAt(buf, off); int64(n) != length {
		done()
		if err == nil || err == io.EOF {
			err = fmt.Errorf("file shrank while read: %d of %d bytes: %w", n, length, ErrBadDigest)
		}
		return nil, bodySum{}, nil, err
	}
	return bytes.NewReader(buf), sumBytes(buf, md5Mode), done, nil
}

// set fills a request's checksum header: CRC64NVME, or Content-MD5 in MD5
// mode.
func (s bodySum) set(crc, md5 **string) {
	if s.md5 != nil {
		*md5 = aws.String(base64.StdEncoding.EncodeToString(s.md5))
		return
	}
	*crc = aws.String(EncodeCRC64(s.crc))
}

func (c *Client) uploadMultipart(ctx context.Context, bucket, key string, r io.ReaderAt, size int64, o PutOptions, md5Mode bool) (Uploaded, error) {
	partSize := PartSizeFor(size, c.cfg.PartSize)
	uploadID, done, err := c.resumable(ctx, bucket, key, o.ResumeID)
	if err != nil {
		return Uploaded{}, err
	}
	if uploadID == nil {
		in := &s3.CreateMultipartUploadInput{
			Bucket:       aws.String(bucket),
			Key:          aws.String(key),
			ContentType:  contentType(key, o),
			Metadata:     o.metadata(),
			StorageClass: types.StorageClass(o.StorageClass),
		}
		if !md5Mode {
			in.ChecksumAlgorithm = types.ChecksumAlgorithmCrc64nvme
			in.ChecksumType = types.ChecksumTypeFullObject
		}
		c.sseWrite(&in.ServerSideEncryption, &in.SSEKMSKeyId, &in.SSECustomerAlgorithm, &in.SSECustomerKey, &in.SSECustomerKeyMD5)
		create, err := c.s3.CreateMultipartUpload(ctx, in)
		if err != nil {
			return Uploaded{}, err
		}
		c.confirmSSE(bucket, key, create.ServerSideEncryption, create.SSECustomerAlgorithm)
		uploadID = create.UploadId
		if o.OnCreate != nil {
			if err := o.OnCreate(aws.ToString(uploadID)); err != nil {
				c.abort(ctx, bucket, key, uploadID)
				return Uploaded{}, err
			}
		}
	}
	parts, err := c.runParts(ctx, size, partSize, func(ctx context.Context, n int32, off, length int64) (types.CompletedPart, error) {
		body, sum, release, err := readBody(ctx, r, off, length, md5Mode)
		if err != nil {
			return types.CompletedPart{}, err
		}
		defer release()
		if p, ok := done[n]; ok && aws.ToInt64(p.Size) == length && !md5Mode && aws.ToString(p.ChecksumCRC64NVME) == EncodeCRC64(sum.crc) {
			// Sent before an interruption, and the same bytes.
			return types.CompletedPart{PartNumber: aws.Int32(n), ETag: p.ETag, ChecksumCRC64NVME: p.ChecksumCRC64NVME}, nil
		}
		in := &s3.UploadPartInput{
			Bucket:        aws.String(bucket),
			Key:           aws.String(key),
			UploadId:      uploadID,
			PartNumber:    aws.Int32(n),
			Body:          body,
			ContentLength: aws.Int64(length),
		}
		sum.set(&in.ChecksumCRC64NVME, &in.ContentMD5)
		c.sseKey(&in.SSECustomerAlgorithm, &in.SSECustomerKey, &in.SSECustomerKeyMD5)
		out, err := c.s3.UploadPart(ctx, in, c.payloadOpts()...)
		if err != nil {
			return types.CompletedPart{}, err
		}
		part := types.CompletedPart{PartNumber: aws.Int32(n), ETag: out.ETag, ChecksumCRC64NVME: in.ChecksumCRC64NVME}
		return part, nil
	})
	var full string
	if err == nil && !md5Mode {
		// The full-object CRC from the parts' CRCs: each part was hashed
		// once, just before it was sent.
		var crc uint64
		for i, p := range parts {
			pc, derr := decodeCRC64(aws.ToString(p.ChecksumCRC64NVME))
			if derr != nil {
				err = derr
				break
			}
			length := min(partSize, size-int64(i)*partSize)
			if i == 0 {
				crc = pc
			} else {
				crc = crc64Combine(crc, pc, length)
			}
		}
		full = EncodeCRC64(crc)
	}
	if err == nil && o.Check != nil {
		err = o.Check()
	}
	complete := &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(bucket),
		Key:             aws.String(key),
		UploadId:        uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	}
	// S3 checks a multipart upload's conditions when it completes.
	complete.IfMatch, complete.IfNoneMatch = o.conditions()
	if full != "" {
		complete.ChecksumCRC64NVME = aws.String(full)
		complete.ChecksumType = types.ChecksumTypeFullObject
	}
	c.sseKey(&complete.SSECustomerAlgorithm, &complete.SSECustomerKey, &complete.SSECustomerKeyMD5)
	if err != nil && ctx.Err() != nil && o.OnCreate != nil {
		// Cut off (shutting down): leave it for the caller to resume.
		return Uploaded{}, err
	}
	etag, err := c.finishMultipart(ctx, complete, size, err)
	return Uploaded{ETag: etag, Checksum: full}, err
}

// resumable lists the finished parts of upload id, if the store still has
// it; a nil id means start afresh.
func (c *Client) resumable(ctx context.Context, bucket, key, id string) (*string, map[int32]types.Part, error) {
	if id == "" {
		return nil, nil, nil
	}
	done := map[int32]types.Part{}
	lin := &s3.ListPartsInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: aws.String(id)}
	c.sseKey(&lin.SSECustomerAlgorithm, &lin.SSECustomerKey, &lin.SSECustomerKeyMD5)
	p := s3.NewListPartsPaginator(c.s3, lin)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if errors.Is(wrap("", "", "", err), ErrNotFound) {
			return nil, nil, nil // NoSuchUpload: completed, aborted or expired
		}
		if err != nil {
			return nil, nil, err
		}
		for _, part := range page.Parts {
			done[aws.ToInt32(part.PartNumber)] = part
		}
	}
	return aws.String(id), done, nil
}

// AbortUpload aborts a multipart upload; one the store no longer knows is
// not an error.
func (c *Client) AbortUpload(ctx context.Context, bucket, key, id string) error {
	_, err := c.s3.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: aws.String(id)})
	if err = wrap("abort upload", bucket, key, err); errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}
