package remote

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Location is a parsed s3://BUCKET[/PREFIX].
type Location struct {
	Bucket string
	Prefix string // "" or ends with "/" when it names a folder
}

func (l Location) String() string { return "s3://" + l.Bucket + "/" + l.Prefix }

// URL renders the location of key (a full key, prefix included).
func (l Location) URL(key string) string { return "s3://" + l.Bucket + "/" + key }

// IsS3URL reports whether s names a bucket rather than a local path.
func IsS3URL(s string) bool { return strings.HasPrefix(s, "s3://") }

// ParseURL parses s3://BUCKET[/PREFIX]. As with the AWS CLI's sync, the
// prefix is a folder: "s3://b/photos" and "s3://b/photos/" both mean the
// keys under "photos/".
func ParseURL(s string) (Location, error) {
	if !IsS3URL(s) {
		return Location{}, fmt.Errorf("%q is not an S3 URL: write s3://BUCKET[/PREFIX]", s)
	}
	rest := strings.TrimPrefix(s, "s3://")
	bucket, prefix, _ := strings.Cut(rest, "/")
	if bucket == "" {
		return Location{}, fmt.Errorf("%q names no bucket: write s3://BUCKET[/PREFIX]", s)
	}
	if strings.ContainsAny(bucket, " \\?#") {
		return Location{}, fmt.Errorf("%q is not a valid bucket name", bucket)
	}
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return Location{Bucket: bucket, Prefix: prefix}, nil
}

// List calls fn for every object under prefix, in key order (UTF-8 bytes),
// one page at a time so memory does not grow with the bucket. Keys come
// back whole (prefix included). An error from fn stops the listing and is
// returned as is.
func (c *Client) List(ctx context.Context, bucket, prefix string, fn func(Object) error) error {
	return c.list(ctx, bucket, prefix, "", fn, nil)
}

// ListDir lists one level below prefix: objects directly in it, and the
// common prefixes ("sub/") of deeper keys, in key order.
func (c *Client) ListDir(ctx context.Context, bucket, prefix string, obj func(Object) error, dir func(prefix string) error) error {
	return c.list(ctx, bucket, prefix, "/", obj, dir)
}

func (c *Client) list(ctx context.Context, bucket, prefix, delim string, obj func(Object) error, dir func(string) error) error {
	in := &s3.ListObjectsV2Input{
		Bucket: aws.String(bucket),
		// URL encoding lets keys carry bytes XML 1.0 cannot (control
		// characters); the AWS CLI asks for it for the same reason.
		EncodingType: types.EncodingTypeUrl,
	}
	if prefix != "" {
		in.Prefix = aws.String(prefix)
	}
	if delim != "" {
		in.Delimiter = aws.String(delim)
	}
	p := s3.NewListObjectsV2Paginator(c.s3, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx, fastListDecode)
		if err != nil {
			return wrap("list", bucket, prefix, err)
		}
		encoded := page.EncodingType == types.EncodingTypeUrl
		// Objects and common prefixes each come sorted; merge them so the
		// caller sees one key-ordered stream.
		objs, dirs := page.Contents, page.CommonPrefixes
		for len(objs) > 0 || len(dirs) > 0 {
			if len(dirs) == 0 || (len(objs) > 0 && aws.ToString(objs[0].Key) < aws.ToString(dirs[0].Prefix)) {
				o := objs[0]
				objs = objs[1:]
				key, err := decodeKey(aws.ToString(o.Key), encoded)
				if err != nil {
					return wrap("list", bucket, prefix, err)
				}
				if err := obj(Object{
					Key:          key,
					Size:         aws.ToInt64(o.Size),
					LastModified: aws.ToTime(o.LastModified),
					ETag:         aws.ToString(o.ETag),
					StorageClass: string(o.StorageClass),
				}); err != nil {
					return err
				}
				continue
			}
			d := dirs[0]
			dirs = dirs[1:]
			key, err := decodeKey(aws.ToString(d.Prefix), encoded)
			if err != nil {
				return wrap("list", bucket, prefix, err)
			}
			if dir != nil {
				if err := dir(key); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func decodeKey(k string, encoded bool) (string, error) {
	if !encoded {
		return k, nil
	}
	// S3 encodes keys as form values would be ("+" for space, "%2B" for
	// "+"), which is what QueryUnescape undoes.
	d, err := url.QueryUnescape(k)
	if err != nil {
		return "", fmt.Errorf("undecodable key %q: %w", k, err)
	}
	return d, nil
}

// Bucket is one entry of ListBuckets.
type Bucket struct {
	Name    string
	Created string
}

// ListBuckets returns the buckets the credentials own.
func (c *Client) ListBuckets(ctx context.Context) ([]Bucket, error) {
	var out []Bucket
	p := s3.NewListBucketsPaginator(c.s3, &s3.ListBucketsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, wrap("list buckets", "", "", err)
		}
		for _, b := range page.Buckets {
			out = append(out, Bucket{Name: aws.ToString(b.Name), Created: aws.ToTime(b.CreationDate).Local().Format("2006-01-02 15:04:05")})
		}
	}
	return out, nil
}

// CheckBucket answers ErrNoSuchBucket, ErrAccessDenied, ErrUnreachable or
// nil, so a command can fail with one clear line before doing any work.
func (c *Client) CheckBucket(ctx context.Context, bucket string) error {
	_, err := c.s3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)})
	if err == nil {
		return nil
	}
	w := wrap("open bucket", bucket, "", err)
	var e *Error
	if errors.As(w, &e) && e.Kind == ErrNotFound {
		e.Kind = ErrNoSuchBucket
	}
	if errors.Is(w, ErrAccessDenied) {
		// A HEAD response has no body, so a 403 cannot tell a bad secret
		// from a missing permission; a listing's error can.
		_, lerr := c.s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), MaxKeys: aws.Int32(1)})
		if lerr != nil {
			return wrap("open bucket", bucket, "", lerr)
		}
		return nil
	}
	return w
}
