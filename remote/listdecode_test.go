package remote_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/remote"
)

// Our ListObjectsV2 decoder gives, page by page, what the SDK's gives for
// the same request to the real server: every field a listing uses, for
// keys XML must escape, unicode, white space, control characters (url
// encoding), near the 1024-byte limit; with and without url encoding,
// delimiter, prefix, pages cut short by max-keys, and empty pages.
func TestListDecodeMatchesSDK(t *testing.T) {
	s3test.Each(t, func(t *testing.T) {
		srv := s3test.Get(t)
		bucket := srv.NewBucket(t)
		c := newClient(t, nil)
		long := strings.Repeat("L", 200)
		keys := []string{
			"plain", "a&b", "a<b>c", `q"uote'`, "&amp;literal", "sp ace", "plus+sign", "pct%41", "tab\tkey",
			"new\nline", "cr\rkey", "ünï/cödé", "日本/語", "emoji😀", "dir/sub/file", "dir/x", "dir-x", "dir0",
			long + "/" + long + "/" + long + "/" + long + "/" + strings.Repeat("m", 190),
			"]]>", "x/", // a directory marker
		}
		var put []string
		for _, k := range keys {
			body := "v-" + k
			if strings.HasSuffix(k, "/") {
				body = ""
			}
			_, err := srv.Client().PutObject(context.Background(), &s3.PutObjectInput{
				Bucket: aws.String(bucket), Key: aws.String(k), Body: strings.NewReader(body)})
			if err != nil {
				t.Logf("the server does not take key %q: %v", k, err)
				continue
			}
			put = append(put, k)
		}
		if len(put) < len(keys)-1 {
			t.Fatalf("the server took only %d of %d keys", len(put), len(keys))
		}
		ctx := context.Background()
		for _, in := range []s3.ListObjectsV2Input{
			{EncodingType: types.EncodingTypeUrl},
			{},
			{EncodingType: types.EncodingTypeUrl, Delimiter: aws.String("/")},
			{Delimiter: aws.String("/")},
			{EncodingType: types.EncodingTypeUrl, Prefix: aws.String("dir/")},
			{EncodingType: types.EncodingTypeUrl, Prefix: aws.String("nothing-here/")},
			{Prefix: aws.String("nothing-here/"), Delimiter: aws.String("/")},
			{EncodingType: types.EncodingTypeUrl, MaxKeys: aws.Int32(3)},
			{MaxKeys: aws.Int32(2), Delimiter: aws.String("/")},
			{StartAfter: aws.String("dir0"), MaxKeys: aws.Int32(4)},
		} {
			name := describeInput(in)
			in.Bucket = aws.String(bucket)
			pages, objects := 0, 0
			for {
				sdk, err := c.S3().ListObjectsV2(ctx, &in)
				if err != nil {
					t.Fatalf("%s: SDK: %v", name, err)
				}
				ours, err := c.S3().ListObjectsV2(ctx, &in, remote.FastListDecode)
				if err != nil {
					t.Fatalf("%s: ours: %v", name, err)
				}
				pages++
				objects += len(sdk.Contents)
				next := sdk.NextContinuationToken
				if srv.Kind == s3test.MinIO && ours.NextContinuationToken != nil && next != nil {
					// MinIO's token names a listing cache entry of its
					// own per request: two same requests get two tokens.
					ours.NextContinuationToken, sdk.NextContinuationToken = aws.String("(set)"), aws.String("(set)")
				}
				if g, w := describeOutput(ours), describeOutput(sdk); g != w {
					t.Errorf("%s, page %d:\n ours %s\n  SDK %s", name, pages, g, w)
				}
				// Nothing is left out of describeOutput by mistake.
				for i := range sdk.Contents {
					sdk.Contents[i].Owner, sdk.Contents[i].RestoreStatus = nil, nil
				}
				if !reflect.DeepEqual(ours.Contents, sdk.Contents) || !reflect.DeepEqual(ours.CommonPrefixes, sdk.CommonPrefixes) {
					t.Errorf("%s, page %d: objects or prefixes differ", name, pages)
				}
				if !aws.ToBool(sdk.IsTruncated) {
					break
				}
				in.ContinuationToken = next
			}
			if in.MaxKeys != nil && in.Prefix == nil && pages < 2 {
				t.Errorf("%s: %d page, want several", name, pages)
			}
			t.Logf("%s: %d pages, %d objects", name, pages, objects)
		}
		// And the listing the syncer uses gets every key back whole.
		var got []string
		if err := c.List(ctx, bucket, "", func(o remote.Object) error { got = append(got, o.Key); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(put) {
			t.Errorf("List gave %d keys, want %d: %q", len(got), len(put), got)
		}
	})
}

func describeInput(in s3.ListObjectsV2Input) string {
	return fmt.Sprintf("encoding=%q delimiter=%q prefix=%q max-keys=%d start-after=%q", in.EncodingType,
		aws.ToString(in.Delimiter), aws.ToString(in.Prefix), aws.ToInt32(in.MaxKeys), aws.ToString(in.StartAfter))
}

func describeOutput(o *s3.ListObjectsV2Output) string {
	var b strings.Builder
	p := func(s *string) string {
		if s == nil {
			return "nil"
		}
		return fmt.Sprintf("%q", *s)
	}
	fmt.Fprintf(&b, "name=%s prefix=%s delimiter=%s encoding=%q max-keys=%v key-count=%v truncated=%v token=%s next=%s start-after=%s",
		p(o.Name), p(o.Prefix), p(o.Delimiter), o.EncodingType, ptr(o.MaxKeys), ptr(o.KeyCount), ptr(o.IsTruncated),
		p(o.ContinuationToken), p(o.NextContinuationToken), p(o.StartAfter))
	for _, x := range o.Contents {
		fmt.Fprintf(&b, "\n  key=%s size=%v etag=%s modified=%v class=%q checksum=%q/%q", p(x.Key), ptr(x.Size), p(x.ETag),
			ptr(x.LastModified), x.StorageClass, x.ChecksumAlgorithm, x.ChecksumType)
	}
	for _, x := range o.CommonPrefixes {
		fmt.Fprintf(&b, "\n  prefix=%s", p(x.Prefix))
	}
	return b.String()
}

func ptr[T any](v *T) any {
	if v == nil {
		return "nil"
	}
	return *v
}
