// Package s3test gives tests a real S3-compatible server: a Versity Gateway
// started on a free loopback port with a temporary root, one per test
// package, or any server named by S3SYNC_TEST_ENDPOINT (with
// S3SYNC_TEST_ACCESS_KEY and S3SYNC_TEST_SECRET_KEY). Conformance tests
// run through Each against every server S3SYNC_TEST_SERVERS names
// (default "versity,minio"): MinIO implements what Versity does not
// (per-object conditions in batch deletes, lifecycle rules, public access
// blocks). It never fakes the S3 protocol.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Server is a running S3-compatible endpoint.
type Server struct {
	Kind      Kind
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Region    string

	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
	root   string
	bin    string
	args   []string
	env    []string
}

var (
	current *Server
	mu      sync.Mutex
)

// Main starts the server, runs the package's tests and stops it. Call it
// from TestMain. It also sets the AWS_* environment so that code under test
// using the standard credential chain finds the test keys.
func Main(m *testing.M) {
	srv, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "s3test:", err)
		os.Exit(1)
	}
	mu.Lock()
	current = srv
	mu.Unlock()
	os.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	os.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	os.Setenv("AWS_REGION", srv.Region)
	os.Unsetenv("AWS_PROFILE")
	os.Setenv("AWS_CONFIG_FILE", os.DevNull)
	os.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	code := m.Run()
	srv.Stop()
	stopOthers()
	os.Exit(code)
}

// Get returns the server started by Main or, inside Each, the server
// that run is against.
func Get(t testing.TB) *Server {
	t.Helper()
	if s := eachServer(t); s != nil {
		return s
	}
	mu.Lock()
	defer mu.Unlock()
	if current == nil {
		t.Fatal("s3test: no server; call s3test.Main(m) from TestMain")
	}
	return current
}

// Binary finds the versitygw executable: $S3SYNC_VERSITYGW, then PATH, then
// $GOPATH/bin.
func Binary() (string, error) {
	if p := os.Getenv("S3SYNC_VERSITYGW"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	for _, dir := range filepath.SplitList(gopath()) {
		p := filepath.Join(dir, "bin", "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("versitygw not found: run `make test` (it installs it) or `go install github.com/versity/versitygw/cmd/versitygw@v1.8.0`")
}

func gopath() string {
	if p := os.Getenv("GOPATH"); p != "" {
		return p
	}
	out, _ := exec.Command("go", "env", "GOPATH").Output()
	return strings.TrimSpace(string(out))
}

// Start starts a server (or adopts S3SYNC_TEST_ENDPOINT).
func Start() (*Server, error) { return start(true) }

// StartUnversioned starts a server of the test's own whose store cannot
// keep versions (PutBucketVersioning answers 501 NotImplemented, as on
// stores without versioning), stopped when the test ends. With
// S3SYNC_TEST_ENDPOINT the test is skipped.
func StartUnversioned(t testing.TB) *Server {
	t.Helper()
	if os.Getenv("S3SYNC_TEST_ENDPOINT") != "" {
		t.Skip("StartUnversioned needs the server s3test starts, not S3SYNC_TEST_ENDPOINT")
	}
	s, err := start(false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func start(versioning bool) (*Server, error) {
	if ep := os.Getenv("S3SYNC_TEST_ENDPOINT"); ep != "" {
		return &Server{
			Kind:      External,
			Endpoint:  ep,
			AccessKey: os.Getenv("S3SYNC_TEST_ACCESS_KEY"),
			SecretKey: os.Getenv("S3SYNC_TEST_SECRET_KEY"),
			Region:    envOr("S3SYNC_TEST_REGION", "us-east-1"),
		}, nil
	}
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp("", "s3sync-versitygw-")
	if err != nil {
		return nil, err
	}
	s := &Server{Kind: Versity, AccessKey: accessKey, SecretKey: secretKey, Region: "us-east-1", root: root, bin: bin}
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s.Endpoint = "http://127.0.0.1:" + port
		s.args = []string{"--port", "127.0.0.1:" + port, "--access", s.AccessKey, "--secret", s.SecretKey,
			"--region", s.Region, "--quiet", "--keep-alive", "posix"}
		if versioning {
			// Versioning must be allowed at start-up; buckets still
			// start unversioned, as on S3.
			s.args = append(s.args, "--versioning-dir", filepath.Join(root, "versions"))
		}
		s.args = append(s.args, filepath.Join(root, "data"))
		for _, dir := range []string{"data", "versions"} {
			if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
				return nil, err
			}
		}
		if lastErr = s.launch(); lastErr == nil {
			return s, nil
		}
	}
	os.RemoveAll(root)
	return nil, fmt.Errorf("start versitygw: %w", lastErr)
}

func (s *Server) launch() error {
	cmd := exec.Command(s.bin, s.args...)
	if s.env != nil {
		cmd.Env = append(os.Environ(), s.env...)
	}
	log, err := os.Create(filepath.Join(s.root, "server.log"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		return err
	}
	s.cmd = cmd
	exited := make(chan struct{})
	s.exited = exited
	go func() { cmd.Wait(); log.Close(); close(exited) }()
	// Ready when a signed request succeeds: MinIO answers "server not
	// initialized" for a while after it listens (even after its health
	// URL says ready). 60 s: both start in well under a second, but a
	// loaded machine can be slow.
	deadline := time.Now().Add(60 * time.Second)
	c := s.Client()
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			out, _ := os.ReadFile(filepath.Join(s.root, "server.log"))
			return fmt.Errorf("%s exited: %s", s.Kind, strings.TrimSpace(string(out)))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := c.ListBuckets(ctx, &s3.ListBucketsInput{}, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Kill()
	return fmt.Errorf("%s did not answer within 60s", s.Kind)
}

// Stop ends the server and removes its data. Only a server this package
// started is stopped.
func (s *Server) Stop() {
	s.Pause()
	if s.root != "" {
		os.RemoveAll(s.root)
	}
}

// Pause stops the server process but keeps its data, to simulate an outage.
func (s *Server) Pause() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	// Versity drains keep-alive connections on SIGTERM, which can take
	// long; an outage is meant to be abrupt anyway.
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(2 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
}

// Resume restarts a paused server on the same port with the same data.
func (s *Server) Resume() error {
	if s.root == "" {
		return errors.New("s3test: cannot restart an external server")
	}
	var last error
	for range 50 {
		if last = s.launch(); last == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return last
}

// Client returns a raw SDK client for assertions, independent of the code
// under test.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:                     s.Region,
		BaseEndpoint:               aws.String(s.Endpoint),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// NewBucket creates a bucket with a unique name and empties and removes it
// when the test ends.
func (s *Server) NewBucket(t testing.TB) string {
	t.Helper()
	name := "t" + strings.ToLower(randHex(10))
	c := s.Client()
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	t.Cleanup(func() { s.removeBucket(name) })
	return name
}

func (s *Server) removeBucket(name string) {
	ctx := context.Background()
	c := s.Client()
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(name)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return
		}
		var ids []types.ObjectIdentifier
		for _, o := range page.Contents {
			ids = append(ids, types.ObjectIdentifier{Key: o.Key})
		}
		for _, id := range ids {
			c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(name), Key: id.Key})
		}
	}
	c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(name)})
}

