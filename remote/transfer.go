package remote

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"path"
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

// DeleteError is one key a batch delete could not remove.
type DeleteError struct {
	Key string
	Err error
}

// Delete removes keys from bucket in batches of 1,000. Keys that could not
// be deleted are returned with their errors; err is for the request as a
// whole (every key in failed batches is then reported as failed too).
func (c *Client) Delete(ctx context.Context, bucket string, keys []string) ([]DeleteError, error) {
	failed, err := c.deleteIf(ctx, bucket, deleteItems(keys), false)
	c.observe(Transfer{Op: OpDelete, Keys: len(keys), Failed: failed, Err: err})
	return failed, err
}

// deleteItems are keys to delete whatever they hold.
func deleteItems(keys []string) []DeleteItem {
	items := make([]DeleteItem, len(keys))
	for i, k := range keys {
		items[i].Key = k
	}
	return items
}

func kindForCode(code string) error {
	switch code {
	case "AccessDenied":
		return ErrAccessDenied
	case "NoSuchKey":
		return ErrNotFound
	case "PreconditionFailed":
		return ErrConflict
	}
	return nil
}
