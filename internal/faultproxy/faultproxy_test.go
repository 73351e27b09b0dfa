package faultproxy_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/s3sync/s3sync/internal/faultproxy"
	"github.com/s3sync/s3sync/internal/s3test"
)

func TestMain(m *testing.M) { s3test.Main(m) }

// env is a bucket on the real server, a proxy in front of it, and an SDK
// client that talks through the proxy and never retries, so each fault is
// seen as it was made.
type env struct {
	srv    *s3test.Server
	bucket string
	p      *faultproxy.Proxy
	c      *s3.Client
}

func newEnv(t *testing.T, seed uint64) *env {
	t.Helper()
	srv := s3test.Get(t)
	p, err := faultproxy.New(srv.Endpoint, seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return &env{srv: srv, bucket: srv.NewBucket(t), p: p, c: s3.New(s3.Options{
		Region:                     srv.Region,
		BaseEndpoint:               aws.String(p.URL()),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
		Retryer:                    aws.NopRetryer{},
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})}
}

func (e *env) put(ctx context.Context, key, body string) error {
	_, err := e.c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(key), Body: strings.NewReader(body)})
	return err
}

// stored reads key straight from the server, "" when it is absent.
func (e *env) stored(t *testing.T, key string) string {
	t.Helper()
	if _, ok := e.srv.Objects(t, e.bucket, key)[key]; !ok {
		return ""
	}
	got, _ := e.srv.Get(t, e.bucket, key)
	return got
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A 503 reaches the SDK as an API error with the S3 code; with "after",
// the server has done the work all the same.
func TestError503(t *testing.T) {
	for _, tc := range []struct {
		kind     faultproxy.Kind
		code     string
		wantCode string
		stored   bool
	}{
		{faultproxy.Error503, "", "SlowDown", false},
		{faultproxy.Error503, "ServiceUnavailable", "ServiceUnavailable", false},
		{faultproxy.Error503After, "", "SlowDown", true},
	} {
		t.Run(tc.kind.String()+"-"+tc.wantCode, func(t *testing.T) {
			e := newEnv(t, 1)
			e.p.SetRules(faultproxy.Rule{Kind: tc.kind, Code: tc.code, Match: faultproxy.Method(http.MethodPut)})
			err := e.put(context.Background(), "k", "body")
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != tc.wantCode {
				t.Fatalf("PutObject error %v, want API error %s", err, tc.wantCode)
			}
			if got := e.stored(t, "k"); (got == "body") != tc.stored {
				t.Errorf("object on the server %q, want stored=%v", got, tc.stored)
			}
			if n := e.p.Count(tc.kind); n != 1 {
				t.Errorf("Count(%v) = %d, want 1", tc.kind, n)
			}
			log := e.p.Log()
			last := log[len(log)-1]
			wantUp := 0
			if tc.stored {
				wantUp = http.StatusOK
			}
			if last.Method != http.MethodPut || last.Status != 503 || last.Upstream != wantUp || len(last.Faults) != 1 || last.Faults[0] != tc.kind {
				t.Errorf("log entry %+v", last)
			}
			// Rules off: a plain proxy again.
			e.p.SetRules()
			if err := e.put(context.Background(), "k", "again"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A dropped connection reaches the SDK as a connection error, not an API
// error; with "after", the server has done the work all the same.
func TestDrop(t *testing.T) {
	for _, tc := range []struct {
		kind   faultproxy.Kind
		stored bool
	}{
		{faultproxy.DropBefore, false},
		{faultproxy.DropAfter, true},
	} {
		t.Run(tc.kind.String(), func(t *testing.T) {
			e := newEnv(t, 1)
			e.p.SetRules(faultproxy.Rule{Kind: tc.kind, Match: faultproxy.KeyPrefix("dir/")})
			if err := e.put(context.Background(), "other", "x"); err != nil {
				t.Fatalf("a request the rule does not match: %v", err)
			}
			err := e.put(context.Background(), "dir/k", "body")
			var se *smithyhttp.RequestSendError
			var ae smithy.APIError
			if !errors.As(err, &se) || errors.As(err, &ae) {
				t.Fatalf("PutObject error %v (%T), want a connection error", err, err)
			}
			if got := e.stored(t, "dir/k"); (got == "body") != tc.stored {
				t.Errorf("object on the server %q, want stored=%v", got, tc.stored)
			}
			if n := e.p.Count(tc.kind); n != 1 {
				t.Errorf("Count(%v) = %d, want 1", tc.kind, n)
			}
			log := e.p.Log()
			if last := log[len(log)-1]; last.Status != 0 || last.Path != "/"+e.bucket+"/dir/k" || last.Forwarded != tc.stored {
				t.Errorf("log entry %+v", last)
			}
		})
	}
}

// A delayed request is overtaken by a later one: the server stores the
// older body last. The second PUT must be done within the first one's
// delay: 5 s, where a 3-byte PUT to a loopback server takes milliseconds,
// and well under a second on this loaded 2-core machine.
func TestDelayReorders(t *testing.T) {
	const delay = 5 * time.Second
	e := newEnv(t, 1)
	e.p.SetRules(faultproxy.Rule{Kind: faultproxy.Delay, MinDelay: delay, MaxDelay: delay,
		Match: func(r *http.Request) bool { return r.Header.Get("x-amz-meta-order") == "first" }})
	first := make(chan error, 1)
	go func() {
		_, err := e.c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(e.bucket), Key: aws.String("k"),
			Body: strings.NewReader("old"), Metadata: map[string]string{"order": "first"}})
		first <- err
	}()
	before := e.p.Requests()
	waitFor(t, "the first PUT to reach the proxy", func() bool { return e.p.Requests() > before })
	start := time.Now()
	if err := e.put(context.Background(), "k", "new"); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took >= delay {
		t.Fatalf("the second PUT took %v, longer than the first one's delay: the test cannot tell", took)
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if got := e.stored(t, "k"); got != "old" {
		t.Errorf("object %q, want the overtaken request's %q", got, "old")
	}
	log := e.p.Log()
	if len(log) != 2 || log[0].Faults != nil || len(log[1].Faults) != 1 || log[1].Faults[0] != faultproxy.Delay {
		t.Errorf("log (in order of completion): %+v", log)
	}
	if d := log[1].End.Sub(log[1].Start); d < delay {
		t.Errorf("delayed request took %v", d)
	}
}

// Hang holds a request until Release, or until the client gives up.
func TestHang(t *testing.T) {
	e := newEnv(t, 1)
	if err := e.put(context.Background(), "k", "body"); err != nil {
		t.Fatal(err)
	}
	e.p.SetRules(faultproxy.Rule{Kind: faultproxy.Hang, Match: faultproxy.Method(http.MethodGet)})
	get := func(ctx context.Context) (string, error) {
		out, err := e.c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(e.bucket), Key: aws.String("k")})
		if err != nil {
			return "", err
		}
		defer out.Body.Close()
		b, err := io.ReadAll(out.Body)
		return string(b), err
	}

	done := make(chan error, 1)
	go func() {
		got, err := get(context.Background())
		if err == nil && got != "body" {
			err = errors.New("body " + got)
		}
		done <- err
	}()
	waitFor(t, "the GET to be held", func() bool { return e.p.Hanging() == 1 })
	select {
	case err := <-done:
		t.Fatalf("GET answered while held: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	e.p.Release()
	if err := <-done; err != nil {
		t.Fatalf("GET after Release: %v", err)
	}

	// A client deadline ends the wait; the proxy lets go of the request.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := get(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GET with a deadline: %v", err)
	}
	waitFor(t, "the proxy to notice the client gave up", func() bool { return e.p.Hanging() == 0 })
	log := e.p.Log()
	if last := log[len(log)-1]; last.Status != 0 || last.Upstream != 0 || last.Forwarded {
		t.Errorf("abandoned request logged as %+v", last)
	}
	if n := e.p.Count(faultproxy.Hang); n != 2 {
		t.Errorf("Count(hang) = %d, want 2", n)
	}
}

// Pause drops every request until Resume.
func TestPause(t *testing.T) {
	e := newEnv(t, 1)
	e.p.Pause()
	var se *smithyhttp.RequestSendError
	if err := e.put(context.Background(), "k", "x"); !errors.As(err, &se) {
		t.Fatalf("PUT during an outage: %v", err)
	}
	e.p.Resume()
	if err := e.put(context.Background(), "k", "x"); err != nil {
		t.Fatalf("PUT after the outage: %v", err)
	}
	if n := e.p.Count(faultproxy.DropBefore); n != 1 {
		t.Errorf("Count(drop) = %d", n)
	}
}

// The log names server-side copies, and rules can single them out.
func TestCopyRuleAndLog(t *testing.T) {
	e := newEnv(t, 1)
	if err := e.put(context.Background(), "src", "content"); err != nil {
		t.Fatal(err)
	}
	e.p.SetRules(faultproxy.Rule{Kind: faultproxy.Delay, Match: faultproxy.IsCopy, MinDelay: 50 * time.Millisecond})
	head, err := e.c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(e.bucket), Key: aws.String("src")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.CopyObject(context.Background(), &s3.CopyObjectInput{Bucket: aws.String(e.bucket), Key: aws.String("dst"),
		CopySource: aws.String(e.bucket + "/src"), CopySourceIfMatch: head.ETag}); err != nil {
		t.Fatal(err)
	}
	log := e.p.Log()
	last := log[len(log)-1]
	if last.Method != http.MethodPut || last.CopySource == "" || last.Status != 200 || last.Upstream != 200 ||
		len(last.Faults) != 1 || last.Faults[0] != faultproxy.Delay ||
		len(last.Conditions) != 1 || last.Conditions[0] != "X-Amz-Copy-Source-If-Match: "+aws.ToString(head.ETag) {
		t.Errorf("copy logged as %+v", last)
	}
	if e.p.Count(faultproxy.Delay) != 1 {
		t.Errorf("counts: %s", e.p.Counts())
	}
	if got := e.stored(t, "dst"); got != "content" {
		t.Errorf("copy holds %q", got)
	}
}

// The same seed makes the same decisions for the same sequence of requests.
func TestSeedReplays(t *testing.T) {
	run := func(seed uint64) string {
		e := newEnv(t, seed)
		e.p.SetRules(faultproxy.Rule{Kind: faultproxy.Error503, Prob: 0.5})
		var b strings.Builder
		for range 30 {
			_, err := e.c.HeadBucket(context.Background(), &s3.HeadBucketInput{Bucket: aws.String(e.bucket)})
			if err != nil {
				b.WriteByte('x')
			} else {
				b.WriteByte('.')
			}
		}
		return b.String()
	}
	a, b, c := run(7), run(7), run(8)
	if a != b {
		t.Errorf("seed 7 twice: %s vs %s", a, b)
	}
	if a == c {
		t.Errorf("seeds 7 and 8 made the same decisions: %s", a)
	}
	if !strings.Contains(a, "x") || !strings.Contains(a, ".") {
		t.Errorf("probability 0.5 over 30 requests: %s", a)
	}
}
