package remote_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/remote"
)

// opName names an S3 request by its method, query and headers.
func opName(r recorded) string {
	q := r.Query
	copySrc := r.Header.Get("x-amz-copy-source") != ""
	switch {
	case r.Method == http.MethodPost && q.Has("uploads"):
		return "CreateMultipartUpload"
	case r.Method == http.MethodPost && q.Has("uploadId"):
		return "CompleteMultipartUpload"
	case r.Method == http.MethodPut && q.Has("partNumber") && copySrc:
		return "UploadPartCopy"
	case r.Method == http.MethodPut && q.Has("partNumber"):
		return "UploadPart"
	case r.Method == http.MethodPut && copySrc:
		return "CopyObject"
	case r.Method == http.MethodPut:
		return "PutObject"
	case r.Method == http.MethodGet && q.Has("uploadId"):
		return "ListParts"
	case r.Method == http.MethodGet:
		return "GetObject"
	case r.Method == http.MethodHead:
		return "HeadObject"
	case r.Method == http.MethodDelete:
		return "DeleteObject"
	}
	return r.Method
}

// customerHeaders are the SSE-C headers of key (prefix "" or "copy-source-").
func customerHeaders(prefix string, key []byte) map[string]string {
	m := md5.Sum(key)
	return map[string]string{
		"x-amz-" + prefix + "server-side-encryption-customer-algorithm": "AES256",
		"x-amz-" + prefix + "server-side-encryption-customer-key":       base64.StdEncoding.EncodeToString(key),
		"x-amz-" + prefix + "server-side-encryption-customer-key-MD5":   base64.StdEncoding.EncodeToString(m[:]),
	}
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// Every request that writes an object carries the encryption asked for,
// every request on an SSE-C object carries its key, and copies carry the
// key of their source, as S3 requires of each; requests that must not
// carry x-amz-server-side-encryption (S3 refuses it on reads and parts)
// do not. Versity Gateway ignores all of these headers, so the requests
// are checked as they reach it.
func TestSSEHeadersSent(t *testing.T) {
	srv := s3test.Get(t)
	key, srcKey := bytes.Repeat([]byte("k"), 32), bytes.Repeat([]byte("s"), 32)
	sseC, copyC := customerHeaders("", key), customerHeaders("copy-source-", srcKey)
	srcRead := customerHeaders("", srcKey) // a copy in parts reads its source's metadata first
	kms := map[string]string{"x-amz-server-side-encryption": "aws:kms", "x-amz-server-side-encryption-aws-kms-key-id": "alias/backup"}
	s3Managed := map[string]string{"x-amz-server-side-encryption": "AES256"}
	for _, tc := range []struct {
		name string
		sse  remote.SSE
		want map[string]map[string]string // per request, headers it must carry
	}{
		{"SSE-C", remote.SSE{CustomerKey: key, CopySourceKey: srcKey}, map[string]map[string]string{
			"PutObject": sseC, "CreateMultipartUpload": sseC, "UploadPart": sseC, "CompleteMultipartUpload": sseC,
			"ListParts": sseC, "GetObject": sseC, "HeadObject": sseC, "HeadObject of a copy's source": srcRead,
			"CopyObject": merge(sseC, copyC), "UploadPartCopy": merge(sseC, copyC),
		}},
		{"SSE-KMS", remote.SSE{Algorithm: remote.SSEKMS, KMSKeyID: "alias/backup"}, map[string]map[string]string{
			"PutObject": kms, "CreateMultipartUpload": kms, "CopyObject": kms,
		}},
		{"SSE-S3", remote.SSE{Algorithm: remote.SSEAES256}, map[string]map[string]string{
			"PutObject": s3Managed, "CreateMultipartUpload": s3Managed, "CopyObject": s3Managed,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bucket := srv.NewBucket(t)
			rec := newRecorder(t, srv.Endpoint)
			c := limitedClient(t, rec.url, nil, func(c *remote.Config) {
				c.SSE, c.MultipartThreshold, c.PartSize = tc.sse, 5<<20, 5<<20
			})
			ctx := context.Background()
			small, big := []byte("hello"), make([]byte, 6<<20)
			rand.Read(big)
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			_, err := c.Upload(ctx, bucket, "small", bytes.NewReader(small), int64(len(small)), remote.PutOptions{})
			must(err)
			_, err = c.Upload(ctx, bucket, "big", bytes.NewReader(big), int64(len(big)), remote.PutOptions{})
			must(err)
			// A resumed upload lists the parts already sent.
			up, err := srv.Client().CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("resumed")})
			must(err)
			_, err = c.Upload(ctx, bucket, "resumed", bytes.NewReader(big), int64(len(big)), remote.PutOptions{ResumeID: aws.ToString(up.UploadId)})
			must(err)
			var buf bytes.Buffer
			_, err = c.Download(ctx, bucket, "big", "", &buf)
			must(err)
			_, err = c.Head(ctx, bucket, "small")
			must(err)
			_, err = c.Copy(ctx, bucket, "small", bucket, "small-copy", int64(len(small)), remote.PutOptions{})
			must(err)
			undo := remote.CopyInPartsAbove(1 << 20)
			_, err = c.Copy(ctx, bucket, "big", bucket, "big-copy", int64(len(big)), remote.PutOptions{})
			undo()
			must(err)

			seen := map[string]bool{}
			for _, r := range rec.requests() {
				op := opName(r)
				if op == "HeadObject" && strings.HasSuffix(r.Path, "/big") {
					op = "HeadObject of a copy's source"
				}
				seen[op] = true
				for h, v := range tc.want[op] {
					if got := r.Header.Get(h); got != v {
						t.Errorf("%s %s: %s = %q, want %q", op, r.Method, h, got, v)
					}
				}
				if tc.want[op] == nil {
					for h := range r.Header {
						if strings.HasPrefix(strings.ToLower(h), "x-amz-server-side-encryption") || strings.HasPrefix(strings.ToLower(h), "x-amz-copy-source-server-side") {
							t.Errorf("%s carries %s, which S3 refuses there", op, h)
						}
					}
				}
			}
			for op := range tc.want {
				if !seen[op] {
					t.Errorf("no %s request was made", op)
				}
			}
		})
	}
}

