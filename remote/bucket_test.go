package remote_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/remote"
)

// A new bucket is unversioned; EnableVersioning makes the store keep old
// versions, as the store itself then says.
func TestBucketVersioning(t *testing.T) {
	s3test.Each(t, func(t *testing.T) {
		srv := s3test.Get(t)
		c := newClient(t, nil)
		ctx := context.Background()
		bucket := srv.NewBucket(t)
		if v, err := c.BucketVersioning(ctx, bucket); err != nil || v != remote.VersioningOff {
			t.Fatalf("new bucket: versioning %q, %v; want off", v, err)
		}
		if err := c.EnableVersioning(ctx, bucket); err != nil {
			t.Fatal(err)
		}
		out, err := srv.Client().GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(bucket)})
		if err != nil || out.Status != types.BucketVersioningStatusEnabled {
			t.Fatalf("store says versioning %q, %v; want Enabled", out.Status, err)
		}
		if v, err := c.BucketVersioning(ctx, bucket); err != nil || v != remote.VersioningEnabled {
			t.Errorf("after EnableVersioning: %q, %v; want enabled", v, err)
		}
		if v, err := c.BucketVersioning(ctx, "no-such-bucket-s3sync"); !errors.Is(err, remote.ErrNoSuchBucket) || v != remote.VersioningUnknown {
			t.Errorf("missing bucket: %q, %v; want unknown, ErrNoSuchBucket", v, err)
		}
	})
}

// AbortIncompleteUploads adds its rule only to a bucket without lifecycle
// rules, and says why when it cannot. Neither server here keeps the rule
// (Versity 1.8 has no lifecycle rules; MinIO has them but refuses a rule
// with AbortIncompleteMultipartUpload and no expiration), so what each
// answers is pinned; a store that keeps it (S3SYNC_TEST_ENDPOINT) gets the
// rule once, and a second call adds nothing. On MinIO a bucket with a rule
// of its own is left as it was: ErrLifecycleExists.
func TestAbortIncompleteUploads(t *testing.T) {
	s3test.Each(t, func(t *testing.T) {
		srv := s3test.Get(t)
		c := newClient(t, nil)
		ctx := context.Background()
		bucket := srv.NewBucket(t)
		rules := func() ([]types.LifecycleRule, error) {
			out, err := srv.Client().GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: aws.String(bucket)})
			if err != nil {
				return nil, err
			}
			return out.Rules, nil
		}
		added, err := c.AbortIncompleteUploads(ctx, bucket, 7)
		switch srv.Kind {
		case s3test.Versity:
			if !errors.Is(err, remote.ErrNotImplemented) || added {
				t.Fatalf("Versity: added %v, %v; want ErrNotImplemented", added, err)
			}
			if _, gerr := rules(); !strings.Contains(fmt.Sprint(gerr), "NotImplemented") {
				t.Fatalf("ErrNotImplemented, yet the store answers lifecycle requests: %v", gerr)
			}
			return
		case s3test.MinIO:
			if err == nil || added || errors.Is(err, remote.ErrLifecycleExists) {
				t.Fatalf("MinIO: added %v, %v; want its refusal of the rule", added, err)
			}
			if got, gerr := rules(); len(got) != 0 {
				t.Fatalf("after a refused rule the bucket has rules %+v (%v)", got, gerr)
			}
			theirs := types.LifecycleRule{ID: aws.String("theirs"), Status: types.ExpirationStatusEnabled,
				Filter: &types.LifecycleRuleFilter{Prefix: aws.String("logs/")}, Expiration: &types.LifecycleExpiration{Days: aws.Int32(30)}}
			if _, err := srv.Client().PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: aws.String(bucket),
				LifecycleConfiguration: &types.BucketLifecycleConfiguration{Rules: []types.LifecycleRule{theirs}}}); err != nil {
				t.Fatal(err)
			}
			if added, err := c.AbortIncompleteUploads(ctx, bucket, 7); !errors.Is(err, remote.ErrLifecycleExists) || added {
				t.Errorf("bucket with a rule of its own: added %v, %v; want ErrLifecycleExists", added, err)
			}
			if got, err := rules(); err != nil || len(got) != 1 || aws.ToString(got[0].ID) != "theirs" {
				t.Errorf("the bucket's own rules were changed: %+v, %v", got, err)
			}
			return
		}
		if err != nil || !added {
			t.Fatalf("added %v, %v", added, err)
		}
		got, err := rules()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || aws.ToString(got[0].ID) != remote.AbortUploadsRuleID || !remote.AbortsUploadsEverywhere(got[0]) ||
			aws.ToInt32(got[0].AbortIncompleteMultipartUpload.DaysAfterInitiation) != 7 {
			t.Fatalf("rules %+v", got)
		}
		if added, err := c.AbortIncompleteUploads(ctx, bucket, 7); err != nil || added {
			t.Errorf("second call: added %v, %v; want false, nil", added, err)
		}
	})
}

