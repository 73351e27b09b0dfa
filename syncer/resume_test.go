package syncer

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/s3sync/s3sync/cache"
	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/state"
)

// partCounter forwards to the real server and counts the parts that
// arrived; parts numbered from holdFrom on wait until released.
type partCounter struct {
	mu       sync.Mutex
	parts    int
	holdFrom int
	release  chan struct{}
	active   int // part PUTs being handled
}

// idle reports whether no part PUT is being handled.
func (pc *partCounter) idle() bool {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.active == 0
}

func newPartCounter(t *testing.T, target string) (*partCounter, string) {
	pc := &partCounter{release: make(chan struct{})}
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n := r.URL.Query().Get("partNumber"); n != "" && r.Method == http.MethodPut {
			var num int
			for _, c := range n {
				num = num*10 + int(c-'0')
			}
			pc.mu.Lock()
			hold := pc.holdFrom > 0 && num >= pc.holdFrom
			pc.active++
			pc.mu.Unlock()
			defer func() { pc.mu.Lock(); pc.active--; pc.mu.Unlock() }()
			if hold {
				select {
				case <-pc.release:
				case <-r.Context().Done():
					return
				}
			}
			rec := &statusRecorder{ResponseWriter: w}
			rp.ServeHTTP(rec, r)
			if rec.code == 0 || rec.code == http.StatusOK {
				pc.mu.Lock()
				pc.parts++
				pc.mu.Unlock()
			}
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return pc, srv.URL
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(c int) { s.code = c; s.ResponseWriter.WriteHeader(c) }

func (pc *partCounter) count() int {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.parts
}

func openCache(t *testing.T) *cache.Cache {
	st, err := state.Open(t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st.Cache()
}

// A large upload cut off half-way (here by cancellation, as a shutdown or
// crash would) continues from its finished parts when the file is
// unchanged, and starts again (aborting the old upload) when it changed.
func TestUploadResumes(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	pc, endpoint := newPartCounter(t, srv.Endpoint)
	c, err := remote.New(context.Background(), remote.Config{EndpointURL: endpoint, MultipartThreshold: 5 << 20, PartSize: 5 << 20, PartConcurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	store := openCache(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "big.bin")
	data := make([]byte, 20<<20) // four parts
	rand.Read(data)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	interrupted := func() {
		t.Helper()
		pc.mu.Lock()
		pc.holdFrom, pc.parts, pc.release = 3, 0, make(chan struct{})
		pc.mu.Unlock()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := uploadFile(ctx, c, ByPath(path), bucket, "big.bin", "", &Resume{Store: store, Rel: "big.bin"})
			done <- err
		}()
		deadline := time.Now().Add(60 * time.Second)
		for pc.count() < 2 {
			if time.Now().After(deadline) {
				t.Fatal("the first two parts never arrived")
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		<-done
		pc.mu.Lock()
		pc.holdFrom = 0
		close(pc.release) // the held parts' clients are gone
		pc.mu.Unlock()
		// The held parts' handlers end before counting starts anew.
		for deadline := time.Now().Add(60 * time.Second); !pc.idle(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the held parts' requests never ended")
			}
		}
		pc.mu.Lock()
		pc.parts = 0
		pc.mu.Unlock()
		if _, ok, _ := store.GetUpload("big.bin"); !ok {
			t.Fatal("the interrupted upload was not kept for resuming")
		}
	}

	interrupted()
	if _, err := uploadFile(context.Background(), c, ByPath(path), bucket, "big.bin", "", &Resume{Store: store, Rel: "big.bin"}); err != nil {
		t.Fatal(err)
	}
	if n := pc.count(); n != 2 {
		t.Errorf("resumed upload sent %d parts, want the 2 missing ones", n)
	}
	if body, _ := srv.Get(t, bucket, "big.bin"); body != string(data) {
		t.Error("the resumed object differs from the file")
	}
	if _, ok, _ := store.GetUpload("big.bin"); ok {
		t.Error("a finished upload is still recorded")
	}

	interrupted()
	data[0] ^= 1
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := uploadFile(context.Background(), c, ByPath(path), bucket, "big.bin", "", &Resume{Store: store, Rel: "big.bin"}); err != nil {
		t.Fatal(err)
	}
	if n := pc.count(); n != 4 {
		t.Errorf("upload of a changed file sent %d parts, want all 4", n)
	}
	if body, _ := srv.Get(t, bucket, "big.bin"); body != string(data) {
		t.Error("the object differs from the changed file")
	}
	if n := srv.MultipartUploads(t, bucket); n != 0 {
		t.Errorf("%d unfinished uploads left behind", n)
	}
}