// logs captures what the program logs through slog's default logger.
type logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logs) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.buf.Write(p) }
func (l *logs) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.buf.String() }

func captureLogs(t *testing.T) *logs {
	l := &logs{}
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(l, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })
	return l
}

// A store that ignores the encryption headers (Versity Gateway does) keeps
// the objects in plain text: the user is told, once per run, not never.
func TestSSEUnconfirmedIsSaid(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	for _, tc := range []struct {
		name string
		sse  remote.SSE
		warn bool
	}{
		{"none", remote.SSE{}, false},
		{"SSE-KMS", remote.SSE{Algorithm: remote.SSEKMS}, true},
		{"SSE-S3", remote.SSE{Algorithm: remote.SSEAES256}, true},
		{"SSE-C", remote.SSE{CustomerKey: bytes.Repeat([]byte("k"), 32)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logged := captureLogs(t)
			c := newClient(t, func(c *remote.Config) { c.SSE = tc.sse })
			for _, k := range []string{"a", "b", "c"} {
				if _, err := c.Upload(context.Background(), bucket, k, strings.NewReader("x"), 1, remote.PutOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			n := strings.Count(logged.String(), "did not confirm server-side encryption")
			if tc.warn && n != 1 || !tc.warn && n != 0 {
				t.Fatalf("warned %d times, want %v:\n%s", n, tc.warn, logged)
			}
		})
	}
}

// An SSE-C key is never sent over plain HTTP to another machine: S3 would
// refuse it, and the key would have crossed the network in clear text.
func TestSSECustomerKeyNeedsHTTPS(t *testing.T) {
	key := bytes.Repeat([]byte("k"), 32)
	for _, tc := range []struct {
		endpoint string
		sse      remote.SSE
		refused  bool
	}{
		{"http://s3.example.com", remote.SSE{CustomerKey: key}, true},
		{"http://10.0.0.5:9000", remote.SSE{CopySourceKey: key}, true},
		{"https://s3.example.com", remote.SSE{CustomerKey: key}, false},
		{"s3.example.com", remote.SSE{CustomerKey: key}, false}, // https is the default
		{"http://127.0.0.1:9000", remote.SSE{CustomerKey: key}, false},
		{"http://s3.example.com", remote.SSE{Algorithm: remote.SSEKMS}, false},
	} {
		_, err := remote.New(context.Background(), remote.Config{EndpointURL: tc.endpoint, SSE: tc.sse})
		if got := errors.Is(err, remote.ErrKeyInClear); got != tc.refused {
			t.Errorf("%s %+v: err %v, want refused=%v", tc.endpoint, tc.sse.Algorithm, err, tc.refused)
		}
	}
}
