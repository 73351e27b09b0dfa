package remote_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/remote"
)

// Config.ObserveRequest sees every request by its S3 operation, with the
// store's refusal as its error: what the mount's latency histogram shows.
func TestObserveRequest(t *testing.T) {
	type seen struct {
		op  string
		d   time.Duration
		err error
	}
	var mu sync.Mutex
	var got []seen
	c := newClient(t, func(cfg *remote.Config) {
		cfg.ObserveRequest = func(op string, d time.Duration, err error) {
			mu.Lock()
			got = append(got, seen{op, d, err})
			mu.Unlock()
		}
	})
	ctx := context.Background()
	bucket := s3test.Get(t).NewBucket(t)
	if _, err := c.Upload(ctx, bucket, "k", bytes.NewReader([]byte("hello")), 5, remote.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Head(ctx, bucket, "missing"); !errors.Is(err, remote.ErrNotFound) {
		t.Fatalf("head of a missing key: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	var put, head bool
	for _, s := range got {
		if s.d <= 0 {
			t.Errorf("%s observed with duration %v", s.op, s.d)
		}
		switch s.op {
		case "PutObject":
			put = s.err == nil
		case "HeadObject":
			head = s.err != nil
		}
	}
	if !put || !head {
		t.Errorf("want PutObject ok and HeadObject failed, observed %+v", got)
	}
}
