package remote_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/remote"
)

// stallBound is how long a call may take against a stalling proxy with the
// short timeouts of stallClient; without deadlines it would hang forever.
const stallBound = 10 * time.Second

func stallClient(t *testing.T, p *faultProxy, mod func(*remote.Config)) *remote.Client {
	t.Helper()
	return newClient(t, func(c *remote.Config) {
		c.EndpointURL, c.IdleTimeout, c.ResponseTimeout = p.url, 500*time.Millisecond, 500*time.Millisecond
		if mod != nil {
			mod(c)
		}
	})
}

// bounded runs fn with a context that ends at stallBound and fails the test
// if fn needed all of it.
func bounded(t *testing.T, fn func(ctx context.Context) error) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stallBound)
	defer cancel()
	start := time.Now()
	err := fn(ctx)
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("still stalled after %v: %v", time.Since(start).Round(time.Millisecond), err)
	}
	t.Logf("returned after %v", time.Since(start).Round(time.Millisecond))
	return err
}

// A request whose connection is accepted and never answered is retried on
// another connection, and the call succeeds.
func TestUnansweredRequestRetried(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	srv.Put(t, bucket, "there", "hello", nil)
	ops := map[string]func(ctx context.Context, c *remote.Client) error{
		"upload": func(ctx context.Context, c *remote.Client) error {
			_, err := c.Upload(ctx, bucket, "up", strings.NewReader("data"), 4, remote.PutOptions{})
			return err
		},
		"head": func(ctx context.Context, c *remote.Client) error {
			_, err := c.Head(ctx, bucket, "there")
			return err
		},
		"list": func(ctx context.Context, c *remote.Client) error {
			return c.List(ctx, bucket, "", func(remote.Object) error { return nil })
		},
	}
	for name, op := range ops {
		t.Run(name, func(t *testing.T) {
			p := newFaultProxy(t, func(n int) fault { return fault{hang: n == 0} })
			c := stallClient(t, p, nil)
			if err := bounded(t, func(ctx context.Context) error { return op(ctx, c) }); err != nil {
				t.Fatalf("not retried past the unanswered request: %v", err)
			}
			if p.accepted() < 2 {
				t.Errorf("%d connections: the hung one was not replaced", p.accepted())
			}
		})
	}
}

// A store that thinks longer than IdleTimeout before answering, but within
// ResponseTimeout, is waited for: nothing is retried.
func TestSlowAnswerWaitedFor(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	srv.Put(t, bucket, "there", "hello", nil)
	p := newFaultProxy(t, func(int) fault { return fault{answerDelay: time.Second} })
	c := stallClient(t, p, func(c *remote.Config) {
		c.IdleTimeout = 300 * time.Millisecond
		c.ResponseTimeout = 3 * time.Second
		c.MaxAttempts = 1
	})
	if err := bounded(t, func(ctx context.Context) error {
		_, err := c.Head(ctx, bucket, "there")
		return err
	}); err != nil {
		t.Fatalf("answer after 1s with ResponseTimeout 3s: %v", err)
	}
}

// When every attempt hangs, the call ends with ErrUnreachable, which pauses
// the drain, instead of hanging.
func TestUnansweredEndpointUnreachable(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	p := newFaultProxy(t, func(int) fault { return fault{hang: true} })
	c := stallClient(t, p, func(c *remote.Config) { c.MaxAttempts = 2 })
	err := bounded(t, func(ctx context.Context) error {
		return c.List(ctx, bucket, "", func(remote.Object) error { return nil })
	})
	t.Log(err)
	if !errors.Is(err, remote.ErrUnreachable) || !remote.IsGlobal(err) || remote.IsPermanent(err) {
		t.Errorf("hung endpoint: %v", err)
	}
}

// A response whose body stops mid-way fails the download in time; the next
// download, on a fresh connection, works.
func TestStalledDownloadBody(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	data := make([]byte, 1<<20)
	rand.Read(data)
	srv.Put(t, bucket, "big", string(data), nil)
	// The first connection passes the headers and 64 KiB of the body.
	p := newFaultProxy(t, func(n int) fault {
		if n == 0 {
			return fault{downLimit: 64 << 10}
		}
		return fault{}
	})
	c := stallClient(t, p, nil)
	var buf bytes.Buffer
	err := bounded(t, func(ctx context.Context) error {
		_, err := c.Download(ctx, bucket, "big", "", &buf)
		return err
	})
	if err == nil {
		// Also fine: a retry of the whole GET got it all.
		if !bytes.Equal(buf.Bytes(), data) {
			t.Fatalf("download after a stall returned %d bytes, not the object", buf.Len())
		}
		return
	}
	t.Log(err)
	if !errors.Is(err, remote.ErrUnreachable) {
		t.Errorf("stalled body: %v, want ErrUnreachable", err)
	}
	buf.Reset()
	if err := bounded(t, func(ctx context.Context) error {
		_, err := c.Download(ctx, bucket, "big", "", &buf)
		return err
	}); err != nil || !bytes.Equal(buf.Bytes(), data) {
		t.Fatalf("download after the stall: %v (%d bytes)", err, buf.Len())
	}
}

// A server that stops reading an upload's body mid-way fails that attempt
// in time; the retry stores the whole object.
func TestStalledUploadBody(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	// More than the loopback socket buffers hold, so the writer blocks.
	data := make([]byte, 16<<20)
	rand.Read(data)
	p := newFaultProxy(t, func(n int) fault {
		if n == 0 {
			return fault{upLimit: 256 << 10}
		}
		return fault{}
	})
	c := stallClient(t, p, func(c *remote.Config) { c.MultipartThreshold = 64 << 20 })
	if err := bounded(t, func(ctx context.Context) error {
		_, err := c.Upload(ctx, bucket, "big", bytes.NewReader(data), int64(len(data)), remote.PutOptions{})
		return err
	}); err != nil {
		t.Fatalf("upload not retried past the stalled body: %v", err)
	}
	if p.accepted() < 2 {
		t.Errorf("%d connections: the stalled one was not replaced", p.accepted())
	}
	if body, _ := srv.Get(t, bucket, "big"); body != string(data) {
		t.Errorf("stored %d bytes, want the %d uploaded", len(body), len(data))
	}
}
