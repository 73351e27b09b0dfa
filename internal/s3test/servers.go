package s3test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/s3sync/s3sync/internal/testenv"
)

// Kind names a server implementation.
type Kind string

const (
	Versity  Kind = "versity"  // Versity Gateway, posix backend: Main's server
	MinIO    Kind = "minio"    // MinIO, single drive: started by Each when first needed
	External Kind = "external" // S3SYNC_TEST_ENDPOINT
)

// Every server s3test starts has the same keys, so that code under test
// that reads the environment Main sets reaches each of them.
var (
	accessKey = "s3synctestkey"
	secretKey = "s3synctestsecret" + randHex(8)
)

// Servers is the list S3SYNC_TEST_SERVERS names ("versity,minio" when
// unset): the servers Each runs a test against. With
// S3SYNC_TEST_ENDPOINT it is that server alone.
func Servers() []Kind {
	if os.Getenv("S3SYNC_TEST_ENDPOINT") != "" {
		return []Kind{External}
	}
	v := os.Getenv("S3SYNC_TEST_SERVERS")
	if v == "" {
		v = "versity,minio"
	}
	var out []Kind
	for _, k := range strings.Split(v, ",") {
		out = append(out, Kind(strings.TrimSpace(k)))
	}
	return out
}

var (
	others   = map[Kind]*Server{} // started by Each, stopped by Main
	startErr = map[Kind]error{}
	each     sync.Map // test name -> *Server, for Get inside Each
)

// Each runs f as a subtest per server in Servers, named after the server;
// inside f, Get returns that server. Under CI every server s3test knows
// must be in the list: a conformance test is not allowed to skip one
// quietly.
func Each(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	kinds := Servers()
	if testenv.CI() && kinds[0] != External {
		for _, k := range []Kind{Versity, MinIO} {
			if !slices.Contains(kinds, k) {
				t.Fatalf("S3SYNC_TEST_SERVERS=%s leaves out %s; under CI conformance tests run against every server", os.Getenv("S3SYNC_TEST_SERVERS"), k)
			}
		}
	}
	for _, k := range kinds {
		t.Run(string(k), func(t *testing.T) {
			srv := server(t, k)
			each.Store(t.Name(), srv)
			t.Cleanup(func() { each.Delete(t.Name()) })
			f(t)
		})
	}
}

// eachServer finds the server of the Each that t runs inside, if any.
func eachServer(t testing.TB) *Server {
	name := t.Name()
	for {
		if s, ok := each.Load(name); ok {
			return s.(*Server)
		}
		i := strings.LastIndexByte(name, '/')
		if i < 0 {
			return nil
		}
		name = name[:i]
	}
}

// server returns the server of kind k, starting it on first use.
func server(t *testing.T, k Kind) *Server {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if current != nil && current.Kind == k {
		return current
	}
	if k != MinIO {
		t.Fatalf("S3SYNC_TEST_SERVERS: unknown server %q (versity, minio)", k)
	}
	if s := others[k]; s != nil {
		return s
	}
	if err := startErr[k]; err != nil {
		t.Fatal(err)
	}
	s, err := startMinIO()
	if errors.Is(err, errNoMinIO) {
		testenv.CannotRun(t, "%v", err)
	}
	if err != nil {
		startErr[k] = err
		t.Fatal(err)
	}
	others[k] = s
	return s
}

func stopOthers() {
	mu.Lock()
	defer mu.Unlock()
	for k, s := range others {
		s.Stop()
		delete(others, k)
	}
}

var errNoMinIO = errors.New("minio not found: run `make tools`, or leave it out of S3SYNC_TEST_SERVERS")

// minioBinary finds the minio executable: $S3SYNC_MINIO, then PATH, then
// $GOPATH/bin.
func minioBinary() (string, error) {
	if p := os.Getenv("S3SYNC_MINIO"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w (S3SYNC_MINIO: %v)", errNoMinIO, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	for _, dir := range filepath.SplitList(gopath()) {
		p := filepath.Join(dir, "bin", "minio")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errNoMinIO
}

// startMinIO starts a single-drive MinIO on free loopback ports (its S3
// port and its console's, which stays closed with the browser off).
func startMinIO() (*Server, error) {
	bin, err := minioBinary()
	if err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp("", "s3sync-minio-")
	if err != nil {
		return nil, err
	}
	s := &Server{Kind: MinIO, AccessKey: accessKey, SecretKey: secretKey, Region: "us-east-1", root: root, bin: bin,
		env: []string{"MINIO_ROOT_USER=" + accessKey, "MINIO_ROOT_PASSWORD=" + secretKey, "MINIO_REGION=us-east-1",
			"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=1"}}
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		console, err := freePort()
		if err != nil {
			return nil, err
		}
		s.Endpoint = "http://127.0.0.1:" + port
		s.args = []string{"server", "--quiet", "--address", "127.0.0.1:" + port, "--console-address", "127.0.0.1:" + console,
			filepath.Join(root, "data")}
		if lastErr = s.launch(); lastErr == nil {
			return s, nil
		}
	}
	os.RemoveAll(root)
	return nil, fmt.Errorf("start minio: %w", lastErr)
}
