package remote

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

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
			return nil, &Error{Op: "make bucket", Bucket: bucket, Kind: ErrBucketExists, Err: errors.New("you already own it")}
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
			failed, err := c.Delete(ctx, bucket, keys)
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