// Only an enabled rule that aborts uploads in the whole bucket counts as
// the rule mb would add; any other rule makes mb leave the bucket's rules
// alone.
func TestAbortsUploadsEverywhere(t *testing.T) {
	abort := &types.AbortIncompleteMultipartUpload{DaysAfterInitiation: aws.Int32(3)}
	cases := []struct {
		name string
		rule types.LifecycleRule
		want bool
	}{
		{"no filter", types.LifecycleRule{Status: types.ExpirationStatusEnabled, AbortIncompleteMultipartUpload: abort}, true},
		{"empty prefix", types.LifecycleRule{Status: types.ExpirationStatusEnabled, AbortIncompleteMultipartUpload: abort,
			Filter: &types.LifecycleRuleFilter{Prefix: aws.String("")}}, true},
		{"disabled", types.LifecycleRule{Status: types.ExpirationStatusDisabled, AbortIncompleteMultipartUpload: abort}, false},
		{"expiration only", types.LifecycleRule{Status: types.ExpirationStatusEnabled,
			Expiration: &types.LifecycleExpiration{Days: aws.Int32(30)}}, false},
		{"under a prefix", types.LifecycleRule{Status: types.ExpirationStatusEnabled, AbortIncompleteMultipartUpload: abort,
			Filter: &types.LifecycleRuleFilter{Prefix: aws.String("logs/")}}, false},
		{"old-style prefix", types.LifecycleRule{Status: types.ExpirationStatusEnabled, AbortIncompleteMultipartUpload: abort,
			Prefix: aws.String("logs/")}, false},
		{"by tag", types.LifecycleRule{Status: types.ExpirationStatusEnabled, AbortIncompleteMultipartUpload: abort,
			Filter: &types.LifecycleRuleFilter{Tag: &types.Tag{Key: aws.String("k"), Value: aws.String("v")}}}, false},
	}
	for _, c := range cases {
		if got := remote.AbortsUploadsEverywhere(c.rule); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// In a versioned bucket, deleting every object leaves old versions and
// delete markers, so the bucket cannot be removed until DeleteAllVersions
// deletes them too.
func TestDeleteAllVersions(t *testing.T) {
	s3test.Each(t, func(t *testing.T) {
		srv := s3test.Get(t)
		c := newClient(t, nil)
		ctx := context.Background()
		name := fmt.Sprintf("versions-test-%d", time.Now().UnixNano())
		if _, err := c.MakeBucket(ctx, name, ""); err != nil {
			t.Fatal(err)
		}
		if err := c.EnableVersioning(ctx, name); err != nil {
			t.Fatal(err)
		}
		for _, body := range []string{"one", "two"} {
			srv.Put(t, name, "a/x.txt", body, nil)
		}
		srv.Put(t, name, "b.txt", "b", nil)
		if err := c.RemoveBucket(ctx, name, true); !errors.Is(err, remote.ErrBucketNotEmpty) {
			t.Fatalf("rb --force of a versioned bucket without its versions: %v, want ErrBucketNotEmpty", err)
		}
		n, err := c.DeleteAllVersions(ctx, name)
		// 3 versions and the 2 delete markers RemoveBucket left.
		if err != nil || n != 5 {
			t.Fatalf("DeleteAllVersions: %d, %v; want 5", n, err)
		}
		if err := c.RemoveBucket(ctx, name, false); err != nil {
			t.Fatalf("rb after deleting the versions: %v", err)
		}
		if err := c.CheckBucket(ctx, name); !errors.Is(err, remote.ErrNoSuchBucket) {
			t.Errorf("bucket still there: %v", err)
		}
	})
}
