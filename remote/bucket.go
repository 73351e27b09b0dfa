package remote

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// ErrBucketYours comes with ErrBucketExists when the bucket that exists is
// the caller's own: a command that only wants the bucket to be there can go
// on.
var ErrBucketYours = errors.New("you already own it")

// MakeBucket creates a private bucket in region ("" = the client's region)
// and then turns on all four public access block settings. When the store
// does not implement public access blocks, the bucket stays created and
// publicErr says so; err is only for the creation itself.
func (c *Client) MakeBucket(ctx context.Context, bucket, region string) (publicErr, err error) {
	if region == "" {
		region = c.region
	}
	in := &s3.CreateBucketInput{Bucket: aws.String(bucket), ACL: types.BucketCannedACLPrivate}
	// us-east-1 is the one region that must not be named as a constraint.
	if region != "us-east-1" {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(region)}
	}
	_, err = c.s3.CreateBucket(ctx, in, func(o *s3.Options) { o.Region = region })
	if err != nil {
		var owned *types.BucketAlreadyOwnedByYou
		if errors.As(err, &owned) {
			return nil, &Error{Op: "make bucket", Bucket: bucket, Kind: ErrBucketExists, Err: ErrBucketYours}
		}
		return nil, wrap("make bucket", bucket, "", err)
	}
	_, perr := c.s3.PutPublicAccessBlock(ctx, &s3.PutPublicAccessBlockInput{
		Bucket: aws.String(bucket),
		PublicAccessBlockConfiguration: &types.PublicAccessBlockConfiguration{
			BlockPublicAcls:       aws.Bool(true),
			IgnorePublicAcls:      aws.Bool(true),
			BlockPublicPolicy:     aws.Bool(true),
			RestrictPublicBuckets: aws.Bool(true),
		},
	}, func(o *s3.Options) { o.Region = region })
	return wrap("block public access on", bucket, "", perr), nil
}

// RemoveBucket deletes an empty bucket; with force it first deletes every
// object in it.
func (c *Client) RemoveBucket(ctx context.Context, bucket string, force bool) error {
	if force {
		var keys []string
		flush := func() error {
			failed, err := c.deleteIf(ctx, bucket, deleteItems(keys), false)
			keys = keys[:0]
			if err != nil {
				return err
			}
			if len(failed) > 0 {
				return failed[0].Err
			}
			return nil
		}
		err := c.List(ctx, bucket, "", func(o Object) error {
			keys = append(keys, o.Key)
			if len(keys) == 1000 {
				return flush()
			}
			return nil
		})
		if err == nil && len(keys) > 0 {
			err = flush()
		}
		if err != nil {
			return err
		}
	}
	_, err := c.s3.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)})
	return wrap("remove bucket", bucket, "", err)
}

// Versioning is a bucket's versioning state, as status reports it.
type Versioning string

const (
	// VersioningOff: never turned on; a delete or an overwrite is final.
	VersioningOff Versioning = "off"
	// VersioningEnabled: deleted and overwritten objects stay as old
	// versions.
	VersioningEnabled Versioning = "enabled"
	// VersioningSuspended: was on; the old versions kept then remain, new
	// deletes and overwrites are final.
	VersioningSuspended Versioning = "suspended"
	// VersioningUnknown: the store did not say (offline, no permission,
	// no such API).
	VersioningUnknown Versioning = "unknown"
)

// BucketVersioning asks the store whether bucket keeps old versions. On
// error it returns VersioningUnknown with the error.
func (c *Client) BucketVersioning(ctx context.Context, bucket string) (Versioning, error) {
	out, err := c.s3.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(bucket)})
	if err != nil {
		return VersioningUnknown, wrap("get versioning of", bucket, "", err)
	}
	switch out.Status {
	case types.BucketVersioningStatusEnabled:
		return VersioningEnabled, nil
	case types.BucketVersioningStatusSuspended:
		return VersioningSuspended, nil
	}
	return VersioningOff, nil
}

// EnableVersioning turns versioning on for bucket, so that deletes and
// overwrites keep the previous content as an old version. A store that
// has no versioning answers ErrNotImplemented.
func (c *Client) EnableVersioning(ctx context.Context, bucket string) error {
	_, err := c.s3.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{
		Bucket:                  aws.String(bucket),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled},
	})
	return wrap("turn on versioning for", bucket, "", err)
}

// AbortUploadsRuleID names the lifecycle rule AbortIncompleteUploads adds.
const AbortUploadsRuleID = "s3sync-abort-incomplete-multipart"

// ErrLifecycleExists: the bucket already has lifecycle rules, none of
// which aborts incomplete multipart uploads in the whole bucket; they were
// left as they are.
var ErrLifecycleExists = errors.New("the bucket already has lifecycle rules")

