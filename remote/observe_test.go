package remote_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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

// Config.ObserveTransfer sees each transfer a caller asks for once, as it
// returned: a multipart upload is one upload, a batch delete one delete of
// all its keys; the requests ProbeConditions makes for itself are none.
// What the mount's transfer counters and its deletion log count.
func TestObserveTransfer(t *testing.T) {
	var mu sync.Mutex
	var got []remote.Transfer
	var completes int
	c := newClient(t, func(cfg *remote.Config) {
		cfg.MultipartThreshold, cfg.PartSize = 5<<20, 5<<20
		cfg.ObserveTransfer = func(tr remote.Transfer) {
			mu.Lock()
			got = append(got, tr)
			mu.Unlock()
		}
		cfg.ObserveRequest = func(op string, _ time.Duration, err error) {
			if op == "CompleteMultipartUpload" && err == nil {
				mu.Lock()
				completes++
				mu.Unlock()
			}
		}
	})
	ctx := context.Background()
	bucket := s3test.Get(t).NewBucket(t)
	taken := func() []remote.Transfer {
		mu.Lock()
		defer mu.Unlock()
		out := got
		got = nil
		return out
	}
	if _, err := c.ProbeConditions(ctx, bucket, ""); err != nil {
		t.Fatal(err)
	}
	if seen := taken(); len(seen) != 0 {
		t.Errorf("ProbeConditions observed as transfers: %+v", seen)
	}

	big := bytes.Repeat([]byte("x"), 6<<20)
	changed := errors.New("changed")
	steps := []struct {
		name string
		do   func() error
		want remote.Transfer
	}{
		{"upload", func() error {
			_, err := c.Upload(ctx, bucket, "k", bytes.NewReader([]byte("hello")), 5, remote.PutOptions{})
			return err
		}, remote.Transfer{Op: remote.OpUpload, Size: 5}},
		{"multipart upload", func() error {
			_, err := c.Upload(ctx, bucket, "big", bytes.NewReader(big), int64(len(big)), remote.PutOptions{})
			return err
		}, remote.Transfer{Op: remote.OpUpload, Size: int64(len(big))}},
		{"upload the check refused", func() error {
			_, err := c.Upload(ctx, bucket, "refused", bytes.NewReader([]byte("hello")), 5, remote.PutOptions{Check: func() error { return changed }})
			if !errors.Is(err, changed) {
				return fmt.Errorf("upload with a refusing check: %v", err)
			}
			return nil
		}, remote.Transfer{Op: remote.OpUpload, Size: 5, CheckRefused: true, Err: changed}},
		{"copy", func() error {
			_, err := c.Copy(ctx, bucket, "k", bucket, "k2", 5, remote.PutOptions{})
			return err
		}, remote.Transfer{Op: remote.OpCopy, Size: 5}},
		{"download", func() error {
			_, err := c.Download(ctx, bucket, "k2", "", io.Discard)
			return err
		}, remote.Transfer{Op: remote.OpDownload, Size: 5}},
		{"batch delete", func() error {
			failed, err := c.Delete(ctx, bucket, []string{"big", "k", "k2", "missing"})
			if len(failed) > 0 {
				return fmt.Errorf("not deleted: %+v", failed)
			}
			return err
		}, remote.Transfer{Op: remote.OpDelete, Keys: 4}},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		seen := taken()
		if len(seen) != 1 {
			t.Errorf("%s: observed %d transfers, want 1: %+v", s.name, len(seen), seen)
			continue
		}
		g := seen[0]
		if g.Op != s.want.Op || g.Size != s.want.Size || g.Keys != s.want.Keys || len(g.Failed) != 0 ||
			g.CheckRefused != s.want.CheckRefused || !errors.Is(g.Err, s.want.Err) || (g.Err == nil) != (s.want.Err == nil) {
			t.Errorf("%s: observed %+v, want %+v", s.name, g, s.want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if completes != 1 {
		t.Errorf("%d multipart uploads completed, want 1 (the 6 MiB upload)", completes)
	}
}