// Objects returns every key in bucket under prefix with its size.
func (s *Server) Objects(t testing.TB, bucket, prefix string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	p := s3.NewListObjectsV2Paginator(s.Client(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("list %s: %v", bucket, err)
		}
		for _, o := range page.Contents {
			out[aws.ToString(o.Key)] = aws.ToInt64(o.Size)
		}
	}
	return out
}

// Put stores an object directly, bypassing the code under test.
func (s *Server) Put(t testing.TB, bucket, key, body string, meta map[string]string) {
	t.Helper()
	_, err := s.Client().PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body), Metadata: meta,
	})
	if err != nil {
		t.Fatalf("put %s/%s: %v", bucket, key, err)
	}
}

// Get reads an object directly.
func (s *Server) Get(t testing.TB, bucket, key string) (string, map[string]string) {
	t.Helper()
	out, err := s.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	b := new(strings.Builder)
	if _, err := io.Copy(b, out.Body); err != nil {
		t.Fatalf("read %s/%s: %v", bucket, key, err)
	}
	return b.String(), out.Metadata
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// MultipartUploads counts the unfinished multipart uploads in bucket.
func (s *Server) MultipartUploads(t testing.TB, bucket string) int {
	t.Helper()
	out, err := s.Client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatalf("list multipart uploads: %v", err)
	}
	return len(out.Uploads)
}

// CorruptObject flips one byte of the stored object in place, as bit rot
// on the server's disk would: the object keeps its size, ETag and stored
// checksum. Only possible with the server this package started (the
// posix backend keeps each object as a file); otherwise the test is
// skipped.
func (s *Server) CorruptObject(t testing.TB, bucket, key string) {
	t.Helper()
	if s.Kind != Versity {
		t.Skipf("CorruptObject needs the Versity Gateway s3test started, not %s", s.Kind)
	}
	f, err := os.OpenFile(filepath.Join(s.root, "data", bucket, filepath.FromSlash(key)), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, 0); err != nil {
		t.Fatal(err)
	}
}
