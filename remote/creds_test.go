package remote_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/remote"
)

func listErr(c *remote.Client, bucket string) error {
	return c.List(context.Background(), bucket, "", func(remote.Object) error { return nil })
}

// Rejected credentials are global trouble, and fixing them heals a running
// client through ReloadCredentials.
func TestReloadCredentials(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-value")
	c := newClient(t, nil)
	err := listErr(c, bucket)
	if !errors.Is(err, remote.ErrBadCredentials) || !remote.IsGlobal(err) || remote.IsPermanent(err) {
		t.Fatalf("wrong secret: %v (global %v, permanent %v)", err, remote.IsGlobal(err), remote.IsPermanent(err))
	}

	// Nothing in the chain: the reload says so and keeps what it had.
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	err = c.ReloadCredentials(context.Background())
	if !errors.Is(err, remote.ErrNoCredentials) || !remote.IsGlobal(err) {
		t.Errorf("reload with no credentials: %v", err)
	}
	if err := listErr(c, bucket); !errors.Is(err, remote.ErrBadCredentials) {
		t.Errorf("after a failed reload: %v, want the old credentials' ErrBadCredentials", err)
	}

	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	if err := c.ReloadCredentials(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := listErr(c, bucket); err != nil {
		t.Errorf("after reloading the right secret: %v", err)
	}
	if _, err := c.Upload(context.Background(), bucket, "k", strings.NewReader("x"), 1, remote.PutOptions{}); err != nil {
		t.Errorf("upload after reload: %v", err)
	}
}

// A request signed with a time the store rejects comes back as
// ErrClockSkew, with a hint about the clock. The proxy moves X-Amz-Date an
// hour back, as a machine whose clock is an hour behind would send it;
// the server checks the time before the signature.
func TestClockSkew(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	target, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.Out.URL.Scheme, r.Out.URL.Host = target.Scheme, target.Host
		r.Out.Host = r.In.Host // signed
		if d, err := time.Parse("20060102T150405Z", r.In.Header.Get("X-Amz-Date")); err == nil {
			r.Out.Header.Set("X-Amz-Date", d.Add(-time.Hour).Format("20060102T150405Z"))
		}
	}})
	defer proxy.Close()
	c := newClient(t, func(c *remote.Config) { c.EndpointURL = proxy.URL })
	err = listErr(c, bucket)
	if !errors.Is(err, remote.ErrClockSkew) || !remote.IsGlobal(err) || remote.IsPermanent(err) {
		t.Fatalf("skewed clock: %v", err)
	}
	if !strings.Contains(err.Error(), "timedatectl") {
		t.Errorf("no hint about the clock: %v", err)
	}
}