// AbortIncompleteUploads makes the store abort multipart uploads still
// incomplete days after they began (their parts cost storage and no
// listing shows them), with one lifecycle rule for the whole bucket.
// added is false when an enabled rule already does that for the whole
// bucket. A put replaces every rule a bucket has, so a bucket with other
// rules is left untouched and ErrLifecycleExists returned; a store without
// lifecycle rules answers ErrNotImplemented.
func (c *Client) AbortIncompleteUploads(ctx context.Context, bucket string, days int32) (added bool, err error) {
	// us-east-1 answers CreateBucket on a bucket one owns with success, so
	// even right after mb the bucket may have rules of its own.
	cur, err := c.s3.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: aws.String(bucket)})
	if err != nil {
		err = wrap("get lifecycle rules of", bucket, "", err)
		if !errors.Is(err, ErrNotFound) { // NoSuchLifecycleConfiguration: none yet
			return false, err
		}
	} else if len(cur.Rules) > 0 {
		for _, r := range cur.Rules {
			if AbortsUploadsEverywhere(r) {
				return false, nil
			}
		}
		return false, &Error{Op: "add lifecycle rule to", Bucket: bucket, Kind: ErrLifecycleExists, Err: errors.New("left unchanged")}
	}
	_, err = c.s3.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{
		Bucket: aws.String(bucket),
		LifecycleConfiguration: &types.BucketLifecycleConfiguration{Rules: []types.LifecycleRule{{
			ID:                             aws.String(AbortUploadsRuleID),
			Status:                         types.ExpirationStatusEnabled,
			Filter:                         &types.LifecycleRuleFilter{Prefix: aws.String("")},
			AbortIncompleteMultipartUpload: &types.AbortIncompleteMultipartUpload{DaysAfterInitiation: aws.Int32(days)},
		}}},
	})
	if err != nil {
		return false, wrap("add lifecycle rule to", bucket, "", err)
	}
	return true, nil
}

// AbortsUploadsEverywhere reports whether r is an enabled rule that aborts
// incomplete multipart uploads in the whole bucket, whatever the number
// of days.
func AbortsUploadsEverywhere(r types.LifecycleRule) bool {
	if r.Status != types.ExpirationStatusEnabled || r.AbortIncompleteMultipartUpload == nil ||
		r.AbortIncompleteMultipartUpload.DaysAfterInitiation == nil {
		return false
	}
	//lint:ignore SA1019 the old form of the filter, which some stores still answer with
	if aws.ToString(r.Prefix) != "" {
		return false
	}
	f := r.Filter
	return f == nil || aws.ToString(f.Prefix) == "" && f.And == nil && f.Tag == nil &&
		f.ObjectSizeGreaterThan == nil && f.ObjectSizeLessThan == nil
}

// DeleteAllVersions deletes every old version and delete marker in bucket
// (and any current version still there), for `rb --force` on a bucket
// that keeps versions: DeleteBucket refuses while any remain. It returns
// how many it deleted.
func (c *Client) DeleteAllVersions(ctx context.Context, bucket string) (int, error) {
	deleted := 0
	p := s3.NewListObjectVersionsPaginator(c.s3, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return deleted, wrap("list versions in", bucket, "", err)
		}
		var ids []types.ObjectIdentifier
		for _, v := range page.Versions {
			ids = append(ids, types.ObjectIdentifier{Key: v.Key, VersionId: v.VersionId})
		}
		for _, m := range page.DeleteMarkers {
			ids = append(ids, types.ObjectIdentifier{Key: m.Key, VersionId: m.VersionId})
		}
		// A page holds at most 1000 entries, DeleteObjects takes 1000.
		for start := 0; start < len(ids); start += 1000 {
			batch := ids[start:min(start+1000, len(ids))]
			out, err := c.s3.DeleteObjects(ctx, &s3.DeleteObjectsInput{
				Bucket: aws.String(bucket),
				Delete: &types.Delete{Objects: batch, Quiet: aws.Bool(true)},
			})
			if err != nil {
				return deleted, wrap("delete versions in", bucket, aws.ToString(batch[0].Key), err)
			}
			if len(out.Errors) > 0 {
				e := out.Errors[0]
				return deleted, &Error{Op: "delete version " + aws.ToString(e.VersionId) + " of", Bucket: bucket, Key: aws.ToString(e.Key),
					Kind: kindForCode(aws.ToString(e.Code)), Err: errors.New(aws.ToString(e.Code) + ": " + aws.ToString(e.Message))}
			}
			deleted += len(batch)
		}
	}
	return deleted, nil
}
