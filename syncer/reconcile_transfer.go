package syncer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/s3sync/s3sync/remote"
)

// One entry from source to destination: whether a pair differs in content
// (--checksum), then the upload, download or copy itself.

// sameContent reports whether s and d are known to hold the same bytes:
// a local file's checksums against a single-part ETag (an MD5) or, after a
// HEAD, the store's CRC64NVME (and the MD5 where the HEAD says the object's
// encryption leaves the ETag one). Unknown counts as different, and so does a
// file or object that cannot be read: the transfer then reports why.
func (rc *run) sameContent(s, d entry) bool {
	a, err := rc.contentOf(rc.src, s)
	if err != nil {
		return false
	}
	b, err := rc.contentOf(rc.dst, d)
	if err != nil {
		return false
	}
	// A listing's ETag that matches an MD5 proves the same content; one
	// that does not may just not be an MD5 (SSE-KMS, SSE-C): a HEAD says.
	if same, known := sameContent(a, b); known && same {
		return true
	}
	for i, e := range []Endpoint{rc.src, rc.dst} {
		if !e.IsS3 {
			continue
		}
		en, c := s, &a
		if i == 1 {
			en, c = d, &b
		}
		info, err := rc.r.Head(rc.ctx, e.S3.Bucket, e.S3.Prefix+en.rel)
		if err != nil || info.ETag != en.etag {
			return false // gone, or changed since the listing
		}
		*c = c.withHead(info)
	}
	same, known := sameContent(a, b)
	return known && same
}

// contentOf is what the listing or the local file says of en's content.
func (rc *run) contentOf(e Endpoint, en entry) (content, error) {
	if e.IsS3 {
		return objectContent(en.etag), nil
	}
	if en.link {
		c, size, _, err := linkContent(rc.ctx, ByPath(en.path))
		if err == nil && size != en.size {
			err = errChangedSinceWalk
		}
		return c, err
	}
	d, st, err := rc.h.sum(rc.ctx, en.path, en.rel)
	if err != nil {
		return content{}, err
	}
	if st.Size != en.size {
		return content{}, errChangedSinceWalk
	}
	return localContent(d), nil
}

var errChangedSinceWalk = errors.New("changed since the walk")

func isGlacier(class string) bool { return class == "GLACIER" || class == "DEEP_ARCHIVE" }

// transfer queues s for sending to the destination; d is the destination's
// entry when exists, localPath the file a download writes.
func (rc *run) transfer(s, d entry, exists bool, localPath string) {
	if work, ok := rc.prepare(s, d, exists, localPath); ok {
		rc.pool.submit(rc.ctx, work)
	}
}

// prepare checks and announces a transfer of s and returns the work to do,
// or false when there is none (skipped, or only shown in a dry run).
func (rc *run) prepare(s, d entry, exists bool, localPath string) (func(), bool) {
	srcShown, dstShown := rc.show(rc.src, s), rc.show(rc.dst, s)
	op := rc.dir.String()
	var dstKey string
	if rc.dir != Download {
		dstKey = rc.dst.S3.Prefix + s.rel
		if len(dstKey) > MaxKeyLen {
			rc.skip(srcShown, fmt.Errorf("key is %d bytes, over S3's limit of %d", len(dstKey), MaxKeyLen))
			return nil, false
		}
	}
	if rc.dir != Upload && isGlacier(s.class) && !rc.opts.ForceGlacier {
		rc.skip(srcShown, fmt.Errorf("object is of storage class %s and must be restored first (or use --force-glacier-transfer)", s.class))
		return nil, false
	}
	exact := rc.dir == Download && exists && rc.opts.Compare.ExactTimestamps && !rc.opts.Compare.Checksum && s.size == d.size
	rc.opts.Report(Event{Kind: EventPlanned, Op: op, Src: srcShown, Dst: dstShown, Size: s.size})
	if rc.opts.DryRun && !exact {
		rc.opts.Report(Event{Kind: EventDone, Op: op, Src: srcShown, Dst: dstShown, Size: s.size, DryRun: true})
		return nil, false
	}
	return func() {
		var err error
		switch rc.dir {
		case Upload:
			var res UploadResult
			c := rc.listed(d, exists)
			if s.link {
				res, err = UploadLinkIf(rc.ctx, rc.r, ByPath(s.path), rc.dst.S3.Bucket, dstKey, rc.opts.StorageClass, c)
			} else {
				res, err = UploadFileIf(rc.ctx, rc.r, ByPath(s.path), rc.dst.S3.Bucket, dstKey, rc.opts.StorageClass, nil, c)
			}
			err = rc.conflicted(err, c)
			if err == nil {
				s.size = res.Size
				rc.c.uploaded.Add(1)
			}
		case Download:
			if exact {
				// The listing has only LastModified; the time we restored
				// is in the metadata, so --exact-timestamps asks for it.
				info, herr := rc.r.Head(rc.ctx, rc.src.S3.Bucket, rc.src.S3.Prefix+s.rel)
				if herr == nil && !info.Mtime.IsZero() && info.Mtime.Equal(d.time) {
					return
				}
				if rc.opts.DryRun {
					rc.opts.Report(Event{Kind: EventDone, Op: op, Src: srcShown, Dst: dstShown, Size: s.size, DryRun: true})
					return
				}
			}
			restore := rc.opts.Restore
			restore.Warn = func(err error) {
				rc.opts.Report(Event{Kind: EventWarning, Op: op, Src: srcShown, Dst: dstShown, Err: err})
			}
			if s.link {
				_, err = downloadLink(rc.ctx, rc.r, rc.src.S3.Bucket, rc.src.S3.Prefix+s.rel, s.etag, rc.root, strings.TrimSuffix(s.rel, LinkSuffix))
			} else {
				_, err = DownloadFile(rc.ctx, rc.r, rc.src.S3.Bucket, rc.src.S3.Prefix+s.rel, s.etag, rc.root, s.rel, restore)
			}
			if err == nil {
				rc.c.downloaded.Add(1)
			}
		case Copy:
			o := remote.PutOptions{StorageClass: rc.opts.StorageClass, SourceETag: s.etag}
			c := rc.listed(d, exists)
			c.Set(&o)
			_, err = rc.r.Copy(rc.ctx, rc.src.S3.Bucket, rc.src.S3.Prefix+s.rel, rc.dst.S3.Bucket, dstKey, s.size, o)
			err = rc.conflicted(err, c)
			if err == nil {
				rc.c.copied.Add(1)
			}
		}
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return
			}
			if rc.dir == Upload && (errors.Is(err, fs.ErrPermission) || errors.Is(err, fs.ErrNotExist)) {
				// Unreadable, or deleted since the walk: as the AWS CLI
				// does, a warning and the rest goes on.
				rc.skip(srcShown, err)
				return
			}
			rc.c.failed.Add(1)
			rc.opts.Report(Event{Kind: EventFailed, Op: op, Src: srcShown, Dst: dstShown, Err: err})
			return
		}
		rc.c.bytes.Add(s.size)
		rc.opts.Report(Event{Kind: EventDone, Op: op, Src: srcShown, Dst: dstShown, Size: s.size})
	}, true
}
