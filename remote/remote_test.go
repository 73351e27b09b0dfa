package remote_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/remote"
)

func TestMain(m *testing.M) { s3test.Main(m) }

func newClient(t *testing.T, mod func(*remote.Config)) *remote.Client {
	t.Helper()
	srv := s3test.Get(t)
	cfg := remote.Config{EndpointURL: srv.Endpoint}
	if mod != nil {
		mod(&cfg)
	}
	c, err := remote.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMtimeFormat(t *testing.T) {
	cases := []struct {
		t    time.Time
		want string
	}{
		{time.Unix(1700000000, 0), "1700000000"},
		{time.Unix(1700000000, 500000000), "1700000000.5"},
		{time.Unix(1700000000, 123456789), "1700000000.123456789"},
		{time.Unix(1700000000, 1), "1700000000.000000001"},
	}
	for _, c := range cases {
		got := remote.FormatMtime(c.t)
		if got != c.want {
			t.Errorf("FormatMtime(%v) = %q, want %q", c.t, got, c.want)
		}
		back, ok := remote.ParseMtime(got)
		if !ok || !back.Equal(c.t) {
			t.Errorf("ParseMtime(%q) = %v, %v; want %v", got, back, ok, c.t)
		}
	}
	// Out of what a file can have: INT64_MAX seconds wrapped to 1969.
	for _, bad := range []string{"", "abc", "1.x", "9223372036854775807", "-9223372036854775808", "99999999999"} {
		if _, ok := remote.ParseMtime(bad); ok {
			t.Errorf("ParseMtime(%q) accepted", bad)
		}
	}
	// rclone may write more digits than we keep.
	if got, _ := remote.ParseMtime("1700000000.1234567891"); !got.Equal(time.Unix(1700000000, 123456789)) {
		t.Errorf("long fraction: %v", got)
	}
}

func TestPartSize(t *testing.T) {
	if got := remote.PartSizeFor(1<<30, 8<<20); got != 8<<20 {
		t.Errorf("1 GiB: %d", got)
	}
	big := int64(5) << 40 // 5 TiB, the S3 maximum
	ps := remote.PartSizeFor(big, 8<<20)
	if (big+ps-1)/ps > 10000 {
		t.Errorf("5 TiB needs %d parts of %d", (big+ps-1)/ps, ps)
	}
}

func TestParseURL(t *testing.T) {
	cases := []struct{ in, bucket, prefix string }{
		{"s3://b", "b", ""},
		{"s3://b/", "b", ""},
		{"s3://b/p", "b", "p/"},
		{"s3://b/p/q/", "b", "p/q/"},
	}
	for _, c := range cases {
		l, err := remote.ParseURL(c.in)
		if err != nil || l.Bucket != c.bucket || l.Prefix != c.prefix {
			t.Errorf("ParseURL(%q) = %+v, %v", c.in, l, err)
		}
	}
	for _, bad := range []string{"b/p", "s3://", "s3:///p"} {
		if _, err := remote.ParseURL(bad); err == nil {
			t.Errorf("ParseURL(%q) accepted", bad)
		}
	}
}

func TestUploadDownloadRoundTrip(t *testing.T) {
	s3test.Each(t, func(t *testing.T) {
		srv := s3test.Get(t)
		bucket := srv.NewBucket(t)
		// A 5 MiB threshold and part size make a 12 MiB file take three parts.
		c := newClient(t, func(c *remote.Config) { c.MultipartThreshold = 5 << 20; c.PartSize = 5 << 20 })
		ctx := context.Background()
		mtime := time.Unix(1600000000, 123456789)
		for _, size := range []int{0, 1, 4096, 12<<20 + 7} {
			t.Run(fmt.Sprint(size), func(t *testing.T) {
				data := make([]byte, size)
				rand.Read(data)
				key := fmt.Sprintf("dir/file-%d.txt", size)
				up, err := c.Upload(ctx, bucket, key, bytes.NewReader(data), int64(size), remote.PutOptions{Mtime: mtime})
				if err != nil {
					t.Fatal(err)
				}
				etag := up.ETag
				if etag == "" {
					t.Error("no ETag")
				}
				var buf bytes.Buffer
				info, err := c.Download(ctx, bucket, key, etag, &buf)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(buf.Bytes(), data) {
					t.Fatalf("content differs after round trip (%d bytes back)", buf.Len())
				}
				if !info.Mtime.Equal(mtime) {
					t.Errorf("mtime = %v, want %v", info.Mtime, mtime)
				}
				if _, meta := srv.Get(t, bucket, key); meta["mtime"] != "1600000000.123456789" {
					t.Errorf("x-amz-meta-mtime = %q", meta["mtime"])
				}
			})
		}
	})
}

func TestDownloadIfMatch(t *testing.T) {
	s3test.Each(t, func(t *testing.T) {
		srv := s3test.Get(t)
		bucket := srv.NewBucket(t)
		c := newClient(t, nil)
		srv.Put(t, bucket, "k", "one", nil)
		_, err := c.Download(context.Background(), bucket, "k", `"0123456789abcdef0123456789abcdef"`, &bytes.Buffer{})
		if !errors.Is(err, remote.ErrChanged) {
			t.Fatalf("stale ETag: got %v, want ErrChanged", err)
		}
	})
}

func TestListOrderAndEncoding(t *testing.T) {
	s3test.Each(t, func(t *testing.T) {
		srv := s3test.Get(t)
		bucket := srv.NewBucket(t)
		c := newClient(t, nil)
		keys := []string{"a b", "a+b", "a-b", "a.b", "a/x", "a0", "a~", "é", "z%41", "ü/ä"}
		for _, k := range keys {
			srv.Put(t, bucket, k, k, nil)
		}
		var got []string
		if err := c.List(context.Background(), bucket, "", func(o remote.Object) error {
			got = append(got, o.Key)
			if o.Size != int64(len(o.Key)) || o.LastModified.IsZero() || o.ETag == "" {
				t.Errorf("%q: incomplete listing entry %+v", o.Key, o)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		want := append([]string(nil), keys...)
		sort.Strings(want) // Go compares strings bytewise: S3's order
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("listing order\n got %q\nwant %q", got, want)
		}
		var dirs, objs []string
		err := c.ListDir(context.Background(), bucket, "", func(o remote.Object) error { objs = append(objs, o.Key); return nil },
			func(p string) error { dirs = append(dirs, p); return nil })
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(dirs, "|") != "a/|ü/" {
			t.Errorf("ListDir prefixes = %q", dirs)
		}
		if len(objs) != len(keys)-2 {
			t.Errorf("ListDir objects = %q", objs)
		}
	})
}

func TestCopyKeepsMetadata(t *testing.T) {
	s3test.Each(t, func(t *testing.T) {
		srv := s3test.Get(t)
		src, dst := srv.NewBucket(t), srv.NewBucket(t)
		c := newClient(t, nil)
		ctx := context.Background()
		mtime := time.Unix(1500000000, 5)
		key := "with space/ü+plus.txt"
		if _, err := c.Upload(ctx, src, key, strings.NewReader("hello"), 5, remote.PutOptions{Mtime: mtime}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Copy(ctx, src, key, dst, "copied/"+key, 5, remote.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		body, meta := srv.Get(t, dst, "copied/"+key)
		if body != "hello" || meta["mtime"] != remote.FormatMtime(mtime) {
			t.Errorf("copy: body %q meta %v", body, meta)
		}
	})
}

func TestDeleteBatches(t *testing.T) {
	s3test.Each(t, func(t *testing.T) {
		if testing.Short() {
			t.Skip("uploads 1,001 objects")
		}
		srv := s3test.Get(t)
		bucket := srv.NewBucket(t)
		c := newClient(t, nil)
		ctx := context.Background()
		var keys []string
		for i := range 1001 {
			k := fmt.Sprintf("k%04d", i)
			keys = append(keys, k)
			if _, err := c.Upload(ctx, bucket, k, strings.NewReader("x"), 1, remote.PutOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		failed, err := c.Delete(ctx, bucket, keys)
		if err != nil || len(failed) > 0 {
			t.Fatalf("delete: %v %v", failed, err)
		}
		if left := srv.Objects(t, bucket, ""); len(left) != 0 {
			t.Errorf("%d objects left after deleting all", len(left))
		}
	})
}

func TestErrors(t *testing.T) {
	s3test.Each(t, func(t *testing.T) {
		srv := s3test.Get(t)
		ctx := context.Background()
		c := newClient(t, nil)
		err := c.CheckBucket(ctx, "no-such-bucket-s3sync")
		if !errors.Is(err, remote.ErrNoSuchBucket) || !remote.IsPermanent(err) {
			t.Errorf("missing bucket: %v", err)
		}
		if !strings.Contains(err.Error(), "s3://no-such-bucket-s3sync") || !strings.Contains(err.Error(), "bucket does not exist") {
			t.Errorf("message not clear: %v", err)
		}
		bucket := srv.NewBucket(t)
		_, err = c.Head(ctx, bucket, "absent")
		if !errors.Is(err, remote.ErrNotFound) {
			t.Errorf("missing key: %v", err)
		}

		t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-value")
		bad := newClient(t, nil)
		err = bad.CheckBucket(ctx, bucket)
		if !errors.Is(err, remote.ErrBadCredentials) && !errors.Is(err, remote.ErrAccessDenied) {
			t.Errorf("bad secret: %v", err)
		}
		if strings.Contains(err.Error(), "wrong-secret-value") {
			t.Errorf("secret in error message: %v", err)
		}

		down := newClient(t, func(c *remote.Config) { c.EndpointURL = "http://127.0.0.1:1"; c.MaxAttempts = 1 })
		err = down.CheckBucket(ctx, bucket)
		if !errors.Is(err, remote.ErrUnreachable) || remote.IsPermanent(err) {
			t.Errorf("unreachable endpoint: %v", err)
		}
	})
}

func TestProfileEndpoint(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "config")
	credFile := filepath.Join(dir, "credentials")
	os.WriteFile(cfgFile, []byte("[profile wasabi]\nregion = us-east-1\nendpoint_url = "+srv.Endpoint+"\n"), 0o600)
	os.WriteFile(credFile, []byte("[wasabi]\naws_access_key_id = "+srv.AccessKey+"\naws_secret_access_key = "+srv.SecretKey+"\n"), 0o600)
	t.Setenv("AWS_CONFIG_FILE", cfgFile)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", credFile)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	c, err := remote.New(context.Background(), remote.Config{Profile: "wasabi"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Endpoint() != srv.Endpoint {
		t.Errorf("endpoint from profile = %q", c.Endpoint())
	}
	if err := c.CheckBucket(context.Background(), bucket); err != nil {
		t.Errorf("profile with endpoint_url: %v", err)
	}
	_, err = remote.New(context.Background(), remote.Config{Profile: "nope"})
	if err == nil || !strings.Contains(err.Error(), `profile "nope" not found`) {
		t.Errorf("missing profile: %v", err)
	}
}

func TestMakeRemoveBucket(t *testing.T) {
	s3test.Each(t, func(t *testing.T) {
		srv := s3test.Get(t)
		c := newClient(t, nil)
		ctx := context.Background()
		name := fmt.Sprintf("mb-test-%d", time.Now().UnixNano())
		pubErr, err := c.MakeBucket(ctx, name, "")
		if err != nil {
			t.Fatal(err)
		}
		// Neither Versity nor MinIO has public access blocks: MakeBucket
		// must say so rather than claim the bucket is blocked (MinIO
		// answers the SDK's PutPublicAccessBlock with MalformedXML, not
		// NotImplemented). A store that has them must hold all four
		// settings.
		pab, gerr := srv.Client().GetPublicAccessBlock(ctx, &s3.GetPublicAccessBlockInput{Bucket: aws.String(name)})
		switch {
		case srv.Kind == s3test.Versity || srv.Kind == s3test.MinIO:
			if !strings.Contains(fmt.Sprint(gerr), "NotImplemented") {
				t.Errorf("the store answers GetPublicAccessBlock: %v; the test expects it not to have them", gerr)
			}
			if pubErr == nil || srv.Kind == s3test.Versity && !errors.Is(pubErr, remote.ErrNotImplemented) {
				t.Errorf("public access block: MakeBucket says %v, on a store without them", pubErr)
			}
		case pubErr != nil || gerr != nil:
			t.Errorf("public access block: %v; the store's own answer: %v", pubErr, gerr)
		default:
			p := pab.PublicAccessBlockConfiguration
			if !aws.ToBool(p.BlockPublicAcls) || !aws.ToBool(p.IgnorePublicAcls) || !aws.ToBool(p.BlockPublicPolicy) || !aws.ToBool(p.RestrictPublicBuckets) {
				t.Errorf("public access block on the new bucket: %+v; want all four on", p)
			}
		}
		if _, err := c.Upload(ctx, name, "x", strings.NewReader("x"), 1, remote.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := c.RemoveBucket(ctx, name, false); !errors.Is(err, remote.ErrBucketNotEmpty) {
			t.Errorf("rb of non-empty bucket: %v", err)
		}
		if err := c.RemoveBucket(ctx, name, true); err != nil {
			t.Errorf("rb --force: %v", err)
		}
		if err := c.CheckBucket(ctx, name); !errors.Is(err, remote.ErrNoSuchBucket) {
			t.Errorf("bucket still there: %v", err)
		}
	})
}

// Endpoint names the endpoint whichever way it was given, so a mount's
// state knows which store it mirrors to: AWS_ENDPOINT_URL_S3 is resolved by
// the S3 client itself, not by the shared configuration.
func TestEndpointFromS3Environment(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL", "")
	os.Unsetenv("AWS_ENDPOINT_URL")
	t.Setenv("AWS_ENDPOINT_URL_S3", "https://s3.eu-central-1.wasabisys.com")
	c, err := remote.New(context.Background(), remote.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Endpoint(); got != "https://s3.eu-central-1.wasabisys.com" {
		t.Errorf("Endpoint() = %q with AWS_ENDPOINT_URL_S3 set", got)
	}
}
